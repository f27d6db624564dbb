"""Running a review's jobs: a bounded thread pool, started in queue order as slots free up.

The SDK's sync client is thread-safe and the work is all waiting on HTTP, so threads are enough.
The decisions stay on the calling thread: what may start (review cache, deadline, wall bound per
unit, budget, cache priming), each prompt is built when its job starts (so the first request
does not wait for the last unit's), and what each finished call leads to (`cascade.handle`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from tierbot.records import Tier
from tierbot.review import budget, claude
from tierbot.review import prompt as P
from tierbot.review.answer import InvalidAnswer, answer_schema, parse_answer, verdict_schema
from tierbot.review.cascade import (
    Context,
    Job,
    Tally,
    accept,
    cache_key,
    count,
    handle,
    over_budget,
    record,
)
from tierbot.routing.pricing import estimate_tokens

# Prime a tier's prompt cache (one max_tokens=0 request; the others wait for it, then read the
# shared prefix instead of each writing it) when that saves at least this much.
PRIME_MIN_SAVING_USD = 0.01
# The smallest prefix the 5.5 models cache (a priming request below it would be wasted).
MIN_CACHE_TOKENS = 512


def run(ctx: Context, st: Tally, then: Callable[[], bool] | None = None) -> None:
    """Run every queued job, and the repairs, retries and escalations they add, until none is
    left; then call `then`, which may queue more (the verification) and returns whether it did."""
    calls = _Calls(ctx, st)
    interrupted = False
    try:
        while True:
            while st.queue or calls.running:
                calls.start_ready()
                if st.fatal is not None and st.queue:
                    _drop_queue(st, "not started: " + st.fatal)
                if calls.running:
                    calls.finish_some()
            if then is None or st.fatal is not None or not then():
                break
            then = None
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        calls.close(interrupted)


class _Calls:
    """The calls in flight, and the tiers whose units wait for a cache-priming request."""

    def __init__(self, ctx: Context, st: Tally) -> None:
        self.ctx, self.st = ctx, st
        self.workers = max(1, ctx.config.concurrency or 1)
        jobs = list(st.queue)
        # A per-review breakpoint costs a 1.25x write: worth it only when it will be read.
        self.shared = {t for t, n in _counts(jobs).items() if n >= 2}
        self.to_prime = _tiers_to_prime(jobs, self.workers, ctx)
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="tierbot-model")
        self.running: dict[Future[claude.CallResult], Job | Tier] = {}
        self.client: Any = None  # made with the first call: a run of cache hits needs none
        self.url = claude.base_url()
        self.priming: set[Tier] = set()
        self.reserved_for_priming: dict[Tier, float] = {}

    def start_ready(self) -> None:
        """Start queued jobs while there are free slots and nothing fatal happened."""
        st = self.st
        if self.client is None and self.ctx.probe is not None:
            # A refused connection is known at once: fail before building any prompt.
            st.fatal = st.fatal or self.ctx.probe.unreachable(wait=False)
        while st.queue and len(self.running) < self.workers and st.fatal is None:
            idx = self._next_ready()
            if idx is None:
                break
            job = prepared(self.ctx, st, st.queue[idx])
            if job is None:  # nothing to send: the unit is skipped
                del st.queue[idx]
                continue
            st.queue[idx] = job
            if not job.repair and from_cache(self.ctx, st, job):
                del st.queue[idx]
                continue
            if self.ctx.deadline is not None and time.monotonic() >= self.ctx.deadline:
                _drop_at_deadline(st)
                break
            wall = self._wall(job)
            if wall <= 0:
                del st.queue[idx]
                handle(self.ctx, st, job, _timed_out(job))
                continue
            fitted = _fit(self.ctx, st, job, can_wait=bool(self.running))
            if fitted is None:
                if self.running:
                    break  # wait: finished calls release their reservations
                del st.queue[idx]
                over_budget(st, job, self.ctx.budget or 0.0)
                continue
            if not self._ensure_client():
                st.reserved -= fitted.reserved
                break
            del st.queue[idx]
            if job.tier in self.to_prime:
                self.to_prime.discard(job.tier)
                if self._prime(fitted):
                    st.reserved -= fitted.reserved
                    st.queue.appendleft(dataclasses.replace(fitted, max_tokens=0, reserved=0.0))
                    continue
            self._submit(fitted, wall)

    def finish_some(self) -> None:
        done, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
        for fut in done:
            what = self.running.pop(fut)
            if isinstance(what, Job):
                handle(self.ctx, self.st, what, fut.result())
            else:
                self._primed(what, fut.result())

    def close(self, interrupted: bool) -> None:
        # On Ctrl-C do not wait for calls in flight: closing the client aborts their connections.
        if interrupted and self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
        self.pool.shutdown(wait=not interrupted, cancel_futures=True)
        if self.client is not None and not interrupted:
            with contextlib.suppress(Exception):
                self.client.close()

    def _next_ready(self) -> int | None:
        """The first job whose tier is not waiting for its cache-priming request."""
        return next(
            (i for i, j in enumerate(self.st.queue) if j.tier not in self.priming),
            None,
        )

    def _wall(self, job: Job) -> float:
        """Seconds this call may take: what is left of its unit's wall bound and of the deadline."""
        now = time.monotonic()
        started = self.st.started.setdefault(job.unit_id, now)
        left = started + _unit_wall(self.ctx) - now
        if self.ctx.deadline is not None:
            left = min(left, self.ctx.deadline - now)
        return left

    def _ensure_client(self) -> bool:
        if self.client is not None:
            return True
        unreachable = self.ctx.probe.unreachable() if self.ctx.probe is not None else None
        if unreachable is not None:
            self.st.fatal = unreachable
            return False
        try:
            self.client = claude.make_client()
        except Exception as e:
            self.st.fatal = f"cannot set up the Anthropic client: {claude.one_line(str(e))}"
            return False
        return True

    def _request(self, job: Job, wall: float, max_tokens: int) -> claude.Request:
        return request(self.ctx, job, wall, max_tokens, cache_manifest=job.tier in self.shared)

    def _submit(self, job: Job, wall: float) -> None:
        self.st.attempted.add(job.unit_id)
        req = self._request(job, wall, job.max_tokens)
        fut = self.pool.submit(claude.call, self.client, req, self.url)
        self.running[fut] = job

    def _prime(self, job: Job) -> bool:
        """Send the tier's shared prefix alone with max_tokens 0; its other jobs wait for it."""
        ctx = self.ctx
        if ctx.budget is not None:
            text = ctx.system_text(job.tier)
            need = budget.worst_input(ctx.config.price_for(job.model), text)[0]
            if need > ctx.budget - self.st.usage.cost_usd - self.st.reserved:
                return False
            self.reserved_for_priming[job.tier] = need
            self.st.reserved += need
        wall = self._wall(job)
        req = self._request(job, wall, 0)
        # The request ends at the shared manifest: the same prefix as the units' requests.
        req = dataclasses.replace(
            req,
            messages=[{"role": "user", "content": [P.manifest_block(ctx.prefix, ctx.nonce, True)]}],
        )
        self.priming.add(job.tier)
        self.running[self.pool.submit(claude.prime, self.client, req, self.url)] = job.tier
        return True

    def _primed(self, tier: Tier, res: claude.CallResult) -> None:
        ctx, st = self.ctx, self.st
        self.priming.discard(tier)
        st.reserved -= self.reserved_for_priming.pop(tier, 0.0)
        model = ctx.model(tier)
        if res.answered:
            count(ctx, st, model, res)
            prime_job = Job("prime", tier, model, "review")
            record(ctx, st, prime_job, res, "prime")
        if res.failure is not None and res.failure.fatal:
            st.fatal = st.fatal or res.failure.message


# --- one job, however it is sent (here, or in a Message Batch: batch.py) --------------------


def prepared(ctx: Context, st: Tally, job: Job) -> Job | None:
    """`job` with its prompt and cache key (a unit's prompt is built when it first starts);
    None: nothing to send (the unit is then skipped, with the reason)."""
    if job.prompt is None:
        up = ctx.unit_prompt(st, job.unit_id)
        if up is None:
            if job.kind == "review":
                _nothing_to_send(ctx, st, job)
            return None
        job = dataclasses.replace(job, prompt=up)
    if not job.cache_key:
        static = ctx.system_static(job)
        schema = _schema(job)
        job = dataclasses.replace(
            job,
            cache_key=cache_key(job, ctx.text(job), ctx.config, static, schema),
        )
    return job


def _nothing_to_send(ctx: Context, st: Tally, job: Job) -> None:
    from tierbot.review.budget import skip

    up = ctx.prompts.get(job.unit_id)
    why = "every file matches never_send" if up and up.withheld else "no text diff to send"
    st.units[job.unit_id] = skip(st.units[job.unit_id], f"not sent: {why}")


def from_cache(ctx: Context, st: Tally, job: Job) -> bool:
    """Answer `job` from the review cache (an unreadable entry: ask the model again)."""
    hit = ctx.cached(job.cache_key)
    if hit is None:
        return False
    if job.kind == "verify":
        from tierbot.review import verify

        if not verify.apply(ctx, st, hit):
            return False
    else:
        try:
            answer = parse_answer(hit, job.tier)
        except InvalidAnswer:
            return False
        accept(ctx, st, job, answer)
    st.cache_hits += 1
    st.attempted.add(job.unit_id)
    record(ctx, st, job, None, "cache_hit")
    return True


def request(
    ctx: Context, job: Job, wall: float, max_tokens: int, *, cache_manifest: bool
) -> claude.Request:
    """The request for a prepared `job`: the cached system prompt and the owner's settings, then
    the fenced manifest (a cache breakpoint when `cache_manifest`: its model has two or more
    calls in this review) and the unit, with this review's fence nonce filled in."""
    system = P.system_blocks(ctx.system_static(job), ctx.prefix)
    text = P.with_nonce(ctx.text(job), ctx.nonce)
    if job.kind == "verify":
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": [{"type": "text", "text": text}]}
        ]
    else:
        first = P.user_blocks(ctx.prefix, ctx.text(job), ctx.nonce, cache_manifest=cache_manifest)
        messages = [{"role": "user", "content": first}]
        if job.repair:
            messages.append({"role": "assistant", "content": job.previous or "(empty answer)"})
            messages.append({"role": "user", "content": P.repair_text(job.problem or "")})
    connect = claude.CONNECT_TIMEOUT_S
    if ctx.deadline is not None:
        connect = claude.DEADLINE_CONNECT_TIMEOUT_S
    return claude.Request(
        model=job.model,
        max_tokens=max_tokens,
        system=system,
        messages=messages,
        schema=_schema(job),
        effort=ctx.effort(job),
        wall_s=wall,
        connect_s=min(connect, wall),
    )


def _schema(job: Job) -> dict[str, Any]:
    return verdict_schema() if job.kind == "verify" else answer_schema()


def _unit_wall(ctx: Context) -> float:
    """One unit's calls (retries, repairs, escalations) all end within this."""
    override = claude.wall_override()
    if override is not None:
        return override
    top = max(ctx.config.max_tokens_for(t) for t in ("haiku", "sonnet", "opus"))
    return 2 * claude.read_timeout(top) + 2 * claude.RETRY_AFTER_CAP_S


def _timed_out(job: Job) -> claude.CallResult:
    return claude.CallResult(
        failure=claude.Failure(False, "the time limit for the unit was reached"),
    )


def _fit(ctx: Context, st: Tally, job: Job, can_wait: bool) -> Job | None:
    """`job` with its max_tokens (and budget reserved), or None when the budget cannot cover it."""
    top = top_tokens(ctx, job)
    floor_tokens = budget.floor(ctx.effort(job), top)
    if ctx.budget is None:
        return dataclasses.replace(job, max_tokens=top)
    text = ctx.system_text(job.tier) + ctx.text(job) + (job.previous or "") + (job.problem or "")
    # Leave room for the units still waiting, so one call cannot starve the others.
    others = 0.0
    for j in st.queue:
        if j is job or j.kind != "review":
            continue
        j_floor = budget.floor(ctx.effort(j), ctx.config.max_tokens_for(j.tier))
        if j.prompt is not None:
            others += budget.min_need(
                ctx.config, j.model, ctx.system_text(j.tier) + j.prompt.text, j_floor
            )
        else:
            fair = st.units[j.unit_id].input_tokens
            others += budget.min_need_estimated(ctx.config, j.model, fair, j_floor)
    fitted = budget.fit_call(
        ctx.config.price_for(job.model),
        top,
        floor_tokens,
        text,
        ctx.budget - st.usage.cost_usd - st.reserved,
        others,
        can_wait,
    )
    if fitted is None:
        return None
    max_tokens, reserved = fitted
    st.reserved += reserved
    return dataclasses.replace(job, max_tokens=max_tokens, reserved=reserved)


def top_tokens(ctx: Context, job: Job) -> int:
    """The most output tokens `job` may ask for: its tier's cap (lower after a cut-off)."""
    tier_cap = ctx.config.max_tokens_for(job.tier)
    return min(job.cap or tier_cap, tier_cap)


def _drop_at_deadline(st: Tally) -> None:
    for j in st.queue:
        if j.kind == "review":
            st.not_started += 1
            st.failed[j.unit_id] = "not started before the time limit"
        elif j.kind == "verify":
            from tierbot.review import verify

            verify.not_checked(st, "the time limit was reached", incomplete=True)
        else:
            st.notes.append(
                f"model: unit {j.unit_id}: escalation to {j.tier} not started before the time limit"
            )
    st.queue.clear()


def _drop_queue(st: Tally, reason: str) -> None:
    for j in st.queue:
        if j.kind == "review" and j.unit_id not in st.attempted:
            st.not_started += 1
            st.failed.setdefault(j.unit_id, reason)
    st.queue.clear()


def _counts(jobs: Iterable[Job]) -> dict[Tier, int]:
    out: dict[Tier, int] = {}
    for j in jobs:
        out[j.tier] = out.get(j.tier, 0) + 1
    return out


def _tiers_to_prime(jobs: list[Job], workers: int, ctx: Context) -> set[Tier]:
    """Tiers whose shared prefix is written once by a priming request before their units start.

    A cache entry exists only once a response has begun, so calls sent together all miss and
    all pay the 1.25x write.  A max_tokens=0 request writes it in one prompt-reading round trip;
    it is sent only when it saves real money.
    """
    out: set[Tier] = set()
    for tier, n in _counts(jobs).items():
        first_wave = min(n, workers)
        if n < 2 or first_wave < 2:
            continue
        p = ctx.config.price_for(ctx.model(tier))
        shared = estimate_tokens(ctx.system_text(tier))
        if shared < MIN_CACHE_TOKENS:
            continue
        saving = (first_wave - 1) * shared * (p.cache_write - p.cache_read) / 1e6
        if saving >= PRIME_MIN_SAVING_USD:
            out.add(tier)
    return out
