"""A range of a git repository -> a `Change` of `FileDiff` records.

`git diff --raw -z` first gives every file's status, modes and blob ids exactly (no quoting,
renames paired) without computing any diff.  The patch is then read only for files worth parsing
and parsed once by unidiff into the diff model every later stage reads (`FileDiff.patch`,
`FileDiff.new_lines`); deleted files, lockfiles, huge and generated files are only counted.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from tierbot.errors import BadInput
from tierbot.git import repository
from tierbot.paths import language_for, printable, skip_reason_for_path
from tierbot.records import Change, FileDiff, FileStatus

if TYPE_CHECKING:
    from unidiff.patch import PatchedFile

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
    unmerged: bool = False


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
            path = _decode(tokens[i + 1])
            entries.append(
                RawEntry(status, old_mode, new_mode, old_sha, new_sha, None, path, letter[0] == "U")
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


# Languages where indentation is syntax: re-indenting a line there changes what it does.
INDENT_LANGUAGES = frozenset({"python", "yaml", "make", "haskell", "nim", "coffeescript"})


def normalise_whitespace(line: str, keep_indent: bool) -> str:
    body = "".join(line.split())
    return line[: len(line) - len(line.lstrip())] + body if keep_indent else body


def _whitespace_only(path: str, added: Sequence[tuple[int, str]], removed: Sequence[str]) -> bool:
    """Every removed line comes back as an added line that differs only in white space."""
    if not added or len(added) != len(removed):  # cheap test first: most changes fail it
        return False
    keep_indent = language_for(path) in INDENT_LANGUAGES
    plus = sorted(normalise_whitespace(text, keep_indent) for _, text in added)
    return plus == sorted(normalise_whitespace(text, keep_indent) for text in removed)


def _text(value: str) -> str:
    return value.rstrip("\n").rstrip("\r")


def _from_patch(pf: PatchedFile, base: FileDiff) -> FileDiff:
    """`base` (what --raw said) completed with the parsed patch of the same file."""
    added: list[tuple[int, str]] = []
    removed: list[str] = []
    chars = 0
    for hunk in pf:
        for line in hunk:
            chars += len(line.value) + 1
            if line.line_type == "+":
                added.append((line.target_line_no or 0, _text(line.value)))
            elif line.line_type == "-":
                removed.append(_text(line.value))
    whitespace = base.status == "modified" and _whitespace_only(base.path, added, removed)
    return dataclasses.replace(
        base,
        binary=base.binary or bool(pf.is_binary_file),
        patch=pf,
        added_lines=tuple(added),
        lines_removed=len(removed),
        patch_chars=chars,
        whitespace_only=whitespace,
    )


def _patch_set(text: str) -> list[PatchedFile]:
    from unidiff.errors import UnidiffParseError
    from unidiff.patch import PatchSet

    try:
        return list(PatchSet(text))
    except UnidiffParseError as e:
        raise BadInput(f"cannot parse the diff: {printable(str(e))[:120]}") from None


def _side(name: str) -> str | None:
    """A unidiff file name without its a/ or b/ prefix (None for /dev/null)."""
    if name == "/dev/null":
        return None
    if len(name) >= 2 and name[0] == name[-1] == '"':
        raw = name[1:-1].encode("utf-8", "surrogateescape").decode("unicode_escape")
        name = raw.encode("latin-1", "surrogateescape").decode("utf-8", "surrogateescape")
    return name[2:] if name[:2] in ("a/", "b/") else name


def parse(diff_text: str) -> tuple[FileDiff, ...]:
    """Parse unified `git diff` text alone (e.g. a pull request's diff from the API)."""
    if diff_text.strip() and not diff_text.lstrip().startswith("diff --git "):
        raise BadInput("cannot parse the diff: expected `git diff` output")
    files = []
    for pf in _patch_set(diff_text):
        old, new = _side(pf.source_file), _side(pf.target_file)
        status: FileStatus = "modified"
        if pf.is_added_file:
            status = "added"
        elif pf.is_removed_file:
            status = "deleted"
        elif pf.is_rename:
            status = "renamed"
        path = new or old or ""
        base = FileDiff(path=path, old_path=old if status == "renamed" else None, status=status)
        files.append(_from_patch(pf, base))
    return tuple(files)


def read_change(
    cwd: str, spec: str | Sequence[str] | None, *, staged: bool = False, paths: Sequence[str] = ()
) -> Change:
    """What `git diff` shows for RANGE (SPEC §2), parsed."""
    repo = repository.discover(cwd)
    root = repo.root
    revs = [spec] if isinstance(spec, str) else list(spec or ())
    rng, args = repo.parse_range(revs, staged)
    # Paths given on the command line are relative to where the user stands, as with git.
    prefix = os.path.relpath(os.path.realpath(os.path.abspath(cwd)), root)
    pathspec = [p if prefix == "." else os.path.join(prefix, p) for p in paths]
    tail = ("--", *pathspec) if pathspec else ()
    # --raw compares trees only: cheap, and it tells which files deserve a real diff.
    entries = parse_raw(repo.run("diff", *repository.DIFF_OPTS, "--raw", "-z", *args, *tail))
    unmerged = sorted({e.path for e in entries if e.unmerged})
    if unmerged:
        shown = ", ".join(printable(p) for p in unmerged[:5])
        more = f" and {len(unmerged) - 5} more" if len(unmerged) > 5 else ""
        raise BadInput(
            f"a merge or rebase is in progress with unmerged files ({shown}{more}): resolve "
            "them (git add) before reviewing"
        )
    sizes = _new_sizes(repo, entries)
    wanted = [e for e in entries if _needs_patch(e, sizes.get(e.path, 0))]
    patched = {id(e) for e in wanted}  # a set: thousands of files make a list quadratic
    counted = [
        e
        for e in entries
        if id(e) not in patched
        and e.old_sha != e.new_sha
        and not _is_special(e.old_mode)
        and not _is_special(e.new_mode)
    ]
    bases = {e.path: _base(e, sizes.get(e.path, 0)) for e in entries}
    parsed: dict[str, FileDiff] = {}
    diff_bytes = 0
    if wanted:
        out = repo.run("diff", *repository.PATCH_OPTS, *args, "--", *_literals(wanted))
        diff_bytes = len(out)
        parsed = _match(wanted, _patch_set(_decode(out)), bases)
    if counted:  # lockfiles and huge files: line counts only
        out = repo.run(
            "diff", *repository.DIFF_OPTS, "--numstat", "-z", *args, "--", *_literals(counted)
        )
        for path, (added, removed) in parse_numstat(out).items():
            if path in bases:
                bases[path] = dataclasses.replace(
                    bases[path],
                    binary=added is None,
                    lines_removed=removed or 0,
                    unparsed_added=added or 0,
                )
    files = tuple(parsed.get(e.path, bases[e.path]) for e in entries)
    return Change(root=root, range=rng, files=files, diff_bytes=diff_bytes)


def _match(
    wanted: Sequence[RawEntry], patched: Sequence[PatchedFile], bases: dict[str, FileDiff]
) -> dict[str, FileDiff]:
    """Pair each parsed file with its --raw entry.  Both lists come from one git diff queue in
    the same order; a mismatch (never seen) falls back to matching by name."""
    out: dict[str, FileDiff] = {}
    if len(wanted) == len(patched):
        for e, pf in zip(wanted, patched, strict=True):
            out[e.path] = _from_patch(pf, bases[e.path])
        return out
    by_name: dict[str, PatchedFile] = {
        (_side(pf.target_file) or _side(pf.source_file) or ""): pf for pf in patched
    }
    for e in wanted:
        found = by_name.get(e.path)
        if found is not None:
            out[e.path] = _from_patch(found, bases[e.path])
    return out


def _literals(entries: Sequence[RawEntry]) -> list[str]:
    return [f":(literal){p}" for e in entries for p in (e.old_path, e.path) if p]


def _new_sizes(repo: repository.Repository, entries: Sequence[RawEntry]) -> dict[str, int]:
    """Size of each file's new side: from the object store, or from disk for the work tree."""
    blobs = [e for e in entries if e.status != "deleted" and e.new_sha != _ZERO]
    by_sha = repo.object_sizes({e.new_sha for e in blobs})
    sizes = {e.path: by_sha.get(e.new_sha, 0) for e in blobs}
    for e in entries:
        if e.status != "deleted" and e.new_sha == _ZERO:
            try:
                sizes[e.path] = os.lstat(os.path.join(repo.root, e.path)).st_size
            except OSError:
                sizes[e.path] = 0
    return sizes


def _is_special(mode: str) -> bool:
    return mode in ("160000", "120000")


def _needs_patch(e: RawEntry, size: int) -> bool:
    if e.status == "deleted":
        return False  # nothing of it can be commented on or reviewed line by line: count it
    if _is_special(e.old_mode) or _is_special(e.new_mode):
        return False
    if e.old_sha == e.new_sha and e.new_sha != _ZERO:  # pure rename or mode change: no hunks
        return False
    if size > MAX_PARSED_BYTES:
        return False
    return skip_reason_for_path(e.path) not in ("lockfile", "minified", "vendored")


def _base(e: RawEntry, size: int) -> FileDiff:
    mode_changed = e.old_mode != e.new_mode and e.status in ("modified", "renamed")
    return FileDiff(
        path=e.path,
        old_path=e.old_path,
        status=e.status,
        submodule="160000" in (e.old_mode, e.new_mode),
        symlink="120000" in (e.old_mode, e.new_mode),
        old_mode=e.old_mode if mode_changed else None,
        new_mode=e.new_mode if mode_changed else None,
        too_large=size > MAX_PARSED_BYTES,
    )
