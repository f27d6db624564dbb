"""Many reviews through the Message Batches API, at half price: the engine of `tierbot audit`.

Each change (one commit) is reviewed as `model.review` reviews it -- the same Context and Tally,
prompts, cache keys, answer handling, repairs, escalations and Opus verification -- but its calls
go out in rounds: every job that every change has queued becomes one request of a batch, split
only by the API's limits (`batchapi.limits`).  The results go through `cascade.handle`, which may
queue repairs, retries and escalations: the next round.  A change with nothing left to do gets
its verification, so verification is a round of its own, after the reviews it checks.

Nothing is paid for twice.  A request's `request_key` says what it asks (the review cache key,
a repair's problem, max_tokens).  Before a round is sent, a job whose ask already has a stored
answer is answered from it, and a job whose ask is in a batch still on its way waits for that
batch; only the rest is sent.  `batchlog.py` says in which order the ledger is written, so that
a kill at any moment loses nothing; a rerun (or `--resume`) finds every batch again.  Expired and
errored requests (of the kinds worth retrying) are sent once more in the next round's batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, NamedTuple

from tierbot.config import Config
from tierbot.errors import EXIT_INCOMPLETE, TierbotError
from tierbot.records import Analysis, Change, Finding, Route, Tier
from tierbot.review import batchapi, batchlog, budget, claude, model, schedule, verify
from tierbot.review.cascade import Context, Job, Tally, fail, handle, over_budget
from tierbot.review.ledger import CallRow, Ledger
from tierbot.routing.pricing import Calibration, call_cost, estimate_tokens

# The Batch API bills half of every price.
PRICE_FACTOR = 0.5
# Polling: the first wait, growing by this factor up to the last (TIERBOT_BATCH_POLL_S sets the
# first, for impatient tests).
POLL_FIRST_S = 2.0
POLL_GROWTH = 1.5
POLL_MAX_S = 60.0
# A create whose answer was lost is looked for among the batches created since a little before
# it was sent: the API's clock and ours differ.
CLOCK_SKEW_S = 300.0
# Sends of one ask per run: the first, and one retry after it expired or failed in passing.
SENDS_PER_RUN = 2
# Errors that say the request itself or the account is wrong: no retry helps.
FATAL_ERRORS = frozenset({"authentication_error", "permission_error", "billing_error"})
PERMANENT_ERRORS = frozenset({"invalid_request_error", "not_found_error", "request_too_large"})
_SAFE = re.compile(r"[^A-Za-z0-9_]")


class Work(NamedTuple):
    """One change to review (one commit of an audit)."""

    key: str  # the commit's sha
    change: Change
    analysis: Analysis
    route: Route
    rule_findings: tuple[Finding, ...]
    intent: str


class Settings(NamedTuple):
    config: Config
    repo_label: str  # the ledger's repository label; batches of one repository are found again
    audit_key: str  # which audit sent a batch (for --cancel and the report)
    calibration: Calibration
    budget_usd: float | None = None  # for the whole audit, at batch prices; None: no limit
    use_cache: bool = True
    fail_on: str = "none"
    wait_s: float = 3600.0  # how long to wait for batches to end before leaving them running
    cancel: bool = False  # cancel this audit's running batches and send nothing new


class BatchInfo(NamedTuple):
    """A batch this run sent, joined or adopted, as the report shows it."""

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


class Result(NamedTuple):
    outcomes: tuple[model.ModelOutcome, ...]  # one per Work, in order
    batches: tuple[BatchInfo, ...]
    notes: tuple[str, ...]
    running: tuple[str, ...]  # batch ids still running when the run stopped waiting


def run(
    works: Sequence[Work], settings: Settings, progress: Callable[[Progress], None] | None = None
) -> Result:
    """Review every Work through batches; raises TierbotError only when no ledger can keep the
    batches (without one, a kill would lose what was paid for)."""
    try:
        ledger = Ledger.open()
    except Exception as e:
        raise TierbotError(
            f"tierbot audit keeps its batches in the ledger and cannot open it: {e}",
            EXIT_INCOMPLETE,
        ) from None
    try:
        if not ledger.writable:
            raise TierbotError(
                "tierbot audit keeps its batches in the ledger, which is read-only here: "
                + "; ".join(ledger.notes),
                EXIT_INCOMPLETE,
            )
        audit = _Audit(works, settings, ledger, progress)
        audit.run()
        return audit.result()
    finally:
        ledger.close()


def request_key(job: Job) -> str:
    """What a request asks, whoever sends it: equal keys are never paid for twice."""
    h = hashlib.sha256()
    for part in (
        job.cache_key,
        "repair" if job.repair else "",
        job.problem or "",
        job.previous or "",
        str(job.max_tokens),
    ):
        h.update(part.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()


def custom_id(commit: str, unit: str, tag: str) -> str:
    """`<commit>-<unit>-<tag>`: the commit and unit it reviews and the batch it was sent in,
    within the API's rule (1-64 of letters, digits, '_' and '-')."""
    cid = f"{commit[:20]}-{_SAFE.sub('_', unit)[:24]}-{tag}"
    if not batchapi.CUSTOM_ID.fullmatch(cid):
        raise ValueError(f"not a valid custom_id: {cid!r}")
    return cid


@dataclass
class _Review:
    work: Work
    ctx: Context
    st: Tally
    order: list[str]
    verify_planned: bool = False


@dataclass
class _Ask:
    """A job of this round, ready to send (or answered without sending)."""

    review: _Review
    job: Job
    key: str  # request_key
    params: dict[str, Any]
    waits_on: str = ""  # the batch (our key) whose answer it takes
    custom_id: str = ""
    stored: str | None = None  # the stored result object (JSON), when already answered


@dataclass
class _Audit:
    works: Sequence[Work]
    settings: Settings
    ledger: Ledger
    progress: Callable[[Progress], None] | None
    reviews: list[_Review] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    touched: dict[str, None] = field(default_factory=dict)  # batch keys, in order
    running: set[str] = field(default_factory=set)  # batch keys not ended at the bound
    sends: dict[str, int] = field(default_factory=dict)  # request key -> sends this run
    fatal: str | None = None
    stopped: str | None = None  # why no further round is sent
    client: Any = None
    rounds: int = 0

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + max(0.0, self.settings.wait_s)
        self.reviews = [self._start(w) for w in self.works]

    # --- setting up -----------------------------------------------------------------------

    def _start(self, work: Work) -> _Review:
        st = Tally(units={u.id: u for u in work.route.units})
        ctx = model.context(
            st,
            work.change,
            work.analysis,
            work.route,
            work.rule_findings,
            self.settings.config,
            ledger=self.ledger,
            intent=work.intent,
            use_cache=self.settings.use_cache,
            budget=None,  # the audit's budget is planned across all changes (_plan_budget)
            max_tier=None,
            deadline=None,
            repo_label=self.settings.repo_label,
            range_label=work.change.range.spec,
            fail_on=self.settings.fail_on,
            price_factor=PRICE_FACTOR,
            command="audit",
        )
        return _Review(work, ctx, st, [u.id for u in work.route.units])

    def _plan_budget(self) -> None:
        """Fit the audit's expected cost (batch prices) into its budget before anything is sent:
        the least risky units of the whole range go a tier down first, then are skipped."""
        units, owners = {}, {}
        for r in self.reviews:
            for uid in r.order:
                if r.st.units[uid].tier != "skip":
                    name = f"{r.work.key[:7]}/{uid}"
                    units[name], owners[name] = r.st.units[uid], (r, uid)
        limit = self.settings.budget_usd
        if limit is not None and units:
            # Prices and models are the audit's, the same for every change.
            ctx, calibration = self.reviews[0].ctx, self.settings.calibration
            planned, notes = budget.plan(
                units,
                list(units),
                lambda u: model.expected_cost(ctx, u, calibration, startable=False),
                limit,
                self.settings.config,
            )
            self.notes.extend(notes)
            for name, unit in planned.items():
                r, uid = owners[name]
                r.st.units[uid] = unit
        for r in self.reviews:
            r.st.queue.extend(
                r.ctx.job(uid, r.st.units[uid].tier)
                for uid in r.order
                if r.st.units[uid].tier != "skip"
            )

    # --- the rounds -----------------------------------------------------------------------

    def run(self) -> None:
        self._plan_budget()
        if self.settings.cancel:
            self._cancel()
        self._adopt_lost()
        while self.fatal is None and self.stopped is None:
            self._plan_verifications()
            asks = self._collect()
            if not asks and self._plan_verifications():
                asks = self._collect()  # reviews answered from the cache: now their checks
            if not asks:
                break
            self.rounds += 1
            self._round(asks)
        self._settle_others()
        self._drop_left(self.fatal or self.stopped or "")

    def _plan_verifications(self) -> bool:
        """A change whose reviews are all done gets its verification (one Opus request);
        whether any was queued."""
        queued = False
        for r in self.reviews:
            if r.st.queue or r.verify_planned or r.st.fatal is not None:
                continue
            r.verify_planned = True
            job = verify.plan(r.ctx, r.st)
            if job is not None:
                r.st.queue.append(job)
                queued = True
        return queued

    def _collect(self) -> list[_Ask]:
        """Every queued job, prepared (cache hits answered here, at no cost)."""
        asks: list[_Ask] = []
        spent = self._spent()
        for r in self.reviews:
            counts: dict[Tier, int] = {}
            for j in r.st.queue:
                counts[j.tier] = counts.get(j.tier, 0) + 1
            shared = {t for t, n in counts.items() if n >= 2}
            while r.st.queue:
                job = schedule.prepared(r.ctx, r.st, r.st.queue.popleft())
                if job is None:
                    continue
                if not job.repair and schedule.from_cache(r.ctx, r.st, job):
                    continue
                job = dataclasses.replace(job, max_tokens=schedule.top_tokens(r.ctx, job))
                limit = self.settings.budget_usd
                if limit is not None and self.rounds > 0:
                    # Follow-ups (escalations, repairs, verification) must fit what is left.
                    cost = self._expected(r, job)
                    if spent + cost > limit:
                        over_budget(r.st, job, limit, spent)
                        continue
                    spent += cost
                request = schedule.request(
                    r.ctx, job, 600.0, job.max_tokens, cache_manifest=job.tier in shared
                )
                params = claude.request_params(request, job.max_tokens)
                asks.append(_Ask(r, job, request_key(job), params))
        return asks

    def _expected(self, r: _Review, job: Job) -> float:
        text = r.ctx.system_text(job.tier) + r.ctx.text(job) + (job.previous or "")
        prompt = estimate_tokens(text + (job.problem or ""))
        out = self.settings.calibration.output_for(job.tier, prompt)
        return call_cost(self.settings.config.price_for(job.model), prompt, out) * PRICE_FACTOR

    def _spent(self) -> float:
        return sum(r.st.cost for r in self.reviews)

    def _round(self, asks: list[_Ask]) -> None:
        """Answer what is answered, join what is on its way, send the rest, wait, handle."""
        found = batchlog.latest(self.ledger, [a.key for a in asks])
        to_send: list[_Ask] = []
        for a in asks:
            req, b = found.get(a.key, (None, None))
            if req is None or b is None:
                to_send.append(a)
            elif req.state == "pending" and b.batch_id and b.state in ("submitted", "ended"):
                a.waits_on, a.custom_id = b.key, req.custom_id
                self.touched[b.key] = None
            elif req.state == "pending":  # a batch nobody can find (see _adopt_lost)
                fail(
                    a.review.st,
                    a.job,
                    f"cannot tell whether batch {b.key} reached the API: rerun later",
                )
                a.review.st.attempted.add(a.job.unit_id)
            elif (_retryable(req.result) or not self.settings.use_cache) and self.sends.get(
                a.key, 0
            ) < SENDS_PER_RUN:
                to_send.append(a)  # again: it did not come back (or --no-cache asks for it)
            else:  # answered before (this run, or one that was interrupted)
                a.stored, a.custom_id, a.waits_on = req.result, req.custom_id, b.key
                self.touched[b.key] = None
        if to_send:
            self._send(to_send)
        waiting = sorted({a.waits_on for a in asks if a.waits_on and a.stored is None})
        if waiting:
            self._wait(waiting)
        self._handle(asks)

    # --- sending --------------------------------------------------------------------------

    def _send(self, asks: list[_Ask]) -> None:
        if self.settings.cancel:
            for a in asks:
                fail(a.review.st, a.job, "not sent: the audit was canceled (--cancel)")
                a.review.st.attempted.add(a.job.unit_id)
            return
        if not self._ensure_client():
            return
        most, size_limit = batchapi.limits()
        chunk: list[_Ask] = []
        size = 0
        for a in asks:
            one = len(json.dumps({"custom_id": "x" * 64, "params": a.params}).encode()) + 2
            if one + 64 > size_limit:
                fail(a.review.st, a.job, f"the request ({one} bytes) is too large for a batch")
                continue
            if chunk and (len(chunk) >= most or size + one + 64 > size_limit):
                self._submit(chunk)
                chunk, size = [], 0
            if self.fatal is not None:
                a.review.st.queue.append(a.job)  # dropped with the reason at the end
                continue
            chunk.append(a)
            size += one
        if chunk:
            self._submit(chunk)

    def _submit(self, asks: list[_Ask]) -> None:
        """One batch: recorded with every request first, then created, then its id recorded."""
        if self.fatal is not None:
            for a in asks:
                a.review.st.queue.append(a.job)
            return
        key = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
        tag = key[-6:]
        seen: dict[str, int] = {}
        requests, rows = [], []
        for a in asks:
            cid = custom_id(a.review.work.key, a.job.unit_id, tag)
            if cid in seen:  # never within one change; kept unique whatever happens
                seen[cid] += 1
                cid = custom_id(a.review.work.key, f"{a.job.unit_id}{seen[cid]}", tag)
            seen.setdefault(cid, 0)
            a.custom_id, a.waits_on = cid, key
            self.sends[a.key] = self.sends.get(a.key, 0) + 1
            a.review.st.attempted.add(a.job.unit_id)
            requests.append({"custom_id": cid, "params": a.params})
            rows.append(
                batchlog.NewRequest(
                    cid, a.key, a.review.work.key, a.job.unit_id, a.job.tier, a.job.model
                )
            )
        body_size = len(json.dumps({"requests": requests}).encode())
        batchlog.begin(
            self.ledger,
            key,
            repo=self.settings.repo_label,
            audit=self.settings.audit_key,
            kind="review" if self.rounds <= 1 else "follow-up",
            requests=rows,
            size=body_size,
        )
        self.touched[key] = None
        try:
            status = batchapi.create(self.client, requests)
        except batchapi.BatchError as e:
            self._create_failed(key, asks, e)
            return
        batchlog.submitted(self.ledger, key, status.id)

    def _create_failed(self, key: str, asks: list[_Ask], err: batchapi.BatchError) -> None:
        if err.maybe_created:
            time.sleep(1.0)  # let the batch, if it exists, show in the list
            row = batchlog.get(self.ledger, key)
            if row is not None and self._adopt(row):
                return
        else:
            batchlog.set_state(self.ledger, key, "void")
        message = str(err)
        if err.fatal:
            self.fatal = message
        for a in asks:
            a.waits_on = ""
            if err.fatal or (self.sends.get(a.key, 0) < SENDS_PER_RUN and err.maybe_created):
                # Sent again next round (it never arrived), or dropped with the fatal reason.
                a.review.st.queue.append(a.job)
            else:
                fail(a.review.st, a.job, message)

    def _ensure_client(self) -> bool:
        if self.client is not None:
            return True
        try:
            self.client = claude.make_client()
        except Exception as e:
            self.fatal = f"cannot set up the Anthropic client: {claude.one_line(str(e))}"
            return False
        return True

    # --- finding a batch whose create answer was lost ---------------------------------------

    def _adopt_lost(self) -> None:
        for b in batchlog.unfinished(self.ledger, self.settings.repo_label):
            if b.state == "submitting" and self._ensure_client():
                self._adopt(b)

    def _adopt(self, b: batchlog.BatchRow) -> bool:
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

    def _cancel(self) -> None:
        for b in batchlog.unfinished(self.ledger, self.settings.repo_label):
            if b.audit != self.settings.audit_key or not b.batch_id or b.state != "submitted":
                continue
            if not self._ensure_client():
                return
            try:
                batchapi.cancel(self.client, b.batch_id)
                self.notes.append(f"audit: asked the API to cancel batch {b.batch_id}")
            except batchapi.BatchError as e:
                self.notes.append(f"audit: could not cancel batch {b.batch_id}: {e}")

    # --- waiting and reading --------------------------------------------------------------

    def _wait(self, keys: list[str]) -> None:
        """Poll the batches until every one has ended (then read their results) or the wait
        bound passes (they keep running: a rerun collects them)."""
        if not self._ensure_client():
            return
        rows = {k: batchlog.get(self.ledger, k) for k in keys}
        live = {k: r for k, r in rows.items() if r is not None and r.batch_id}
        ended: set[str] = {k for k, r in live.items() if r.state == "ended"}
        interval = _env_float("TIERBOT_BATCH_POLL_S", POLL_FIRST_S)
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
            wait = min(interval, max(0.0, left))
            if self.progress is not None:
                total: dict[str, int] = {}
                for c in counts.values():
                    for name, n in c.items():
                        total[name] = total.get(name, 0) + n
                ids = tuple(str(live[k].batch_id) for k in live)
                self.progress(
                    Progress(
                        ids,
                        sum(live[k].requests for k in live),
                        total,
                        now - self.started,
                        0.0 if len(ended) == len(live) else wait,
                    )
                )
            if len(ended) == len(live) or left <= 0:
                break
            time.sleep(wait)
            interval = min(POLL_MAX_S, interval * POLL_GROWTH)
        still = [k for k in keys if k in live and k not in ended]
        for k in keys:
            if k in ended:
                self._fetch(live[k])
        if still:
            self.running.update(still)
            names = ", ".join(str(live[k].batch_id) for k in still)
            self.stopped = (
                f"still running after {claude.seconds(self.settings.wait_s)} in batch {names}: "
                "rerun the same command (or `tierbot audit --resume`) to collect it"
            )

    def _fetch(self, b: batchlog.BatchRow) -> None:
        """Read an ended batch's results into the ledger, once."""
        assert b.batch_id is not None
        try:
            batchlog.store_results(self.ledger, b.key, batchapi.results(self.client, b.batch_id))
        except batchapi.BatchError as e:
            self.notes.append(f"audit: {e}: a rerun reads them again")
            return
        batchlog.set_state(self.ledger, b.key, "fetched")

    def _handle(self, asks: list[_Ask]) -> None:
        """Each answer, in the order the jobs were queued (results come in any order)."""
        stored: dict[str, dict[str, str | None]] = {}
        for a in asks:
            if a.stored is not None or not a.waits_on:
                continue
            if a.waits_on not in stored:
                stored[a.waits_on] = {
                    r.custom_id: r.result for r in batchlog.requests_of(self.ledger, a.waits_on)
                }
            a.stored = stored[a.waits_on].get(a.custom_id)
        batch_ids = {
            k: (batchlog.get(self.ledger, k) or _NO_BATCH).batch_id or k
            for k in {a.waits_on for a in asks if a.waits_on}
        }
        for a in asks:
            st = a.review.st
            if not a.waits_on:
                continue  # failed before it was sent (and said why)
            if a.stored is None:
                if a.waits_on in self.running:
                    _not_yet(st, a.job, f"still running in batch {batch_ids[a.waits_on]}")
                else:
                    _not_yet(st, a.job, f"batch {batch_ids[a.waits_on]} gave no result for it")
                continue
            result = json.loads(a.stored)
            if _retryable(a.stored) and self.sends.get(a.key, 0) < SENDS_PER_RUN:
                st.notes.append(
                    f"audit: unit {a.job.unit_id} ({a.job.tier}): "
                    f"{_failure_text(result)} in batch {batch_ids[a.waits_on]}: sent again"
                )
                st.queue.append(a.job)
                continue
            job = dataclasses.replace(a.job, batch_request=f"{batch_ids[a.waits_on]}/{a.custom_id}")
            res = call_result(result)
            handle(a.review.ctx, st, job, res)
            if res.failure is not None and res.failure.fatal:
                self.fatal = self.fatal or res.failure.message

    # --- the end --------------------------------------------------------------------------

    def _settle_others(self) -> None:
        """Batches of earlier runs that no job of this run needed (settings changed since): their
        results are still paid for, so they are read and recorded once they have ended."""
        for b in batchlog.unfinished(self.ledger, self.settings.repo_label):
            if b.key in self.touched or not b.batch_id or self.fatal is not None:
                continue
            if not self._ensure_client():
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
            self._fetch(b._replace(state="ended"))
            self._record_unused(b)

    def _record_unused(self, b: batchlog.BatchRow) -> None:
        config = self.settings.config
        opus = config.model_for("opus")
        for r in batchlog.requests_of(self.ledger, b.key):
            if r.state != "succeeded" or r.result is None:
                continue
            res = call_result(json.loads(r.result))
            args = (
                res.input_tokens,
                res.output_tokens,
                res.cache_write_tokens,
                res.cache_read_tokens,
            )
            cost = call_cost(config.price_for(r.model), *args) * PRICE_FACTOR
            all_opus = call_cost(config.price_for(opus), *args) * PRICE_FACTOR if opus else cost
            self.ledger.record(
                CallRow(
                    self.settings.repo_label,
                    f"{r.commit_sha}^!",
                    r.unit,
                    r.tier,
                    r.model,
                    *args,
                    cost_usd=cost,
                    all_opus_cost_usd=all_opus,
                    outcome="unused",
                    command="audit",
                    batch=str(b.batch_id),
                    request=f"{b.batch_id}/{r.custom_id}",
                )
            )

    def _drop_left(self, reason: str) -> None:
        """Jobs still queued when the run stops: each change says what was not done, and why."""
        for r in self.reviews:
            if self.fatal is not None:
                r.st.fatal = r.st.fatal or self.fatal
            while r.st.queue:
                job = r.st.queue.popleft()
                why = reason or "not sent"
                if job.kind == "review" and job.unit_id not in r.st.attempted:
                    r.st.not_started += 1
                fail(r.st, job, f"not sent: {why}" if not why.startswith("not sent") else why)

    def result(self) -> Result:
        outcomes = tuple(model.outcome(r.st, r.order) for r in self.reviews)
        infos = []
        for k in self.touched:
            b = batchlog.get(self.ledger, k)
            if b is not None:
                infos.append(BatchInfo(b.key, b.batch_id, b.kind, b.requests, b.state, b.counts))
        running = tuple(
            str(b.batch_id) for k in sorted(self.running) if (b := batchlog.get(self.ledger, k))
        )
        return Result(outcomes, tuple(infos), tuple(self.notes), running)


_NO_BATCH = batchlog.BatchRow("", "", "", "", "", None, 0.0, 0.0, 0, 0, {})


def _not_yet(st: Tally, job: Job, why: str) -> None:
    """A job whose answer a later run collects: the unit is not reviewed yet (not failed)."""
    why += ": rerun the same command (or `tierbot audit --resume`) to collect it"
    if job.kind != "review":
        fail(st, job, why)
        return
    st.failed[job.unit_id] = why
    st.notes.append(f"model: unit {job.unit_id} ({job.tier}): {why}")


def call_result(result: dict[str, Any]) -> claude.CallResult:
    """A batch result object as the CallResult a streamed call would have given."""
    kind = result.get("type")
    if kind == "succeeded":
        return claude.message_result(_attrs(result.get("message") or {}))
    fatal = _error_type(result) in FATAL_ERRORS
    return claude.CallResult(failure=claude.Failure(fatal, _failure_text(result)))


def _error_type(result: dict[str, Any]) -> str:
    err = result.get("error")
    inner = err.get("error") if isinstance(err, dict) else None
    return str(inner.get("type") or "api_error") if isinstance(inner, dict) else "api_error"


def _failure_text(result: dict[str, Any]) -> str:
    kind = result.get("type")
    if kind in ("expired", "canceled"):
        return f"the request {kind} before the API processed it"
    err = result.get("error")
    inner = err.get("error") if isinstance(err, dict) else None
    message = inner.get("message") if isinstance(inner, dict) else None
    return f"the request failed ({_error_type(result)}: {claude.one_line(str(message or ''), 160)})"


def _retryable(stored: str | None) -> bool:
    """Whether a stored result is worth sending again (it expired, was canceled by the API, or
    failed in passing)."""
    if stored is None:
        return False
    result = json.loads(stored)
    kind = result.get("type")
    if kind in ("expired", "canceled"):
        return True
    if kind != "errored":
        return False
    etype = _error_type(result)
    return etype not in FATAL_ERRORS and etype not in PERMANENT_ERRORS


def _attrs(value: Any) -> Any:
    """JSON as attributes (what `claude.message_result` reads from an SDK message)."""
    if isinstance(value, dict):
        return SimpleNamespace(**{str(k): _attrs(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_attrs(v) for v in value]
    return value


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value >= 0 else default
