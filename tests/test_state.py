"""The open findings carried in the summary comment: bounded, unforgeable by text, and followed
through a push line by line (real `git diff` output parsed by tierbot's own parser)."""

from __future__ import annotations

import base64
import dataclasses
import zlib
from pathlib import Path

from rules_helpers import change_files

from tierbot.findings import fingerprint, line_key
from tierbot.github import sanitize, state
from tierbot.records import Change, FileDiff, Finding, Range

BODY = "".join(f"value_{i} = compute({i})\n" for i in range(1, 31))


def change(files: tuple[FileDiff, ...]) -> Change:
    return Change(root="", range=Range("", "0" * 40, "1" * 40), files=files)


def finding(path: str, line: int | None, text: str | None, **kw: object) -> Finding:
    f = Finding(
        path=path,
        line=line,
        end_line=None,
        severity="high",
        category="bug",
        title="Off by one",
        message="Explained.",
        source="sonnet",
    )
    f = dataclasses.replace(f, **kw)  # type: ignore[arg-type]
    return dataclasses.replace(f, fingerprint=fingerprint(f, text))


def test_the_block_round_trips_and_is_bounded() -> None:
    fs = [finding("a.py", i, f"x{i}", title="t" * 500, message="m" * 5000) for i in range(1, 5)]
    line, left_out = state.block("ab" * 20, fs, change(()))
    assert left_out == 0 and len(line) <= state.MAX_CHARS + 40
    back = state.read("<!-- tierbot:summary -->\n" + line + "\n## tierbot review")
    assert back is not None and back.head == "ab" * 20
    assert [f.fingerprint for f in back.findings] == [f.fingerprint for f in fs]
    assert all(len(f.title) == 200 and len(f.message) == 300 for f in back.findings)


def test_too_many_findings_keep_the_most_severe_and_count_the_rest() -> None:
    many = [
        finding("a.py", i, f"line {i} " + "z" * 80, severity="low", title=f"{i} " + "q" * 150)
        for i in range(1, 2000)
    ]
    critical = finding("b.py", 1, "KEY = x", severity="critical", title="secret")
    line, left_out = state.block("c" * 40, [*many, critical], change(()))
    assert len(line) <= state.MAX_CHARS + 40
    back = state.read(line)
    assert back is not None and back.findings[0].severity == "critical"
    assert left_out == 2000 - len(back.findings) > 0


def test_unreadable_or_hostile_blocks_are_ignored() -> None:
    bomb = base64.b64encode(zlib.compress(b"[" * 50_000_000, 9)).decode()
    assert state.read(f"<!-- tierbot:state={bomb} -->") is None  # bounded decompression
    for junk in ("!!!", base64.b64encode(b"not zlib").decode(), "e30="):
        assert state.read(f"<!-- tierbot:state={junk} -->") is None
    future = base64.b64encode(zlib.compress(b'{"v": 99, "head": "x", "f": []}')).decode()
    assert state.read(f"<!-- tierbot:state={future} -->") is None


def test_model_text_cannot_carry_a_state_block() -> None:
    forged = "<!-- tierbot:state=" + base64.b64encode(zlib.compress(b"{}")).decode() + " -->"
    assert state.read(sanitize.text(forged)) is None
    assert state.read(sanitize.cell(forged)) is None


def test_findings_follow_their_lines_through_a_push(tmp_path: Path) -> None:
    """Lines added above move a finding; its own line changed closes it; a rename carries it."""
    gone = BODY.replace("compute", "other")
    before = {"app.py": BODY, "old.py": BODY, "gone.py": gone}
    after_lines = BODY.splitlines(keepends=True)
    after_lines[19] = "value_20 = compute(20) + 1\n"  # line 20 changed
    after_lines.insert(0, "import os\n\n")  # two lines above: everything below moves by two
    push = change_files(
        tmp_path / "push",
        before,
        {"app.py": "".join(after_lines), "old.py": None, "new.py": BODY, "gone.py": None},
    )
    full = change_files(
        tmp_path / "full",
        {},
        {"app.py": "".join(after_lines), "new.py": BODY},
    )
    keep = finding("app.py", 5, "value_5 = compute(5)")
    changed = finding("app.py", 20, "value_20 = compute(20)")
    near_change = finding("app.py", 21, "value_21 = compute(21)")  # context of that hunk
    renamed = finding("old.py", 7, "value_7 = compute(7)")
    deleted = finding("gone.py", 3, "value_3 = other(3)")
    file_level = finding("new.py", None, None, title="Module has no tests")
    keys = tuple(
        line_key(t) if t else None
        for t in (
            "value_5 = compute(5)",
            "value_20 = compute(20)",
            "value_21 = compute(21)",
            "value_7 = compute(7)",
            "value_3 = compute(3)",
            None,
        )
    )
    before_state = state.State(
        "0" * 40,
        (keep, changed, near_change, renamed, deleted, dataclasses.replace(file_level)),
        keys,
    )
    carried = state.carry(before_state, change(push), change(full), resolved=set())
    where = {(f.path, f.line, f.title) for f in carried.findings}
    assert ("app.py", 7, keep.title) in where  # two lines inserted above
    assert ("app.py", 23, near_change.title) in where  # unchanged context line, found by text
    assert ("new.py", 7, renamed.title) in where  # followed through the rename
    assert ("new.py", None, file_level.title) in where
    assert len(carried.findings) == 4
    assert (carried.changed, carried.gone, carried.resolved) == (1, 1, 0)
    shown = next(fd for fd in full if fd.path == "app.py").new_lines
    assert shown[7].text == "value_5 = compute(5)" and shown[23].text == "value_21 = compute(21)"
    # A resolved thread closes its finding whatever happened to its lines.
    closed = state.carry(before_state, change(push), change(full), {keep.fingerprint})
    assert closed.resolved == 1 and keep.fingerprint not in {f.fingerprint for f in closed.findings}
