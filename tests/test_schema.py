"""The shipped JSON Schemas: every to_dict output validates, bad objects are rejected."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import reporter_samples as samples
from jsonschema import Draft202012Validator

import tierbot
from tierbot.reporters import render, to_dict

DATA = Path(tierbot.__file__).parent / "data"


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((DATA / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


REVIEW = _validator("review-1.schema.json")
COSTS = _validator("costs-1.schema.json")


@pytest.mark.parametrize("name", sorted(samples.ALL()))
def test_every_sample_validates(name: str) -> None:
    doc = to_dict(samples.ALL()[name])
    errors = [e.message for e in REVIEW.iter_errors(doc)]
    assert errors == []
    # What `--format json` prints is the same object.
    assert json.loads(render("json", samples.ALL()[name])) == doc


def test_to_dict_is_exactly_spec_section_4() -> None:
    doc = to_dict(samples.complete())
    assert list(doc) == [
        "schema",
        "status",
        "range",
        "analysis",
        "route",
        "estimate",
        "findings",
        "usage",
        "notes",
    ]
    assert doc["schema"] == "tierbot.review/1"
    assert doc["range"] == {"spec": "main...feature", "base": samples.BASE, "head": samples.HEAD}
    a = doc["analysis"]
    assert set(a) == {
        "files",
        "lines_added",
        "lines_removed",
        "hunks",
        "complexity_delta",
        "risk_score",
        "signals",
        "file_stats",
    }
    assert a["files"] == len(samples.FILES) == len(a["file_stats"])
    assert set(a["file_stats"][0]) == {
        "path",
        "old_path",
        "status",
        "language",
        "lines_added",
        "lines_removed",
        "complexity_delta",
        "skip_reason",
    }
    assert a["file_stats"][3]["old_path"] == "my dir/old name.py"
    assert a["file_stats"][3]["skip_reason"] == "pure rename"
    assert a["signals"][0] == {
        "id": "sensitive_path",
        "weight": 0.35,
        "detail": "touches authentication code",
        "paths": ["src/auth/login.py", "src/auth/tokens.py"],
    }
    assert set(doc["route"]["units"][0]) == {
        "id",
        "tier",
        "model",
        "paths",
        "risk_score",
        "reasons",
        "escalated_from",
    }
    assert set(doc["findings"][0]) == {
        "path",
        "line",
        "end_line",
        "severity",
        "category",
        "title",
        "message",
        "suggestion",
        "confidence",
        "source",
        "fingerprint",
    }
    assert set(doc["usage"]) == {
        "calls",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_usd",
        "all_opus_cost_usd",
    }
    # Money to 6 decimals, scores to 4.
    assert a["risk_score"] == 0.8123
    assert doc["estimate"] == {
        "input_tokens": 9800,
        "output_tokens": 1400,
        "cost_usd": 0.064789,
        "all_opus_cost_usd": 0.067212,
    }
    assert doc["usage"]["cost_usd"] == 0.012346
    assert doc["findings"][1]["confidence"] == 0.8765
    assert doc["findings"][3]["line"] is None


def test_json_keeps_unicode_and_survives_non_utf8_names() -> None:
    out = render("json", samples.complete())
    assert "docs/guide é.md" in out  # readable, not \u00e9
    bad = samples.complete()
    bad = bad.__class__(**{**bad.__dict__, "notes": ("skipped caf\udce9.txt",)})
    out = render("json", bad)
    out.encode("utf-8")  # writable
    assert json.loads(out)["notes"] == ["skipped caf\udce9.txt"]


def _broken(mutate: Any) -> dict[str, Any]:
    doc = copy.deepcopy(to_dict(samples.complete()))
    mutate(doc)
    return doc


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["analysis"].pop("risk_score"),
        lambda d: d.__setitem__("status", "done"),
        lambda d: d["analysis"].__setitem__("risk_score", 1.5),
        lambda d: d["analysis"].__setitem__("risk_score", -0.1),
        lambda d: d["route"].pop("tier"),
        lambda d: d["route"].__setitem__("tier", "gpt"),
        lambda d: d["route"]["units"][0].__setitem__("escalated_from", "large"),
        lambda d: d["findings"][0].__setitem__("severity", "blocker"),
        lambda d: d["findings"][0].__setitem__("source", "gpt"),
        lambda d: d["findings"][0].__setitem__("line", 0),
        lambda d: d["findings"][0].pop("fingerprint"),
        lambda d: d.__setitem__("extra", 1),
        lambda d: d["usage"].__setitem__("calls", -1),
        lambda d: d["estimate"].__setitem__("cost_usd", "0.1"),
        lambda d: d.__setitem__("schema", "tierbot.review/2"),
        lambda d: d["range"].__setitem__("head", 5),
        lambda d: d["analysis"]["file_stats"][0].__setitem__("status", "changed"),
    ],
)
def test_schema_rejects_bad_objects(mutate: Any) -> None:
    assert not REVIEW.is_valid(_broken(mutate))


def test_costs_schema() -> None:
    good = {
        "schema": "tierbot.costs/1",
        "calls": 12,
        "cost_usd": 0.42,
        "all_opus_cost_usd": 1.9,
        "saved_usd": 1.48,
        "saved_pct": 77.9,
        "cache_hits": 3,
        "by_tier": {"haiku": {"calls": 9, "cost_usd": 0.02}, "opus": {"calls": 3, "cost_usd": 0.4}},
    }
    assert [e.message for e in COSTS.iter_errors(good)] == []
    assert COSTS.is_valid({**good, "by_tier": {}})
    assert not COSTS.is_valid({**good, "by_tier": {"gpt4": {"calls": 1, "cost_usd": 0.1}}})
    assert not COSTS.is_valid({**good, "by_tier": {"opus": {"calls": 1}}})
    assert not COSTS.is_valid({k: v for k, v in good.items() if k != "saved_usd"})
    assert not COSTS.is_valid({**good, "schema": "tierbot.review/1"})
    assert not COSTS.is_valid({**good, "calls": -1})
