"""The local ledger: every model call with its tokens and cost, and the review cache.

One SQLite file under `TIERBOT_HOME` (default: the user cache directory).  Writers in several
processes (a hook and a CLI run at once) are fine: SQLite locks, we wait a little, and WAL mode
keeps readers out of the writers' way.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "ledger.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,                 -- unix seconds
    repo TEXT NOT NULL,
    range TEXT NOT NULL,
    unit TEXT NOT NULL,
    tier TEXT NOT NULL,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    all_opus_cost_usd REAL NOT NULL,
    cache_hit INTEGER NOT NULL,         -- 1: answered from the review cache, nothing sent
    outcome TEXT NOT NULL               -- ok | repaired | invalid | failed | ...
);
CREATE INDEX IF NOT EXISTS calls_time ON calls(time);
CREATE TABLE IF NOT EXISTS review_cache (
    key TEXT PRIMARY KEY,               -- sha256 of unit content + model + prompt version + config
    time REAL NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    answer TEXT NOT NULL                -- the validated answer JSON (findings, escalate, reason)
);
"""


def home() -> Path:
    """`TIERBOT_HOME`, else the platform's user cache directory + `tierbot`."""
    explicit = os.environ.get("TIERBOT_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "tierbot"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "tierbot"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "tierbot" / "Cache"
    return Path.home() / ".cache" / "tierbot"


@dataclass(frozen=True)
class CallRow:
    repo: str
    range: str
    unit: str
    tier: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    all_opus_cost_usd: float = 0.0
    cache_hit: bool = False
    outcome: str = "ok"
    time: float = 0.0  # 0: now


class Ledger:
    """A thread-safe handle on the ledger database (the review runs calls in a thread pool)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.commit()
        except sqlite3.Error:
            self._db.close()
            raise

    @classmethod
    def open(cls, directory: Path | None = None) -> Ledger:
        """Open (creating if needed) the ledger; raises OSError or sqlite3.Error if it cannot."""
        return cls((directory or home()) / DB_NAME)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, row: CallRow) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO calls (time, repo, range, unit, tier, model, input_tokens,"
                " output_tokens, cache_write_tokens, cache_read_tokens, cost_usd,"
                " all_opus_cost_usd, cache_hit, outcome)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.time or time.time(),
                    row.repo,
                    row.range,
                    row.unit,
                    row.tier,
                    row.model,
                    row.input_tokens,
                    row.output_tokens,
                    row.cache_write_tokens,
                    row.cache_read_tokens,
                    row.cost_usd,
                    row.all_opus_cost_usd,
                    int(row.cache_hit),
                    row.outcome,
                ),
            )
            self._db.commit()

    def calls(self, since: float | None = None) -> Iterator[CallRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT repo, range, unit, tier, model, input_tokens, output_tokens,"
                " cache_write_tokens, cache_read_tokens, cost_usd, all_opus_cost_usd, cache_hit,"
                " outcome, time FROM calls WHERE time >= ? ORDER BY time, id",
                (since if since is not None else float("-inf"),),
            ).fetchall()
        for r in rows:
            yield CallRow(
                repo=r[0],
                range=r[1],
                unit=r[2],
                tier=r[3],
                model=r[4],
                input_tokens=r[5],
                output_tokens=r[6],
                cache_write_tokens=r[7],
                cache_read_tokens=r[8],
                cost_usd=r[9],
                all_opus_cost_usd=r[10],
                cache_hit=bool(r[11]),
                outcome=r[12],
                time=r[13],
            )

    def cache_get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT answer FROM review_cache WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else str(row[0])

    def cache_put(self, key: str, model: str, prompt_version: str, answer: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO review_cache (key, time, model, prompt_version, answer)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, time.time(), model, prompt_version, answer),
            )
            self._db.commit()
