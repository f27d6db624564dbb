"""Batches to and from the API, the ledger kept in step: send, find again, wait, read, cancel.

`batch.py` decides what to ask; a `Courier` carries it.  Each batch is written to the ledger with
all its requests before it is created, and its id right after (`batchlog.py`); a batch whose
create answer was lost is found again among the workspace's batches (`adopt`).  Waiting polls
with a growing interval up to the run's bound, reporting the batches' request_counts; an ended
batch's results are read once, into the ledger.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tierbot import environment
from tierbot.config import Config
from tierbot.review import batchapi, batchlog, claude
from tierbot.review.ledger import CallRow, Ledger
from tierbot.routing.pricing import BATCH_PRICE_FACTOR

# Polling: the first wait, growing by this factor up to the last (TIERBOT_BATCH_POLL_S sets the
# first, for impatient tests).
POLL_FIRST_S = 2.0
POLL_GROWTH = 1.5
POLL_MAX_S = 60.0
# A create whose answer was lost is looked for among the batches created since a little before
# it was sent: the API's clock and ours differ.
CLOCK_SKEW_S = 300.0


class BatchInfo(NamedTuple):
    """A batch this run sent, joined or took up, as the report shows it."""

    key: str
    batch_id: str | None
    kind: str
    requests: int
    state: str
    counts: dict[str, int]


class Progress(NamedTuple):
    batch_ids: tuple[str, ...]
    requests: int
    counts: dict[str, int]  # summed over the batches waited for
    elapsed_s: float
    next_check_s: float


def new_key() -> tuple[str, str]:
    """(our key for a new batch, the tag its custom_ids carry)."""
    key = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    return key, key[-6:]


@dataclass
class Courier:
    ledger: Ledger
    repo: str  # the ledger's repository label: an earlier run's batches are found by it
    audit: str  # the audit's key
    wait_s: float
    progress: Callable[[Progress], None] | None = None
    client: Any = None
    fatal: str | None = None  # every other call would fail the same way
    notes: list[str] = field(default_factory=list)
    touched: dict[str, None] = field(default_factory=dict)  # batch keys of this run, in order
    running: set[str] = field(default_factory=set)  # batch keys not ended at the bound

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + max(0.0, self.wait_s)

    def ready(self) -> bool:
        """Whether there is a client (made on first use: a run of stored answers needs none)."""
        if self.client is not None:
            return True
        if self.fatal is not None:
            return False
        try:
            self.client = claude.make_client()
        except Exception as e:
            self.fatal = f"cannot set up the Anthropic client: {claude.one_line(str(e))}"
            return False
        return True

    def batch_id(self, key: str) -> str:
        b = batchlog.get(self.ledger, key)
        return (b.batch_id if b is not None else None) or key

    # --- sending ----------------------------------------------------------------------------

    def submit(
        self,
        key: str,
        kind: str,
        requests: list[dict[str, Any]],
        rows: Sequence[batchlog.NewRequest],
    ) -> batchapi.BatchError | None:
        """One batch: recorded with every request, created, its id recorded.  None: it is on
        its way; else why not (a `maybe_created` error whose batch could not be found)."""
        size = len(json.dumps({"requests": requests}).encode())
        batchlog.begin(
            self.ledger, key, repo=self.repo, audit=self.audit, kind=kind, requests=rows, size=size
        )
        self.touched[key] = None
        try:
            status = batchapi.create(self.client, requests)
        except batchapi.BatchError as e:
            if not e.maybe_created:
                batchlog.set_state(self.ledger, key, "void")
            else:
                time.sleep(1.0)  # let the batch, if it exists, show in the list
                row = batchlog.get(self.ledger, key)
                if row is not None and self.adopt(row):
                    return None
            if e.fatal:
                self.fatal = str(e)
            return e
        batchlog.submitted(self.ledger, key, status.id)
        return None

    # --- finding a batch whose create answer was lost ---------------------------------------

    def adopt_lost(self) -> None:
        for b in batchlog.unfinished(self.ledger, self.repo):
            if b.state == "submitting" and self.ready():
                self.adopt(b)

    def adopt(self, b: batchlog.BatchRow) -> bool:
        """Find the API's batch for our `submitting` record: created since (about) then, with as
        many requests, and no other record's; one such batch is ours.  None: it never arrived
        (marked void, so its asks are sent again).  Several: the results' custom_ids (which carry
        our tag) decide, once they have ended."""
        try:
            candidates = batchapi.created_since(self.client, b.created - CLOCK_SKEW_S)
        except batchapi.BatchError as e:
            self.notes.append(f"audit: cannot look for batch {b.key} yet ({e}); rerun later")
            return False
        known = batchlog.known_ids(self.ledger)
        ours = [c for c in candidates if c.id not in known and c.total == b.requests]
        if len(ours) > 1:
            wanted = {r.custom_id for r in batchlog.requests_of(self.ledger, b.key)}
            ours = [c for c in ours if c.ended and self._custom_ids(c.id) == wanted]
            if len(ours) != 1:
                self.notes.append(
                    f"audit: several batches may be batch {b.key} (sent, its answer lost); "
                    "rerun once they have ended"
                )
                return False
        if not ours:
            batchlog.set_state(self.ledger, b.key, "void")
            self.notes.append(f"audit: batch {b.key} never reached the API; its requests go again")
            return False
        batchlog.submitted(self.ledger, b.key, ours[0].id)
        self.notes.append(
            f"audit: batch {ours[0].id} was sent by an interrupted run: taken up, not sent again"
        )
        self.touched[b.key] = None
        return True

    def _custom_ids(self, batch_id: str) -> set[str]:
        try:
            return {cid for cid, _ in batchapi.results(self.client, batch_id)}
        except batchapi.BatchError:
            return set()

    def cancel(self) -> None:
        """Ask the API to stop this audit's running batches (what ended is still read)."""
        for b in batchlog.unfinished(self.ledger, self.repo):
            if b.audit != self.audit or not b.batch_id or b.state != "submitted":
                continue
            if not self.ready():
                return
            try:
                batchapi.cancel(self.client, b.batch_id)
                self.notes.append(f"audit: asked the API to cancel batch {b.batch_id}")
            except batchapi.BatchError as e:
                self.notes.append(f"audit: could not cancel batch {b.batch_id}: {e}")

    # --- waiting and reading ----------------------------------------------------------------

    def wait(self, keys: Sequence[str]) -> None:
        """Poll the batches until every one has ended (then read their results) or the wait
        bound passes (they keep running, in `running`: a rerun collects them)."""
        if not self.ready():
            return
        rows = {k: batchlog.get(self.ledger, k) for k in keys}
        live = {k: r for k, r in rows.items() if r is not None and r.batch_id}
        ended: set[str] = {k for k, r in live.items() if r.state == "ended"}
        interval = environment.number("TIERBOT_BATCH_POLL_S", POLL_FIRST_S)
        counts: dict[str, dict[str, int]] = {}
        while True:
            for k, r in live.items():
                if k in ended or r.batch_id is None:
                    continue
                try:
                    status = batchapi.retrieve(self.client, r.batch_id)
                except batchapi.BatchError as e:
                    if e.fatal:
                        self.fatal = str(e)
                        return
                    self.notes.append(f"audit: {e}")
                    continue
                counts[k] = status.counts
                if status.ended:
                    ended.add(k)
                    batchlog.set_state(self.ledger, k, "ended", status.counts)
            now = time.monotonic()
            left = self.deadline - now
            pause = min(interval, max(0.0, left))
            if self.progress is not None:
                total: dict[str, int] = {}
                for c in counts.values():
                    for name, n in c.items():
                        total[name] = total.get(name, 0) + n
                self.progress(
                    Progress(
                        tuple(str(r.batch_id) for r in live.values()),
                        sum(r.requests for r in live.values()),
                        total,
                        now - self.started,
                        0.0 if len(ended) == len(live) else pause,
                    )
                )
            if len(ended) == len(live) or left <= 0:
                break
            time.sleep(pause)
            interval = min(POLL_MAX_S, interval * POLL_GROWTH)
        for k in keys:
            if k in ended:
                self.fetch(live[k])
            elif k in live:
                self.running.add(k)

    def fetch(self, b: batchlog.BatchRow) -> None:
        """Read an ended batch's results into the ledger, once."""
        assert b.batch_id is not None
        results = ((cid, _compact(r)) for cid, r in batchapi.results(self.client, b.batch_id))
        try:
            batchlog.store_results(self.ledger, b.key, results)
        except batchapi.BatchError as e:
            self.notes.append(f"audit: {e}: a rerun reads them again")
            return
        batchlog.set_state(self.ledger, b.key, "fetched")

    def settle_others(self, config: Config) -> None:
        """Batches of earlier runs that no job of this run needed (settings changed since): their
        results are still paid for, so they are read and recorded once they have ended."""
        for b in batchlog.unfinished(self.ledger, self.repo):
            if b.key in self.touched or not b.batch_id or self.fatal is not None:
                continue
            if not self.ready():
                return
            try:
                status = batchapi.retrieve(self.client, b.batch_id)
            except batchapi.BatchError:
                continue
            if not status.ended:
                self.notes.append(
                    f"audit: batch {b.batch_id} of an earlier run is still running; a later "
                    "run records what it costs"
                )
                continue
            batchlog.set_state(self.ledger, b.key, "ended", status.counts)
            self.fetch(b._replace(state="ended"))
            self._record_unused(b, config)

    def _record_unused(self, b: batchlog.BatchRow, config: Config) -> None:
        from tierbot.review.cascade import priced

        for r in batchlog.requests_of(self.ledger, b.key):
            if r.state != "succeeded" or r.result is None:
                continue
            res = batchapi.call_result(json.loads(r.result))
            row = CallRow(
                self.repo,
                f"{r.commit_sha}^!",
                r.unit,
                r.tier,
                r.model,
                outcome="unused",
                command="audit",
                batch=str(b.batch_id),
                request=f"{b.batch_id}/{r.custom_id}",
            )
            self.ledger.record(row.with_usage(priced(config, r.model, res, BATCH_PRICE_FACTOR)))

    def infos(self) -> tuple[BatchInfo, ...]:
        out = []
        for k in self.touched:
            b = batchlog.get(self.ledger, k)
            if b is not None:
                out.append(BatchInfo(b.key, b.batch_id, b.kind, b.requests, b.state, b.counts))
        return tuple(out)


def _compact(result: dict[str, Any]) -> dict[str, Any]:
    """A result as the ledger keeps it: the model's thinking (often the bulk of an answer, and
    never read) is left out; the answer, the stop reason and the usage stay."""
    message = result.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return result
    content = [
        {"type": b.get("type")} if isinstance(b, dict) and "thinking" in str(b.get("type")) else b
        for b in message["content"]
    ]
    return {**result, "message": {**message, "content": content}}
