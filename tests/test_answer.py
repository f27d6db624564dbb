"""The answers' schemas come from one definition (the pydantic models in review/answer.py)."""

from __future__ import annotations

import json

import pytest

from tierbot.records import SEVERITIES
from tierbot.review.answer import (
    SCHEMA_CHARS,
    InvalidAnswer,
    answer_schema,
    parse_verdicts,
    schema_text,
    verdict_schema,
)


def _objects(node: object) -> list[dict[str, object]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "object" else []
        return found + [o for v in node.values() for o in _objects(v)]
    if isinstance(node, list):
        return [o for v in node for o in _objects(v)]
    return []


@pytest.mark.parametrize("schema", [answer_schema(), verdict_schema()])
def test_every_object_is_closed_for_structured_output(schema: dict[str, object]) -> None:
    objects = _objects(schema)
    assert objects and all(o.get("additionalProperties") is False for o in objects)


def test_the_review_schema_says_what_the_parser_reads() -> None:
    text = json.dumps(answer_schema())
    for field in ("findings", "escalate", "escalate_reason", "path", "end_line", "suggestion"):
        assert f'"{field}"' in text
    assert json.dumps([str(s) for s in SEVERITIES]) in text  # the severity enum


def test_the_offline_size_stays_close_to_the_schema_sent() -> None:
    # The dry-run estimate may not import pydantic or the SDK, so it uses SCHEMA_CHARS.
    sent = max(len(schema_text("review")), len(schema_text("verify")))
    assert abs(SCHEMA_CHARS - sent) <= 0.15 * sent, sent


def test_verdicts_are_validated_by_the_same_models() -> None:
    ok = {"verdicts": [{"id": 1, "verdict": "rejected", "reason": "not reachable"}]}
    assert parse_verdicts(json.dumps(ok))[0]["verdict"] == "rejected"
    assert parse_verdicts("```json\n" + json.dumps(ok) + "\n```")[0]["id"] == 1
    bad = {"verdicts": [{"id": 1, "verdict": "maybe", "reason": "?"}]}
    with pytest.raises(InvalidAnswer):
        parse_verdicts(json.dumps(bad))
