"""`--format json`: the SPEC §4 object, schema tierbot.review/1.

Named jsonout so that `import json` inside the package keeps meaning the standard library.
"""

from __future__ import annotations

import json
from typing import Any

from tierbot.records import ReviewResult, Usage

SCHEMA = "tierbot.review/1"


def usd(value: float) -> float:
    return round(float(value), 6)


def _score(value: float) -> float:
    return round(float(value), 4)


def to_dict(result: ReviewResult) -> dict[str, Any]:
    a, r, e, u = result.analysis, result.route, result.estimate, result.usage
    return {
        "schema": SCHEMA,
        "status": result.status,
        "range": {"spec": result.range.spec, "base": result.range.base, "head": result.range.head},
        "analysis": {
            "files": len(a.files),
            "lines_added": a.lines_added,
            "lines_removed": a.lines_removed,
            "hunks": a.hunks,
            "complexity_delta": a.complexity_delta,
            "risk_score": _score(a.risk_score),
            "signals": [
                {"id": s.id, "weight": _score(s.weight), "detail": s.detail, "paths": list(s.paths)}
                for s in a.signals
            ],
            "file_stats": [
                {
                    "path": f.path,
                    "old_path": f.old_path,
                    "status": f.status,
                    "language": f.language,
                    "lines_added": f.lines_added,
                    "lines_removed": f.lines_removed,
                    "complexity_delta": f.complexity_delta,
                    "skip_reason": f.skip_reason,
                }
                for f in a.files
            ],
        },
        "route": {
            "tier": r.tier,
            "reasons": list(r.reasons),
            "units": [
                {
                    "id": unit.id,
                    "tier": unit.tier,
                    "model": unit.model,
                    "paths": list(unit.paths),
                    "risk_score": _score(unit.risk_score),
                    "reasons": list(unit.reasons),
                    "escalated_from": unit.escalated_from,
                }
                for unit in r.units
            ],
        },
        "estimate": {
            "input_tokens": e.input_tokens,
            "output_tokens": e.output_tokens,
            "cost_usd": usd(e.cost_usd),
            "all_opus_cost_usd": usd(e.all_opus_cost_usd),
        },
        "findings": [
            {
                "path": f.path,
                "line": f.line,
                "end_line": f.end_line,
                "severity": f.severity,
                "category": f.category,
                "title": f.title,
                "message": f.message,
                "suggestion": f.suggestion,
                "confidence": _score(f.confidence),
                "source": f.source,
                "fingerprint": f.fingerprint,
            }
            for f in result.findings
        ],
        "usage": usage_dict(u),
        "notes": list(result.notes),
    }


def usage_dict(u: Usage) -> dict[str, Any]:
    """`usage` as SPEC §4 has it (an audit's too)."""
    return {
        "calls": u.calls,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_tokens": u.cache_read_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "cost_usd": usd(u.cost_usd),
        "all_opus_cost_usd": usd(u.all_opus_cost_usd),
    }


def render(result: ReviewResult) -> str:
    text = json.dumps(to_dict(result), indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Non-UTF-8 file names arrive as lone surrogates; \u escapes keep the output writable.
        text = json.dumps(to_dict(result), indent=2, ensure_ascii=True)
    return text + "\n"
