"""The local ledger: every model call with its tokens and cost, and the review cache.

One SQLite file under `TIERBOT_HOME` (default: the user cache directory).  Writers in several
processes (a hook and a CLI run at once) are fine: SQLite locks, we wait a little, and WAL mode
keeps readers out of the writers' way.  A ledger that is not a database is moved aside and
replaced; one written by a newer tierbot is left exactly as it is (and not written to).
Schema 2 (issue 15) adds who spent (`command`), the Message Batch a call came from, and the
batch bookkeeping of `tierbot audit` (`batchlog.py`); a schema-1 file is migrated in place.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

from tierbot import environment
from tierbot.records import Usage

DB_NAME = "ledger.sqlite3"
SCHEMA_VERSION = 2

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

# Schema 2.  Each column is added to a schema-1 file by `_migrate`, in one transaction.
_CALLS_V2 = (
    ("command", "TEXT NOT NULL DEFAULT ''"),  # review | hook | pr | audit ('' : before schema 2)
    ("batch", "TEXT NOT NULL DEFAULT ''"),  # the Message Batch id of a batch-priced call
    ("request", "TEXT"),  # batch id/custom_id: a batch result is recorded once, whatever happens
)
_SCHEMA_V2 = """
CREATE UNIQUE INDEX IF NOT EXISTS calls_request ON calls(request) WHERE request IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    key TEXT PRIMARY KEY,               -- ours, known before sending: tags its custom_ids
    repo TEXT NOT NULL,
    audit TEXT NOT NULL,                -- the audit that sent it
    kind TEXT NOT NULL,                 -- review | retry
    state TEXT NOT NULL,                -- submitting | submitted | ended | fetched | void
    batch_id TEXT,                      -- the API's id, recorded as soon as `create` answers
    created REAL NOT NULL,
    updated REAL NOT NULL,
    requests INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    counts TEXT NOT NULL DEFAULT '{}'   -- the last request_counts seen
);
CREATE INDEX IF NOT EXISTS batches_state ON batches(repo, state);
CREATE TABLE IF NOT EXISTS batch_requests (
    batch TEXT NOT NULL,                -- batches.key
    custom_id TEXT NOT NULL,
    request_key TEXT NOT NULL,          -- what was asked: the same ask is never paid for twice
    commit_sha TEXT NOT NULL,
    unit TEXT NOT NULL,
    tier TEXT NOT NULL,
    model TEXT NOT NULL,
    state TEXT NOT NULL,                -- pending | succeeded | errored | expired | canceled
                                        -- | unsent (its batch never reached the API)
    result TEXT,                        -- the API's result line (JSON), stored once fetched
    PRIMARY KEY (batch, custom_id)
);
CREATE INDEX IF NOT EXISTS batch_requests_key ON batch_requests(request_key);
CREATE TABLE IF NOT EXISTS audits (
    key TEXT PRIMARY KEY,               -- the commits and settings of one `tierbot audit`
    repo TEXT NOT NULL,
    args TEXT NOT NULL,                 -- what `--resume` needs to run it again (JSON)
    created REAL NOT NULL,
    updated REAL NOT NULL,
    state TEXT NOT NULL                 -- running | done
);
"""


# One call's usage can never be near these: a 1M context plus 128k output, many times over.
MAX_TOKENS = 50_000_000
MAX_COST_USD = 10_000.0


def home() -> Path:
    """Where the ledger and crash log live (see `locate`; this does not check writability)."""
    return locate(writable=False)[0]


def locate(writable: bool = True) -> tuple[Path, str | None]:
    """`TIERBOT_HOME`, else `$XDG_CACHE_HOME/tierbot`, else the platform's user cache directory:
    the first that is set to something usable (and, with `writable`, that we can write).  With
    none (all empty, `/`, a relative XDG or HOME, read-only) a private temp directory, with a
    note saying so: never the filesystem root, never the working tree."""
    tried: list[str] = []
    for name, path in _candidates():
        if path is not None and (not writable or _usable(path)):
            return path, None
        tried.append(name)
    fallback = _temp_home()
    return fallback, (
        f"no usable {', '.join(tried)}: the ledger and review cache are in {fallback} "
        "(set TIERBOT_HOME to keep them)"
    )


def _candidates() -> Iterator[tuple[str, Path | None]]:
    explicit = environment.text("TIERBOT_HOME")
    if explicit is not None:
        yield "TIERBOT_HOME", _proper(explicit, relative=True)  # a relative one was asked for
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg is not None:
        found = _proper(xdg)  # the XDG spec: a relative value is invalid, ignore it
        yield "XDG_CACHE_HOME", found / "tierbot" if found else None
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        yield "LOCALAPPDATA", Path(os.environ["LOCALAPPDATA"]) / "tierbot" / "Cache"
        return
    try:
        # HOME="" makes Path.home() "/": that is why the root itself is refused below.
        user = _proper(str(Path.home()))
    except (RuntimeError, KeyError):  # no HOME and no password entry
        user = None
    if sys.platform == "darwin":
        yield "HOME", user / "Library" / "Caches" / "tierbot" if user else None
    else:
        yield "HOME", user / ".cache" / "tierbot" if user else None


def _proper(value: str, relative: bool = False) -> Path | None:
    """`value` as a directory to use: not empty, not the filesystem root, absolute unless
    `relative` is allowed."""
    if not value.strip():
        return None
    path = Path(os.path.expanduser(value))
    if (not relative and not path.is_absolute()) or path == Path(path.anchor):
        return None
    return path


def _usable(path: Path) -> bool:
    """Whether `path` is, or could be made, a directory we can write (nothing is created)."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _temp_home() -> Path:
    """A temp directory only this user can use (a shared /tmp may hold someone else's)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    path = Path(tempfile.gettempdir()) / f"tierbot-{uid}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.lstat()
        if path.is_dir() and not path.is_symlink() and st.st_uid == uid:
            return path
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="tierbot-"))


def usage_number(value: object, limit: float = MAX_TOKENS) -> tuple[int, bool]:
    """A token count from an API answer as a whole number in 0..limit, and whether it had to be
    changed to get there (negative, absurd, not a number): the ledger and the budget never see
    such a value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0, value is not None
    if isinstance(value, float) and not math.isfinite(value):
        return (int(limit) if value > 0 else 0), True
    number = int(value)
    if number < 0:
        return 0, True
    if number > limit:
        return int(limit), True
    return number, False


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
    command: str = ""  # review | hook | pr | audit
    batch: str = ""  # the Message Batch id of a batch-priced call
    request: str | None = None  # batch id/custom_id: recorded once (see `Ledger.record`)
    row_id: int = 0  # the ledger's own row number (set when read)

    def with_usage(self, usage: Usage) -> CallRow:
        """This row with one call's tokens and costs."""
        return dataclasses.replace(
            self,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cost_usd=usage.cost_usd,
            all_opus_cost_usd=usage.all_opus_cost_usd,
        )


class Ledger:
    """A thread-safe handle on the ledger database (the review runs calls in a thread pool).

    `notes` says what opening it found (a corrupt file moved aside, a newer schema, a temp
    home); `writable` is False for a newer tierbot's ledger, which is then only read.
    """

    def __init__(self, path: Path, notes: tuple[str, ...] = (), *, readonly: bool = False) -> None:
        self.path = path
        self.notes: list[str] = list(notes)
        self.writable = not readonly
        self._lock = threading.Lock()
        self._columns: frozenset[str] = frozenset()
        if readonly:
            # A reader (`costs`, the estimate's calibration) changes nothing, not even a
            # corrupt file: that raises here, and the next review moves it aside.
            self._db = self._connect(readonly=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError) or not path.is_file():
                raise  # locked, read-only, ...: not corruption, so nothing is moved
            aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(path, aside)
            for suffix in ("-wal", "-shm"):
                stale = path.with_name(path.name + suffix)
                if stale.exists():
                    os.replace(stale, aside.with_name(aside.name + suffix))
            self.notes.append(
                f"the ledger {path} was not a readable database ({e}): moved it to "
                f"{aside.name} and started a new one"
            )
            self._db = self._connect()

    def _connect(self, readonly: bool = False) -> sqlite3.Connection:
        where = f"{self.path.resolve().as_uri()}?mode=ro" if readonly else str(self.path)
        db = sqlite3.connect(where, timeout=10.0, check_same_thread=False, uri=readonly)
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if readonly:
                db.execute("SELECT count(*) FROM calls").fetchone()
                self._columns = _calls_columns(db)
                return db
            if version > SCHEMA_VERSION:
                # A newer tierbot's ledger: rewriting its version (or rows) would corrupt it.
                self.writable = False
                self.notes.append(
                    f"the ledger {self.path} was written by a newer tierbot (schema {version}, "
                    f"this one knows {SCHEMA_VERSION}): costs not recorded, review cache off"
                )
                self._columns = _calls_columns(db)
                return db
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            if version < SCHEMA_VERSION:
                _migrate(db)
            db.commit()
            db.execute("SELECT count(*) FROM calls").fetchone()
            self._columns = _calls_columns(db)
        except sqlite3.Error:
            db.close()
            raise
        return db

    @classmethod
    def open(cls, directory: Path | None = None) -> Ledger:
        """Open (creating if needed) the ledger; raises OSError or sqlite3.Error if it cannot."""
        if directory is not None:
            return cls(directory / DB_NAME)
        where, note = locate()
        return cls(where / DB_NAME, (note,) if note else ())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection, for several statements committed together (or not at all)."""
        if not self.writable:
            raise sqlite3.OperationalError(f"the ledger {self.path} is read-only here")
        with self._lock:
            try:
                yield self._db
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()

    def read(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    def ledger_id(self) -> str:
        """This ledger file's own id: exports name it, so a merge counts each row once."""
        if not self._has_meta():
            return f"unknown-{self.path.resolve()}"
        rows = self.read("SELECT value FROM meta WHERE key = 'ledger_id'")
        return str(rows[0][0]) if rows else f"unknown-{self.path.resolve()}"

    def _has_meta(self) -> bool:
        return bool(self.read("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"))

    def record(self, row: CallRow) -> bool:
        """Add one call; a row with impossible usage is refused (ValueError), never stored.

        A row for a batch request (`row.request`) is stored once: recording the same request
        again (a rerun after a kill) changes nothing and returns False.
        """
        _check(row)
        if not self.writable:
            return False
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO calls (time, repo, range, unit, tier, model, input_tokens,"
                " output_tokens, cache_write_tokens, cache_read_tokens, cost_usd,"
                " all_opus_cost_usd, cache_hit, outcome, command, batch, request)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    row.command,
                    row.batch,
                    row.request,
                ),
            )
            self._db.commit()
        return cursor.rowcount == 1

    def calls(self, since: float | None = None, until: float | None = None) -> Iterator[CallRow]:
        """The calls recorded from `since` up to (not including) `until`, oldest first."""
        extra = ", ".join(
            name if name in self._columns else f"'' AS {name}" for name in ("command", "batch")
        )
        with self._lock:
            rows = self._db.execute(
                "SELECT repo, range, unit, tier, model, input_tokens, output_tokens,"
                " cache_write_tokens, cache_read_tokens, cost_usd, all_opus_cost_usd, cache_hit,"
                f" outcome, time, {extra}, id FROM calls WHERE time >= ? AND time < ?"
                " ORDER BY time, id",
                (
                    since if since is not None else float("-inf"),
                    until if until is not None else float("inf"),
                ),
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
                command=r[14],
                batch=r[15],
                row_id=r[16],
            )

    def cache_get(self, key: str) -> str | None:
        if not self.writable:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT answer FROM review_cache WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else str(row[0])

    def cache_put(self, key: str, model: str, prompt_version: str, answer: str) -> None:
        if not self.writable:
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO review_cache (key, time, model, prompt_version, answer)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, time.time(), model, prompt_version, answer),
            )
            self._db.commit()


def _calls_columns(db: sqlite3.Connection) -> frozenset[str]:
    return frozenset(str(r[1]) for r in db.execute("PRAGMA table_info(calls)"))


def _migrate(db: sqlite3.Connection) -> None:
    """Schema 1 -> 2, safe against a second process doing the same at the same moment and
    against a kill half-way (each step is idempotent; the version is written last)."""
    db.commit()
    db.execute("BEGIN IMMEDIATE")
    try:
        have = _calls_columns(db)
        for name, declaration in _CALLS_V2:
            if name not in have:
                db.execute(f"ALTER TABLE calls ADD COLUMN {name} {declaration}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.executescript(_SCHEMA_V2)
    db.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('ledger_id', ?)", (uuid.uuid4().hex,)
    )
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    db.commit()


def _check(row: CallRow) -> None:
    """Usage the API could not really have reported never reaches the ledger (or `costs`)."""
    for f in fields(row):
        value = getattr(row, f.name)
        if f.name.endswith("_tokens"):
            if usage_number(value)[1]:
                raise ValueError(f"refused a ledger row with {f.name}={value!r}")
        elif f.name.endswith("_usd") and (
            not isinstance(value, (int, float)) or not 0 <= value <= MAX_COST_USD
        ):
            raise ValueError(f"refused a ledger row with {f.name}={value!r}")
