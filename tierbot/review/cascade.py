"""What each model call leads to: findings, one repair call, or an escalation one tier up.

A review in progress is a `Context` (fixed for the review) and a `Tally` (what it has found and
spent so far, and the jobs still waiting).  Everything here runs on the calling thread: only the
HTTP requests themselves go to the pool.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from tierbot.config import Config, Price
from tierbot.records import TIERS, Finding, Tier, Unit, tier_rank
from tierbot.review import prompt as P
from tierbot.review.answer import ANSWER_SCHEMA, Answer, InvalidAnswer, parse_answer
from tierbot.review.budget import skip
from tierbot.review.claude import CallResult, one_line
from tierbot.review.ledger import CallRow, Ledger
from tierbot.routing.pricing import call_cost


@dataclass(frozen=True)
class Job:
    unit_id: str
    tier: Tier
    model: str
    kind: Literal["review", "escalate"]
    prompt: P.UnitPrompt
    cache_key: str
    repair: bool = False  # a follow-up call after an answer that did not match the schema
    previous: str | None = None  # repair: the rejected answer
    problem: str | None = None  # repair: why it was rejected
    from_tier: Tier | None = None  # escalate: the tier that asked for it
    reason: str | None = None  # escalate: why
    max_tokens: int = 0  # set by the budget guard just before the call starts
    reserved: float = 0.0  # budget held for the call until it finishes
    primer: bool = False  # the first call of its model: the others wait for its cache write


@dataclass
class Tally:
    units: dict[str, Unit]
    queue: deque[Job] = field(default_factory=deque)  # waiting to start, next first
    notes: list[str] = field(default_factory=list)
    findings: dict[str, tuple[Finding, ...]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # unit id -> reason
    attempted: set[str] = field(default_factory=set)
    fatal: str | None = None
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost: float = 0.0
    all_opus: float = 0.0
    cache_hits: int = 0
    reserved: float = 0.0
    not_started: int = 0


@dataclass(frozen=True)
class Context:
    config: Config
    prefix: P.Prefix
    prompts: Mapping[str, P.UnitPrompt]
    ledger: Ledger | None  # None: costs not recorded and no review cache
    use_cache: bool
    budget: float | None
    max_tier: Tier | None
    deadline: float | None
    repo_label: str
    range_label: str
    opus_price: Price | None  # for the all-Opus counterfactual
    nonce: str = field(default_factory=P.new_nonce)  # the untrusted-data fence tag of this review

    def system_text(self, tier: Tier) -> str:
        return P.system_static(tier) + self.prefix.text

    def model(self, tier: Tier) -> str:
        model = self.config.model_for(tier)
        if model is None:
            from tierbot.errors import BadInput

            raise BadInput(f"config: models: no model for tier {tier}")
        return model

    def job(self, uid: str, tier: Tier, prompt: P.UnitPrompt) -> Job:
        model = self.model(tier)
        return Job(uid, tier, model, "review", prompt, cache_key(tier, model, prompt, self.config))

    def cached(self, key: str) -> str | None:
        if not self.use_cache or self.ledger is None:
            return None
        return self.ledger.cache_get(key)

    def costs(self, model: str, res: CallResult) -> tuple[float, float]:
        """What the call cost, and what it would have cost on Opus."""
        args = (res.input_tokens, res.output_tokens, res.cache_write_tokens, res.cache_read_tokens)
        cost = call_cost(self.config.price_for(model), *args)
        opus = call_cost(self.opus_price, *args) if self.opus_price is not None else cost
        return cost, opus


def cache_key(tier: Tier, model: str, prompt: P.UnitPrompt, config: Config) -> str:
    """Unit content + model + prompt version + the config that shapes the answer."""
    h = hashlib.sha256()
    for part in (
        P.prompt_version(),
        tier,
        model,
        P.system_static(tier),
        config.instructions,
        prompt.text,
        json.dumps(ANSWER_SCHEMA, sort_keys=True),
    ):
        h.update(part.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()


def handle(ctx: Context, st: Tally, job: Job, res: CallResult) -> None:
    """A finished call: count what it cost, then accept, repair, or fail the unit."""
    st.reserved -= job.reserved
    if res.answered:
        _count(ctx, st, job, res)
    if res.failure is not None:
        if res.failure.fatal:
            st.fatal = st.fatal or res.failure.message
        fail(st, job, res.failure.message)
        return
    stopped = _stopped(job, res)
    if stopped is not None:
        outcome, reason = stopped
        record(ctx, st, job, res, outcome)
        fail(st, job, reason)
        return
    try:
        answer = parse_answer(res.text or "", job.tier)
    except InvalidAnswer as e:
        _invalid(ctx, st, job, res, str(e))
        return
    record(ctx, st, job, res, "repaired" if job.repair else "ok")
    if job.repair:
        st.notes.append(
            f"model: unit {job.unit_id}: the answer did not match the schema; "
            "repaired with one follow-up call"
        )
    _cache_put(ctx, st, job, answer)
    accept(ctx, st, job, answer)


def accept(ctx: Context, st: Tally, job: Job, answer: Answer) -> None:
    """A valid answer: keep its findings; maybe queue an escalation one tier up."""
    st.findings[job.unit_id] = answer.findings
    st.failed.pop(job.unit_id, None)
    if job.kind == "escalate" and job.from_tier is not None:
        u = st.units[job.unit_id]
        st.units[job.unit_id] = dataclasses.replace(
            u,
            tier=job.tier,
            model=job.model,
            escalated_from=u.escalated_from or job.from_tier,
            reasons=(*u.reasons, f"escalated from {job.from_tier}: {job.reason}"),
        )
        st.notes.append(
            f"model: unit {job.unit_id} escalated {job.from_tier} -> {job.tier}: {job.reason}"
        )
    if answer.escalate and answer.escalate_reason and ctx.config.escalation:
        _escalate(ctx, st, job, answer.escalate_reason)


def fail(st: Tally, job: Job, reason: str) -> None:
    if job.kind == "escalate":
        # The cheaper review still stands.
        st.notes.append(f"model: unit {job.unit_id} not escalated to {job.tier}: {reason}")
        return
    st.failed[job.unit_id] = reason
    st.notes.append(f"model: unit {job.unit_id} ({job.tier}) failed: {reason}")


def over_budget(st: Tally, job: Job, budget: float) -> None:
    """The guard refused `job` with nothing else running: say what is lost."""
    left = max(0.0, budget - st.cost)
    if job.repair:
        if job.kind == "review":
            st.failed[job.unit_id] = "no budget left for the repair call"
        st.notes.append(
            f"model: unit {job.unit_id}: invalid answer dropped; no budget left to repair it"
        )
    elif job.kind == "review":
        st.units[job.unit_id] = skip(
            st.units[job.unit_id], f"skipped: the budget (${budget:.2f}) was spent"
        )
        st.notes.append(
            f"model: unit {job.unit_id} skipped: ${left:.4f} left of the ${budget:.2f} "
            "budget cannot cover the call"
        )
    else:
        st.notes.append(
            f"model: unit {job.unit_id} not escalated to {job.tier}: ${left:.4f} left "
            f"of the ${budget:.2f} budget"
        )


def record(ctx: Context, st: Tally, job: Job, res: CallResult | None, outcome: str) -> None:
    """One ledger row (`res` None: a review-cache hit); a broken ledger only costs a note."""
    if ctx.ledger is None:
        return
    labels = (ctx.repo_label, ctx.range_label, job.unit_id, job.tier, job.model)
    try:
        if res is None:
            ctx.ledger.record(CallRow(*labels, cache_hit=True, outcome=outcome))
            return
        cost, opus = ctx.costs(job.model, res)
        ctx.ledger.record(
            CallRow(
                *labels,
                res.input_tokens,
                res.output_tokens,
                res.cache_write_tokens,
                res.cache_read_tokens,
                cost,
                opus,
                outcome=outcome,
            )
        )
    except Exception as e:
        st.notes.append(f"model: could not write the ledger ({one_line(str(e), 120)})")


def _count(ctx: Context, st: Tally, job: Job, res: CallResult) -> None:
    cost, opus = ctx.costs(job.model, res)
    st.calls += 1
    st.input_tokens += res.input_tokens
    st.output_tokens += res.output_tokens
    st.cache_write_tokens += res.cache_write_tokens
    st.cache_read_tokens += res.cache_read_tokens
    st.cost += cost
    st.all_opus += opus


def _stopped(job: Job, res: CallResult) -> tuple[str, str] | None:
    """A stop reason that leaves no usable answer: (ledger outcome, why the unit failed)."""
    if res.stop_reason == "refusal":
        return "refusal", "the model declined to review it (stop_reason refusal)"
    if res.stop_reason == "max_tokens":
        return "max_tokens", f"the answer was cut off at max_tokens ({job.max_tokens})"
    if res.stop_reason == "model_context_window_exceeded":
        return "context_window", "the unit does not fit the model's context window"
    return None


def _invalid(ctx: Context, st: Tally, job: Job, res: CallResult, problem: str) -> None:
    """An answer off the schema gets one repair call (next in the queue), then the unit fails."""
    record(ctx, st, job, res, "invalid")
    if job.repair:
        fail(st, job, f"{problem}; dropped after one repair attempt")
        return
    st.queue.appendleft(
        dataclasses.replace(
            job, repair=True, previous=res.text, problem=problem, max_tokens=0, reserved=0.0
        )
    )


def _cache_put(ctx: Context, st: Tally, job: Job, answer: Answer) -> None:
    if ctx.ledger is None:
        return
    try:
        ctx.ledger.cache_put(job.cache_key, job.model, P.prompt_version(), answer.raw)
    except Exception as e:
        st.notes.append(f"model: could not write the review cache ({one_line(str(e))})")


def _escalate(ctx: Context, st: Tally, job: Job, reason: str) -> None:
    """Queue the unit one tier up, first in line, unless the tier cap forbids it."""
    i = tier_rank(job.tier)
    up = TIERS[i + 1] if i + 1 < len(TIERS) else None
    cap = ctx.max_tier or "opus"
    if up is None or tier_rank(up) > tier_rank(cap):
        if job.tier != "opus":
            st.notes.append(
                f"model: unit {job.unit_id} asked to escalate beyond {job.tier} "
                f"(max tier {cap}): {reason}"
            )
        return
    model = ctx.model(up)
    st.queue.appendleft(
        Job(
            job.unit_id,
            up,
            model,
            "escalate",
            job.prompt,
            cache_key(up, model, job.prompt, ctx.config),
            from_tier=job.tier,
            reason=one_line(reason, 200),
        )
    )
