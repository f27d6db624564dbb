"""`tierbot costs`: sums from the ledger, text and tierbot.costs/1 JSON."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import jsonschema
import pytest

from tierbot.commands import costs
from tierbot.errors import BadInput, TierbotError
from tierbot.review.ledger import DB_NAME, CallRow, Ledger, home

SCHEMA = Path(__file__).parent.parent / "tierbot" / "data" / "costs-1.schema.json"


def seed() -> None:
    now = time.time()
    with Ledger.open() as lg:
        lg.record(
            CallRow(
                "r",
                "",
                "u1",
                "haiku",
                "h",
                1000,
                100,
                cost_usd=0.01,
                all_opus_cost_usd=0.10,
                time=now - 3600,
            )
        )
        lg.record(
            CallRow(
                "r",
                "",
                "u2",
                "sonnet",
                "s",
                1000,
                100,
                cost_usd=0.05,
                all_opus_cost_usd=0.10,
                time=now - 3600,
            )
        )
        lg.record(
            CallRow(
                "r",
                "",
                "u3",
                "opus",
                "o",
                1000,
                100,
                cost_usd=0.10,
                all_opus_cost_usd=0.10,
                time=now - 10 * 86400,
            )
        )
        lg.record(
            CallRow("r", "", "u1", "haiku", "h", cache_hit=True, outcome="cache_hit", time=now - 60)
        )


def test_json_sums_calls_savings_tiers_and_cache_hits(capsys: pytest.CaptureFixture[str]) -> None:
    seed()
    assert costs.main(None, "json") == 0
    data = json.loads(capsys.readouterr().out)
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    assert data["schema"] == "tierbot.costs/1"
    assert data["calls"] == 3 and data["cache_hits"] == 1
    assert data["cost_usd"] == pytest.approx(0.16)
    assert data["all_opus_cost_usd"] == pytest.approx(0.30)
    assert data["saved_usd"] == pytest.approx(0.14)
    assert data["saved_pct"] == pytest.approx(46.7)
    assert data["by_tier"] == {
        "haiku": {"calls": 1, "cost_usd": 0.01},
        "sonnet": {"calls": 1, "cost_usd": 0.05},
        "opus": {"calls": 1, "cost_usd": 0.1},
    }


def test_since_an_age_or_a_date(capsys: pytest.CaptureFixture[str]) -> None:
    seed()
    costs.main("7d", "json")
    data = json.loads(capsys.readouterr().out)
    assert data["calls"] == 2 and data["cost_usd"] == pytest.approx(0.06)
    assert set(data["by_tier"]) == {"haiku", "sonnet"}
    costs.main("30m", "json")
    assert json.loads(capsys.readouterr().out)["calls"] == 0
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    costs.main(tomorrow, "json")
    assert json.loads(capsys.readouterr().out)["cache_hits"] == 0
    ten_days = (dt.date.today() - dt.timedelta(days=30)).isoformat()
    costs.main(ten_days, "json")
    assert json.loads(capsys.readouterr().out)["calls"] == 3


def test_text_report(capsys: pytest.CaptureFixture[str]) -> None:
    seed()
    assert costs.main("7d", "text") == 0
    out = capsys.readouterr().out
    assert "since 7d" in out
    assert "model calls   2  (+1 answered from the review cache)" in out
    assert "spent         $0.0600" in out and "all-Opus      $0.2000" in out
    assert "saved         $0.1400  (70.0%)" in out
    assert "haiku" in out and "sonnet" in out and "opus " not in out.split("by tier")[1]


def test_empty_ledger_is_not_created_and_reports_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert costs.main(None, "json") == 0
    data = json.loads(capsys.readouterr().out)
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    assert (data["calls"], data["cost_usd"], data["saved_pct"], data["by_tier"]) == (0, 0, None, {})
    assert not (home() / DB_NAME).exists()


@pytest.mark.parametrize("bad", ["yesterday", "7x", "2026-13-01"])
def test_bad_since_is_bad_input(bad: str) -> None:
    with pytest.raises(BadInput, match="--since"):
        costs.main(bad, "text")


def test_a_corrupt_ledger_is_a_clear_error_and_is_left_alone() -> None:
    home().mkdir(parents=True, exist_ok=True)
    garbage = b"this is not a database" * 100
    (home() / DB_NAME).write_bytes(garbage)
    with pytest.raises(TierbotError, match=r"cannot read the ledger .* moves a corrupt ledger"):
        costs.main(None, "text")
    assert (home() / DB_NAME).read_bytes() == garbage  # reading changes nothing
