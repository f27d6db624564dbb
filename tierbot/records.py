"""The immutable records that flow through the pipeline.

diff (Change, FileDiff) -> analysis (Analysis, FileStat, Signal) -> route (Route, Unit)
-> review (Finding, Usage) -> report (ReviewResult).  Nothing here knows about the CLI.
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Sequence
from dataclasses import astuple, dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from unidiff.patch import Hunk as UnidiffHunk
    from unidiff.patch import PatchedFile

Tier = Literal["skip", "haiku", "sonnet", "opus"]
TIERS: tuple[Tier, ...] = ("skip", "haiku", "sonnet", "opus")
Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")
Status = Literal["complete", "offline", "dry-run", "partial", "failed"]
FileStatus = Literal["added", "modified", "deleted", "renamed", "copied"]
Filter = Literal["added", "diff_context", "file", "nofilter"]


def tier_rank(tier: str) -> int:
    return TIERS.index(tier)


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


class NewLine(NamedTuple):
    """A line of a file's new side that a diff shows: where a finding or comment may sit."""

    hunk: int  # index of its hunk in the file's patch
    added: bool  # a '+' line (else an unchanged context line)
    text: str  # without the newline


@dataclass(frozen=True)
class FileDiff:
    """One file of a change, as git saw it.

    `patch` is unidiff's model of the file's hunks (each line with its kind, old and new line
    numbers and text), parsed once; it is None for files that are only counted (lockfiles,
    huge or generated files, binaries, pure renames and mode changes).
    """

    path: str  # new path (old path for deletions), repo-relative, never quoted
    old_path: str | None  # set for renames and copies
    status: FileStatus
    binary: bool = False
    submodule: bool = False
    symlink: bool = False
    old_mode: str | None = None
    new_mode: str | None = None
    patch: PatchedFile | None = field(default=None, compare=False, repr=False)
    added_lines: tuple[tuple[int, str], ...] = ()  # (new line number, text without '+')
    lines_removed: int = 0
    patch_chars: int = 0  # size of this file's part of the unified diff, for estimates
    whitespace_only: bool = False
    unparsed_added: int = 0  # lines added by a file whose patch was not parsed (too big, lockfile)
    too_large: bool = False  # over the size that is parsed line by line

    @property
    def lines_added(self) -> int:
        return len(self.added_lines) or self.unparsed_added

    @property
    def hunks(self) -> Sequence[UnidiffHunk]:
        return self.patch if self.patch is not None else ()

    @functools.cached_property
    def new_lines(self) -> dict[int, NewLine]:
        """Every new-side line the diff shows, by line number: the one answer to "may a finding
        or a review comment sit here" (GitHub accepts RIGHT comments on exactly these lines)."""
        lines: dict[int, NewLine] = {}
        for i, hunk in enumerate(self.hunks):
            for line in hunk:
                if line.target_line_no is not None and line.line_type in ("+", " "):
                    text = line.value.rstrip("\n").rstrip("\r")
                    lines[line.target_line_no] = NewLine(i, line.line_type == "+", text)
        return lines


# git's empty tree: the base of a root commit, or of the index before the first commit.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass(frozen=True)
class Range:
    spec: str  # what the user typed ("" for none, "--staged" for the index)
    base: str  # sha the change is measured from
    head: str | None  # sha of the new side; None for index or working tree

    @property
    def sides(self) -> str:
        """The two sides compared, e.g. `87cc9ef..working tree`, `empty tree..a1b2c3d`."""
        head = self.head[:7] if self.head else "working tree"
        base = "empty tree" if self.base == EMPTY_TREE else self.base[:7] or "(none)"
        return f"{base}..{'index' if self.spec == '--staged' else head}"


@dataclass(frozen=True)
class Change:
    """A parsed change: what `git diff` shows for a range."""

    root: str  # absolute path of the repository's work tree; "" when there is none (API diff)
    range: Range
    files: tuple[FileDiff, ...]
    diff_bytes: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Signal:
    """One contribution to the risk score, with where it came from."""

    id: str
    weight: float
    detail: str
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileStat:
    path: str
    old_path: str | None
    status: FileStatus
    language: str | None
    lines_added: int
    lines_removed: int
    hunks: int
    complexity_delta: int
    skip_reason: str | None
    risk_score: float = 0.0


@dataclass(frozen=True)
class Analysis:
    files: tuple[FileStat, ...]
    lines_added: int
    lines_removed: int
    hunks: int
    complexity_delta: int
    risk_score: float
    signals: tuple[Signal, ...]


def paths_label(paths: tuple[str, ...] | list[str]) -> str:
    """A group of files in a few words: the path itself, their common directory and a count, or
    the directory that holds most of them and how many others there are (else the first path)."""
    if len(paths) == 1:
        return paths[0]
    if not paths:
        return "(no files)"
    common = posixpath.commonpath(list(paths))
    if common and common not in paths:
        return f"{common}/ ({len(paths)} files)"
    # No common directory: the one holding the most files (the deepest of equals) names the group.
    under: dict[str, int] = {}
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            under[d] = under.get(d, 0) + 1
    if under:
        top = max(under, key=lambda d: (under[d], d.count("/")))
        if under[top] > 1:
            return f"{top}/ ({under[top]} files) +{len(paths) - under[top]} more"
    return f"{paths[0]} +{len(paths) - 1} more"  # the caller puts the file that matters first


@dataclass(frozen=True)
class Unit:
    """A group of files reviewed together by one model call."""

    id: str
    tier: Tier
    model: str | None
    paths: tuple[str, ...]
    risk_score: float
    reasons: tuple[str, ...]
    input_tokens: int = 0  # offline estimate
    output_tokens: int = 0
    escalated_from: Tier | None = None


@dataclass(frozen=True)
class Route:
    tier: Tier  # the highest tier used
    reasons: tuple[str, ...]
    units: tuple[Unit, ...]
    notes: tuple[str, ...] = ()  # what the packing had to do (e.g. larger units for a huge change)


@dataclass(frozen=True)
class Estimate:
    input_tokens: int
    output_tokens: int
    cost_usd: float
    all_opus_cost_usd: float  # the same units all at Opus, plus the skipped files as one unit
    verify_cost_usd: float = 0.0  # of cost_usd: the expected cost of Opus verification
    skipped_opus_cost_usd: float = 0.0  # of all_opus_cost_usd: the skipped files' unit


@dataclass(frozen=True)
class Finding:
    path: str
    line: int | None
    end_line: int | None
    severity: Severity
    category: str
    title: str
    message: str
    source: str  # rules|haiku|sonnet|opus
    suggestion: str | None = None
    confidence: float = 1.0
    fingerprint: str = ""
    # The lines (first, last) the model wrote `suggestion` for; a committable suggestion is
    # posted only on exactly these lines (anchoring may clamp `end_line`).  None: line..end_line.
    suggestion_range: tuple[int, int] | None = None
    # Opus's check of a cheaper tier's finding: "confirmed" | "changed" | "unverified" (it could
    # not be checked: it does not block); None when the finding was not subject to it.
    verification: str | None = None


@dataclass(frozen=True)
class Usage:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    all_opus_cost_usd: float = 0.0
    verify_cost_usd: float = 0.0  # of cost_usd: Opus checking cheaper tiers' findings

    def __add__(self, other: Usage) -> Usage:
        """Two tallies as one (a review's calls add up call by call)."""
        return Usage(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


# Ends a note that says how far the analysis went (a bound on a risk feature), not that anything
# of the review was lost: the JSON keeps it, the text and Markdown reports show it under -v only.
ANALYSIS_BOUND = "(analysis bound)"


@dataclass(frozen=True)
class ReviewResult:
    status: Status
    range: Range
    analysis: Analysis
    route: Route
    estimate: Estimate
    findings: tuple[Finding, ...] = ()
    usage: Usage = field(default_factory=Usage)
    notes: tuple[str, ...] = ()


# --- tierbot audit: many commits, one report ----------------------------------------------

AuditStatus = Literal["complete", "offline", "dry-run", "partial", "failed", "running"]


@dataclass(frozen=True)
class CommitReview:
    """One commit of an audit, reviewed as a change of its own (its first parent against it)."""

    sha: str
    subject: str  # the author's words, shown as they are (escaped by each reporter)
    parents: int
    result: ReviewResult


@dataclass(frozen=True)
class BatchSummary:
    """One Message Batch of an audit."""

    id: str | None  # the API's id (None: it never reached the API)
    kind: str  # review | follow-up
    requests: int
    state: str  # submitting | submitted | ended | fetched | void
    counts: tuple[tuple[str, int], ...]  # the last request_counts seen


@dataclass(frozen=True)
class AuditEstimate:
    requests: int  # review units to send (before the review cache and verification)
    cost_usd: float  # at batch prices (half of every price)
    interactive_cost_usd: float  # the same reviews sent one by one
    all_opus_cost_usd: float  # at batch prices


@dataclass(frozen=True)
class AuditResult:
    status: AuditStatus
    range: Range  # base: the sha the range starts after ("" from the first commit)
    commits: tuple[CommitReview, ...]
    estimate: AuditEstimate
    usage: Usage = field(default_factory=Usage)
    batches: tuple[BatchSummary, ...] = ()
    budget_usd: float | None = None
    notes: tuple[str, ...] = ()
