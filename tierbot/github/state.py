"""A pull request's open findings, carried from one push to the next in the summary comment.

A new push is reviewed from the last reviewed head on, so this run's review sees only the new
commits.  What was found before is not forgotten: the summary comment holds a hidden block,

    <!-- tierbot:state=<base64 of zlib-compressed JSON> -->

with the head it describes and every finding open there (size-bounded, most severe first).
Only the summary comment written by tierbot's own identity is read (`pull.Client.existing`), so
nobody else can edit the block, and model text can never contain a marker (`sanitize`).

A finding from the block stays open at the new head while

- its file still differs from the base (else the pull request no longer changes it),
- its anchored line is unchanged by the new commits (same text, moved only by lines added or
  removed around it: the finding's fingerprint is that line's text, see `findings.fingerprint`),
- and no reviewer resolved its inline thread.

A finding whose line the new commits change is dropped: those lines are in this run's review.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from tierbot.findings import line_key
from tierbot.records import SEVERITIES, Change, FileDiff, Finding, Severity, severity_rank

VERSION = 1
MAX_FINDINGS = 300
MAX_CHARS = 24_000  # of the block: a third of GitHub's comment limit, the rest is for people
_MARKER = re.compile(r"<!-- tierbot:state=([A-Za-z0-9+/=]{1,60000}) -->")
_TEXT_LIMITS = {"t": 200, "m": 300, "c": 60}


@dataclass(frozen=True)
class State:
    head: str
    findings: tuple[Finding, ...]
    keys: tuple[str | None, ...]  # line_key of each finding's anchored line at `head`
    left_out: int = 0  # findings the block had no room for when it was written


@dataclass(frozen=True)
class Carried:
    findings: tuple[Finding, ...]  # still open at the new head, at their new lines
    changed: int = 0  # their lines changed (re-reviewed in this run)
    gone: int = 0  # their file no longer differs from the base, or was deleted
    resolved: int = 0  # a reviewer resolved the inline thread


def block(head: str, open_findings: Sequence[Finding], full: Change) -> tuple[str, int]:
    """The hidden state line for the summary, and how many findings it had no room for."""
    texts = {fd.path: fd for fd in full.files}
    ranked = sorted(open_findings, key=lambda f: (-severity_rank(f.severity), f.path, f.line or 0))
    entries = [_entry(f, texts.get(f.path)) for f in ranked[:MAX_FINDINGS]]
    left_out = len(ranked) - len(entries)
    while True:
        data = json.dumps({"v": VERSION, "head": head, "f": entries, "left_out": left_out})
        encoded = base64.b64encode(zlib.compress(data.encode("utf-8", "surrogateescape"), 9))
        if len(encoded) <= MAX_CHARS or not entries:
            return f"<!-- tierbot:state={encoded.decode('ascii')} -->", left_out
        cut = max(1, len(entries) // 10)  # the least severe go first
        entries, left_out = entries[:-cut], left_out + cut


def read(body: str) -> State | None:
    """The state block of a summary comment (None: none, or not one this version can read)."""
    m = _MARKER.search(body)
    if m is None:
        return None
    try:
        raw = zlib.decompressobj().decompress(base64.b64decode(m.group(1)), 1_000_000)
        data = json.loads(raw.decode("utf-8", "surrogateescape"))
        if data.get("v") != VERSION or not isinstance(data.get("f"), list):
            return None
        pairs = [_finding(e) for e in data["f"][:MAX_FINDINGS]]
        return State(
            head=str(data["head"]),
            findings=tuple(f for f, _ in pairs),
            keys=tuple(k for _, k in pairs),
            left_out=int(data.get("left_out", 0)),
        )
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error, zlib.error):
        return None


def carry(state: State, push: Change, full: Change, resolved: Collection[str]) -> Carried:
    """Which of `state`'s findings are still open after the commits of `push` (see above)."""
    in_push = {d.old_path or d.path: d for d in push.files}
    in_full = {fd.path: fd for fd in full.files}
    kept: list[Finding] = []
    changed = gone = closed = 0
    for f, key in zip(state.findings, state.keys, strict=True):
        if f.fingerprint in resolved:
            closed += 1
            continue
        fd: FileDiff | None = in_push.get(f.path)
        if fd is not None and fd.status == "deleted":
            gone += 1
            continue
        path = fd.path if fd is not None else f.path
        target = in_full.get(path)
        if target is None or target.status == "deleted":
            gone += 1  # the pull request no longer changes this file
            continue
        if f.line is None:
            kept.append(dataclasses.replace(f, path=path))
            continue
        line = _follow(f.line, fd)
        if line is None or (key is not None and _key_at(target, line) != key):
            changed += 1
            continue
        end = f.end_line + (line - f.line) if f.end_line is not None else None
        if end is not None and fd is not None and _touched(fd, f.line, f.end_line or f.line):
            end = None  # the range's other lines changed: keep the anchored line only
        kept.append(dataclasses.replace(f, path=path, line=line, end_line=end))
    return Carried(tuple(kept), changed, gone, closed)


def _follow(line: int, fd: FileDiff | None) -> int | None:
    """Where an old line is after the push `fd`, or None when the push changed it."""
    if fd is None:
        return line  # the file is untouched
    shift = 0
    for h in fd.hunks:
        after = h.source_start + h.source_length  # the first old line past the hunk
        if h.source_length and h.source_start <= line < after:
            for ln in h:
                if ln.source_line_no == line:
                    target: int | None = ln.target_line_no
                    return target if ln.line_type == " " else None
            return None
        if (line >= after) if h.source_length else (line > h.source_start):
            shift += h.target_length - h.source_length
    return line + shift


def _touched(fd: FileDiff, first: int, last: int) -> bool:
    """Whether the push removed or inserted lines inside a range, past its first line."""
    for h in fd.hunks:
        before = h.source_start - 1  # the old line an insertion comes after
        for ln in h:
            if ln.source_line_no is not None:
                if ln.line_type == "-" and first < ln.source_line_no <= last:
                    return True
                before = ln.source_line_no
            elif ln.line_type == "+" and first <= before < last:
                return True
    return False


def _key_at(fd: FileDiff, line: int) -> str | None:
    shown = fd.new_lines.get(line)
    return line_key(shown.text) if shown is not None else None


def _entry(f: Finding, fd: FileDiff | None) -> dict[str, Any]:
    shown = fd.new_lines.get(f.line) if fd is not None and f.line is not None else None
    text = shown.text if shown is not None else None
    return {
        "p": f.path,
        "l": f.line,
        "e": f.end_line,
        "s": f.severity,
        "c": f.category[: _TEXT_LIMITS["c"]],
        "t": f.title[: _TEXT_LIMITS["t"]],
        "m": (f.message.strip().split("\n", 1)[0])[: _TEXT_LIMITS["m"]],
        "src": f.source,
        "conf": round(f.confidence, 3),
        "fp": f.fingerprint,
        "k": line_key(text) if text is not None else None,
    }


def _finding(e: dict[str, Any]) -> tuple[Finding, str | None]:
    severity: Severity = e["s"] if e["s"] in SEVERITIES else "info"
    line, end = e.get("l"), e.get("e")
    f = Finding(
        path=str(e["p"]),
        line=line if isinstance(line, int) and line > 0 else None,
        end_line=end if isinstance(end, int) and end > 0 else None,
        severity=severity,
        category=str(e.get("c") or "general"),
        title=str(e.get("t") or ""),
        message=str(e.get("m") or ""),
        source=str(e.get("src") or ""),
        confidence=float(e.get("conf", 1.0)),
        fingerprint=str(e.get("fp") or ""),
    )
    key = e.get("k")
    return f, key if isinstance(key, str) else None
