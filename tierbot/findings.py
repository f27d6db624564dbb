"""Findings land only where they belong (SPEC §5): anchoring, severity names, dedupe, fingerprints.

Model output is untrusted data: paths may carry `./`, `a/`/`b/` or absolute prefixes, lines may be
None, negative, strings or floats, severities may be any word.  Nothing here raises on such
values: a finding that cannot be placed goes to the summary and is counted in a note.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from tierbot.records import FileDiff, Filter, Finding, Severity, severity_rank
from tierbot.words import plural

_SEVERITY_WORDS: dict[str, Severity] = {
    **{w: "critical" for w in ("critical", "blocker", "fatal", "emergency", "crit", "sev0", "p0")},
    **{
        w: "high"
        for w in ("high", "error", "err", "major", "important", "serious", "severe", "sev1", "p1")
    },
    **{
        w: "medium"
        for w in ("medium", "med", "warning", "warn", "moderate", "normal", "sev2", "p2")
    },
    **{w: "low" for w in ("low", "minor", "sev3", "p3")},
    **{
        w: "info"
        for w in (
            "info",
            "information",
            "informational",
            "note",
            "notice",
            "nit",
            "nitpick",
            "suggestion",
            "style",
            "trivial",
            "hint",
            "sev4",
            "p4",
        )
    },
}
_BARE_NUMBER = re.compile(r"\b\d+\b")
_NON_WORD = re.compile(r"[^\w]+")


def normalise_severity(value: object) -> Severity | None:
    """A severity name from any common vocabulary ("warning", "Major", "nit" ...), or None."""
    if not isinstance(value, str):
        return None
    word = value.strip().lower().strip(".:!*`'\"[]() ")
    return _SEVERITY_WORDS.get(word)


def _normal_title(title: str) -> str:
    # Line numbers in a model's title ("unused variable on line 42") must not split a finding.
    return _NON_WORD.sub(" ", _BARE_NUMBER.sub(" ", title.lower())).strip()


def _normal_text(text: str) -> str:
    # Re-indenting or re-wrapping a line must not change which finding it carries.
    return "".join(text.split())


def fingerprint(f: Finding, line_text: str | None = None) -> str:
    """16 hex chars, stable across runs, rewording and unrelated line moves.

    A finding on a line is the path, the category and the whitespace-free text of the anchored
    line: the same finding on a moved line keeps its fingerprint, and a model that words its
    title differently on the next run does not make it a new finding.  Without the line's text
    the line number stands in, and a file-level finding (no line) has only its normalised title
    to tell it apart.  `anchor` adds an occurrence index when several findings share all of
    that (the same line text repeated in one file), so fingerprints within one review are unique.
    """
    if line_text is not None:
        where = "text:" + _normal_text(line_text)
    elif isinstance(f.line, int) and not isinstance(f.line, bool):
        where = f"line:{f.line}"
    else:
        where = "file:" + _normal_title(str(f.title))
    key = "\0".join((_clean_path(f.path) or "", str(f.category).strip().lower(), where))
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


# A finding re-reported up to this many lines away, in the same file and category, is taken
# for the one already posted (models shift their anchor by a line or two between runs).
NEAR_LINES = 3


def near_key(f: Finding) -> str:
    """What two findings must share to be taken for one when they sit within NEAR_LINES."""
    basis = "\0".join((_clean_path(f.path) or "", str(f.category).strip().lower()))
    return hashlib.sha256(basis.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def line_key(text: str) -> str:
    """A short hash of a line as fingerprints see it (white space ignored)."""
    return hashlib.sha256(_normal_text(text).encode("utf-8", "surrogateescape")).hexdigest()[:12]


# ------------------------------------------------------------------------------- anchoring


class _FileIndex:
    """New-side facts about one file of the change (from `FileDiff.new_lines`)."""

    def __init__(self, fd: FileDiff) -> None:
        self.fd = fd
        self.lines = fd.new_lines
        ends: dict[int, int] = {}
        for number, nl in self.lines.items():
            ends[nl.hunk] = max(ends.get(nl.hunk, 0), number)
        self.hunk_ends = ends

    def added(self, line: int) -> bool:
        nl = self.lines.get(line)
        return nl is not None and nl.added

    def hunk_end(self, line: int) -> int | None:
        nl = self.lines.get(line)
        return None if nl is None else self.hunk_ends[nl.hunk]

    def text(self, line: int) -> str | None:
        nl = self.lines.get(line)
        return None if nl is None else nl.text


def _clean_path(path: object) -> str | None:
    if not isinstance(path, str):
        return None
    p = path.strip().strip("`'\"").replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p or None


def _resolve(path: object, index: dict[str, _FileIndex]) -> tuple[str | None, _FileIndex | None]:
    """(normalised path, its file in the change or None)."""
    if isinstance(path, str) and path in index:
        return index[path].fd.path, index[path]  # exactly a changed file (names may have blanks)
    p = _clean_path(path)
    if p is None:
        return None, None
    candidates = [p, p.lstrip("/")]
    if p[:2] in ("a/", "b/"):
        candidates.append(p[2:])  # a git diff prefix, unless a real directory is named a/ or b/
    for c in candidates:
        if c in index:
            return index[c].fd.path, index[c]
    # An absolute or checkout-rooted path: accept a unique suffix match on a directory boundary.
    tail = "/" + p.lstrip("/")
    matches = {fi.fd.path: fi for known, fi in index.items() if tail.endswith("/" + known)}
    if len(matches) == 1:
        ((found, fi),) = matches.items()
        return found, fi
    return p.lstrip("/") if p[:2] not in ("a/", "b/") else p[2:], None


def _as_line(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 1 else None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() and value >= 1 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number >= 1 else None
    return None


def _as_confidence(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 1.0
    return min(1.0, max(0.0, float(value)))


def anchor(
    findings: Iterable[Finding], files: Sequence[FileDiff], mode: Filter
) -> tuple[list[Finding], list[Finding], list[str]]:
    """Place findings on the change: (kept, moved_to_summary, notes).

    kept: on a path in the change and a line `mode` allows -- `added`: an added line;
    `diff_context`: any new-side line of a hunk; `file`: any line of a changed file, or no line;
    `nofilter`: everything.  A range (`end_line`) is clamped to the end of its hunk.  Duplicates
    (same fingerprint and line) are merged into the most severe, most confident one.
    """
    index: dict[str, _FileIndex] = {}
    for fd in files:
        entry = _FileIndex(fd)
        index.setdefault(fd.path, entry)
        if fd.old_path:
            index.setdefault(fd.old_path, entry)

    unknown_severity = 0
    prepared: list[tuple[Finding, _FileIndex | None]] = []
    for raw in findings:
        path, fi = _resolve(raw.path, index)
        line = _as_line(raw.line)
        end_line = _as_line(raw.end_line) if line is not None else None
        if end_line is not None and line is not None and end_line <= line:
            end_line = None
        severity = normalise_severity(raw.severity)
        if severity is None:
            unknown_severity += 1
            severity = "info"
        f = dataclasses.replace(
            raw,
            path=path or "",
            line=line,
            end_line=end_line,
            severity=severity,
            category=str(raw.category or "general").strip() or "general",
            title=str(raw.title or "").strip(),
            message=str(raw.message or ""),
            confidence=_as_confidence(raw.confidence),
        )
        text = fi.text(line) if fi is not None and line is not None else None
        prepared.append((dataclasses.replace(f, fingerprint=fingerprint(f, text)), fi))

    merged, duplicates = _dedupe(prepared)

    kept: list[Finding] = []
    moved: list[Finding] = []
    off_diff = no_line = unknown_path = clamped = 0
    for f, known in merged:
        if mode == "nofilter":
            kept.append(f)
            continue
        if known is None:
            unknown_path += 1
            moved.append(f)
            continue
        fi = known
        if f.line is None:
            if mode == "file":
                kept.append(f)
            else:
                no_line += 1
                moved.append(f)
            continue
        if mode == "file":
            if fi.fd.status == "deleted":
                off_diff += 1
                moved.append(f)
            else:
                kept.append(f)
            continue
        hunk_end = fi.hunk_end(f.line)
        allowed = fi.added(f.line) if mode == "added" else hunk_end is not None
        if not allowed or hunk_end is None:
            off_diff += 1
            moved.append(f)
            continue
        if f.end_line is not None and f.end_line > hunk_end:
            clamped += 1
            f = dataclasses.replace(f, end_line=hunk_end if hunk_end > f.line else None)
        kept.append(f)

    notes: list[str] = []
    if duplicates:
        notes.append(f"{plural(duplicates, 'duplicate finding')} merged")
    if unknown_severity:
        notes.append(
            f"{plural(unknown_severity, 'finding')} with an unknown severity treated as info"
        )
    if off_diff:
        notes.append(f"{plural(off_diff, 'finding')} outside the diff moved to the summary")
    if no_line:
        notes.append(f"{plural(no_line, 'finding')} without a line moved to the summary")
    if unknown_path:
        notes.append(
            f"{plural(unknown_path, 'finding')} on files not in the change moved to the summary"
        )
    if clamped:
        notes.append(f"{plural(clamped, 'finding range')} clamped to the end of its hunk")
    return sorted(kept, key=_order), sorted(moved, key=_order), notes


def _dedupe(
    prepared: list[tuple[Finding, _FileIndex | None]],
) -> tuple[list[tuple[Finding, _FileIndex | None]], int]:
    best: dict[tuple[str, int | None], tuple[Finding, _FileIndex | None]] = {}
    duplicates = 0
    for f, where in prepared:
        key = (f.fingerprint, f.line)
        seen = best.get(key)
        if seen is None:
            best[key] = (f, where)
            continue
        duplicates += 1
        if _strength(f) > _strength(seen[0]):
            best[key] = (f, where)
    # The same finding text on several lines (e.g. two identical `console.log(x)` lines) keeps
    # distinct fingerprints: the n-th occurrence in line order gets "#n" mixed in.
    by_fp: dict[str, list[tuple[Finding, _FileIndex | None]]] = {}
    for f, where in best.values():
        by_fp.setdefault(f.fingerprint, []).append((f, where))
    out: list[tuple[Finding, _FileIndex | None]] = []
    for fp, group in by_fp.items():
        group.sort(key=lambda item: item[0].line or 0)
        for i, (f, where) in enumerate(group):
            if i:
                digest = hashlib.sha256(f"{fp}#{i}".encode()).hexdigest()[:16]
                f = dataclasses.replace(f, fingerprint=digest)
            out.append((f, where))
    return out, duplicates


def _strength(f: Finding) -> tuple[int, float, bool]:
    return severity_rank(f.severity), f.confidence, f.suggestion is not None


def _order(f: Finding) -> tuple[str, int, int, str, str, str]:
    return (f.path, f.line or 0, -severity_rank(f.severity), f.category, f.title, f.fingerprint)


def suggestion_fits(f: Finding, first: int, last: int) -> bool:
    """Whether a suggestion posted on lines first..last replaces exactly the lines it was written
    for (a committed suggestion replaces the commented lines, whatever it was meant for)."""
    if f.suggestion is None or f.line is None:
        return False
    written = f.suggestion_range or (f.line, f.end_line if f.end_line is not None else f.line)
    return written == (first, last)


def inline_split(
    findings: Iterable[Finding], min_confidence: float, min_severity: str
) -> tuple[list[Finding], list[Finding]]:
    """(findings worth an inline comment, findings for the summary only).

    Below `min_confidence` or below `min_severity` a finding is listed in the summary, where it
    informs without interrupting the author on a line.
    """
    bar = severity_rank(min_severity)
    inline: list[Finding] = []
    summary: list[Finding] = []
    for f in findings:
        ok = f.confidence >= min_confidence and severity_rank(f.severity) >= bar
        (inline if ok else summary).append(f)
    return inline, summary
