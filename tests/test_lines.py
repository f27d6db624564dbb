"""What counts as a line of code (analysis/lines.py), on diffs git really makes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from routing_helpers import commit, init_repo

from tierbot.analysis import lines
from tierbot.analysis.sides import read
from tierbot.git.diff import read_change
from tierbot.records import FileDiff


def _count(tmp_path: Path, path: str, old: str, new: str, whole: bool = True) -> lines.LineCount:
    """Commit `old`, then `new`, and count the second commit's lines of code in `path` (with the
    file's two sides read from git, or from its hunks alone)."""
    repo = init_repo(tmp_path / "r")
    commit(repo, {path: old}, "old")
    commit(repo, {path: new}, "new")
    change = read_change(str(repo), "HEAD~1..HEAD")
    f: FileDiff = next(f for f in change.files if f.path == path)
    if not whole:
        return lines.count(f)
    side = read(str(repo), change.range, [f])[path]
    return lines.count(f, side.old, side.new)


PY = 'def f(x):\n    """Add one."""\n    y = x + 1\n    return y\n'

CASES = [
    # (path, old, new, lines of code added, removed, version bumps, small edits)
    ("a.py", PY, PY.replace("y = x + 1", "y = x + 1  # noqa: E501"), 0, 0, 0, 0),
    ("a.py", PY.replace("return y", "return y  # type: ignore[return]"), PY, 0, 0, 0, 0),
    ("a.py", PY, PY.replace('"""Add one."""', '"""Add one.\n\n    More words.\n    """'),
     0, 0, 0, 0),
    ("a.py", PY, PY.replace("    y = x + 1\n", "    # why\n    y = x + 1\n"), 0, 0, 0, 0),
    ("a.py", PY, PY.replace("y = x + 1", "y = x + 2"), 1, 1, 0, 0),
    ("a.py", PY, PY.replace("    y = x + 1", "        y = x + 1"), 1, 1, 0, 0),  # indentation
    ("a.py", '__version__ = "1.2.3"\n', '__version__ = "1.2.4"\n', 0, 0, 1, 0),
    ("a.js", "go();\n", "go(); // eslint-disable-line no-undef\n", 0, 0, 0, 0),
    ("a.go", "package a\n\nvar x = f()\n", "package a\n\nvar x = f() //nolint:errcheck\n",
     0, 0, 0, 0),
    ("a.go", "package a\n\nfunc f() {\n\tx := 1\n}\n", "package a\n\nfunc f() {\n    x := 1\n}\n",
     0, 0, 0, 0),
    ("a.py", "x = get_items(a)\n", "x = list_items(a)\n", 0, 0, 0, 1),  # a one-line rename
    ("a.py", 'raise ValueError("cannot recieve it")\n', 'raise ValueError("cannot receive it")\n',
     0, 0, 0, 1),
    ("a.py", "ok = a and b\n", "ok = a or b\n", 1, 1, 0, 0),  # keywords are not names
    ("a.py", "t = 30\n", "t = 60\n", 1, 1, 0, 0),  # a number is not a version
    (".github/workflows/ci.yml", "steps:\n  - uses: actions/checkout@v4\n",
     "steps:\n  - uses: actions/checkout@v5\n", 0, 0, 1, 0),
    (
        ".github/workflows/ci.yml",
        "steps:\n  - uses: actions/cache@0400d5f644dc74513175e3cd8d07132dd4860809 # v4.2.4\n",
        "steps:\n  - uses: actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae # v5.0.5\n",
        0, 0, 1, 0,
    ),
    (".github/workflows/ci.yml", "node: [18, 20]\n", "node: [18, 20, 22]\n", 0, 0, 1, 0),
    (".github/workflows/ci.yml", "python:\n  - '3.11'\n", "python:\n  - '3.11'\n  - '3.12'\n",
     0, 0, 1, 0),
    (".github/workflows/ci.yml", "run: make\n", "run: curl x | sh\n", 1, 1, 0, 0),
    ("Dockerfile", "FROM python:3.11-slim\n", "FROM python:3.12-slim\n", 0, 0, 1, 0),
    (".pre-commit-config.yaml", "  rev: v0.4.1\n", "  rev: v0.5.0\n", 0, 0, 1, 0),
    ("package.json", '{\n  "version": "5.1.0"\n}\n', '{\n  "version": "5.2.0"\n}\n', 0, 0, 1, 0),
    ("go.mod", "require (\n\tgithub.com/x/y v1.0.8\n)\n", "require (\n\tgithub.com/x/y v1.0.9\n)\n",
     0, 0, 1, 0),
]  # fmt: skip


@pytest.mark.parametrize(("path", "old", "new", "added", "removed", "bumps", "edits"), CASES)
def test_what_counts_as_code(
    tmp_path: Path, path: str, old: str, new: str, added: int, removed: int, bumps: int, edits: int
) -> None:
    n = _count(tmp_path, path, old, new)
    assert (n.added, n.removed, n.routine, n.edits) == (added, removed, bumps, edits)


def test_a_hunk_that_starts_inside_a_docstring_is_read_from_the_whole_file(tmp_path: Path) -> None:
    # The werkzeug case: `.. versionchanged::` lines added deep in a long docstring, whose opening
    # quotes the hunk does not show.  Read from its hunk alone it looks like code.
    head = 'def hash_it(password):\n    """Hash a password.\n\n' + "    Words.\n" * 8
    old = head + '    """\n    return password\n'
    new = (
        head + '\n    .. versionchanged:: 3.1\n        More rounds.\n    """\n    return password\n'
    )
    assert _count(tmp_path, "a.py", old, new) == (0, 0, 0, 0, ())
    assert _count(tmp_path / "hunk", "a.py", old, new, whole=False).added == 2


def test_a_block_comment_seen_whole_and_text_in_multi_line_strings(tmp_path: Path) -> None:
    old = "/**\n" + " * Words.\n" * 6 + " */\nfunction f() {}\n"
    new = old.replace(" * Words.\n */", " * Words.\n * @param {String} str\n */")
    assert _count(tmp_path / "js", "a.js", old, new).added == 0
    # Documentation passed as an argument (FastAPI's Doc("""...""")) is prose, not code ...
    doc = 'x = Doc(\n    """\n    The password.\n    """\n)\n'
    edited = doc.replace("The password.", "A password.")
    assert _count(tmp_path / "doc", "a.py", doc, edited)[:2] == (0, 0)
    # ... but a query or a template in a string is code.
    sql = 'q = """\n    SELECT id FROM users WHERE name = ?\n"""\n'
    changed = sql.replace("name = ?", "name = ? AND active = 1")
    assert _count(tmp_path / "sql", "a.py", sql, changed)[:2] == (1, 1)


def test_many_renamed_lines_are_a_refactoring(tmp_path: Path) -> None:
    old = "".join(f"v{i} = get_items({i})\n" for i in range(6))
    n = _count(tmp_path, "a.py", old, old.replace("get_items", "list_items"))
    assert (n.added, n.removed, n.edits) == (6, 6, 0)
    assert len(n.added_code) == 6  # the added lines of code, for the sensitive-code scan


def test_comment_syntax_by_file_kind() -> None:
    assert lines.family("a.py") == "python"
    assert lines.family("web/a.tsx") == "c`"
    assert lines.family("lib.rs") == "c"
    assert lines.family("Dockerfile") == "hash"
    assert lines.family("q.sql") == "dash"
    assert lines.family("data.bin") is None
    # `#` is code in C (a preprocessor line) and in JavaScript (a private field).
    assert lines.without_comments("#include <x.h>\n", "c") == ["#include <x.h>", ""]
    assert lines.without_comments("this.#x = 1 // set\n", "c`") == ["this.#x = 1 ", ""]


# The one regex the version test used to be: the split tests must find exactly what it found.
_ONE_REGEX = re.compile(
    r"\d\.\d|@|\bv\d|\b[0-9a-f]{7}|(?i:image|from|rev|version|tag|ref)\s*[:=\s]"
)
_VERSION_TEXT = st.text(alphabet=st.sampled_from(list("0123456789.abcdefv@ :=-\tIMAGEFromRtgx_")))


@given(_VERSION_TEXT)
@settings(max_examples=600, deadline=None)
def test_the_version_test_finds_what_the_one_regex_found(code: str) -> None:
    assert lines._versionish(code) == bool(_ONE_REGEX.search(code))
