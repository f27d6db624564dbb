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

# The schemas sent as structured output are derived from the pydantic models below (one
# definition); the estimate, which must not import pydantic or the SDK, uses their size in
# characters, which tests/test_answer.py keeps true.
SCHEMA_CHARS = 1250


def answer_schema() -> dict[str, Any]:
    """The review answer's JSON schema, as the structured-output API takes it."""
    return _schema("review")


def verdict_schema() -> dict[str, Any]:
    """The JSON schema of Opus's verdicts on cheaper tiers' findings."""
    return _schema("verify")


@functools.lru_cache(maxsize=2)
def _schema(kind: str) -> dict[str, Any]:
    review, verdicts = _models()
    schema: dict[str, Any] = (review if kind == "review" else verdicts).model_json_schema()
    return schema


def schema_text(kind: str = "review") -> str:
    """The schema as the request carries it (for cache keys and worst-case prompt sizes)."""
    return json.dumps(_schema(kind), sort_keys=True)


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


def _validate(data: Any, kind: str = "review") -> Any:
    from pydantic import ValidationError

    review, verdicts = _models()
    try:
        return (review if kind == "review" else verdicts).model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'answer'}: {err['msg']}"
            for err in e.errors()[:5]
        )
        raise InvalidAnswer(f"the answer does not match the schema ({problems})") from None


def parse_verdicts(text: str) -> list[dict[str, Any]]:
    """Opus's verdicts (`id`, `verdict`, `reason`, and what it changed); raises InvalidAnswer."""
    return [v.model_dump() for v in _validate(_load_json(text), "verify").verdicts]


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
def _models() -> tuple[Any, Any]:
    """The answers' pydantic models: the one definition of what a model must answer.

    Parsing is lenient where a repair call would waste money (extra keys are ignored, a severity
    word outside the enum is kept for `findings.normalise_severity`); the schema sent is strict.
    """
    from typing import Literal

    from pydantic import BaseModel, ConfigDict, Field

    # Structured output needs every object closed; parsing ignores extra keys all the same.
    lenient = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": False})
    severity_enum: dict[str, Any] = {"enum": [str(s) for s in SEVERITIES]}

    class ModelFinding(BaseModel):
        model_config = lenient
        path: str
        line: int | None
        end_line: int | None
        severity: str = Field(json_schema_extra=severity_enum)
        category: str
        title: str
        message: str
        suggestion: str | None
        confidence: float

    class ReviewAnswer(BaseModel):
        model_config = lenient
        findings: list[ModelFinding]
        escalate: bool
        escalate_reason: str | None = None

    class Verdict(BaseModel):
        model_config = lenient
        id: int
        verdict: Literal["confirmed", "changed", "rejected"]
        reason: str
        # What a "changed" verdict changes; absent when nothing is.
        severity: str | None = Field(default=None, json_schema_extra=severity_enum)
        line: int | None = None
        end_line: int | None = None
        title: str | None = None
        message: str | None = None

    class Verdicts(BaseModel):
        model_config = lenient
        verdicts: list[Verdict]

    return ReviewAnswer, Verdicts
