"""Routing: split a change into review units and give each the cheapest tier that fits its risk.

Production code, sensitive configuration (CI, containers, infrastructure) and everything else
(tests, docs, examples, configuration, routine-only code edits) are packed apart, neighbouring
files together, under the unit token budget.  Each unit is then
scored from its own files plus a bounded context of the rest of the change (`Assessment.unit`),
so one risky file does not drag a whole pull request to Opus, and its reason quotes its own
numbers.  Two floors follow: a CI workflow changed beyond a pin bump gets at least Sonnet, and a
unit of a few lines of code goes to Opus only with sensitive code or paths or a strong history of
fixes.  Units that end on the same tier share one call when they fit together, since every call
pays the prompt overhead; a change of thousands of files gets larger units, never thousands of
calls.
"""

from __future__ import annotations

import math
import posixpath
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

from tierbot.analysis.risk import Assessment, FileFacts, Scored
from tierbot.config import Config
from tierbot.records import (
    Analysis,
    Change,
    FileDiff,
    Route,
    Tier,
    Unit,
    paths_label,
    tier_rank,
)
from tierbot.routing.estimate import (
    PROMPT_OVERHEAD_TOKENS,
    diff_tokens,
    manifest_tokens,
    unit_tokens,
)
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

# A change is reviewed in at most about this many calls: past it, units grow (up to what a model
# can read) instead of multiplying; every call pays the prompt overhead again.
MAX_UNITS = 40
MAX_UNIT_TOKENS = 800_000
MANY_FILES = 500  # a change this big is told how it was packed
# Opus is for complex work (docs/routing.md, "The Opus size floor"): a unit that changes
# fewer lines of code than `routing.opus_min_lines` (10) reaches Opus only with sensitive code or
# paths, or when its files needed at least OPUS_HISTORY_FIXES bug fixes before.
OPUS_HISTORY_FIXES = 10


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


class Draft(NamedTuple):
    files: tuple[FileDiff, ...]
    tier: Tier  # after floors and the cap
    uncapped: Tier  # after floors, before the cap
    scored: Scored | None  # None: forced with --tier
    why: str


def plan(
    change: Change,
    analysis: Analysis,
    assessment: Assessment,
    config: Config,
    *,
    force: Tier | None = None,
    max_tier: Tier | None = None,
) -> Route:
    stats = {s.path: s for s in analysis.files}
    skipped = [f for f in change.files if stats[f.path].skip_reason is not None]
    if force == "skip":
        skipped = list(change.files)
    manifest = len(change.files)
    room, groups, notes = pack(change, analysis, assessment, config, force=force)
    drafts = [_draft(group, assessment, config, force, max_tier) for group in groups]
    drafts = _merge(drafts, room, assessment, config, force, max_tier)

    units: list[Unit] = []
    for d in sorted(drafts, key=lambda d: -tier_rank(d.tier)):
        paths = tuple(f.path for f in d.files)
        score = d.scored.score if d.scored is not None else 0.0
        why = d.why
        if d.uncapped != d.tier:
            why += f"; capped from {d.uncapped}"
        tin, tout = unit_tokens(d.files, manifest)
        units.append(
            Unit(
                id=f"u{len(units) + 1}",
                tier=d.tier,
                model=config.model_for(d.tier),
                paths=paths,
                risk_score=round(score, 4),
                reasons=(why,),
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
                reasons=(f"nothing for a model to review ({detail})",),
            )
        )

    top: Tier = max((u.tier for u in units), key=tier_rank, default="skip")
    reasons = [
        f"{u.id} {paths_label(u.paths)} → {u.tier}"
        + (f" (risk {u.risk_score:.2f})" if u.tier != "skip" else "")
        + f": {u.reasons[0]}"
        for u in units
    ]
    if not change.files:
        reasons = ["nothing to review: the change is empty"]
    reviewed = sum(len(u.paths) for u in units if u.tier != "skip")
    if reviewed >= MANY_FILES:
        notes.append(
            f"route: {reviewed:,} files to review in {len(units) - bool(skipped)} units"
            f" (one call each, never one per file; at most about {MAX_UNITS})"
        )
    return Route(tier=top, reasons=tuple(reasons), units=tuple(units), notes=tuple(notes))


# --------------------------------------------------------------------------------------------
# Packing
# --------------------------------------------------------------------------------------------
def pack(
    change: Change,
    analysis: Analysis,
    assessment: Assessment,
    config: Config,
    *,
    force: Tier | None = None,
) -> tuple[int, list[list[FileDiff]], list[str]]:
    """The reviewed files packed into candidate units, before any tier: production code, then
    sensitive configuration (CI, containers, infrastructure), then the rest, each apart from the
    others, neighbours together.  Returns the diff tokens a unit may hold, the groups and
    a note when the change is so big that units had to grow."""
    stats = {s.path: s for s in analysis.files}
    reviewable = [f for f in change.files if stats[f.path].skip_reason is None]
    if force == "skip":
        reviewable = []
    room, notes = _room(reviewable, config.routing.unit_max_tokens, len(change.files))

    def kind(f: FileDiff) -> int:
        facts = assessment.facts.get(f.path)
        if facts is not None and facts.role == "code":
            return 0
        # CI, container and infrastructure definitions apart from tests and docs: they may need
        # a better reviewer than what sits next to them.
        return 1 if facts is not None and facts.sensitive else 2

    while True:
        groups = [
            g for k in (0, 1, 2) for g in _pack([f for f in reviewable if kind(f) == k], room)
        ]
        if len(groups) <= MAX_UNITS or room >= MAX_UNIT_TOKENS:
            return room, groups, notes
        # Files too big to share a unit of this size: let units grow until they fit the bound.
        room = min(MAX_UNIT_TOKENS, room * 3 // 2 + 1)
        notes = [_grown(len(reviewable), room, config.routing.unit_max_tokens, len(change.files))]


def _room(files: Sequence[FileDiff], unit_max: int, manifest: int) -> tuple[int, list[str]]:
    """The diff tokens one unit may hold: the budget less what every call pays anyway (the
    prompt and the manifest, once per call), raised for a change too big for MAX_UNITS units."""
    room = max(1, unit_max - _fixed(manifest))
    total = sum(diff_tokens([f]) for f in files)
    if total <= room * MAX_UNITS:
        return room, []
    # Greedy packing leaves units part-full: aim a little below the bound.
    grown = min(MAX_UNIT_TOKENS, math.ceil(total / (0.8 * MAX_UNITS)))
    return grown, [_grown(len(files), grown, unit_max, manifest)]


def _fixed(manifest: int) -> int:
    return PROMPT_OVERHEAD_TOKENS + manifest_tokens(manifest)


def _grown(files: int, room: int, unit_max: int, manifest: int) -> str:
    return (
        f"route: units hold up to {room + _fixed(manifest):,} tokens, not"
        f" routing.unit_max_tokens ({unit_max:,}): the {files:,} files to review would otherwise"
        f" take more than {MAX_UNITS} calls"
    )


def _pack(files: Sequence[FileDiff], room: int) -> list[list[FileDiff]]:
    """Greedy packing in directory order, so a unit holds neighbouring files."""
    units: list[list[FileDiff]] = []
    current: list[FileDiff] = []
    used = 0
    for f in sorted(files, key=lambda f: (posixpath.dirname(f.path), f.path)):
        cost = diff_tokens([f])
        if current and used + cost > room:
            units.append(current)
            current, used = [], 0
        current.append(f)
        used += cost
    if current:
        units.append(current)
    return units


def _merge(
    drafts: list[Draft],
    room: int,
    assessment: Assessment,
    config: Config,
    force: Tier | None,
    max_tier: Tier | None,
) -> list[Draft]:
    """Units on the same tier share a call when they fit together and the merged unit, scored on
    its own files, stays on that tier (so its reason still quotes its own numbers)."""
    out: list[Draft] = []
    for tier in ("opus", "sonnet", "haiku"):
        same = sorted((d for d in drafts if d.tier == tier), key=lambda d: -diff_tokens(d.files))
        bins: list[Draft] = []
        for d in same:
            for i, b in enumerate(bins):
                if diff_tokens(b.files) + diff_tokens(d.files) > room:
                    continue
                merged = _draft((*b.files, *d.files), assessment, config, force, max_tier)
                if merged.tier == tier:
                    bins[i] = merged
                    break
            else:
                bins.append(d)
        out.extend(bins)
    return out


# --------------------------------------------------------------------------------------------
# Tiers and reasons
# --------------------------------------------------------------------------------------------
def _draft(
    files: Sequence[FileDiff],
    assessment: Assessment,
    config: Config,
    force: Tier | None,
    max_tier: Tier | None,
) -> Draft:
    files = _ordered(files, assessment)
    if force is not None:
        return Draft(files, _cap(force, max_tier), force, None, "forced with --tier")
    paths = [f.path for f in files]
    scored = assessment.unit(paths)
    facts = [assessment.facts[p] for p in paths if p in assessment.facts]
    tier, floor = _floors(tier_for(scored.score, config), facts, config.routing.opus_min_lines)
    # The floor that decided goes first: it is what a reader of a cut-off reason needs.
    why = f"{floor}; {_why(scored, facts, tier)}" if floor else _why(scored, facts, tier)
    return Draft(files, _cap(tier, max_tier), tier, scored, why)


def _ordered(files: Sequence[FileDiff], assessment: Assessment) -> tuple[FileDiff, ...]:
    """Production code first, most lines of code first: the files that name the unit."""

    def key(f: FileDiff) -> tuple[bool, int, str]:
        x = assessment.facts.get(f.path)
        code = x is not None and x.role == "code"
        return (not code, -(x.added + x.removed) if code and x else 0, f.path)

    return tuple(sorted(files, key=key))


def _floors(tier: Tier, facts: Sequence[FileFacts], min_lines: int) -> tuple[Tier, str | None]:
    """The two rules on top of the score, and the reason when one of them decided."""
    code = [x for x in facts if x.role == "code"]
    changed = sum(x.added + x.removed for x in code)
    fixes = sum(x.history.fixes for x in code)
    if (
        tier == "opus"
        and changed < min_lines
        and fixes < OPUS_HISTORY_FIXES
        and not any(x.constructs or x.sensitive for x in code)
    ):
        return "sonnet", (
            f"Sonnet, not Opus: {plural(changed, 'line')} of code changed, no sensitive code,"
            f" {plural(fixes, 'prior bug fix')}"
        )
    workflows = [x.path for x in facts if x.workflow]
    if workflows and tier_rank(tier) < tier_rank("sonnet"):
        return "sonnet", (
            f"at least Sonnet: CI workflow changed beyond a version pin ({paths_label(workflows)})"
        )
    return tier, None


ROLE_WORDS = {
    "test": ("test file", "test files"),
    "docs": ("doc file", "doc files"),
    "example": ("example file", "example files"),
    "other": ("configuration file", "configuration files"),
    "comments": ("code file with only routine edits", "code files with only routine edits"),
}


def _why(scored: Scored, facts: Sequence[FileFacts], tier: Tier) -> str:
    """The signals that decided this unit's tier, in a few words, with the unit's own numbers.

    Signals about other files (and the intercept) explain nothing about a unit; the project's
    fix rate is named when it weighs on an upper tier."""
    mine = {x.path for x in facts}
    own = [s for s in scored.signals if (mine & set(s.paths)) or s.id == "context.change"]
    code_files = sum(x.role == "code" for x in facts)
    if code_files <= 1:  # "1 code file changed, in 1 directory" explains nothing
        own = [s for s in own if not s.id.startswith("spread.")]
    raising = sorted((s for s in own if s.weight > 0), key=lambda s: -s.weight)
    others = Counter(x.role for x in facts if x.role != "code")
    parts: list[str]
    if not any(x.role == "code" for x in facts):
        if set(others) == {"comments"}:
            bumps = sum(x.routine for x in facts)
            edits = sum(x.edits for x in facts)
            small = [plural(bumps, "version bump")] if bumps else []
            small += (
                [plural(edits, "rename or reworded message", "renames or reworded messages")]
                if edits
                else []
            )
            parts = [
                "routine edits only: comments, docstrings, pragmas, white space, versions,"
                " renames or messages" + (f" ({', '.join(small)})" if small else "")
            ]
        else:
            parts = ["no production code: " + _roles(others)]
        parts += [s.detail for s in raising if s.id != "context.change"][:2]
        return "; ".join(parts)
    # The unit's own numbers first; the rest of the change, when it weighs, after them.
    parts = [s.detail for s in raising if s.id != "context.change"][:3]
    parts += [s.detail for s in raising if s.id == "context.change" and s.weight >= 0.25]
    if tier == "haiku":
        parts += [s.detail for s in sorted(own, key=lambda s: s.weight) if s.weight < 0][:1]
    else:
        parts += [
            "project: " + s.detail
            for s in scored.signals
            if s.id == "project.fix_rate" and s.weight >= 0.5
        ]
    if not parts:
        added = sum(x.added for x in facts if x.role == "code")
        parts = [f"{plural(added, 'line')} of code added"]
    if others:
        parts.append("with " + _roles(others))
    return "; ".join(parts)


def _roles(counts: Counter[str]) -> str:
    return ", ".join(
        plural(n, *ROLE_WORDS.get(r, (f"{r} file", f"{r} files"))) for r, n in counts.most_common()
    )
