"""The ledger's record of Message Batches: what was sent, where it stands, what came back.

The order of writes is what makes an audit safe to kill at any moment:

1. `begin`: the batch (our key, state `submitting`) and every request with its custom_id and
   what it asks (`request_key`), in one transaction, before anything is sent;
2. the API's `create`;
3. `submitted`: the API's batch id, at once.

A kill between 2 and 3 leaves a `submitting` batch: the next run looks for it among the
workspace's batches created since (`batch.py`), so it is adopted, never sent again.  Results are
stored as they are read (`store_results`, only over requests still pending), and a stored result
is recorded in the calls table once (`Ledger.record` with the request's id), so a rerun after a
kill reads what it has and pays nothing twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from tierbot.review.ledger import Ledger

UNFINISHED = ("submitting", "submitted", "ended")
# Results are written in transactions of this many lines while they stream in.
STORE_CHUNK = 200


class BatchRow(NamedTuple):
    key: str
    repo: str
    audit: str
    kind: str
    state: str  # submitting | submitted | ended | fetched | void
    batch_id: str | None
    created: float
    updated: float
    requests: int
    bytes: int
    counts: dict[str, int]


class RequestRow(NamedTuple):
    batch: str  # BatchRow.key
    custom_id: str
    request_key: str
    commit_sha: str
    unit: str
    tier: str
    model: str
    state: str  # pending | succeeded | errored | expired | canceled | unsent
    result: str | None  # the API's result object (JSON), once fetched


class NewRequest(NamedTuple):
    custom_id: str
    request_key: str
    commit_sha: str
    unit: str
    tier: str
    model: str


_BATCH_COLUMNS = (
    "key, repo, audit, kind, state, batch_id, created, updated, requests, bytes, counts"
)
_REQUEST_COLUMNS = "batch, custom_id, request_key, commit_sha, unit, tier, model, state, result"


def _batch(row: Sequence[object]) -> BatchRow:
    counts = json.loads(str(row[10]) or "{}")
    return BatchRow(
        key=str(row[0]),
        repo=str(row[1]),
        audit=str(row[2]),
        kind=str(row[3]),
        state=str(row[4]),
        batch_id=None if row[5] is None else str(row[5]),
        created=float(row[6]),  # type: ignore[arg-type]
        updated=float(row[7]),  # type: ignore[arg-type]
        requests=int(row[8]),  # type: ignore[call-overload]
        bytes=int(row[9]),  # type: ignore[call-overload]
        counts=counts if isinstance(counts, dict) else {},
    )


def _request(row: Sequence[object]) -> RequestRow:
    batch, custom_id, request_key, commit_sha, unit, tier, model, state, result = (
        None if v is None else str(v) for v in row
    )
    return RequestRow(
        str(batch),
        str(custom_id),
        str(request_key),
        str(commit_sha),
        str(unit),
        str(tier),
        str(model),
        str(state),
        result,
    )


def begin(
    ledger: Ledger,
    key: str,
    *,
    repo: str,
    audit: str,
    kind: str,
    requests: Sequence[NewRequest],
    size: int,
) -> None:
    """Record a batch and all its requests before it is sent (one transaction)."""
    now = time.time()
    with ledger.transaction() as db:
        db.execute(
            f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES (?, ?, ?, ?, 'submitting', NULL,"
            " ?, ?, ?, ?, '{}')",
            (key, repo, audit, kind, now, now, len(requests), size),
        )
        db.executemany(
            f"INSERT INTO batch_requests ({_REQUEST_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', NULL)",
            [(key, *r) for r in requests],
        )


def submitted(ledger: Ledger, key: str, batch_id: str) -> None:
    with ledger.transaction() as db:
        db.execute(
            "UPDATE batches SET batch_id = ?, state = 'submitted', updated = ? WHERE key = ?",
            (batch_id, time.time(), key),
        )


def set_state(ledger: Ledger, key: str, state: str, counts: dict[str, int] | None = None) -> None:
    """A batch's new state; a void one (it never reached the API) leaves its requests unsent."""
    with ledger.transaction() as db:
        if state == "void":
            db.execute(
                "UPDATE batch_requests SET state = 'unsent' WHERE batch = ? AND state = 'pending'",
                (key,),
            )
        if counts is None:
            db.execute(
                "UPDATE batches SET state = ?, updated = ? WHERE key = ?", (state, time.time(), key)
            )
        else:
            db.execute(
                "UPDATE batches SET state = ?, counts = ?, updated = ? WHERE key = ?",
                (state, json.dumps(counts, sort_keys=True), time.time(), key),
            )


def store_results(
    ledger: Ledger, key: str, results: Iterable[tuple[str, dict[str, object]]]
) -> int:
    """Store result objects as they stream in (only over requests still pending); returns how
    many were new.  Unknown custom_ids are ignored: the API answers only what was asked."""
    stored = 0
    chunk: list[tuple[str, str, str, str]] = []

    def flush() -> None:
        nonlocal stored
        with ledger.transaction() as db:
            for state, text, batch, custom_id in chunk:
                cursor = db.execute(
                    "UPDATE batch_requests SET state = ?, result = ?"
                    " WHERE batch = ? AND custom_id = ? AND state = 'pending'",
                    (state, text, batch, custom_id),
                )
                stored += cursor.rowcount
        chunk.clear()

    for custom_id, result in results:
        state = str(result.get("type") or "errored")
        if state not in ("succeeded", "errored", "expired", "canceled"):
            state = "errored"
        chunk.append((state, json.dumps(result, sort_keys=True), key, custom_id))
        if len(chunk) >= STORE_CHUNK:
            flush()
    if chunk:
        flush()
    return stored


def get(ledger: Ledger, key: str) -> BatchRow | None:
    rows = ledger.read(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE key = ?", (key,))
    return _batch(rows[0]) if rows else None


def unfinished(ledger: Ledger, repo: str) -> list[BatchRow]:
    """The repository's batches whose results are not all stored yet, oldest first."""
    marks = ", ".join("?" for _ in UNFINISHED)
    rows = ledger.read(
        f"SELECT {_BATCH_COLUMNS} FROM batches WHERE repo = ? AND state IN ({marks})"
        " ORDER BY created",
        (repo, *UNFINISHED),
    )
    return [_batch(r) for r in rows]


def known_ids(ledger: Ledger) -> set[str]:
    return {
        str(r[0]) for r in ledger.read("SELECT batch_id FROM batches WHERE batch_id IS NOT NULL")
    }


def requests_of(ledger: Ledger, key: str) -> list[RequestRow]:
    rows = ledger.read(
        f"SELECT {_REQUEST_COLUMNS} FROM batch_requests WHERE batch = ? ORDER BY rowid", (key,)
    )
    return [_request(r) for r in rows]


def latest(ledger: Ledger, request_keys: Iterable[str]) -> dict[str, tuple[RequestRow, BatchRow]]:
    """For each request key, its newest request that is answered or still on its way (a void
    batch, one that never reached the API, does not count)."""
    out: dict[str, tuple[RequestRow, BatchRow]] = {}
    keys = list(dict.fromkeys(request_keys))
    for i in range(0, len(keys), 500):
        part = keys[i : i + 500]
        marks = ", ".join("?" for _ in part)
        rows = ledger.read(
            f"SELECT {', '.join('r.' + c.strip() for c in _REQUEST_COLUMNS.split(','))},"
            f" {', '.join('b.' + c.strip() for c in _BATCH_COLUMNS.split(','))}"
            " FROM batch_requests r JOIN batches b ON b.key = r.batch"
            f" WHERE r.request_key IN ({marks}) AND b.state != 'void'"
            " ORDER BY b.created, r.rowid",
            tuple(part),
        )
        for r in rows:
            req, batch = _request(r[:9]), _batch(r[9:])
            if req.state == "pending" and batch.state == "fetched":
                continue  # the API never answered it (an incomplete results file)
            out[req.request_key] = (req, batch)
    return out


# ------------------------------------------------------------------------------ audits


class AuditRow(NamedTuple):
    key: str
    repo: str
    args: dict[str, object]
    state: str  # running | done
    updated: float


def audit_started(ledger: Ledger, key: str, repo: str, args: dict[str, object]) -> None:
    now = time.time()
    with ledger.transaction() as db:
        db.execute(
            "INSERT INTO audits (key, repo, args, created, updated, state)"
            " VALUES (?, ?, ?, ?, ?, 'running')"
            " ON CONFLICT(key) DO UPDATE SET updated = excluded.updated, state = 'running'",
            (key, repo, json.dumps(args, sort_keys=True), now, now),
        )


def audit_done(ledger: Ledger, key: str) -> None:
    with ledger.transaction() as db:
        db.execute(
            "UPDATE audits SET state = 'done', updated = ? WHERE key = ?", (time.time(), key)
        )


def last_audit(ledger: Ledger, repo: str, running_only: bool = True) -> AuditRow | None:
    where = " AND state = 'running'" if running_only else ""
    rows = ledger.read(
        "SELECT key, repo, args, state, updated FROM audits WHERE repo = ?"
        f"{where} ORDER BY updated DESC LIMIT 1",
        (repo,),
    )
    if not rows:
        return None
    key, repo_, args, state, updated = rows[0]
    parsed = json.loads(str(args))
    return AuditRow(
        str(key),
        str(repo_),
        parsed if isinstance(parsed, dict) else {},
        str(state),
        float(updated),  # type: ignore[arg-type]
    )
