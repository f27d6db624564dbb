"""Reporters: one module per output format, behind one small interface.

Reporters turn a finished `ReviewResult` into text; they know nothing of the CLI (the CLI decides
colour, verbosity and where the text goes).  Submodules are imported on demand so that a dry run
pays only for the format it prints.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from tierbot.records import (
    ANALYSIS_BOUND,
    SEVERITIES,
    Finding,
    ReviewResult,
    Unit,
    paths_label,
    severity_rank,
)
from tierbot.words import plural

FORMATS = ("text", "json", "markdown", "sarif", "github")


def render(
    fmt: str,
    result: ReviewResult,
    *,
    color: bool = False,
    verbose: bool = False,
    width: int | None = None,
) -> str:
    """Render `result` in format `fmt` (one of FORMATS); `width`: the terminal's, or None."""
    if fmt == "text":
        from tierbot.reporters import text

        return text.render(result, color=color, verbose=verbose, width=width)
    if fmt == "json":
        from tierbot.reporters import jsonout

        return jsonout.render(result)
    if fmt == "markdown":
        from tierbot.reporters import markdown

        return markdown.render_markdown(result, verbose=verbose)
    if fmt == "sarif":
        from tierbot.reporters import sarif

        return sarif.render(result)
    if fmt == "github":
        # Not `from tierbot.reporters import annotations`: the __future__ import owns that name.
        from tierbot.reporters.annotations import render as render_annotations

        return render_annotations(result)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def to_dict(result: ReviewResult) -> dict[str, Any]:
    """The SPEC §4 JSON object (schema tierbot.review/1)."""
    from tierbot.reporters import jsonout

    return jsonout.to_dict(result)


# --- helpers shared by the human-facing formats -------------------------------------------


class CostSummary(NamedTuple):
    spent: bool  # True: money really spent (usage); False: an offline estimate
    cost_usd: float
    all_opus_usd: float
    saved_pct: int | None  # None when there is nothing to compare against


def cost_summary(result: ReviewResult) -> CostSummary:
    usage, estimate = result.usage, result.estimate
    if usage.calls > 0:
        spent, cost, opus = True, usage.cost_usd, usage.all_opus_cost_usd
    elif result.status in ("dry-run", "offline"):
        spent, cost, opus = False, estimate.cost_usd, estimate.all_opus_cost_usd
    elif result.status == "complete":
        # A finished review that needed no model call (all skipped or cached) spent nothing;
        # the all-Opus counterfactual is still the estimate's.
        spent, cost, opus = True, 0.0, estimate.all_opus_cost_usd
    else:
        # Nothing was reviewed: there is no saving to claim.
        spent, cost, opus = True, 0.0, 0.0
    saved = round(100 * (1 - cost / opus)) if opus > 0 else None
    return CostSummary(spent, cost, opus, saved)


def cost_line(result: ReviewResult) -> str:
    """The one cost line every output shows: `cost: $X spent on N model calls (all-Opus $Y, Z%
    saved)`, or `estimated` when no model was called."""
    c = cost_summary(result)
    kind = "spent" if c.spent else "estimated"
    detail = ""
    if c.all_opus_usd > 0 and c.saved_pct is not None:
        detail = f" (all-Opus {money(c.all_opus_usd)}, {c.saved_pct}% saved)"
    n = result.usage.calls
    calls = ""
    if c.spent:
        calls = f" on {plural(n, 'model call')}" if n else " (no model calls)"
    return f"cost: {money(c.cost_usd)} {kind}{calls}{detail}"


def verify_line(result: ReviewResult) -> str | None:
    """The cost of Opus verifying cheaper tiers' findings, for its own line (None: none)."""
    if result.usage.calls > 0:
        if result.usage.verify_cost_usd <= 0:
            return None
        return f"of which Opus verification: {money(result.usage.verify_cost_usd)}"
    if result.status in ("dry-run", "offline") and result.estimate.verify_cost_usd > 0:
        return f"of which Opus verification (expected): {money(result.estimate.verify_cost_usd)}"
    return None


def money(usd: float) -> str:
    """Dollars with enough digits that cheap Haiku calls do not all read $0.00."""
    return f"${usd:.4f}" if usd < 1 else f"${usd:,.2f}"


def unit_files(unit: Unit) -> str:
    """A unit's files: the path itself, or their common directory and a count."""
    return paths_label(unit.paths)


def unit_reason(unit: Unit) -> str:
    """A unit's reasons for a table row, which shows its tier and risk in their own columns."""
    reason = "; ".join(_bare_reason(r) for r in unit.reasons) if unit.reasons else "-"
    if unit.escalated_from:
        reason += f" (escalated from {unit.escalated_from})"
    return reason


_TIER_AND_SCORE = re.compile(r"(?:(?:skip|haiku|sonnet|opus): )?(?:risk [0-9.]+ (?=\())?")


def _bare_reason(reason: str) -> str:
    """`opus: risk 0.64 (why); capped from opus` -> `why; capped from opus`."""
    m = _TIER_AND_SCORE.match(reason)
    rest = reason[m.end() :] if m else reason
    if not (m and "risk" in m.group(0)):
        return rest
    depth = 0
    for i, ch in enumerate(rest):  # the parenthesis that closes the one after the score
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            return rest[1:i] + rest[i + 1 :]
    return rest


def shown_notes(result: ReviewResult, verbose: bool) -> list[str]:
    """The notes a reader can act on; bounds of the analysis only when asked (-v)."""
    return [n for n in result.notes if verbose or not n.endswith(ANALYSIS_BOUND)]


def findings_count(findings: tuple[Finding, ...] | list[Finding]) -> str:
    """`no findings`, `1 finding (1 low)`, `3 findings (1 critical, 2 info)`."""
    if not findings:
        return "no findings"
    counts = [(s, sum(f.severity == s for f in findings)) for s in reversed(SEVERITIES)]
    detail = ", ".join(f"{n} {s}" for s, n in counts if n)
    return f"{plural(len(findings), 'finding')} ({detail})"


def by_severity(findings: tuple[Finding, ...] | list[Finding]) -> list[Finding]:
    """Most severe first; ties keep the pipeline's order (path, line)."""
    return sorted(findings, key=lambda f: -severity_rank(f.severity))


def one_line(text: str) -> str:
    """Collapse whitespace and drop control characters (model text must not drive a terminal)."""
    cleaned = "".join(ch if ch.isprintable() or ch in "\t\n\r " else " " for ch in text)
    return " ".join(cleaned.split())
