"""The answer a model must give: its JSON schema, validation, and the findings it holds.

`pydantic` is imported only when an answer is parsed, so nothing on the dry-run path pays for it.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any, NamedTuple, cast

from tierbot.findings import normalise_severity
from tierbot.records import SEVERITIES, Finding, Severity

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "line": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    "end_line": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    "severity": {"type": "string", "enum": list(SEVERITIES)},
                    "category": {"type": "string"},
                    "title": {"type": "string"},
                    "message": {"type": "string"},
                    "suggestion": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    "confidence": {"type": "number"},
                },
                "required": [
                    "path",
                    "line",
                    "end_line",
                    "severity",
                    "category",
                    "title",
                    "message",
                    "suggestion",
                    "confidence",
                ],
                "additionalProperties": False,
            },
        },
        "escalate": {"type": "boolean"},
        "escalate_reason": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["findings", "escalate", "escalate_reason"],
    "additionalProperties": False,
}

# Structured outputs bill the schema as prompt, so budget guards count this text too.
SCHEMA_TEXT = json.dumps(ANSWER_SCHEMA)

_FENCED = re.compile(r"^\s*```(?:json)?\s*\n(.*)\n\s*```\s*$", re.DOTALL)


class Answer(NamedTuple):
    findings: tuple[Finding, ...]
    escalate: bool
    escalate_reason: str | None
    raw: str  # canonical JSON, for the review cache


class InvalidAnswer(Exception):
    """The model's text is not JSON matching the schema; the message goes into the repair call."""


def parse_answer(text: str, tier: str) -> Answer:
    """Validate a model answer; raises InvalidAnswer with a short, model-readable reason."""
    parsed = _validate(_load_json(text))
    findings = tuple(_finding(f, tier) for f in parsed.findings)
    reason = (parsed.escalate_reason or "").strip() or None
    raw = json.dumps(parsed.model_dump(), sort_keys=True, separators=(",", ":"))
    return Answer(findings, bool(parsed.escalate), reason, raw)


def _load_json(text: str) -> Any:
    m = _FENCED.match(text)  # some models wrap the JSON in a code fence anyway
    body = m.group(1) if m else text.strip()
    if not body:
        raise InvalidAnswer("the answer was empty")
    try:
        return json.loads(body)
    except json.JSONDecodeError as e:
        raise InvalidAnswer(f"the answer is not valid JSON ({e.msg} at line {e.lineno})") from None


def _validate(data: Any) -> Any:
    from pydantic import ValidationError

    try:
        return _answer_model().model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'answer'}: {err['msg']}"
            for err in e.errors()[:5]
        )
        raise InvalidAnswer(f"the answer does not match the schema ({problems})") from None


def _finding(f: Any, tier: str) -> Finding:
    confidence = f.confidence if math.isfinite(f.confidence) else 0.5
    written_for = None
    if f.suggestion is not None and f.line is not None:
        written_for = (f.line, f.end_line if f.end_line is not None else f.line)
    return Finding(
        path=f.path.strip(),
        line=f.line,
        end_line=f.end_line,
        # One vocabulary for severity words (findings.py); an unknown word stays as the model wrote
        # it, so anchoring counts it in a note when it treats it as info.
        severity=normalise_severity(f.severity) or cast(Severity, f.severity.strip()),
        category=f.category.strip().lower() or "bug",
        title=f.title.strip(),
        message=f.message.strip(),
        source=tier,
        suggestion=f.suggestion,
        confidence=min(1.0, max(0.0, confidence)),
        suggestion_range=written_for,
    )


@functools.lru_cache(maxsize=1)
def _answer_model() -> Any:
    from pydantic import BaseModel, ConfigDict

    # Extra keys are ignored rather than rejected: a repair call for them would waste money.
    class ModelFinding(BaseModel):
        model_config = ConfigDict(extra="ignore")
        path: str
        line: int | None
        end_line: int | None
        severity: str
        category: str
        title: str
        message: str
        suggestion: str | None
        confidence: float

    class ReviewAnswer(BaseModel):
        model_config = ConfigDict(extra="ignore")
        findings: list[ModelFinding]
        escalate: bool
        escalate_reason: str | None = None

    return ReviewAnswer
