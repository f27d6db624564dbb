"""The repository layer: GitPython for everything tierbot asks of git.

`git.Repo` finds the repository (from any subdirectory or worktree), resolves revisions and merge
bases, and reads blobs through its persistent `cat-file` processes.  The plumbing GitPython does not
model (`diff --raw -z`, `log` with a format) goes through its command layer with one environment and
pinned diff options, so local hunks match what GitHub shows.  No other module starts git.

Git's failures become `BadInput` with one line a user can act on (bad revision, missing object,
corrupt index, a path outside the repository); anything else is a `GitError`.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from tierbot.errors import BadInput
from tierbot.records import EMPTY_TREE as EMPTY_TREE  # re-exported: the git layer's name for it
from tierbot.records import Range
from tierbot.words import plural

if TYPE_CHECKING:
    import git

# Readable non-ASCII paths; never page, colour, or run external diff/textconv programs.
CONFIG = ("-c", "core.quotePath=false", "-c", "color.ui=never", "-c", "diff.noprefix=false")
# Every diff: rename detection on, no colour, no external diff or textconv program.
DIFF_OPTS = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "-M",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--submodule=short",
)
# A patch is pinned so its hunks are the ones GitHub shows: three lines of context, the default
# (Myers) algorithm, no user setting that merges hunks.  (-U implies a patch, so only here.)
PATCH_OPTS = (*DIFF_OPTS, "-U3", "--inter-hunk-context=0", "--diff-algorithm=default")
_HEX = re.compile(r"[0-9a-fA-F]{4,64}")
_ANCESTOR = re.compile(r"(.*?)(?:~\d*|\^\d*)+")  # HEAD~3, main^^, @~2


class GitError(Exception):
    """git failed in a way the user cannot act on (a bug, or a broken installation)."""

    def __init__(self, args: Sequence[str], code: int | str | None, stderr: str) -> None:
        first = (stderr.strip().splitlines() or [""])[-1]
        super().__init__(f"git {' '.join(args[:3])} exited {code}: {first}")
        self.code = code
        self.stderr = stderr


def environment() -> dict[str, str]:
    # GIT_INDEX_FILE and friends are kept on purpose: inside `git commit` they name the index that
    # is about to be committed.  LC_ALL=C keeps git's messages parseable.
    return {**os.environ, "LC_ALL": "C", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0"}


class Repository:
    """One repository, opened once per process (see `at`).  Thread-safe: GitPython's persistent
    cat-file processes are shared, so reads take a lock."""

    def __init__(self, repo: git.Repo) -> None:
        self.repo = repo
        self.root = str(repo.working_tree_dir)
        self._lock = threading.Lock()

    # --- the command layer ------------------------------------------------------------------

    def run(self, *args: str, check: bool = True, timeout: float | None = None) -> bytes:
        """`git <args>` through GitPython's command layer; stdout as bytes."""
        from git.exc import GitCommandError, GitCommandNotFound

        try:
            out = self.repo.git.execute(
                ["git", *CONFIG, *args],
                stdout_as_string=False,
                strip_newline_in_stdout=False,
                env=environment(),
                kill_after_timeout=timeout,
            )
        except GitCommandNotFound:
            raise BadInput("git is not installed or not on PATH") from None
        except GitCommandError as e:
            if not check:
                return b""
            raise _explain(args, e) from None
        return out if isinstance(out, bytes) else str(out).encode("utf-8", "surrogateescape")

    # --- revisions --------------------------------------------------------------------------

    def resolve(self, rev: str) -> str | None:
        """The commit sha `rev` names, or None.  GitPython's own parser first; git's for the
        syntax GitPython does not model (`@{upstream}`, `:/message`, dates)."""
        from gitdb.exc import BadName, BadObject

        if not rev or rev.startswith("-") or "\0" in rev:
            return None
        try:
            sha = str(self.repo.commit(rev).hexsha)
            # A full sha resolves without a lookup: make sure the commit is really here.
            with self._lock:
                if self.repo.is_valid_object(sha, "commit"):
                    return sha
        except (BadName, BadObject, ValueError, IndexError, TypeError, AttributeError):
            pass
        except Exception:  # GitPython raises a handful of other types on odd syntax
            pass
        out = self.run(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False
        )
        sha = out.decode("ascii", "replace").strip()
        return sha if _HEX.fullmatch(sha) else None

    def commit(self, rev: str) -> str:
        """The commit sha `rev` names, or BadInput saying why not."""
        sha = self.resolve(rev)
        if sha is not None:
            return sha
        if self.resolve("HEAD") is None:
            raise BadInput(f"bad revision '{_shown(rev)}': the repository has no commits yet")
        # `HEAD~1` names its sha through HEAD even when that commit itself is not here.
        named = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", rev, check=False)
        sha = named.decode("ascii", "replace").strip()
        if _HEX.fullmatch(sha):
            with self._lock:
                present = self.repo.is_valid_object(sha)
            if not present:
                raise _missing_object(sha)
        raise BadInput(f"bad revision '{_shown(rev)}'{self._past_the_start(rev)}")

    def _past_the_start(self, rev: str) -> str:
        """Why `REV~N` names nothing: a shallow clone, or less history than N."""
        m = _ANCESTOR.fullmatch(rev)
        name = (m.group(1) or "HEAD") if m else ""
        start = self.resolve(name) if name else None
        if start is None:
            return ""
        if self.is_shallow():
            return ": this clone is shallow (`git fetch --unshallow` fetches the rest of history)"
        out = self.run("rev-list", "--count", "--first-parent", start, check=False)
        count = int(out.strip() or 0)
        if not count:
            return ""
        name = _shown(name)
        return f": {name} has {plural(count, 'commit')}, the oldest is {name}~{count - 1}"

    def parents(self, sha: str) -> list[str]:
        return [str(p.hexsha) for p in self.repo.commit(sha).parents]

    def merge_base(self, a: str, b: str) -> str | None:
        try:
            bases = self.repo.merge_base(a, b)
        except Exception:
            return None
        return str(bases[0].hexsha) if bases else None

    def is_ancestor(self, old: str, new: str) -> bool:
        try:
            return bool(self.repo.is_ancestor(self.repo.commit(old), self.repo.commit(new)))
        except Exception:
            return False

    def has(self, *shas: str) -> bool:
        """Whether every sha names a commit present in this repository."""
        return all(_HEX.fullmatch(s) and self.resolve(s) == s.lower() for s in shas)

    def is_shallow(self) -> bool:
        return os.path.exists(os.path.join(self.repo.git_dir, "shallow"))

    def fetch(self, *shas: str) -> bool:
        """Fetch commits a shallow checkout lacks from `origin`; never prompts for credentials."""
        if not shas or not all(_HEX.fullmatch(s) for s in shas):
            return False  # only hex shas ever reach the command line (no option injection)
        try:
            self.run("fetch", "--no-tags", "--quiet", "origin", "--end-of-options", *shas)
        except (GitError, BadInput):
            return False
        return self.has(*shas)

    # --- blobs ------------------------------------------------------------------------------

    def blobs(self, objects: Iterable[str]) -> list[bytes | None]:
        """Contents of `rev:path` (or `:path` for the index) objects, None where there is no blob
        (missing, a directory, a submodule), through GitPython's persistent cat-file process."""
        out: list[bytes | None] = []
        with self._lock:
            for name in objects:
                out.append(self._blob(name))
        return out

    def _blob(self, name: str) -> bytes | None:
        if "\n" in name:
            return None  # cat-file's batch protocol is line based
        try:
            _, kind, _, data = self.repo.git.get_object_data(name)
        except Exception:  # missing objects answer ValueError; a dead process OSError
            return None
        return data if kind in (b"blob", "blob") else None

    def object_sizes(self, shas: Iterable[str]) -> dict[str, int]:
        """Size of each object by sha (0 where unknown)."""
        sizes: dict[str, int] = {}
        with self._lock:
            for sha in shas:
                try:
                    sizes[sha] = int(self.repo.git.get_object_header(sha)[2])
                except Exception:
                    sizes[sha] = 0
        return sizes

    def text_at(self, rev: str, path: str) -> str | None:
        """A file's text at a commit through `Commit.tree` (e.g. settings from a PR's base)."""
        try:
            blob = self.repo.commit(rev).tree / path
            data = blob.data_stream.read()
        except Exception:  # KeyError: no such path; BadName/ValueError: no such commit
            return None
        return bytes(data).decode("utf-8", "replace")

    # --- ranges -----------------------------------------------------------------------------

    def parse_range(self, revs: Sequence[str], staged: bool) -> tuple[Range, tuple[str, ...]]:
        """Read RANGE as `git diff` does (SPEC §2); return the Range and the `git diff` arguments.

        none: uncommitted changes against HEAD; REV: REV against the work tree; `A..B`, `A B`: A
        against B; `A...B`: their merge base against B; `A^!`, `A^@`: A's (first) parent against A.
        """
        revs = [r for r in revs if r]
        spec = " ".join(revs)
        if staged:
            if revs:
                raise BadInput("--staged takes no RANGE (it compares the index with HEAD)")
            base = self.resolve("HEAD") or EMPTY_TREE  # the first commit of a repository
            return Range("--staged", base, None), ("--cached", base)
        if len(revs) > 2:
            raise BadInput(f"bad range '{_shown(spec)}': give at most two revisions")
        if len(revs) == 2:
            if any(".." in r for r in revs):
                raise BadInput(f"bad range '{_shown(spec)}': use either A B or A..B, not both")
            a, b = self.commit(revs[0]), self.commit(revs[1])
            return Range(spec, a, b), (a, b)
        if not revs:
            head = self.resolve("HEAD")
            if head is None:
                raise BadInput(
                    "the repository has no commits yet: use --staged to review the index"
                )
            return Range("", head, None), (head,)
        rev = revs[0]
        if rev.endswith(("^!", "^@")) and len(rev) > 2:
            head = self.commit(rev[:-2])
            parents = self.parents(head)
            base = parents[0] if parents else EMPTY_TREE
            return Range(rev, base, head), (base, head)
        if "..." in rev:
            left, right = rev.split("...", 1)
            if "..." in right or ".." in right:
                raise BadInput(f"bad range '{_shown(rev)}': a range has two ends")
            a, b = self.commit(left or "HEAD"), self.commit(right or "HEAD")
            fork = self.merge_base(a, b)
            if fork is None:
                raise BadInput(f"bad range '{_shown(rev)}': the two sides have no common ancestor")
            return Range(rev, fork, b), (fork, b)
        if ".." in rev:
            left, right = rev.split("..", 1)
            if ".." in right:
                raise BadInput(f"bad range '{_shown(rev)}': a range has two ends")
            a, b = self.commit(left or "HEAD"), self.commit(right or "HEAD")
            return Range(rev, a, b), (a, b)
        a = self.commit(rev)
        return Range(rev, a, None), (a,)


@functools.lru_cache(maxsize=16)
def _open(root: str) -> Repository:
    import git

    return Repository(git.Repo(root))


def discover(cwd: str) -> Repository:
    """The repository holding `cwd` (any subdirectory, or a linked worktree)."""
    import git

    if not os.path.isdir(cwd):
        raise BadInput(f"not a directory: {cwd}")
    try:
        repo = git.Repo(cwd, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise BadInput(f"not a git repository: {os.path.abspath(cwd)}") from None
    if repo.bare or repo.working_tree_dir is None:
        raise BadInput(f"not a work tree (a bare repository): {os.path.abspath(cwd)}")
    root = os.path.realpath(str(repo.working_tree_dir))
    return _open(root)


def at(root: str) -> Repository:
    """The repository whose work tree is `root` (as found by `discover`)."""
    return _open(os.path.realpath(root))


def toplevel(cwd: str) -> str:
    return discover(cwd).root


def _shown(value: str) -> str:
    from tierbot.paths import printable

    value = printable(value)
    return value if len(value) <= 100 else value[:99] + "…"


# What git says when the repository itself is damaged or incomplete, and what the user can do.
_MISSING = re.compile(
    r"(?:bad object|unable to read|missing (?:blob|tree|commit)|did not receive expected object"
    r"|could not read|invalid object)\s*([0-9a-f]{7,64})?",
    re.I,
)


def _explain(args: Sequence[str], e: Exception) -> Exception:
    stderr = str(getattr(e, "stderr", "") or "")
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    text = " ".join(stderr.split())
    low = text.lower()
    if "index file" in low and ("corrupt" in low or "bad signature" in low or "smaller" in low):
        return BadInput(
            "the index (.git/index) is corrupt: run `git reset` to rebuild it (keeps your files)"
        )
    if "outside repository" in low:
        m = re.search(r"'([^']*)' is outside repository", text)
        what = f"'{_shown(m.group(1))}' " if m else ""
        return BadInput(f"path {what}is outside the repository")
    m = _MISSING.search(text)
    if m is not None:
        return _missing_object(m.group(1))
    return GitError(args, getattr(e, "status", None), text)


def _missing_object(sha: str | None) -> BadInput:
    obj = f" {sha}" if sha else ""
    return BadInput(
        f"the repository is missing an object{obj} (a partial or damaged clone): "
        "run `git fetch` (or `git fsck` to check it)"
    )
