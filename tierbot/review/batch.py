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
batch; only the rest is sent (by a `batchio.Courier`, which keeps the ledger in step: a kill at
any moment loses nothing, and a rerun or `--resume` finds every batch again).  Expired requests,
and those that failed in passing, are sent once more in the next round's batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tierbot.config import Config
from tierbot.errors import EXIT_INCOMPLETE, TierbotError
from tierbot.records import Analysis, Change, Finding, Route, Tier
from tierbot.review import batchapi, batchlog, budget, claude, model, schedule, verify
from tierbot.review.batchio import BatchInfo, Courier, Progress, new_key
from tierbot.review.cascade import Context, Job, Tally, fail, handle, over_budget
from tierbot.review.ledger import Ledger
from tierbot.routing.pricing import BATCH_PRICE_FACTOR, Calibration, call_cost, estimate_tokens

__all__ = ["BatchInfo", "Progress", "Result", "Settings", "Work", "custom_id", "request_key", "run"]

# Sends of one ask per run: the first, and one more after it expired or failed in passing.
SENDS_PER_RUN = 2
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
    sends: dict[str, int] = field(default_factory=dict)  # request key -> sends this run
    stopped: str | None = None  # why no further round is sent
    rounds: int = 0

    def __post_init__(self) -> None:
        self.courier = Courier(
            self.ledger,
            self.settings.repo_label,
            self.settings.audit_key,
            self.settings.wait_s,
            self.progress,
        )
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
            price_factor=BATCH_PRICE_FACTOR,
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
            self.courier.cancel()
        self.courier.adopt_lost()
        while self.courier.fatal is None and self.stopped is None:
            self._plan_verifications()
            asks = self._collect()
            if not asks and self._plan_verifications():
                asks = self._collect()  # reviews answered from the cache: now their checks
            if not asks:
                break
            self.rounds += 1
            self._round(asks)
        if self.courier.fatal is None:
            self.courier.settle_others(self.settings.config)
        self._drop_left(self.courier.fatal or self.stopped or "")

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
        spent = sum(r.st.usage.cost_usd for r in self.reviews)
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
        return (
            call_cost(self.settings.config.price_for(job.model), prompt, out) * BATCH_PRICE_FACTOR
        )

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
                self.courier.touched[b.key] = None
            elif req.state == "pending":  # a batch nobody can find (see Courier.adopt)
                a.review.st.attempted.add(a.job.unit_id)
                fail(a.review.st, a.job, f"cannot tell whether batch {b.key} reached the API")
            elif self._again(a, req.result):
                to_send.append(a)  # it did not come back (or --no-cache asks for it)
            else:  # answered before (in this run, or one that was interrupted)
                a.stored, a.custom_id, a.waits_on = req.result, req.custom_id, b.key
                self.courier.touched[b.key] = None
        # The same ask twice in one round (a commit reverted, then redone): sent once.
        first: dict[str, _Ask] = {}
        twins = [(a, first[a.key]) for a in to_send if first.setdefault(a.key, a) is not a]
        if first:
            self._send(list(first.values()))
        for a, lead in twins:
            if lead.waits_on:
                a.waits_on, a.custom_id = lead.waits_on, lead.custom_id
            else:
                a.review.st.queue.append(a.job)  # as its twin: sent again, or dropped
        waiting = sorted({a.waits_on for a in asks if a.waits_on and a.stored is None})
        if waiting:
            self.courier.wait(waiting)
            if self.courier.running:
                names = ", ".join(self.courier.batch_id(k) for k in sorted(self.courier.running))
                self.stopped = (
                    f"still running after {claude.seconds(self.settings.wait_s)} in batch "
                    f"{names}: rerun the same command (or `tierbot audit --resume`) to collect it"
                )
        self._handle(asks)

    def _again(self, a: _Ask, stored: str | None) -> bool:
        """Whether an ask answered before is sent once more in this run."""
        if self.sends.get(a.key, 0) >= SENDS_PER_RUN:
            return False
        retry = stored is not None and batchapi.retryable(json.loads(stored))
        return retry or not self.settings.use_cache

    # --- sending --------------------------------------------------------------------------

    def _send(self, asks: list[_Ask]) -> None:
        """The asks in as few batches as the API's limits allow."""
        if self.settings.cancel:
            for a in asks:
                a.review.st.attempted.add(a.job.unit_id)
                fail(a.review.st, a.job, "not sent: the audit was canceled (--cancel)")
            return
        if not self.courier.ready():
            for a in asks:
                a.review.st.queue.append(a.job)  # dropped with the reason at the end
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
            chunk.append(a)
            size += one
        if chunk:
            self._submit(chunk)

    def _submit(self, asks: list[_Ask]) -> None:
        if self.courier.fatal is not None:
            for a in asks:
                a.review.st.queue.append(a.job)  # dropped with the reason at the end
            return
        key, tag = new_key()
        seen: set[str] = set()
        requests, rows = [], []
        for a in asks:
            cid = custom_id(a.review.work.key, a.job.unit_id, tag)
            n = 1
            while cid in seen:  # never within one change; unique whatever happens
                n += 1
                cid = custom_id(a.review.work.key, f"{a.job.unit_id}_{n}", tag)
            seen.add(cid)
            a.custom_id, a.waits_on = cid, key
            self.sends[a.key] = self.sends.get(a.key, 0) + 1
            a.review.st.attempted.add(a.job.unit_id)
            requests.append({"custom_id": cid, "params": a.params})
            rows.append(
                batchlog.NewRequest(
                    cid, a.key, a.review.work.key, a.job.unit_id, a.job.tier, a.job.model
                )
            )
        err = self.courier.submit(
            key, "review" if self.rounds <= 1 else "follow-up", requests, rows
        )
        if err is None:
            return
        for a in asks:
            a.waits_on = ""
            if err.fatal or (err.maybe_created and self.sends[a.key] < SENDS_PER_RUN):
                # Sent again next round (it never arrived), or dropped with the fatal reason.
                a.review.st.queue.append(a.job)
            else:
                fail(a.review.st, a.job, str(err))

    # --- the answers ----------------------------------------------------------------------

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
        names = {k: self.courier.batch_id(k) for k in {a.waits_on for a in asks if a.waits_on}}
        for a in asks:
            st = a.review.st
            if not a.waits_on:
                continue  # not sent (and it said why), or sent again next round
            name = names[a.waits_on]
            if a.stored is None:
                why = "still running" if a.waits_on in self.courier.running else "no result"
                _not_yet(st, a.job, f"{why} in batch {name}")
                continue
            result = json.loads(a.stored)
            if batchapi.retryable(result) and self.sends.get(a.key, 0) < SENDS_PER_RUN:
                st.notes.append(
                    f"audit: unit {a.job.unit_id} ({a.job.tier}): "
                    f"{batchapi.failure_text(result)} in batch {name}: sent again"
                )
                st.queue.append(a.job)
                continue
            job = dataclasses.replace(a.job, batch_request=f"{name}/{a.custom_id}")
            res = batchapi.call_result(result)
            handle(a.review.ctx, st, job, res)
            if res.failure is not None and res.failure.fatal:
                self.courier.fatal = self.courier.fatal or res.failure.message

    # --- the end --------------------------------------------------------------------------

    def _drop_left(self, reason: str) -> None:
        """Jobs still queued when the run stops: each change says what was not done, and why."""
        fatal = self.courier.fatal
        for r in self.reviews:
            if fatal is not None:
                r.st.fatal = r.st.fatal or fatal
            while r.st.queue:
                job = r.st.queue.popleft()
                if job.kind == "review" and job.unit_id not in r.st.attempted:
                    r.st.not_started += 1
                why = reason or "not sent"
                fail(r.st, job, why if why.startswith("not sent") else f"not sent: {why}")

    def result(self) -> Result:
        outcomes = tuple(model.outcome(r.st, r.order) for r in self.reviews)
        running = tuple(self.courier.batch_id(k) for k in sorted(self.courier.running))
        notes = (*self.notes, *self.courier.notes)
        return Result(outcomes, self.courier.infos(), notes, running)


def _not_yet(st: Tally, job: Job, why: str) -> None:
    """A job whose answer a later run collects: the unit is not reviewed yet (not failed)."""
    why += ": rerun the same command (or `tierbot audit --resume`) to collect it"
    if job.kind != "review":
        fail(st, job, why)
        return
    st.failed[job.unit_id] = why
    st.notes.append(f"model: unit {job.unit_id} ({job.tier}): {why}")
