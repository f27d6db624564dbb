"""Running a review's jobs: a bounded thread pool, started in queue order as slots free up.

The SDK's sync client is thread-safe and the work is all waiting on HTTP, so threads are enough.
The decisions stay on the calling thread: what may start (review cache, deadline, budget, cache
priming) and what each finished call leads to (`cascade.handle`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from tierbot.review import budget, claude
from tierbot.review import prompt as P
from tierbot.review.answer import Answer, InvalidAnswer, parse_answer
from tierbot.review.cascade import Context, Job, Tally, accept, handle, over_budget, record
from tierbot.routing.pricing import estimate_tokens

# Run one unit of a model alone first (the rest then read its cached prefix) when that saves
# at least this much.
PRIME_MIN_SAVING_USD = 0.01


def run(ctx: Context, st: Tally) -> None:
    """Run every queued job, and the repairs and escalations they add, until none is left."""
    calls = _Calls(ctx, st)
    interrupted = False
    try:
        while st.queue or calls.running:
            calls.start_ready()
            if st.fatal is not None and st.queue:
                _drop_queue(st, "not started: " + st.fatal)
            if calls.running:
                calls.finish_some()
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        calls.close(interrupted)


class _Calls:
    """The calls in flight, and the models whose other units wait for a cache-priming call."""

    def __init__(self, ctx: Context, st: Tally) -> None:
        self.ctx, self.st = ctx, st
        self.workers = max(1, ctx.config.concurrency or 1)
        self.primers = _models_to_prime(st.queue, self.workers, ctx)
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="tierbot-model")
        self.running: dict[Future[claude.CallResult], Job] = {}
        self.client: Any = None  # made with the first call: a run of cache hits needs none
        self.url = claude.base_url()
        self.timeout = claude.default_timeout()
        self.primed: set[str] = set()
        self.priming: set[str] = set()

    def start_ready(self) -> None:
        """Start queued jobs while there are free slots and nothing fatal happened."""
        st = self.st
        while st.queue and len(self.running) < self.workers and st.fatal is None:
            idx = self._next_ready()
            if idx is None:
                break
            job = st.queue[idx]
            answer = None if job.repair else _from_cache(self.ctx, job)
            if answer is not None:  # (an unreadable entry: ask the model again)
                del st.queue[idx]
                st.cache_hits += 1
                st.attempted.add(job.unit_id)
                record(self.ctx, st, job, None, "cache_hit")
                accept(self.ctx, st, job, answer)
                continue
            if self.ctx.deadline is not None and time.monotonic() >= self.ctx.deadline:
                _drop_at_deadline(st)
                break
            fitted = _fit(self.ctx, st, job, can_wait=bool(self.running))
            if fitted is None:
                if self.running:
                    break  # wait: finished calls release their reservations
                del st.queue[idx]
                over_budget(st, job, self.ctx.budget or 0.0)
                continue
            del st.queue[idx]
            if not self._submit(fitted):
                break

    def finish_some(self) -> None:
        done, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
        for fut in done:
            job = self.running.pop(fut)
            if job.primer:
                self.priming.discard(job.model)
            handle(self.ctx, self.st, job, fut.result())

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
        """The first job whose model is not waiting for its cache-priming call."""
        return next(
            (i for i, j in enumerate(self.st.queue) if j.repair or j.model not in self.priming),
            None,
        )

    def _submit(self, job: Job) -> bool:
        """Send `job` to the pool; False (job back in the queue) when no client can be made."""
        st, deadline = self.st, self.ctx.deadline
        if self.client is None:
            try:
                self.client = claude.make_client(deadline)
            except Exception as e:
                st.fatal = f"cannot set up the Anthropic client: {claude.one_line(str(e))}"
                st.reserved -= job.reserved
                st.queue.appendleft(job)
                return False
        timeout = self.timeout
        if deadline is not None:
            timeout = max(1.0, min(timeout, deadline - time.monotonic()))
        if job.model in self.primers and job.model not in self.primed:
            # Hold this model's other units until this call has written the cache.
            self.priming.add(job.model)
            self.primed.add(job.model)
            job = dataclasses.replace(job, primer=True)
        st.attempted.add(job.unit_id)
        system = P.system_blocks(job.tier, self.ctx.prefix)
        fut = self.pool.submit(
            claude.call,
            self.client,
            job.model,
            job.max_tokens,
            system,
            _messages(self.ctx, job),
            timeout,
            self.url,
        )
        self.running[fut] = job
        return True


def _from_cache(ctx: Context, job: Job) -> Answer | None:
    hit = ctx.cached(job.cache_key)
    if hit is None:
        return None
    try:
        return parse_answer(hit, job.tier)
    except InvalidAnswer:
        return None


def _fit(ctx: Context, st: Tally, job: Job, can_wait: bool) -> Job | None:
    """`job` with its max_tokens (and budget reserved), or None when the budget cannot cover it."""
    if ctx.budget is None:
        return dataclasses.replace(job, max_tokens=budget.ceiling(job.tier))
    text = ctx.system_text(job.tier) + job.prompt.text + (job.previous or "") + (job.problem or "")
    # Leave room for the units still waiting, so one call cannot starve the others.
    others = sum(
        budget.min_need(ctx.config, j.model, ctx.system_text(j.tier) + j.prompt.text)
        for j in st.queue
        if j is not job and j.kind == "review"
    )
    fitted = budget.fit_call(
        ctx.config.price_for(job.model),
        job.tier,
        text,
        ctx.budget - st.cost - st.reserved,
        others,
        can_wait,
    )
    if fitted is None:
        return None
    max_tokens, reserved = fitted
    st.reserved += reserved
    return dataclasses.replace(job, max_tokens=max_tokens, reserved=reserved)


def _messages(ctx: Context, job: Job) -> list[dict[str, Any]]:
    first = P.user_blocks(ctx.prefix, job.prompt.text, ctx.nonce)
    messages: list[dict[str, Any]] = [{"role": "user", "content": first}]
    if job.repair:
        messages.append({"role": "assistant", "content": job.previous or "(empty answer)"})
        messages.append({"role": "user", "content": P.repair_text(job.problem or "")})
    return messages


def _drop_at_deadline(st: Tally) -> None:
    for j in st.queue:
        if j.kind == "review":
            st.not_started += 1
            st.failed[j.unit_id] = "not started before the time limit"
        else:
            st.notes.append(
                f"model: unit {j.unit_id}: escalation to {j.tier} not started before the time limit"
            )
    st.queue.clear()


def _drop_queue(st: Tally, reason: str) -> None:
    for j in st.queue:
        if j.kind == "review":
            st.not_started += 1
            st.failed.setdefault(j.unit_id, reason)
    st.queue.clear()


def _models_to_prime(jobs: Iterable[Job], workers: int, ctx: Context) -> set[str]:
    """Models whose first call should run alone so the others read the prefix from the cache.

    A cache entry exists only once the first response has begun; calls sent together all miss and
    all pay the cache-write price.  Priming costs one extra round trip, so it is done only when it
    saves real money (never under a hook's time limit).
    """
    if ctx.deadline is not None:
        return set()
    groups: dict[str, list[Job]] = {}
    for j in jobs:
        groups.setdefault(j.model, []).append(j)
    out = set()
    for model, group in groups.items():
        first_wave = min(len(group), workers)
        if len(group) < 2 or first_wave < 2:
            continue
        p = ctx.config.price_for(model)
        shared = estimate_tokens(ctx.system_text(group[0].tier))
        saving = (first_wave - 1) * shared * (p.cache_write - p.cache_read) / 1e6
        if saving >= PRIME_MIN_SAVING_USD:
            out.add(model)
    return out
