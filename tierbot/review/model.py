"""Claude reviews of routed units: the one entry point, `review`, and the outcome it returns.

A review goes in phases: cap the tiers; fit the plan into the budget (from offline estimates);
run the jobs (`schedule.py`: each unit's prompt is built when its job starts), where each answer
becomes findings, a repair, a retry, or an escalation one tier up with the evidence
(`cascade.py`); then Opus verifies what a cheaper tier says would block (`verify.py`); then sum
up.  The answer schema is in `answer.py`, the SDK call in `claude.py` and the budget arithmetic in
`budget.py`.  `anthropic` and `pydantic` are imported only when a review really runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from tierbot.config import Config
from tierbot.records import Analysis, Change, Finding, Route, Tier, Unit, Usage, tier_rank
from tierbot.review import budget, schedule, verify
from tierbot.review import prompt as P
from tierbot.review.answer import Answer, InvalidAnswer, answer_schema, parse_answer
from tierbot.review.cascade import Context, Tally, cache_key
from tierbot.review.claude import MAX_RETRIES, has_credentials, one_line
from tierbot.review.ledger import Ledger
from tierbot.review.schedule import PRIME_MIN_SAVING_USD
from tierbot.routing.pricing import DEFAULT_CALIBRATION, Calibration, call_cost
from tierbot.words import plural

__all__ = [
    "MAX_RETRIES",
    "PRIME_MIN_SAVING_USD",
    "Answer",
    "InvalidAnswer",
    "ModelOutcome",
    "answer_schema",
    "cache_key",
    "has_credentials",
    "parse_answer",
    "review",
]

CallStatus = Literal["complete", "partial", "failed"]


class ModelOutcome(NamedTuple):
    findings: tuple[Finding, ...]  # raw model findings, source = tier; anchoring comes later
    usage: Usage
    units: tuple[Unit, ...]  # the route's units with the tier actually used
    status: CallStatus
    notes: tuple[str, ...]
    error: str | None


def review(
    change: Change,
    analysis: Analysis,
    route: Route,
    rule_findings: Sequence[Finding],
    config: Config,
    *,
    budget_usd: float | None,
    use_cache: bool,
    max_tier: Tier | None = None,
    deadline: float | None = None,
    repo_label: str = "",
    range_label: str = "",
    fail_on: str = "none",
    intent: str = "",
    calibration: Calibration = DEFAULT_CALIBRATION,
    command: str = "",
) -> ModelOutcome:
    """Review every non-skip unit of `route` with its tier's model; never raises for API trouble.

    `fail_on` is the level at which the caller blocks: cheaper tiers' findings at or above it
    are verified by Opus first.  `intent` is the author's stated purpose (fenced, never trusted).
    `calibration` (output tokens per tier, from the ledger) prices the budget plan.
    """
    st = Tally(units={u.id: u for u in route.units})
    order = [u.id for u in route.units]
    if max_tier is not None:
        _cap_tiers(st, order, config, max_tier)
    live = [uid for uid in order if st.units[uid].tier != "skip"]
    probe = None
    if live:
        from tierbot.review import claude

        claude.import_sdk_in_background()  # 1.5-4 s of imports, overlapped with the first prompt
        timeout = (
            claude.CONNECT_TIMEOUT_S if deadline is None else claude.DEADLINE_CONNECT_TIMEOUT_S
        )
        probe = claude.Probe(claude.base_url(), timeout)
    ctx = context(
        st,
        change,
        analysis,
        route,
        rule_findings,
        config,
        ledger=_open_ledger(st),
        use_cache=use_cache,
        budget=budget_usd,
        max_tier=max_tier,
        deadline=deadline,
        repo_label=repo_label,
        range_label=range_label,
        fail_on=fail_on,
        probe=probe,
        intent=intent,
        command=command,
    )
    try:
        if budget_usd is not None:
            _plan_budget(ctx, st, live, budget_usd, calibration)
        st.queue.extend(
            ctx.job(uid, st.units[uid].tier) for uid in live if st.units[uid].tier != "skip"
        )
        if st.queue:
            schedule.run(ctx, st, then=lambda: _queue_verification(ctx, st))
    finally:
        if ctx.ledger is not None:
            with contextlib.suppress(Exception):
                ctx.ledger.close()
    return outcome(st, order)


def context(
    st: Tally,
    change: Change,
    analysis: Analysis,
    route: Route,
    rule_findings: Sequence[Finding],
    config: Config,
    *,
    ledger: Ledger | None,
    intent: str,
    **settings: Any,
) -> Context:
    """A review's fixed part: the shared prefix (redacted, counted in `st`) and its settings
    (the Context fields: use_cache, budget, max_tier, deadline, labels, fail_on, ...)."""
    ctx = Context(
        config=config,
        change=change,
        rule_findings=rule_findings,
        prefix=P.build_prefix(change, analysis, route, config, intent),
        ledger=ledger,
        **settings,
    )
    st.redactions += ctx.prefix.redactions
    return ctx


def _queue_verification(ctx: Context, st: Tally) -> bool:
    job = verify.plan(ctx, st)
    if job is None:
        return False
    st.queue.append(job)
    return True


def _cap_tiers(st: Tally, order: Sequence[str], config: Config, max_tier: Tier) -> None:
    """The hook's tier cap (sonnet): no unit goes above it."""
    for uid in order:
        u = st.units[uid]
        if u.tier != "skip" and tier_rank(u.tier) > tier_rank(max_tier):
            st.units[uid] = budget.retier(u, max_tier, config, f"capped at {max_tier} (max tier)")


def _open_ledger(st: Tally) -> Ledger | None:
    """The cost ledger and review cache; a broken cache directory must not stop the review."""
    try:
        ledger = Ledger.open()
    except Exception as e:
        st.notes.append(
            f"model: ledger unavailable ({one_line(str(e), 120)}): costs not "
            "recorded, review cache off"
        )
        return None
    st.notes.extend(f"model: {note}" for note in ledger.notes)
    return ledger


def _plan_budget(
    ctx: Context, st: Tally, live: Sequence[str], budget_usd: float, calibration: Calibration
) -> None:
    """Fit the expected cost into the budget from offline estimates, before anything is sent
    (prompts are built only when their jobs start)."""
    st.units, notes = budget.plan(
        st.units, live, lambda u: expected_cost(ctx, u, calibration), budget_usd, ctx.config
    )
    st.notes.extend(notes)


def expected_cost(
    ctx: Context, u: Unit, calibration: Calibration, *, startable: bool = True
) -> float:
    """What reviewing `u` is expected to cost (its offline estimate at `ctx`'s prices); with
    `startable`, at least what the per-call guard needs to let it start."""
    if u.tier == "skip":
        return 0.0
    model = ctx.model(u.tier)
    fair = (
        call_cost(
            ctx.config.price_for(model),
            u.input_tokens,
            calibration.output_for(u.tier, u.input_tokens),
        )
        * ctx.price_factor
    )
    if not startable:
        return fair
    floor_tokens = budget.floor(ctx.config.effort_for(u.tier), ctx.config.max_tokens_for(u.tier))
    return max(fair, budget.min_need_estimated(ctx.config, model, u.input_tokens, floor_tokens))


def outcome(st: Tally, order: Sequence[str]) -> ModelOutcome:
    """What the review of `order`'s units came to (findings, usage, units, status, notes)."""
    if st.redactions:
        redacted = plural(st.redactions, "secret-like value")
        st.notes.append(f"model: redacted {redacted} before sending")
    if st.cache_hits:
        st.notes.append(
            f"model: {plural(st.cache_hits, 'review')} answered from the review cache "
            "(--no-cache to bypass)"
        )
    if st.not_started:
        st.notes.append(
            f"model: {plural(st.not_started, 'unit')} not reviewed: "
            + ("time limit reached" if st.fatal is None else st.fatal)
        )
    findings = tuple(f for uid in order for f in st.findings.get(uid, ()))
    units = []
    for uid in order:
        u = st.units[uid]
        if uid in st.failed and uid not in st.findings:
            u = dataclasses.replace(u, reasons=(*u.reasons, f"review failed: {st.failed[uid]}"))
        units.append(u)
    status, error = _status(st, order)
    return ModelOutcome(findings, st.usage, tuple(units), status, tuple(st.notes), error)


def _status(st: Tally, order: Sequence[str]) -> tuple[CallStatus, str | None]:
    """Failed when nothing was reviewed (or the review had to stop), partial when some were
    (or a finding that would block could not be verified)."""
    failed = [uid for uid in order if uid in st.failed and uid not in st.findings]
    reviewed = [uid for uid in order if uid in st.findings]
    if st.fatal is not None:
        return "failed", st.fatal
    if failed and not reviewed:
        return "failed", st.failed[failed[0]]
    if failed:
        return "partial", (
            f"{len(failed)} of {plural(len(failed) + len(reviewed), 'unit')} not reviewed: "
            f"{st.failed[failed[0]]}"
        )
    if st.verify_problem is not None:
        return "partial", st.verify_problem
    return "complete", None
