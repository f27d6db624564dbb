"""Every git call tierbot makes, as plain subprocesses.

Like pre-commit we shell out to git rather than import GitPython: it keeps a dry run's start-up
cheap and gives us the exact bytes git prints (non-UTF-8 content, -z path lists).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence

from tierbot.errors import BadInput
from tierbot.records import Range

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# Readable non-ASCII paths; never page, colour or run external diff/textconv programs.
GIT = ("git", "-c", "core.quotePath=false", "-c", "color.ui=never", "--no-pager")
DIFF_OPTS = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "-M",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--submodule=short",
)


class GitError(Exception):
    def __init__(self, args: Sequence[str], code: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} exited {code}: {stderr.strip()}")
        self.code = code
        self.stderr = stderr


def _env() -> dict[str, str]:
    # GIT_INDEX_FILE and friends are kept on purpose: inside `git commit` they name the index
    # that is about to be committed.  LC_ALL=C keeps git's messages parseable.
    return {**os.environ, "LC_ALL": "C"}


def run(cwd: str, *args: str, stdin: bytes | None = None, check: bool = True) -> bytes:
    try:
        proc = subprocess.run((*GIT, *args), cwd=cwd, input=stdin, capture_output=True, env=_env())
    except FileNotFoundError:
        raise BadInput("git is not installed or not on PATH") from None
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return proc.stdout


def text(cwd: str, *args: str) -> str:
    return run(cwd, *args).decode("utf-8", "surrogateescape").strip()


def toplevel(cwd: str) -> str:
    if not os.path.isdir(cwd):
        raise BadInput(f"not a directory: {cwd}")
    try:
        return text(cwd, "rev-parse", "--show-toplevel")
    except GitError:
        raise BadInput(f"not a git repository: {os.path.abspath(cwd)}") from None


def resolve(root: str, rev: str) -> str | None:
    """The commit sha `rev` names, or None."""
    if not rev or rev.startswith("-"):
        return None
    out = run(
        root,
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        f"{rev}^{{commit}}",
        check=False,
    )
    return out.decode().strip() or None


def _commit(root: str, rev: str) -> str:
    sha = resolve(root, rev)
    if sha is None:
        if rev.startswith("HEAD") and resolve(root, "HEAD") is None:
            raise BadInput(f"bad revision '{rev}': the repository has no commits yet")
        raise BadInput(f"bad revision '{rev}'")
    return sha


def parse_range(root: str, spec: str | None, staged: bool) -> tuple[Range, tuple[str, ...]]:
    """Read RANGE as `git diff` does; return the Range and the `git diff` arguments for it."""
    if staged:
        if spec:
            raise BadInput("--staged takes no RANGE (it compares the index with HEAD)")
        base = resolve(root, "HEAD") or EMPTY_TREE  # the first commit of a repository
        return Range("--staged", base, None), ("--cached", base)
    if not spec:
        head = resolve(root, "HEAD")
        if head is None:
            raise BadInput("the repository has no commits yet: use --staged to review the index")
        return Range("", head, None), (head,)
    if "..." in spec:
        left, right = spec.split("...", 1)
        a, b = _commit(root, left or "HEAD"), _commit(root, right or "HEAD")
        out = run(root, "merge-base", a, b, check=False).decode().strip()
        if not out:
            raise BadInput(f"bad range '{spec}': the two sides have no common ancestor")
        return Range(spec, out, b), (out, b)
    if ".." in spec:
        left, right = spec.split("..", 1)
        a, b = _commit(root, left or "HEAD"), _commit(root, right or "HEAD")
        return Range(spec, a, b), (a, b)
    a = _commit(root, spec)
    return Range(spec, a, None), (a,)


def cat_files(root: str, objects: Iterable[str]) -> list[bytes | None]:
    """Contents of `rev:path` objects with one `git cat-file --batch` process (None if missing)."""
    names = list(objects)
    if not names:
        return []
    out = run(
        root,
        "cat-file",
        "--batch",
        stdin="".join(f"{n}\n" for n in names).encode("utf-8", "surrogateescape"),
    )
    results: list[bytes | None] = []
    pos = 0
    for _ in names:
        eol = out.index(b"\n", pos)
        header = out[pos:eol].split()
        pos = eol + 1
        if len(header) < 3 or header[1] != b"blob":
            # "missing", or a tree/commit (submodule); either way there is no text to read
            if len(header) >= 3 and header[1] != b"missing":
                pos += int(header[2]) + 1
            results.append(None)
            continue
        size = int(header[2])
        results.append(out[pos : pos + size])
        pos += size + 1
    return results
