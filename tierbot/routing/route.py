"""Routing: split a change into review units and give each the cheapest tier that fits its risk.

Files are tiered by their own risk score, then packed by tier and directory into units under a
token budget: a large change becomes several focused reviews, and every call (which pays a fixed
prompt overhead) carries as much related code as it usefully can.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Mapping, Sequence

from tierbot.config import Config
from tierbot.records import (
    Analysis,
    Change,
    FileDiff,
    Route,
    Signal,
    Tier,
    Unit,
    paths_label,
    tier_rank,
)
from tierbot.routing.estimate import unit_tokens
from tierbot.words import plural

# How a count of skipped files reads for each skip reason ("2 lockfiles", "1 pure rename");
# any other reason reads "N <reason> files".
_SKIPPED_AS = {
    "docs": ("doc", "docs"),
    "lockfile": ("lockfile", "lockfiles"),
    "rename": ("pure rename", "pure renames"),
    "mode": ("mode-only change", "mode-only changes"),
    "whitespace": ("whitespace-only change", "whitespace-only changes"),
    "symlink": ("symlink", "symlinks"),
    "submodule": ("submodule", "submodules"),
    "too large": ("file too large", "files too large"),
    "forced": ("file forced to skip", "files forced to skip"),
}


def tier_for(score: float, config: Config) -> Tier:
    t = config.routing.thresholds
    if score >= t.opus:
        return "opus"
    if score >= t.sonnet:
        return "sonnet"
    return "haiku"


def _cap(tier: Tier, max_tier: Tier | None) -> Tier:
    if max_tier is not None and tier_rank(tier) > tier_rank(max_tier):
        return max_tier
    return tier


def _why(paths: Sequence[str], signals: Sequence[Signal], tier: Tier) -> str:
    """The signals that decided this unit's tier, in a few words.

    Only signals about these files count (project-wide ones such as the intercept explain
    nothing about a unit); a cheap unit is explained by what kept it cheap.
    """
    wanted = set(paths)
    mine = [s for s in signals if wanted & set(s.paths)]
    if tier == "haiku":
        mine.sort(key=lambda s: s.weight)
        lowering = [s for s in mine if s.weight < 0][:2]
        raising = [s for s in sorted(mine, key=lambda s: -s.weight) if s.weight > 0][:1]
        chosen = lowering + raising
    else:
        chosen = sorted((s for s in mine if s.weight > 0), key=lambda s: -s.weight)[:3]
    return "; ".join(s.detail for s in chosen) or "routine change"


def _pack(files: Sequence[FileDiff], budget: int, manifest: int) -> list[list[FileDiff]]:
    """Greedy packing in directory order, so a unit holds neighbouring files.

    The prompt and manifest are paid once per unit, not once per file: counting them per file
    split changes into more calls than the budget needs, and every call costs its overhead.
    """
    fixed = unit_tokens([], manifest)[0]
    units: list[list[FileDiff]] = []
    current: list[FileDiff] = []
    used = fixed
    for f in sorted(files, key=lambda f: (posixpath.dirname(f.path), f.path)):
        cost = unit_tokens([f], manifest)[0] - fixed
        if current and used + cost > budget:
            units.append(current)
            current, used = [], fixed
        current.append(f)
        used += cost
    if current:
        units.append(current)
    return units


def plan(
    change: Change,
    analysis: Analysis,
    file_scores: Mapping[str, float],
    config: Config,
    *,
    force: Tier | None = None,
    max_tier: Tier | None = None,
) -> Route:
    stats = {s.path: s for s in analysis.files}
    skipped = [f for f in change.files if stats[f.path].skip_reason is not None]
    reviewable = [f for f in change.files if stats[f.path].skip_reason is None]
    if force == "skip":
        skipped, reviewable = list(change.files), []

    by_tier: dict[Tier, list[FileDiff]] = {}
    for f in reviewable:
        tier = force or tier_for(file_scores.get(f.path, 0.0), config)
        by_tier.setdefault(_cap(tier, max_tier), []).append(f)

    units: list[Unit] = []
    manifest = len(change.files)
    for tier in ("opus", "sonnet", "haiku"):
        for group in _pack(by_tier.get(tier, []), config.routing.unit_max_tokens, manifest):
            paths = tuple(f.path for f in group)
            score = max(file_scores.get(p, 0.0) for p in paths)
            tin, tout = unit_tokens(group, manifest)
            if force:
                reason = f"{tier}: forced with --tier"
            else:
                why = _why(paths, analysis.signals, tier)
                if score < analysis.risk_score - 0.01:
                    # Per-file offsets (tests, examples, config) explain the gap to the change.
                    why = (
                        f"below the change's {analysis.risk_score:.2f}: tests, examples,"
                        f" configuration or comments"
                        + ("" if why == "routine change" else f"; {why}")
                    )
                reason = f"{tier}: risk {score:.2f} ({why})"
                uncapped = tier_for(score, config)
                if uncapped != tier:
                    reason += f"; capped from {uncapped}"
            units.append(
                Unit(
                    id=f"u{len(units) + 1}",
                    tier=tier,
                    model=config.model_for(tier),
                    paths=paths,
                    risk_score=round(score, 4),
                    reasons=(reason,),
                    input_tokens=tin,
                    output_tokens=tout,
                )
            )
    if skipped:
        counts = Counter(stats[f.path].skip_reason or "forced" for f in skipped)
        detail = ", ".join(
            plural(n, *_SKIPPED_AS.get(r, (f"{r} file", f"{r} files")))
            for r, n in counts.most_common()
        )
        units.append(
            Unit(
                id="skip",
                tier="skip",
                model=None,
                paths=tuple(f.path for f in skipped),
                risk_score=0.0,
                reasons=(f"skip: nothing for a model to review ({detail})",),
            )
        )

    top: Tier = max((u.tier for u in units), key=tier_rank, default="skip")
    reasons = [f"{u.id} {paths_label(u.paths)} → {u.reasons[0]}" for u in units]
    if not change.files:
        reasons = ["nothing to review: the change is empty"]
    return Route(tier=top, reasons=tuple(reasons), units=tuple(units))
