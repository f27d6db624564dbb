"""Findings land only where they belong: filter modes, odd model values, duplicates and
fingerprints."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from rules_helpers import by_path, change_files

from tierbot.findings import anchor, fingerprint, normalise_severity
from tierbot.outcome import blocking
from tierbot.records import FileDiff, Filter, Finding

BEFORE = {
    "src/app.py": "".join(f"line_{i} = {i}\n" for i in range(1, 41)),
    "src/old_name.py": "".join(f"def keep_{i}():\n    return {i}\n\n\n" for i in range(6)),
    "src/gone.py": "x = 1\n",
}


def _after() -> dict[str, str | None]:
    lines = [f"line_{i} = {i}\n" for i in range(1, 41)]
    lines[9] = "line_10 = compute(10)\n"  # modified: new line 10
    lines.insert(20, "extra = load()\n")  # added: new line 21
    return {
        "src/app.py": "".join(lines),
        "src/old_name.py": None,
        "src/new_name.py": "".join(f"def keep_{i}():\n    return {i}\n\n\n" for i in range(6))
        + "def added():\n    return 2\n",
        "src/gone.py": None,
    }


@pytest.fixture
def files(tmp_path: Path) -> tuple[FileDiff, ...]:
    return change_files(tmp_path / "repo", BEFORE, _after())


def finding(path: Any = "src/app.py", line: Any = 10, **kw: Any) -> Finding:
    values: dict[str, Any] = dict(
        path=path,
        line=line,
        end_line=None,
        severity="medium",
        category="bug",
        title="Possible bug",
        message="Something is off.",
        source="sonnet",
    )
    values.update(kw)
    return Finding(**values)


def test_the_change_is_what_the_tests_assume(files: tuple[FileDiff, ...]) -> None:
    fds = by_path(files)
    app = fds["src/app.py"]
    assert [n for n, _ in app.added_lines] == [10, 21]
    assert len(app.hunks) == 2
    assert fds["src/new_name.py"].status == "renamed"
    assert fds["src/new_name.py"].old_path == "src/old_name.py"
    assert fds["src/gone.py"].status == "deleted"


# ---------------------------------------------------------------------------------- modes

# (line, expected in kept) per mode, for src/app.py: hunk 1 covers 7..13, hunk 2 covers 18..24.
CASES = {
    "added": {10: True, 21: True, 9: False, 20: False, 30: False, None: False},
    "diff_context": {10: True, 21: True, 9: True, 20: True, 30: False, None: False},
    "file": {10: True, 21: True, 9: True, 20: True, 30: True, None: True},
    "nofilter": {10: True, 21: True, 9: True, 20: True, 30: True, None: True},
}


@pytest.mark.parametrize("mode", list(CASES))
def test_filter_modes(files: tuple[FileDiff, ...], mode: str) -> None:
    app = by_path(files)["src/app.py"]
    spans = [(h.target_start, h.target_start + h.target_length - 1) for h in app.hunks]
    assert spans == [(7, 13), (18, 24)]
    raw = [finding(line=line, title=f"issue at {line}") for line in CASES[mode]]
    kept, moved, notes = anchor(raw, files, mode)  # type: ignore[arg-type]
    expected_kept = {line for line, ok in CASES[mode].items() if ok}
    assert {f.line for f in kept} == expected_kept
    assert {f.line for f in moved} == set(CASES[mode]) - expected_kept
    assert len(kept) + len(moved) == len(raw)  # nothing lost
    if moved:
        assert notes  # and every move is counted
        counted = sum(int(n.split()[0]) for n in notes if "moved to the summary" in n)
        assert counted == len(moved)
    else:
        assert notes == []


def test_unknown_path_is_moved_with_a_note(files: tuple[FileDiff, ...]) -> None:
    raw = [
        finding(path="src/elsewhere.py"),
        finding(path=None, title="n", category="n"),
        finding(path=42, title="i", category="i"),
    ]
    kept, moved, notes = anchor(raw, files, "added")
    assert kept == [] and len(moved) == 3
    assert notes == ["3 findings on files not in the change moved to the summary"]
    # nofilter keeps them all, never crashing on the odd paths
    kept, moved, notes = anchor(raw, files, "nofilter")
    assert len(kept) == 3 and moved == []


def test_deleted_file_has_no_new_side(files: tuple[FileDiff, ...]) -> None:
    modes: tuple[Filter, ...] = ("added", "diff_context", "file")
    for mode in modes:
        kept, moved, _ = anchor([finding(path="src/gone.py", line=1)], files, mode)
        assert kept == [] and len(moved) == 1


def test_model_paths_are_normalised(files: tuple[FileDiff, ...]) -> None:
    variants = [
        "./src/app.py",
        "b/src/app.py",
        "a/src/app.py",
        "/src/app.py",
        " src/app.py ",
        "`src/app.py`",
        "src\\app.py",
        "/home/runner/work/proj/proj/src/app.py",
    ]
    kept, moved, _ = anchor([finding(path=p, title=p) for p in variants], files, "added")
    assert moved == []
    assert {f.path for f in kept} == {"src/app.py"}
    # The old path of a renamed file lands on its new path.
    kept, _, _ = anchor([finding(path="src/old_name.py", line=25)], files, "added")
    assert [(f.path, f.line) for f in kept] == [("src/new_name.py", 25)]


def test_a_real_directory_named_b_is_not_stripped(tmp_path: Path) -> None:
    files = change_files(tmp_path / "r", {}, {"b/src/x.py": "x = 1\n", "src/x.py": "y = 2\n"})
    kept, _, _ = anchor([finding(path="b/src/x.py", line=1)], files, "added")
    assert [f.path for f in kept] == ["b/src/x.py"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (None, None),
        (-3, None),
        (0, None),
        ("12", 12),
        (" 7 ", 7),
        ("ten", None),
        (10.0, 10),
        (10.5, None),
        (float("nan"), None),
        (float("inf"), None),
        (True, None),
        ([10], None),
        ({"line": 10}, None),
    ],
)
def test_weird_line_values_become_file_level(
    files: tuple[FileDiff, ...], line: Any, expected: int | None
) -> None:
    kept, moved, _ = anchor([finding(line=line)], files, "nofilter")
    assert [f.line for f in kept] == [expected] and moved == []
    kept, moved, _ = anchor([finding(line=line)], files, "file")
    assert [f.line for f in kept] == [expected] and moved == []


def test_end_line_clamped_to_its_hunk(files: tuple[FileDiff, ...]) -> None:
    raw = [
        # past the hunk (18..24): clamped to 24
        finding(line=21, end_line=60, title="a", category="a"),
        finding(line=21, end_line=22, title="b", category="b"),  # inside: unchanged
        finding(line=21, end_line=21, title="c", category="c"),  # same line: single-line finding
        finding(line=21, end_line=3, title="d", category="d"),  # before the line: dropped
        finding(line=21, end_line="x", title="e", category="e"),
    ]
    kept, moved, notes = anchor(raw, files, "added")
    assert moved == []
    assert [(f.title, f.end_line) for f in kept] == [
        ("a", 24),
        ("b", 22),
        ("c", None),
        ("d", None),
        ("e", None),
    ]
    assert notes == ["1 finding range clamped to the end of its hunk"]


def test_unknown_severity_and_confidence_values(files: tuple[FileDiff, ...]) -> None:
    raw = [
        finding(severity="Warning", title="a", category="a"),
        finding(severity="purple", title="b", category="b"),
        finding(severity=None, title="c", category="c"),
        finding(confidence=7, title="d", category="d"),
        finding(confidence=-1, title="e", category="e"),
        finding(confidence="high", title="f", category="f"),
    ]
    kept, _, notes = anchor(raw, files, "added")
    got = {f.title: (f.severity, f.confidence) for f in kept}
    assert got == {
        "a": ("medium", 1.0),
        "b": ("info", 1.0),
        "c": ("info", 1.0),
        "d": ("medium", 1.0),
        "e": ("medium", 0.0),
        "f": ("medium", 1.0),
    }
    assert "2 findings with an unknown severity treated as info" in notes


# ------------------------------------------------------------------------ duplicates, order


def test_exact_duplicates_merge_keeping_the_strongest(files: tuple[FileDiff, ...]) -> None:
    raw = [
        finding(severity="low", confidence=0.9, source="haiku"),
        finding(severity="high", confidence=0.5, source="opus", suggestion="fixed = 1"),
        finding(severity="high", confidence=0.4, source="sonnet"),
        finding(title="Possible   BUG", severity="medium"),  # same title once normalised
    ]
    kept, moved, notes = anchor(raw, files, "added")
    assert len(kept) == 1 and moved == []
    assert (kept[0].severity, kept[0].source, kept[0].suggestion) == ("high", "opus", "fixed = 1")
    assert notes == ["3 duplicate findings merged"]


def test_identical_text_on_two_lines_stays_two_findings(tmp_path: Path) -> None:
    files = change_files(tmp_path / "r", {}, {"a.js": "console.log(x);\nlet y;\nconsole.log(x);\n"})
    raw = [finding(path="a.js", line=1), finding(path="a.js", line=3)]
    kept, _, notes = anchor(raw, files, "added")
    assert [f.line for f in kept] == [1, 3]
    assert kept[0].fingerprint != kept[1].fingerprint
    assert notes == []


def test_sorted_deterministically(files: tuple[FileDiff, ...]) -> None:
    raw = [
        finding(path="src/new_name.py", line=25, severity="low", title="z", category="z"),
        finding(line=21, severity="low", title="y", category="y"),
        finding(line=21, severity="critical", title="x", category="x"),
        finding(line=10, severity="info", title="w", category="w"),
    ]
    kept, _, _ = anchor(raw, files, "added")
    order = [(f.path, f.line, f.severity) for f in kept]
    assert order == [
        ("src/app.py", 10, "info"),
        ("src/app.py", 21, "critical"),
        ("src/app.py", 21, "low"),
        ("src/new_name.py", 25, "low"),
    ]
    again, _, _ = anchor(list(reversed(raw)), files, "added")
    assert again == kept


# ---------------------------------------------------------------------------- fingerprints


def test_fingerprint_survives_unrelated_line_moves(tmp_path: Path) -> None:
    body = "def f(x):\n    return eval(x)\n"
    first = change_files(tmp_path / "one", {"m.py": "import os\n"}, {"m.py": "import os\n" + body})
    shifted = change_files(
        tmp_path / "two",
        {"m.py": "import os\n"},
        {"m.py": "import os\nimport sys\n\n\n" + body.replace("    return", "        return")},
    )
    a, _, _ = anchor(
        [finding(path="m.py", line=3, title="eval of input on line 3")], first, "added"
    )
    b, _, _ = anchor(
        [finding(path="m.py", line=6, title="Eval of input on line 6")], shifted, "added"
    )
    assert len(a) == len(b) == 1
    assert a[0].fingerprint == b[0].fingerprint
    assert len(a[0].fingerprint) == 16 and int(a[0].fingerprint, 16) >= 0


def test_fingerprint_separates_what_differs() -> None:
    base = finding()
    fps = {
        fingerprint(base, "x = 1"),
        fingerprint(dataclasses.replace(base, path="src/other.py"), "x = 1"),
        fingerprint(dataclasses.replace(base, category="security"), "x = 1"),
        fingerprint(base, "x = 2"),
        fingerprint(base),
        fingerprint(dataclasses.replace(base, line=None)),
        fingerprint(dataclasses.replace(base, line=None, title="Another bug")),
    }
    assert len(fps) == 7
    # Not affected by the wording, severity, source or confidence of a finding on a line: the
    # poster dedupes across pushes, and a model rewording its title is the same finding.
    same = dataclasses.replace(
        base,
        title="A differently worded bug",
        severity="high",
        message="other",
        source="opus",
        confidence=0.2,
    )
    assert fingerprint(same, "x = 1") == fingerprint(base, "x = 1")
    assert fingerprint(dataclasses.replace(base, path="./src/app.py"), "x=1") == fingerprint(
        base, "  x = 1"
    )


def test_context_line_text_is_used_for_fingerprints(files: tuple[FileDiff, ...]) -> None:
    a, _, _ = anchor([finding(line=9)], files, "diff_context")
    expected = fingerprint(finding(line=9), "line_9 = 9")
    assert a[0].fingerprint == expected


# ----------------------------------------------------------------------- severities, fail-on


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("critical", "critical"),
        ("BLOCKER", "critical"),
        ("fatal", "critical"),
        ("high", "high"),
        ("Error", "high"),
        ("major", "high"),
        ("medium", "medium"),
        ("warning", "medium"),
        ("WARN", "medium"),
        ("low", "low"),
        ("minor", "low"),
        ("info", "info"),
        ("note", "info"),
        ("nit", "info"),
        ("Nitpick", "info"),
        (" High ", "high"),
        ("**high**", "high"),
        ("purple", None),
        ("", None),
        (None, None),
        (3, None),
    ],
)
def test_normalise_severity(value: Any, expected: str | None) -> None:
    assert normalise_severity(value) == expected


def test_blocking_is_at_or_above_the_fail_level() -> None:
    fs = [finding(severity="low"), finding(severity="medium")]
    assert blocking(fs, "medium") == [fs[1]]
    assert blocking(fs, "info") == fs
    assert blocking(fs, "high") == [] and blocking(fs, "none") == [] and blocking([], "info") == []


def test_model_severity_words_use_the_one_vocabulary(files: tuple[FileDiff, ...]) -> None:
    from tierbot.review.answer import parse_answer

    app = by_path(files)["src/app.py"]
    line = next(n for n, nl in app.new_lines.items() if nl.added)
    items = [
        {
            "path": "src/app.py",
            "line": line,
            "end_line": None,
            "severity": word,
            "category": f"kind-{word}",  # one line, one category: one finding (fingerprints)
            "title": f"title {word}",
            "message": "m",
            "suggestion": None,
            "confidence": 0.9,
        }
        for word in ("Warning", "blocker", "purple")
    ]
    answer = parse_answer(
        json.dumps({"findings": items, "escalate": False, "escalate_reason": None}), "haiku"
    )
    assert [f.severity for f in answer.findings] == ["medium", "critical", "purple"]
    kept, _, notes = anchor(answer.findings, files, "added")
    assert sorted(f.severity for f in kept) == ["critical", "info", "medium"]
    assert "1 finding with an unknown severity treated as info" in notes
