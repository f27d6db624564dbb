"""The whole review of one change: analysis -> route -> estimate -> rules + model -> findings.

Every command (review, hook, pr) goes through `run_review`; none of this knows about the CLI.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from tierbot import findings
from tierbot.analysis.analyze import analyze
from tierbot.config import Config
from tierbot.records import (
    Change,
    Estimate,
    FileDiff,
    Finding,
    ReviewResult,
    Status,
    Tier,
    tier_rank,
)
from tierbot.review import calibrate, rules
from tierbot.review.claude import has_credentials
from tierbot.routing.estimate import estimate
from tierbot.routing.route import plan

if TYPE_CHECKING:
    from tierbot.review.model import ModelOutcome


class Options(NamedTuple):
    dry_run: bool = False
    tier: str = "auto"  # auto, or a tier to force
    budget_usd: float | None = None  # None: the command's budget.max_usd_per_review; inf: none
    # Asked, before any money is spent, when the estimate is above the budget: returns the budget
    # to keep (None: no limit).  `review` asks a person at a terminal.
    over_budget: Callable[[Estimate, float], float | None] | None = None
    use_cache: bool = True
    max_tier: Tier | None = None
    deadline: float | None = None  # time.monotonic() after which no new model call starts
    repo_label: str = ""  # for the ledger
    fail_on: str = "none"  # what the caller blocks on: cheaper tiers' findings there are verified
    # What the author says the change is for (fenced; never used for routing).  None: the
    # subjects of the range's commits.
    intent: str | None = None
    # review | hook | pr | audit: who spends, in the ledger, and whose default budget applies
    command: str = "review"


def _new_content(change: Change, fd: FileDiff) -> str | None:
    from tierbot.review.prompt import new_content

    return new_content(change, fd)


def run_review(change: Change, config: Config, options: Options) -> ReviewResult:
    analysis, assessment, notes = analyze(change, config)
    force: Tier | None = None if options.tier == "auto" else options.tier  # type: ignore[assignment]
    route = plan(change, analysis, assessment, config, force=force, max_tier=options.max_tier)
    reviewable = any(u.tier != "skip" for u in route.units)
    if reviewable and not options.dry_run and has_credentials():
        from tierbot.review.claude import import_sdk_in_background

        # 1.5-4 s of imports, overlapped with the estimate, the local rules and the first prompt.
        import_sdk_in_background()
    calibration = calibrate.calibration(config)
    verifies = config.verify == "high" or (
        config.verify == "blocking" and options.fail_on != "none"
    )
    est = estimate(change, route, config, calibration, verifies)
    notes = [*change.notes, *notes, *route.notes]
    budget = budget_for(options, config)
    checked = rules.check(
        change.files, config, deadline=options.deadline, read=lambda fd: _new_content(change, fd)
    )
    rule_findings = checked.findings
    notes.extend(checked.notes)

    status: Status = "complete"
    outcome: ModelOutcome | None = None
    if options.dry_run:
        status = "dry-run"
    elif not reviewable:
        status = "complete"
    elif not has_credentials():
        status = "offline"
        notes.append(
            "model review skipped: no ANTHROPIC_API_KEY (nor another credential the SDK reads); "
            "local rule checks only"
        )
    if est.cost_usd > est.all_opus_cost_usd:
        notes.append(
            f"cost: the estimate ${est.cost_usd:.4f} is above all-Opus"
            f" (${est.all_opus_cost_usd:.4f}): ${est.verify_cost_usd:.4f} of it is Opus verifying"
            " cheaper tiers' findings, which an all-Opus review would not need"
        )
    if status in ("dry-run", "offline") and budget is not None and est.cost_usd > budget:
        notes.append(
            f"budget: the estimate ${est.cost_usd:.4f} is above the ${budget:.2f} budget of"
            f" `{options.command}`: lower-risk units would move to a cheaper tier or be skipped"
        )
    if reviewable and not options.dry_run and has_credentials():
        from tierbot.review import model

        if budget is not None and est.cost_usd > budget and options.over_budget is not None:
            budget = options.over_budget(est, budget)
        outcome = model.review(
            change,
            analysis,
            route,
            rule_findings,
            config,
            budget_usd=budget,
            use_cache=options.use_cache,
            max_tier=options.max_tier,
            deadline=options.deadline,
            repo_label=options.repo_label,
            range_label=change.range.spec,
            fail_on=options.fail_on,
            intent=intent(change) if options.intent is None else options.intent,
            calibration=calibration,
            command=options.command,
        )
    planned = ReviewResult(
        status=status,
        range=change.range,
        analysis=analysis,
        route=route,
        estimate=est,
        findings=tuple(rule_findings),
        notes=tuple(notes),
    )
    return conclude(change, config, planned, outcome)


def conclude(
    change: Change, config: Config, planned: ReviewResult, outcome: ModelOutcome | None
) -> ReviewResult:
    """`planned` (the analysis, route, estimate and local findings of `change`) with the model's
    outcome folded in, however it was obtained (here, or from a Message Batch), and every
    finding anchored to the change."""
    raw: list[Finding] = list(planned.findings)
    notes = list(planned.notes)
    route, status, usage = planned.route, planned.status, planned.usage
    if outcome is not None:
        raw.extend(outcome.findings)
        usage = outcome.usage
        if usage.calls:
            # The counterfactual includes the skipped files as one more Opus unit (SPEC §4).
            usage = dataclasses.replace(
                usage,
                all_opus_cost_usd=usage.all_opus_cost_usd + planned.estimate.skipped_opus_cost_usd,
            )
            if usage.cost_usd > usage.all_opus_cost_usd:
                notes.append(
                    f"cost: ${usage.cost_usd:.4f} is more than all-Opus"
                    f" (${usage.all_opus_cost_usd:.4f}): a configured model is priced above Opus"
                    " or Opus verified cheaper tiers' findings"
                )
        # Escalation and budget decisions change units' tiers, and so the highest tier used.
        top: Tier = max((u.tier for u in outcome.units), key=tier_rank, default="skip")
        route = dataclasses.replace(route, units=outcome.units, tier=top)
        notes.extend(outcome.notes)
        status = outcome.status
        if outcome.error and not any(outcome.error in n for n in notes):
            notes.append(outcome.error)

    kept, moved, anchor_notes = findings.anchor(raw, change.files, config.filter)
    notes.extend(anchor_notes)
    # Findings that may not sit on a line are kept in the summary, never dropped silently.
    notes.extend(
        f"not on a diff line: {f.path}{f':{f.line}' if f.line else ''}: {f.severity}: {f.title}"
        for f in moved
    )
    return dataclasses.replace(
        planned,
        status=status,
        route=route,
        findings=tuple(kept),
        usage=usage,
        notes=tuple(notes),
    )


def intent(change: Change) -> str:
    """The subjects of the commits the change holds (none for the index or uncommitted work)."""
    from tierbot.git.history import subjects

    try:
        lines = subjects(change.root, change.range.base, change.range.head or "HEAD")
    except Exception:  # the intent helps the model; it is never a reason to fail a review
        return ""
    return "Commit subjects:\n" + "\n".join(f"- {s}" for s in lines) if lines else ""


def budget_for(options: Options, config: Config) -> float | None:
    """The review's spending limit: `--budget` (inf: none), else the command's default."""
    if options.budget_usd is None:
        return config.budget.for_command(options.command)
    return None if math.isinf(options.budget_usd) else options.budget_usd
