"""The ledger: where it lives, what a call row holds, the review cache, concurrent writers."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from tierbot.review import ledger
from tierbot.review.ledger import DB_NAME, CallRow, Ledger


def test_home_honours_tierbot_home_then_xdg_then_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERBOT_HOME", str(tmp_path / "th"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ledger.home() == tmp_path / "th"
    monkeypatch.delenv("TIERBOT_HOME")
    assert ledger.home() == tmp_path / "xdg" / "tierbot"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    monkeypatch.setattr(sys, "platform", "linux")
    assert ledger.home() == tmp_path / "h" / ".cache" / "tierbot"


def test_open_creates_the_database_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERBOT_HOME", str(tmp_path / "deep" / "home"))
    with Ledger.open() as lg:
        lg.record(
            CallRow(
                "r",
                "HEAD~1",
                "u1",
                "haiku",
                "claude-haiku-5-5",
                10,
                20,
                30,
                40,
                0.5,
                1.5,
                outcome="ok",
            )
        )
    db = sqlite3.connect(tmp_path / "deep" / "home" / DB_NAME)
    row = db.execute(
        "SELECT repo, range, unit, tier, model, input_tokens, output_tokens,"
        " cache_write_tokens, cache_read_tokens, cost_usd, all_opus_cost_usd,"
        " cache_hit, outcome FROM calls"
    ).fetchone()
    db.close()
    assert row == (
        "r",
        "HEAD~1",
        "u1",
        "haiku",
        "claude-haiku-5-5",
        10,
        20,
        30,
        40,
        0.5,
        1.5,
        0,
        "ok",
    )


def test_calls_since_filters_by_time(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as lg:
        lg.record(CallRow("r", "", "old", "opus", "m", time=1000.0))
        lg.record(CallRow("r", "", "new", "haiku", "m", cache_hit=True, time=time.time()))
        assert [c.unit for c in lg.calls()] == ["old", "new"]
        recent = list(lg.calls(time.time() - 60))
        assert [(c.unit, c.cache_hit) for c in recent] == [("new", True)]


def test_review_cache_round_trip(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as lg:
        assert lg.cache_get("k") is None
        lg.cache_put("k", "m", "1-abc", '{"findings": []}')
        assert lg.cache_get("k") == '{"findings": []}'
        lg.cache_put("k", "m", "1-abc", '{"findings": [1]}')
        assert lg.cache_get("k") == '{"findings": [1]}'
    with Ledger.open(tmp_path) as lg:  # it persists
        assert lg.cache_get("k") == '{"findings": [1]}'


def test_threads_and_two_handles_write_without_losing_rows(tmp_path: Path) -> None:
    a, b = Ledger.open(tmp_path), Ledger.open(tmp_path)

    def write(lg: Ledger, name: str) -> None:
        for i in range(25):
            lg.record(CallRow("r", "", f"{name}{i}", "haiku", "m", cost_usd=0.001))

    threads = [
        threading.Thread(target=write, args=(lg, f"{n}{lg is a}"))
        for n in range(3)
        for lg in (a, b)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(list(a.calls())) == 150
    a.close()
    b.close()


def test_open_fails_loudly_when_home_is_not_a_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError):
        Ledger.open(blocker / "sub")
