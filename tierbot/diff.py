"""A range of a git repository -> a `Change` of `FileDiff` records.

Two git calls: `--raw --numstat -z` gives every file's status, modes and line counts exactly
(no quoting, renames paired); the patch is then read only for files worth parsing, so lockfiles,
binaries and huge generated files never reach unidiff.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

from tierbot import gitio
from tierbot.errors import BadInput
from tierbot.languages import skip_reason_for_path
from tierbot.records import Change, FileDiff, FileStatus, Hunk

# A file with more changed lines than this is not parsed line by line (generated or data).
MAX_PARSED_LINES = 20_000
_STATUS: dict[str, FileStatus] = {"A": "added", "D": "deleted", "M": "modified", "T": "modified",
                                  "R": "renamed", "C": "copied", "U": "modified"}


class RawEntry(NamedTuple):
    status: FileStatus
    old_mode: str
    new_mode: str
    old_path: str | None
    path: str
    added: int | None  # None for binary
    removed: int | None
    score: int  # rename/copy similarity


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def parse_raw(out: bytes) -> list[RawEntry]:
    """Parse `git diff --raw --numstat -z` output."""
    tokens = out.split(b"\0")
    raws: list[tuple[str, str, str, str | None, str, int]] = []
    counts: list[tuple[int | None, int | None]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok:
            i += 1
            continue
        if tok.startswith(b":"):
            meta = _decode(tok[1:]).split()
            old_mode, new_mode, letter = meta[0], meta[1], meta[4]
            score = int(letter[1:]) if len(letter) > 1 else 0
            if letter[0] in "RC":
                old, new = _decode(tokens[i + 1]), _decode(tokens[i + 2])
                raws.append((letter[0], old_mode, new_mode, old, new, score))
                i += 3
            else:
                raws.append((letter[0], old_mode, new_mode, None, _decode(tokens[i + 1]), score))
                i += 2
        else:
            added, removed, rest = _decode(tok).split("\t", 2)
            a = None if added == "-" else int(added)
            r = None if removed == "-" else int(removed)
            counts.append((a, r))
            i += 1 if rest else 3  # renames: "a\tr\t" then old and new as their own tokens
    entries = []
    for raw_entry, (added_n, removed_n) in zip(raws, counts, strict=True):
        letter, old_mode, new_mode, old_p, new_p, score = raw_entry
        entries.append(RawEntry(_STATUS.get(letter, "modified"), old_mode, new_mode, old_p, new_p,
                                added_n, removed_n, score))
    return entries


def _hunks(patched_file: object) -> tuple[tuple[Hunk, ...], tuple[tuple[int, str], ...], int]:
    hunks: list[Hunk] = []
    added_lines: list[tuple[int, str]] = []
    removed_total = 0
    for h in patched_file:  # type: ignore[attr-defined]
        added: list[int] = []
        context: list[int] = []
        removed = 0
        for line in h:
            kind = line.line_type
            if kind == "+":
                added.append(line.target_line_no)
                added_lines.append((line.target_line_no, line.value.rstrip("\r\n")))
            elif kind == " ":
                context.append(line.target_line_no)
            elif kind == "-":
                removed += 1
        removed_total += removed
        hunks.append(Hunk(h.source_start, h.source_length, h.target_start, h.target_length,
                          tuple(added), tuple(context), removed))
    return tuple(hunks), tuple(added_lines), removed_total


def _whitespace_only(patched_file: object) -> bool:
    """Every removed line comes back as an added line that differs only in white space."""
    plus: list[str] = []
    minus: list[str] = []
    for h in patched_file:  # type: ignore[attr-defined]
        for line in h:
            if line.line_type == "+":
                plus.append("".join(line.value.split()))
            elif line.line_type == "-":
                minus.append("".join(line.value.split()))
    return bool(plus or minus) and sorted(plus) == sorted(minus)


def parse(diff_text: str) -> tuple[FileDiff, ...]:
    """Parse unified diff text alone (e.g. a pull-request diff from an API)."""
    return tuple(fd for fd, _ in _parse_patch(diff_text))


def _parse_patch(diff_text: str) -> list[tuple[FileDiff, bool]]:
    from unidiff.errors import UnidiffParseError
    from unidiff.patch import PatchSet

    try:
        patch = PatchSet.from_string(diff_text)
    except UnidiffParseError as e:
        raise BadInput(f"cannot parse the diff: {e}") from None
    results = []
    for pf in patch:
        source = pf.source_file[2:] if pf.source_file.startswith("a/") else None
        target = pf.target_file[2:] if pf.target_file.startswith("b/") else None
        if pf.is_added_file:
            status: FileStatus = "added"
        elif pf.is_removed_file:
            status = "deleted"
        elif pf.is_rename:
            status = "renamed"
        else:
            status = "modified"
        path = target or source or pf.path
        hunks, added_lines, removed = _hunks(pf)
        fd = FileDiff(
            path=path.rstrip("\t"),
            old_path=source.rstrip("\t") if status == "renamed" and source else None,
            status=status,
            binary=pf.is_binary_file,
            hunks=hunks,
            added_lines=added_lines,
            lines_removed=removed,
            patch=str(pf),
        )
        results.append((fd, _whitespace_only(pf) if status == "modified" else False))
    return results


def _literal(path: str) -> str:
    return f":(literal){path}"


def read_change(
    cwd: str, spec: str | None, *, staged: bool = False, paths: Sequence[str] = ()
) -> Change:
    """What `git diff` shows for RANGE (SPEC §2), parsed."""
    root = gitio.toplevel(cwd)
    rng, args = gitio.parse_range(root, spec, staged)
    # Paths given on the command line are relative to where the user stands, as with git.
    prefix = os.path.relpath(os.path.abspath(cwd), root)
    pathspec = [p if prefix == "." else os.path.join(prefix, p) for p in paths]
    tail = ("--", *pathspec) if pathspec else ()
    raw = gitio.run(root, "diff", *gitio.DIFF_OPTS, "--raw", "--numstat", "-z", *args, *tail)
    entries = parse_raw(raw)

    parse_paths: list[str] = []
    for e in entries:
        if _needs_patch(e):
            parse_paths.extend(p for p in (e.old_path, e.path) if p)
    parsed: dict[str, tuple[FileDiff, bool]] = {}
    diff_bytes = 0
    if parse_paths:
        out = gitio.run(root, "diff", *gitio.DIFF_OPTS, *args, "--",
                        *(_literal(p) for p in parse_paths))
        diff_bytes = len(out)
        for fd, ws in _parse_patch(_decode(out)):
            parsed[fd.path] = (fd, ws)

    files = []
    for e in entries:
        files.append(_merge(e, parsed.get(e.path)))
    return Change(root=root, range=rng, files=tuple(files), diff_bytes=diff_bytes)


def _is_special(mode: str) -> bool:
    return mode in ("160000", "120000")


def _needs_patch(e: RawEntry) -> bool:
    if e.added is None or _is_special(e.old_mode) or _is_special(e.new_mode):
        return False
    if e.added + (e.removed or 0) == 0:  # pure rename or mode change: no hunks
        return False
    if e.added + (e.removed or 0) > MAX_PARSED_LINES:
        return False
    return skip_reason_for_path(e.path) not in ("lockfile", "minified", "vendored")


def _merge(e: RawEntry, parsed: tuple[FileDiff, bool] | None) -> FileDiff:
    submodule = "160000" in (e.old_mode, e.new_mode)
    symlink = "120000" in (e.old_mode, e.new_mode)
    mode_changed = e.old_mode != e.new_mode and e.status in ("modified", "renamed")
    base = FileDiff(
        path=e.path,
        old_path=e.old_path,
        status=e.status,
        binary=e.added is None,
        submodule=submodule,
        symlink=symlink,
        old_mode=e.old_mode if mode_changed else None,
        new_mode=e.new_mode if mode_changed else None,
        lines_removed=e.removed or 0,
        unparsed_added=e.added or 0,
    )
    if parsed is None:
        return base
    fd, whitespace_only = parsed
    return FileDiff(
        path=e.path, old_path=e.old_path, status=e.status, binary=fd.binary,
        submodule=submodule, symlink=symlink, old_mode=base.old_mode, new_mode=base.new_mode,
        hunks=fd.hunks, added_lines=fd.added_lines, lines_removed=fd.lines_removed,
        patch=fd.patch, whitespace_only=whitespace_only,
    )
