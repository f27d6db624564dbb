"""File history from ONE bounded `git log`, aggregated per touched path.

The risk model uses the classic just-in-time defect-prediction history metrics of each touched
file: how often it changed, how many of those changes were bug fixes, how many people changed it,
and how old it is.  Only the past of the change's base revision is read, and at most
`max_commits` commits of it (walked without a pathspec, so the cost is bounded by the window, not
by the size of the repository's history): on a 3,000-commit repository this takes well under
0.1 s whatever the number of paths.

Only *prior* commits are read, and only development commits count: bots and dependency updates
(`is_automated`) say nothing about how often a project fixes bugs.  A shallow clone whose history
ends inside the window is flagged (`History.truncated`) so the risk model can treat history as
unknown.  The change's own message is never a feature: the author controls it, and it must never
be able to lower the review tier.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from tierbot.git import repository

# Subjects of prior commits that look like bug fixes (the usual SZZ / Kamei keyword heuristic).
FIX_RE = re.compile(
    r"\b(?:fix(?:e[sd]|ing)?|bugs?|bugfix(?:es)?|hotfix(?:es)?|regressions?|crash(?:es|ed|ing)?"
    r"|broken|faults?|defects?|patch(?:es|ed)?)\b",
    re.I,
)
# "Fixes" that do not fix behaviour.
NOT_FIX_RE = re.compile(
    r"\b(?:typos?|spelling|grammar|docs?|documentation|docstrings?|readme|changelog|lint\w*"
    r"|flake8|mypy|typing|type hints?|format\w*|whitespace|style|pre-commit|ci|warnings?)\b",
    re.I,
)

# Commits that are not development work and say nothing about how often a project fixes bugs: bots
# (`dependabot[bot]`, `renovate[bot]`, pre-commit.ci, ...) and dependency updates by anyone
# (`fix(deps): update ...`, "Bump x from 1 to 2").  Their subjects are the bot's words, not a
# developer's: counting them as fixes made a bot-heavy project look like it fixed a bug every
# other commit.
BOT_AUTHOR_RE = re.compile(
    r"\[bot\]|(?:^|[^a-z])(?:dependabot|renovate|greenkeeper|snyk-bot|pyup-bot|pre-commit-ci"
    r"|github-actions|mergify|allcontributors|imgbot|deepsource-autofix|whitesource)(?:[^a-z]|$)",
    re.I,
)
DEPENDENCY_UPDATE_RE = re.compile(
    r"^\W*(?:\w+\()?(?:deps|deps-dev|dependencies|dependabot|renovate)\b"
    r"|^\W*\w+\((?:deps|deps-dev|dependencies)\)"
    r"|\bbump(?:s|ed)?\b.*\bfrom\b.*\bto\b|\bupdate (?:dependency|dependencies|module)\b"
    r"|\block ?file maintenance\b|\bpre-commit(?:\.ci)? autoupdate\b|\bupgrade dependenc",
    re.I,
)

_SEP = "\x1f"
_REC = "\x1e"
DAY = 86400.0


class FileHistory(NamedTuple):
    changes: int  # prior commits touching the file, within the bounded window
    fixes: int  # of which look like bug fixes
    authors: int  # distinct authors of those commits
    age_days: float | None  # days from the oldest commit seen touching it to the base
    last_days: float | None = None  # days from the newest such commit to the base
    # (both None when the file was not seen in the window)


class History(dict[str, FileHistory]):
    """History per path, plus the project's recent bug-fix rate over the same window.

    A plain mapping of path -> FileHistory (so callers that only look paths up need nothing
    else), with `commits` (non-merge development commits read: bots and dependency updates left
    out), `fixes` (those that look like bug fixes), `skipped` (the bot and dependency-update
    commits left out) and `truncated`: the clone is shallow and the window ran into its cut, so
    the history seen is not the project's.
    """

    def __init__(
        self,
        files: dict[str, FileHistory],
        commits: int = 0,
        fixes: int = 0,
        *,
        skipped: int = 0,
        truncated: bool = False,
    ) -> None:
        super().__init__(files)
        self.commits = commits
        self.fixes = fixes
        self.skipped = skipped
        self.truncated = truncated


def is_fix_subject(subject: str) -> bool:
    return bool(FIX_RE.search(subject)) and not NOT_FIX_RE.search(subject)


def is_automated(author: str, subject: str) -> bool:
    """A bot's commit or a dependency update: not development work (see BOT_AUTHOR_RE)."""
    return bool(BOT_AUTHOR_RE.search(author) or DEPENDENCY_UPDATE_RE.search(subject))


def file_history(root: str, rev: str, paths: Sequence[str], max_commits: int) -> History:
    """History of `paths` in the last `max_commits` commits reachable from `rev` (inclusive).

    Paths never seen in the window map to FileHistory(0, 0, 0, None, None).  A missing revision
    (e.g. an unborn branch) or a failing git gives every path that empty history: history is
    evidence, never a reason to fail a review.
    """
    wanted = set(paths)
    empty = FileHistory(0, 0, 0, None, None)
    if not wanted or max_commits <= 0:
        return History(dict.fromkeys(wanted, empty))
    text = _log(root, rev, max_commits)
    if text is None:
        return History(dict.fromkeys(wanted, empty))
    commits = fix_commits = skipped = records = 0
    changes: dict[str, int] = {}
    fixes: dict[str, int] = {}
    authors: dict[str, set[str]] = {}
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    base_time: int | None = None
    for record in text.split(_REC):
        if not record.strip():
            continue
        header, _, names = record.partition("\n")
        fields = header.split(_SEP)
        if len(fields) != 5:
            continue
        _sha, parents, author, when_s, subject = fields
        try:
            when = int(when_s)
        except ValueError:
            continue
        records += 1
        if base_time is None:
            base_time = when  # the first record is `rev` itself: "now" is the base, not the clock
        if len(parents.split()) > 1:
            continue  # merges list no files (no -m) and their subjects are not fixes
        if is_automated(author, subject):
            skipped += 1
            continue
        fix = is_fix_subject(subject)
        email = author.rpartition("<")[2].rstrip(">").lower()
        commits += 1
        fix_commits += fix
        for name in names.split("\n"):
            if name not in wanted:
                continue
            changes[name] = changes.get(name, 0) + 1
            if fix:
                fixes[name] = fixes.get(name, 0) + 1
            authors.setdefault(name, set()).add(email)
            first[name] = min(first.get(name, when), when)
            last[name] = max(last.get(name, when), when)
    truncated = records < max_commits and _shallow(root)
    out = History({}, commits, fix_commits, skipped=skipped, truncated=truncated)
    for path in wanted:
        if path not in changes or base_time is None:
            out[path] = empty
            continue
        out[path] = FileHistory(
            changes=changes[path],
            fixes=fixes.get(path, 0),
            authors=len(authors[path]),
            age_days=max(0.0, (base_time - first[path]) / DAY),
            last_days=max(0.0, (base_time - last[path]) / DAY),
        )
    return out


def _shallow(root: str) -> bool:
    try:
        return repository.at(root).is_shallow()
    except Exception:  # history is evidence, never a reason to fail a review
        return False


def _log(root: str, rev: str, max_commits: int) -> str | None:
    # No pathspec: with one, git may walk the whole history to find max_commits matches.  Merges
    # list no files (no -m), and --no-renames keeps the names as git stores them.
    try:
        out = repository.at(root).run(
            "log",
            f"--max-count={max_commits}",
            "--no-renames",
            "--name-only",
            f"--format={_REC}%H{_SEP}%P{_SEP}%aN <%aE>{_SEP}%ct{_SEP}%s",
            "--end-of-options",
            rev,
            "--",
            timeout=60,
        )
    except Exception:  # history is evidence, never a reason to fail a review
        return None
    return out.decode("utf-8", errors="surrogateescape")


def subjects(root: str, base: str, head: str, limit: int = 50) -> list[str]:
    """Subjects of the non-merge commits in base..head, oldest first, at most `limit`.

    The author's stated intent for a review: contributor text, handed to the model inside the
    untrusted fence and never to the router (see the module note).
    """
    out = repository.at(root).run(
        "log",
        "--no-merges",
        f"--max-count={limit}",
        "--format=%s",
        "--end-of-options",
        f"{base}..{head}",
        check=False,
    )
    lines = out.decode("utf-8", "replace").splitlines()
    return [line.strip() for line in reversed(lines) if line.strip()]


class Commit(NamedTuple):
    sha: str
    parents: int  # 0 for a root commit, 2 or more for a merge
    subject: str  # the author's words: shown in reports, never a routing feature


def first_parent(
    root: str, base: str | None, head: str, limit: int, *, merges: bool = False
) -> list[Commit]:
    """The commits of `base..head` (all of `head`'s history when `base` is None) along first
    parents, oldest first, merges only with `merges`; at most `limit + 1` are read, so a caller
    can tell there are more."""
    out = repository.at(root).run(
        "log",
        "--first-parent",
        *(() if merges else ("--no-merges",)),
        f"--max-count={limit + 1}",
        f"--format={_REC}%H{_SEP}%P{_SEP}%s",
        "--end-of-options",
        _spec(base, head),
        "--",
        timeout=120,
    )
    commits = []
    for record in out.decode("utf-8", "replace").split(_REC):
        if not record.strip():
            continue
        sha, parents, subject = [*record.rstrip("\n").split(_SEP), "", ""][:3]
        commits.append(Commit(sha, len(parents.split()), subject.strip()))
    commits.reverse()
    return commits


def merges_between(root: str, base: str | None, head: str) -> int:
    """How many merge commits the first-parent walk of `base..head` passes."""
    out = repository.at(root).run(
        "rev-list",
        "--first-parent",
        "--merges",
        "--count",
        "--end-of-options",
        _spec(base, head),
        "--",
        timeout=120,
    )
    text = out.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else 0


def _spec(base: str | None, head: str) -> str:
    return head if base is None else f"{base}..{head}"
