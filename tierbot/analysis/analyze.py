"""The diff analyzer: per-file stats and skip reasons, complexity, history, risk."""

from __future__ import annotations

from collections.abc import Sequence

from tierbot.analysis import complexity, risk, sides
from tierbot.config import Config
from tierbot.git import history
from tierbot.paths import (
    language_for,
    lizard_reads,
    looks_generated,
    matches,
    skip_reason_for_path,
)
from tierbot.records import ANALYSIS_BOUND, Analysis, Change, FileDiff, FileStat
from tierbot.words import plural


def ignored(paths: Sequence[str], globs: Sequence[str]) -> set[str]:
    return {p for p in paths if matches(p, globs)} if globs else set()


def skip_reason(f: FileDiff, is_ignored: bool) -> str | None:
    if is_ignored:
        return "ignored"
    if f.submodule:
        return "submodule"
    if f.binary:
        return "binary"
    if f.symlink:
        return "symlink"
    if f.status == "deleted":
        return "deleted"
    if not f.hunks:
        if f.status in ("renamed", "copied") and not f.lines_added and not f.lines_removed:
            return "rename"
        if f.old_mode is not None and not f.lines_added and not f.lines_removed:
            return "mode"
    if f.whitespace_only:
        return "whitespace"
    by_name = skip_reason_for_path(f.path)
    if by_name is not None:
        return by_name
    if f.too_large:
        return "too large"
    if f.added_lines and f.status == "added":
        head = "\n".join(text for _, text in f.added_lines[:5])
        if looks_generated(head.encode("utf-8", "surrogateescape")):
            return "generated"
    if not f.hunks:
        return "empty"
    return None


def analyze(change: Change, config: Config) -> tuple[Analysis, risk.Assessment, list[str]]:
    """The change's Analysis, its risk assessment (which scores review units), and notes."""
    notes: list[str] = []
    skipped_by_config = ignored([f.path for f in change.files], config.ignore)
    reasons = {f.path: skip_reason(f, f.path in skipped_by_config) for f in change.files}
    reviewable = [f for f in change.files if reasons[f.path] is None]
    texts: dict[str, sides.Sides] = {}
    if change.root:
        # Both sides of code files, read once: complexity needs them, and so does telling code
        # from comments when a hunk starts inside a docstring or a block comment.
        texts = sides.read(
            change.root,
            change.range,
            [f for f in reviewable if lizard_reads(f.path) or risk.file_role(f.path) == "code"],
        )
        deltas, left_out = complexity.deltas(reviewable, texts)
    else:
        deltas, left_out = {}, 0
        notes.append("complexity and file history not measured: no local checkout")
    if left_out:
        # Not "large": the bound measures the largest changes first and leaves the rest.
        notes.append(f"complexity not measured for {plural(left_out, 'file')} {ANALYSIS_BOUND}")
    stats = [
        FileStat(
            path=f.path,
            old_path=f.old_path,
            status=f.status,
            language=language_for(f.path),
            lines_added=f.lines_added,
            lines_removed=f.lines_removed,
            hunks=len(f.hunks),
            complexity_delta=deltas.get(f.path, 0),
            skip_reason=reasons[f.path],
        )
        for f in change.files
    ]
    hist = history.file_history(
        change.root,
        change.range.base,
        [f.old_path or f.path for f in reviewable] if change.root else [],
        config.routing.history_commits,
    )
    if getattr(hist, "truncated", False):
        seen = plural(hist.commits + hist.skipped, "commit")
        notes.append(
            f"history: shallow clone ({seen} of history): the history signals are neutral"
            " (fetch the full history, e.g. fetch-depth: 0, to use them)"
        )
    assessment = risk.assess(change.files, stats, hist, config, texts)
    analysis = Analysis(
        files=tuple(stats),
        lines_added=sum(s.lines_added for s in stats),
        lines_removed=sum(s.lines_removed for s in stats),
        hunks=sum(s.hunks for s in stats),
        complexity_delta=sum(s.complexity_delta for s in stats),
        risk_score=min(1.0, max(0.0, assessment.score)),
        signals=assessment.signals,
    )
    return analysis, assessment, notes
