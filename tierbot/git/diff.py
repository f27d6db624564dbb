"""A range of a git repository -> a `Change` of `FileDiff` records.

`git diff --raw -z` first gives every file's status, modes and blob ids exactly (no quoting,
renames paired) without computing any diff; the patch is then read only for files worth parsing,
so lockfiles and huge generated files are only counted, never parsed line by line.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from typing import NamedTuple

from tierbot.errors import BadInput
from tierbot.git import repository
from tierbot.paths import language_for, skip_reason_for_path
from tierbot.records import Change, FileDiff, FileStatus, Hunk

# A file bigger than this is not parsed line by line: it is generated data, not code to review.
MAX_PARSED_BYTES = 1 << 20
_ZERO = "0" * 40
_STATUS: dict[str, FileStatus] = {
    "A": "added",
    "D": "deleted",
    "M": "modified",
    "T": "modified",
    "R": "renamed",
    "C": "copied",
    "U": "modified",
}


class RawEntry(NamedTuple):
    status: FileStatus
    old_mode: str
    new_mode: str
    old_sha: str
    new_sha: str  # all zeros when the new side is the work tree
    old_path: str | None  # for renames and copies
    path: str


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def parse_raw(out: bytes) -> list[RawEntry]:
    """Parse `git diff --raw -z`: exact paths (no quoting), modes, blob ids, renames paired."""
    tokens = out.split(b"\0")
    entries = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith(b":"):
            i += 1
            continue
        old_mode, new_mode, old_sha, new_sha, letter = _decode(tok[1:]).split()[:5]
        status = _STATUS.get(letter[0], "modified")
        if letter[0] in "RC":
            old, new = _decode(tokens[i + 1]), _decode(tokens[i + 2])
            entries.append(RawEntry(status, old_mode, new_mode, old_sha, new_sha, old, new))
            i += 3
        else:
            entries.append(
                RawEntry(status, old_mode, new_mode, old_sha, new_sha, None, _decode(tokens[i + 1]))
            )
            i += 2
    return entries


def parse_numstat(out: bytes) -> dict[str, tuple[int | None, int | None]]:
    """`git diff --numstat -z`: new path -> (added, removed), None for binary files."""
    tokens = out.split(b"\0")
    counts: dict[str, tuple[int | None, int | None]] = {}
    i = 0
    while i < len(tokens):
        if not tokens[i]:
            i += 1
            continue
        added, removed, path = _decode(tokens[i]).split("\t", 2)
        if not path:  # a rename: "a\tr\t" then the old and the new path as their own tokens
            path = _decode(tokens[i + 2])
            i += 2
        counts[path] = (
            None if added == "-" else int(added),
            None if removed == "-" else int(removed),
        )
        i += 1
    return counts


_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_SECTION = re.compile(r"^(?=diff --git )", re.MULTILINE)


def _unquote(name: str) -> str:
    """git's C-style quoting of unusual paths (tabs, quotes, non-UTF-8 bytes as octal)."""
    name = name.rstrip("\t")  # git appends a tab to names that contain spaces
    if not (len(name) >= 2 and name[0] == name[-1] == '"'):
        return name
    raw = name[1:-1].encode("utf-8", "surrogateescape").decode("unicode_escape")
    return raw.encode("latin-1", "surrogateescape").decode("utf-8", "surrogateescape")


def _side(name: str, prefix: str) -> str | None:
    name = _unquote(name)
    if name == "/dev/null":
        return None
    return name[len(prefix) :] if name.startswith(prefix) else name


# Languages where indentation is syntax: re-indenting a line there changes what it does.
_INDENT_LANGUAGES = frozenset({"python", "yaml", "make", "haskell", "nim", "coffeescript"})


def _normalise(line: str, keep_indent: bool) -> str:
    body = "".join(line.split())
    return line[: len(line) - len(line.lstrip())] + body if keep_indent else body


def _parse_section(section: str) -> tuple[FileDiff, bool]:
    """One file's part of a unified git diff.  A hand-written loop: on a 50,000-line diff it is
    several times faster than a general parser, and git's output is regular."""
    lines = section.split("\n")
    old = new = rename_from = rename_to = None
    status: FileStatus = "modified"
    binary = False
    i = 1
    while i < len(lines) and not lines[i].startswith("@@"):
        line = lines[i]
        if line.startswith("--- "):
            old = _side(line[4:], "a/")
        elif line.startswith("+++ "):
            new = _side(line[4:], "b/")
        elif line.startswith("new file mode"):
            status = "added"
        elif line.startswith("deleted file mode"):
            status = "deleted"
        elif line.startswith(("rename from ", "copy from ")):
            rename_from = _unquote(line.split(" ", 2)[2])
            status = "renamed" if line.startswith("rename") else "copied"
        elif line.startswith(("rename to ", "copy to ")):
            rename_to = _unquote(line.split(" ", 2)[2])
        elif line.startswith("Binary files ") or line == "GIT binary patch":
            binary = True
        i += 1
    if old is None and new is None and rename_to is None:
        # No ---/+++ lines (binary, mode-only): "diff --git a/X b/X" names the same path twice.
        body = lines[0][len("diff --git ") :]
        half = (len(body) - 1) // 2
        new = _side(body[half + 1 :], "b/") if body[:half][2:] == body[half + 1 :][2:] else body
    hunks: list[Hunk] = []
    added_lines: list[tuple[int, str]] = []
    minus: list[str] = []
    while i < len(lines):
        m = _HUNK.match(lines[i])
        i += 1
        if m is None:
            continue
        o_start, o_len, n_start, n_len = m.groups()
        number = int(n_start)
        added: list[int] = []
        context: list[int] = []
        removed = 0
        while i < len(lines) and not lines[i].startswith("@@"):
            line = lines[i]
            kind = line[:1]
            if kind == "+":
                text = line[1:].rstrip("\r")
                added.append(number)
                added_lines.append((number, text))
                number += 1
            elif kind == " ":
                context.append(number)
                number += 1
            elif kind == "-":
                removed += 1
                minus.append(line[1:])
            i += 1
        hunks.append(
            Hunk(
                int(o_start),
                1 if o_len is None else int(o_len),
                int(n_start),
                1 if n_len is None else int(n_len),
                tuple(added),
                tuple(context),
                removed,
            )
        )
    path = rename_to or new or old or ""
    fd = FileDiff(
        path=path,
        old_path=(rename_from or old) if status in ("renamed", "copied") else None,
        status=status,
        binary=binary,
        hunks=tuple(hunks),
        added_lines=tuple(added_lines),
        lines_removed=len(minus),
        patch=section,
    )
    return fd, status == "modified" and _whitespace_only(path, added_lines, minus)


def _whitespace_only(path: str, added: Sequence[tuple[int, str]], removed: Sequence[str]) -> bool:
    """Every removed line comes back as an added line that differs only in white space."""
    if not added or len(added) != len(removed):  # cheap test first: most changes fail it
        return False
    keep_indent = language_for(path) in _INDENT_LANGUAGES
    plus = sorted(_normalise(text, keep_indent) for _, text in added)
    return plus == sorted(_normalise(text, keep_indent) for text in removed)


def parse(diff_text: str) -> tuple[FileDiff, ...]:
    """Parse unified `git diff` text alone (e.g. a pull-request diff from an API)."""
    return tuple(fd for fd, _ in _parse_patch(diff_text))


def _parse_patch(diff_text: str) -> list[tuple[FileDiff, bool]]:
    if diff_text.strip() and not diff_text.lstrip().startswith("diff --git "):
        raise BadInput("cannot parse the diff: expected `git diff` output")
    return [_parse_section(sec) for sec in _SECTION.split(diff_text) if sec]


def _literal(path: str) -> str:
    return f":(literal){path}"


def read_change(
    cwd: str, spec: str | None, *, staged: bool = False, paths: Sequence[str] = ()
) -> Change:
    """What `git diff` shows for RANGE (SPEC §2), parsed."""
    root = repository.toplevel(cwd)
    rng, args = repository.parse_range(root, spec, staged)
    # Paths given on the command line are relative to where the user stands, as with git.
    prefix = os.path.relpath(os.path.abspath(cwd), root)
    pathspec = [p if prefix == "." else os.path.join(prefix, p) for p in paths]
    tail = ("--", *pathspec) if pathspec else ()
    # --raw compares trees only: cheap, and it tells which files deserve a real diff.
    raw = repository.run(root, "diff", *repository.DIFF_OPTS, "--raw", "-z", *args, *tail)
    entries = parse_raw(raw)
    sizes = _new_sizes(root, entries)
    wanted = [e for e in entries if _needs_patch(e, sizes.get(e.path, 0))]
    counted = [
        e
        for e in entries
        if e not in wanted
        and e.old_sha != e.new_sha
        and not _is_special(e.old_mode)
        and not _is_special(e.new_mode)
    ]

    parsed: dict[str, tuple[FileDiff, bool]] = {}
    diff_bytes = 0
    if wanted:
        out = repository.run(root, "diff", *repository.DIFF_OPTS, *args, "--", *_literals(wanted))
        diff_bytes = len(out)
        for fd, ws in _parse_patch(_decode(out)):
            parsed[fd.path] = (fd, ws)
    counts: dict[str, tuple[int | None, int | None]] = {}
    if counted:  # lockfiles and huge files: line counts only
        counts = parse_numstat(
            repository.run(
                root,
                "diff",
                *repository.DIFF_OPTS,
                "--numstat",
                "-z",
                *args,
                "--",
                *_literals(counted),
            )
        )
    files = tuple(
        _merge(e, parsed.get(e.path), counts.get(e.path), sizes.get(e.path, 0)) for e in entries
    )
    return Change(root=root, range=rng, files=files, diff_bytes=diff_bytes)


def _literals(entries: Sequence[RawEntry]) -> list[str]:
    return [f":(literal){p}" for e in entries for p in (e.old_path, e.path) if p]


def _new_sizes(root: str, entries: Sequence[RawEntry]) -> dict[str, int]:
    """Size of each file's new side: from the object store, or from disk for the work tree."""
    sizes: dict[str, int] = {}
    blobs = [e for e in entries if e.status != "deleted" and e.new_sha != _ZERO]
    if blobs:
        out = repository.run(
            root,
            "cat-file",
            "--batch-check=%(objectsize)",
            stdin="".join(f"{e.new_sha}\n" for e in blobs).encode(),
        )
        for e, line in zip(blobs, out.decode().splitlines(), strict=False):
            sizes[e.path] = int(line) if line.isdigit() else 0
    for e in entries:
        if e.status != "deleted" and e.new_sha == _ZERO:
            try:
                sizes[e.path] = os.lstat(os.path.join(root, e.path)).st_size
            except OSError:
                sizes[e.path] = 0
    return sizes


def _is_special(mode: str) -> bool:
    return mode in ("160000", "120000")


def _needs_patch(e: RawEntry, size: int) -> bool:
    if _is_special(e.old_mode) or _is_special(e.new_mode):
        return False
    if e.old_sha == e.new_sha and e.new_sha != _ZERO:  # pure rename or mode change: no hunks
        return False
    if size > MAX_PARSED_BYTES:
        return False
    return skip_reason_for_path(e.path) not in ("lockfile", "minified", "vendored")


def _merge(
    e: RawEntry,
    parsed: tuple[FileDiff, bool] | None,
    count: tuple[int | None, int | None] | None,
    size: int,
) -> FileDiff:
    mode_changed = e.old_mode != e.new_mode and e.status in ("modified", "renamed")
    added, removed = count or (0, 0)
    base = FileDiff(
        path=e.path,
        old_path=e.old_path,
        status=e.status,
        binary=count is not None and added is None,
        submodule="160000" in (e.old_mode, e.new_mode),
        symlink="120000" in (e.old_mode, e.new_mode),
        old_mode=e.old_mode if mode_changed else None,
        new_mode=e.new_mode if mode_changed else None,
        lines_removed=removed or 0,
        unparsed_added=added or 0,
        too_large=size > MAX_PARSED_BYTES,
    )
    if parsed is None:
        return base
    fd, whitespace_only = parsed
    return dataclasses.replace(
        base,
        binary=fd.binary,
        hunks=fd.hunks,
        added_lines=fd.added_lines,
        lines_removed=fd.lines_removed,
        patch=fd.patch,
        whitespace_only=whitespace_only,
    )
