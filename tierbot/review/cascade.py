"""What each model call leads to: findings, one repair, one retry, or the unit one tier up.

A review in progress is a `Context` (fixed for the review) and a `Tally` (what it has found and
spent so far, and the jobs still waiting).  Everything here runs on the calling thread: only the
HTTP requests themselves go to the pool.

The staff-engineer rules: a refusal sends the unit once to the next tier; an answer cut off at
`max_tokens` gets one retry (lower effort, higher cap within the budget), then the next tier; a
tier that escalates hands its reason and findings up, and the result keeps both (the higher tier's
finding wins where both report the same lines).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tierbot.config import EFFORTS, Config
from tierbot.records import TIERS, Change, Finding, Tier, Unit, Usage, tier_rank
from tierbot.review import prompt as P
from tierbot.review.answer import Answer, InvalidAnswer, parse_answer
from tierbot.review.budget import skip
from tierbot.review.claude import CallResult, one_line
from tierbot.review.ledger import CallRow, Ledger
from tierbot.routing.pricing import call_cost
from tierbot.words import plural

JobKind = Literal["review", "escalate", "verify"]


@dataclass(frozen=True)
class Job:
    unit_id: str
    tier: Tier
    model: str
    kind: JobKind
    prompt: P.UnitPrompt | None = None  # built when the job starts
    cache_key: str = ""  # set with the prompt
    repair: bool = False  # a follow-up call after an answer that did not match the schema
    previous: str | None = None  # repair: the rejected answer
    problem: str | None = None  # repair: why it was rejected
    from_tier: Tier | None = None  # escalate: the tier that asked for it (or refused)
    reason: str | None = None  # escalate: why
    evidence: tuple[Finding, ...] = ()  # escalate: the cheaper tier's findings, handed up
    effort: str | None = None  # None: the tier's configured effort
    cap: int = 0  # the most output tokens to ask for (0: the tier's max_tokens)
    retried: bool = False  # the one max_tokens retry is used
    after_refusal: bool = False  # a second refusal ends the unit
    max_tokens: int = 0  # set by the budget guard just before the call starts
    reserved: float = 0.0  # budget held for the call until it finishes
    batch_request: str = ""  # "batch id/custom_id" of the batch request that answered it


@dataclass
class Tally:
    units: dict[str, Unit]
    queue: deque[Job] = field(default_factory=deque)  # waiting to start, next first
    notes: list[str] = field(default_factory=list)
    findings: dict[str, tuple[Finding, ...]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # unit id -> reason
    attempted: set[str] = field(default_factory=set)
    started: dict[str, float] = field(default_factory=dict)  # unit id -> its first call
    fatal: str | None = None
    usage: Usage = field(default_factory=Usage)  # what the calls so far used and cost
    cache_hits: int = 0
    reserved: float = 0.0
    not_started: int = 0
    redactions: int = 0
    # verification: the findings Opus must check, as (unit id, finding)
    to_verify: list[tuple[str, Finding]] = field(default_factory=list)
    verify_problem: str | None = None  # why some findings stayed unverified (status partial)


def priced(
    config: Config, model: str, res: CallResult, factor: float = 1.0, *, verify: bool = False
) -> Usage:
    """One call's Usage: its tokens, its cost (times `factor`: 0.5 for the Batch API) and what the
    same tokens would have cost on Opus."""
    args = (res.input_tokens, res.output_tokens, res.cache_write_tokens, res.cache_read_tokens)
    cost = call_cost(config.price_for(model), *args) * factor
    opus_model = config.model_for("opus")
    opus = call_cost(config.price_for(opus_model), *args) * factor if opus_model else cost
    return Usage(
        calls=1,
        input_tokens=res.input_tokens,
        output_tokens=res.output_tokens,
        cache_read_tokens=res.cache_read_tokens,
        cache_write_tokens=res.cache_write_tokens,
        cost_usd=cost,
        all_opus_cost_usd=opus,
        verify_cost_usd=cost if verify else 0.0,
    )


@dataclass(frozen=True)
class Context:
    config: Config
    change: Change
    rule_findings: Sequence[Finding]
    prefix: P.Prefix
    ledger: Ledger | None  # None: costs not recorded and no review cache
    use_cache: bool
    budget: float | None
    max_tier: Tier | None
    deadline: float | None
    repo_label: str
    range_label: str
    fail_on: str = "none"  # what blocks: selects the findings to verify
    probe: Any = None  # claude.Probe: is the API reachable at all?
    prompts: dict[str, P.UnitPrompt] = field(default_factory=dict)  # built as jobs start
    nonce: str = field(default_factory=P.new_nonce)  # the untrusted-data fence tag of this review
    price_factor: float = 1.0  # 0.5 in a Message Batch: half of every price
    command: str = ""  # who spends (review | hook | pr | audit), for the ledger

    def system_static(self, job: Job) -> str:
        return P.verify_static() if job.kind == "verify" else P.system_static(job.tier)

    def system_text(self, tier: Tier) -> str:
        return P.system_static(tier) + self.prefix.text

    def model(self, tier: Tier) -> str:
        model = self.config.model_for(tier)
        if model is None:
            from tierbot.errors import BadInput

            raise BadInput(f"config: models: no model for tier {tier}")
        return model

    def job(self, uid: str, tier: Tier) -> Job:
        return Job(uid, tier, self.model(tier), "review")

    def effort(self, job: Job) -> str | None:
        return job.effort or self.config.effort_for(job.tier)

    def unit_prompt(self, st: Tally, uid: str) -> P.UnitPrompt | None:
        """The unit's prompt, built the first time one of its jobs starts; None: nothing to send."""
        up = self.prompts.get(uid)
        if up is None:
            up = P.build_unit(self.change, st.units[uid], self.rule_findings, self.config)
            self.prompts[uid] = up
            st.redactions += up.redactions
            for path in up.withheld:
                st.notes.append(
                    f"model: withheld {path} from the model (may hold secrets: never_send)"
                )
        return None if up.empty else up

    def text(self, job: Job) -> str:
        """The job's own user text (the unit, and what a cheaper tier handed up)."""
        assert job.prompt is not None
        if job.kind != "escalate" or job.from_tier is None:
            return job.prompt.text
        return (
            job.prompt.text + "\n" + P.evidence_text(job.from_tier, job.reason or "", job.evidence)
        )

    def cached(self, key: str) -> str | None:
        if not self.use_cache or self.ledger is None:
            return None
        return self.ledger.cache_get(key)

    def usage_of(self, model: str, res: CallResult, *, verify: bool = False) -> Usage:
        """One call's usage: its tokens, what it cost and what it would have cost on Opus."""
        return priced(self.config, model, res, self.price_factor, verify=verify)


def cache_key(job: Job, text: str, config: Config, static: str, schema: dict[str, Any]) -> str:
    """Request content + model + effort + prompt version + the config that shapes the answer."""
    h = hashlib.sha256()
    for part in (
        P.prompt_version(),
        job.kind if job.kind == "verify" else "review",
        job.tier,
        job.model,
        job.effort or config.effort_for(job.tier) or "",
        static,
        config.instructions,
        text,
        json.dumps(schema, sort_keys=True),
    ):
        h.update(part.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()


def handle(ctx: Context, st: Tally, job: Job, res: CallResult) -> None:
    """A finished call: count what it cost, then accept, repair, retry, escalate or fail."""
    st.reserved -= job.reserved
    if res.answered:
        _count(ctx, st, job, res)
    if res.failure is not None:
        if res.answered:
            record(ctx, st, job, res, "failed")
        if res.failure.fatal:
            st.fatal = st.fatal or res.failure.message
        fail(st, job, res.failure.message)
        return
    if res.stop_reason == "refusal":
        record(ctx, st, job, res, "refusal")
        _refused(ctx, st, job, res.stop_details)
        return
    if res.stop_reason == "max_tokens":
        record(ctx, st, job, res, "max_tokens")
        _cut_off(ctx, st, job)
        return
    if res.stop_reason == "model_context_window_exceeded":
        record(ctx, st, job, res, "context_window")
        fail(st, job, "the unit does not fit the model's context window")
        return
    if job.kind == "verify":
        from tierbot.review import verify

        verify.answered(ctx, st, job, res)
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
    cache_put(ctx, st, job, answer.raw)
    accept(ctx, st, job, answer)


def accept(ctx: Context, st: Tally, job: Job, answer: Answer) -> None:
    """A valid answer: keep its findings (with what a cheaper tier handed up); maybe go up."""
    found = answer.findings
    if job.evidence:
        found, folded = fold(found, job.evidence)
        if folded:
            st.notes.append(
                f"model: unit {job.unit_id}: {plural(folded, f'{job.from_tier} finding')}"
                f" folded into {job.tier}'s on the same lines"
            )
    st.findings[job.unit_id] = found
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
        escalate(ctx, st, job, one_line(answer.escalate_reason, 200), found)


def fold(higher: Sequence[Finding], cheaper: Sequence[Finding]) -> tuple[tuple[Finding, ...], int]:
    """Both tiers' findings; a cheaper one on lines the higher tier also reported is dropped."""

    def span(f: Finding) -> tuple[int, int] | None:
        if f.line is None:
            return None
        return f.line, max(f.line, f.end_line or f.line)

    kept = list(higher)
    folded = 0
    for c in cheaper:
        cs = span(c)
        same = any(
            h.path == c.path
            and (
                (cs is None and span(h) is None and h.category == c.category)
                or (
                    cs is not None
                    and (hs := span(h)) is not None
                    and hs[0] <= cs[1]
                    and cs[0] <= hs[1]
                )
            )
            for h in higher
        )
        if same:
            folded += 1
        else:
            kept.append(c)
    return tuple(kept), folded


def fail(st: Tally, job: Job, reason: str) -> None:
    if job.kind == "verify":
        from tierbot.review import verify

        verify.not_checked(st, reason, incomplete=True)
        return
    if job.kind == "escalate":
        # The cheaper review still stands (unless it was refused: then the unit already failed).
        st.notes.append(f"model: unit {job.unit_id} not escalated to {job.tier}: {reason}")
        return
    st.failed[job.unit_id] = reason
    if st.fatal is None or reason != st.fatal:
        st.notes.append(f"model: unit {job.unit_id} ({job.tier}) failed: {reason}")


def over_budget(st: Tally, job: Job, budget: float, spent: float | None = None) -> None:
    """The guard refused `job` with nothing else running: say what is lost (`spent`: of the
    budget, when it covers more than this review)."""
    left = max(0.0, budget - (st.usage.cost_usd if spent is None else spent))
    if job.kind == "verify":
        from tierbot.review import verify

        verify.not_checked(st, f"${left:.4f} left of the ${budget:.2f} budget", incomplete=False)
    elif job.repair:
        if job.kind == "review":
            st.failed[job.unit_id] = "no budget left for the repair call"
        st.notes.append(
            f"model: unit {job.unit_id}: invalid answer dropped; no budget left to repair it"
        )
    elif job.kind == "review" and job.unit_id not in st.attempted:
        st.units[job.unit_id] = skip(
            st.units[job.unit_id], f"skipped: the budget (${budget:.2f}) was spent"
        )
        st.notes.append(
            f"model: unit {job.unit_id} skipped: ${left:.4f} left of the ${budget:.2f} "
            "budget cannot cover the call"
        )
    elif job.kind == "review":
        st.failed.setdefault(job.unit_id, "no budget left to finish the review")
        st.notes.append(
            f"model: unit {job.unit_id}: no budget left for another call (${left:.4f} left)"
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
    row = CallRow(
        ctx.repo_label,
        ctx.range_label,
        job.unit_id,
        job.tier,
        job.model,
        cache_hit=res is None,
        outcome=outcome,
        command=ctx.command,
        batch=job.batch_request.partition("/")[0],
        request=job.batch_request or None,
    )
    try:
        if res is not None:
            row = row.with_usage(ctx.usage_of(job.model, res))
        ctx.ledger.record(row)
    except Exception as e:
        st.notes.append(f"model: could not write the ledger ({one_line(str(e), 120)})")


def count(ctx: Context, st: Tally, model: str, res: CallResult, *, verify: bool = False) -> None:
    if res.usage_note:
        st.notes.append(f"model: {model}: {res.usage_note}")
    st.usage += ctx.usage_of(model, res, verify=verify)


def _count(ctx: Context, st: Tally, job: Job, res: CallResult) -> None:
    count(ctx, st, job.model, res, verify=job.kind == "verify")


def cache_put(ctx: Context, st: Tally, job: Job, raw: str) -> None:
    if ctx.ledger is None or not job.cache_key:
        return
    try:
        ctx.ledger.cache_put(job.cache_key, job.model, P.prompt_version(), raw)
    except Exception as e:
        st.notes.append(f"model: could not write the review cache ({one_line(str(e))})")


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


def _refused(ctx: Context, st: Tally, job: Job, details: str | None) -> None:
    """The classifiers ended the turn: resending would refuse again, so the next tier tries once."""
    why = f"{job.tier} declined to review it (stop_reason refusal"
    why += f"; stop_details: {details})" if details else ")"
    if job.kind == "review":
        st.failed[job.unit_id] = why
    if job.after_refusal or not escalate(
        ctx, st, job, why, job.evidence, after_refusal=True, quiet=True
    ):
        if job.kind == "review":
            st.notes.append(f"model: unit {job.unit_id}: {why}")
        else:
            fail(st, job, why)


def _cut_off(ctx: Context, st: Tally, job: Job) -> None:
    """Cut off at max_tokens: one retry thinking less or with more room, then the next tier."""
    top = ctx.config.max_tokens_for(job.tier)
    effort = ctx.effort(job)
    lower = _lower(effort)
    bigger = min(top, max(job.max_tokens * 2, job.cap)) if job.max_tokens < top else 0
    why = f"the answer was cut off at max_tokens ({job.max_tokens})"
    if not job.retried and (lower is not None or bigger > job.max_tokens):
        retry = dataclasses.replace(
            job,
            effort=lower or effort,
            cap=bigger or job.cap,
            retried=True,
            max_tokens=0,
            reserved=0.0,
            cache_key="",
        )
        changes = []
        if lower is not None:
            changes.append(f"effort {effort} -> {lower}")
        if bigger > job.max_tokens:
            changes.append(f"up to {bigger} tokens")
        st.notes.append(f"model: unit {job.unit_id}: {why}; retried with {', '.join(changes)}")
        st.queue.appendleft(retry)
        return
    if job.kind == "review":
        st.failed[job.unit_id] = why
    if not escalate(ctx, st, job, why, job.evidence, quiet=True):
        if job.kind == "review":
            st.notes.append(f"model: unit {job.unit_id} ({job.tier}) failed: {why}")
        else:
            fail(st, job, why)


def _lower(effort: str | None) -> str | None:
    if effort not in EFFORTS or effort == EFFORTS[0]:
        return None
    return EFFORTS[EFFORTS.index(effort) - 1]


def escalate(
    ctx: Context,
    st: Tally,
    job: Job,
    reason: str,
    evidence: Sequence[Finding],
    *,
    after_refusal: bool = False,
    quiet: bool = False,
) -> bool:
    """Queue the unit one tier up, first in line, with what this tier found; False when the
    tier cap (or the top tier) forbids it."""
    i = tier_rank(job.tier)
    up = TIERS[i + 1] if i + 1 < len(TIERS) else None
    cap = ctx.max_tier or "opus"
    if up is None or tier_rank(up) > tier_rank(cap):
        if job.tier != "opus" and not quiet:
            st.notes.append(
                f"model: unit {job.unit_id} asked to escalate beyond {job.tier} "
                f"(max tier {cap}): {reason}"
            )
        return False
    st.queue.appendleft(
        Job(
            job.unit_id,
            up,
            ctx.model(up),
            "escalate",
            prompt=job.prompt,
            from_tier=job.tier,
            reason=reason,
            evidence=tuple(evidence),
            after_refusal=after_refusal,
        )
    )
    return True
