"""Reading changes from real git repositories: every RANGE form and the awkward file kinds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gitrepo import commit, git, write

from tierbot.errors import BadInput
from tierbot.git.diff import parse, read_change
from tierbot.records import Change, FileDiff


def by_path(change: Change) -> dict[str, FileDiff]:
    return {f.path: f for f in change.files}


def test_range_forms(repo: Path) -> None:
    a = commit(repo, {"a.py": "x = 1\n"})
    b = commit(repo, {"a.py": "x = 2\n"})
    c = commit(repo, {"b.py": "y = 1\n"})

    two = read_change(str(repo), "HEAD~2")
    assert two.range.base == a and two.range.head is None
    assert set(by_path(two)) == {"a.py", "b.py"}

    dots = read_change(str(repo), f"{a}..{b}")
    assert (dots.range.base, dots.range.head) == (a, b)
    assert [f.path for f in dots.files] == ["a.py"]
    assert dots.files[0].added_lines == ((1, "x = 2"),)

    git(repo, "checkout", "-q", "-b", "side", b)
    d = commit(repo, {"c.py": "z = 1\n"})
    three = read_change(str(repo), f"main...{d}")
    assert three.range.base == b and three.range.head == d
    assert [f.path for f in three.files] == ["c.py"]
    assert c not in (three.range.base, three.range.head)


def test_none_staged_and_worktree(repo: Path) -> None:
    commit(repo, {"a.py": "x = 1\n", "b.py": "y = 1\n"})
    write(repo, {"a.py": "x = 2\n"})  # unstaged
    write(repo, {"b.py": "y = 2\n"})
    git(repo, "add", "b.py")  # staged
    write(repo, {"untracked.py": "z = 1\n"})

    staged = read_change(str(repo), None, staged=True)
    assert [f.path for f in staged.files] == ["b.py"]
    assert staged.range.spec == "--staged" and staged.range.head is None

    both = read_change(str(repo), None)
    assert [f.path for f in both.files] == ["a.py", "b.py"]  # untracked files are in no range


def test_first_commit_staged_uses_empty_tree(repo: Path) -> None:
    write(repo, {"a.py": "print('hi')\n"})
    git(repo, "add", "a.py")
    change = read_change(str(repo), None, staged=True)
    assert [f.status for f in change.files] == ["added"]
    with pytest.raises(BadInput, match="no commits yet"):
        read_change(str(repo), None)
    with pytest.raises(BadInput, match="no commits yet"):
        read_change(str(repo), "HEAD~1")


def test_awkward_files(repo: Path) -> None:
    long_text = "".join(f"line {i}\n" for i in range(40))
    commit(
        repo,
        {
            "keep.txt": long_text,
            "mode.sh": "echo\n",
            "bin.dat": b"\0\1\2",
            "latin.py": b"s = 'caf\xe9'\n",
            "old name.py": "v = 1\n" * 5,
        },
    )
    os.symlink("keep.txt", repo / "link")
    git(repo, "add", "link")
    git(repo, "commit", "-qm", "link")
    git(repo, "mv", "keep.txt", "moved.txt")
    git(repo, "mv", "old name.py", "néw name.py")
    write(
        repo,
        {
            "néw name.py": "v = 1\n" * 4 + "v = 2\n",
            "bin.dat": b"\0\3\4",
            "latin.py": b"s = 'cr\xe8me'\n",
            "nonl.py": "a = 1",
        },
    )
    (repo / "mode.sh").chmod(0o755)
    (repo / "link").unlink()
    git(repo, "add", "-A")
    change = read_change(str(repo), None, staged=True)
    files = by_path(change)

    assert files["moved.txt"].status == "renamed" and files["moved.txt"].old_path == "keep.txt"
    assert not files["moved.txt"].hunks
    renamed = files["néw name.py"]
    assert renamed.old_path == "old name.py" and renamed.added_lines == ((5, "v = 2"),)
    assert files["bin.dat"].binary
    assert files["mode.sh"].old_mode == "100644" and files["mode.sh"].new_mode == "100755"
    assert files["link"].symlink and files["link"].status == "deleted"
    # Non-UTF-8 bytes survive as surrogate escapes rather than crashing the parser.
    assert files["latin.py"].added_lines[0][1] == "s = 'cr\udce8me'"
    assert files["nonl.py"].added_lines == ((1, "a = 1"),)


def test_submodule_pointer(repo: Path, tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    git(sub, "init", "-q")
    commit(sub, {"x": "1\n"})
    commit(repo, {"a.py": "1\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "lib")
    change = read_change(str(repo), None, staged=True)
    assert by_path(change)["lib"].submodule


def test_path_filter_relative_to_cwd(repo: Path) -> None:
    commit(repo, {"src/a.py": "1\n", "docs/b.md": "x\n"})
    commit(repo, {"src/a.py": "2\n", "docs/b.md": "y\n"})
    change = read_change(str(repo / "src"), "HEAD~1", paths=("a.py",))
    assert [f.path for f in change.files] == ["src/a.py"]
    assert read_change(str(repo), "HEAD~1", paths=("nothing/here",)).files == ()


def test_huge_file_is_counted_not_parsed(repo: Path) -> None:
    commit(repo, {"a.py": "1\n"})
    commit(repo, {"gen/data.py": "".join(f"X{i} = {i}\n" for i in range(120_000))})
    change = read_change(str(repo), "HEAD~1")
    f = change.files[0]
    assert f.too_large and f.lines_added == 120_000 and not f.hunks and f.patch is None


def test_lockfile_is_counted_not_parsed(repo: Path) -> None:
    commit(repo, {"poetry.lock": "a\nb\n"})
    write(repo, {"poetry.lock": "a\nc\nd\n"})
    (f,) = read_change(str(repo), None).files  # the work tree side: sizes come from disk
    assert (f.lines_added, f.lines_removed, f.hunks, f.too_large) == (2, 1, (), False)


def test_bad_revisions(repo: Path, tmp_path: Path) -> None:
    commit(repo, {"a.py": "1\n"})
    with pytest.raises(BadInput, match="bad revision 'nope'"):
        read_change(str(repo), "nope")
    with pytest.raises(BadInput, match="bad revision"):
        read_change(str(repo), "HEAD..nope")
    with pytest.raises(BadInput, match="not a git repository"):
        read_change(str(tmp_path), None)


def test_parse_plain_diff_text() -> None:
    text = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,3 @@\n a\n-b\n+c\n+d\n"
    (f,) = parse(text)
    assert f.path == "x.py" and f.added_lines == ((2, "c"), (3, "d")) and f.lines_removed == 1
    assert {n: (nl.added, nl.text) for n, nl in f.new_lines.items()} == {
        1: (False, "a"),
        2: (True, "c"),
        3: (True, "d"),
    }


def test_whitespace_only_respects_indentation(repo: Path) -> None:
    commit(repo, {"a.js": "if (x) {\n  y();\n}\n", "b.py": "import os\n\ndef f():\n    pass\n"})
    commit(
        repo, {"a.js": "if (x) {\n    y();\n}\n", "b.py": "\ndef f():\n    import os\n    pass\n"}
    )
    files = by_path(read_change(str(repo), "HEAD~1"))
    assert files["a.js"].whitespace_only  # re-indenting JavaScript changes nothing
    assert not files["b.py"].whitespace_only  # moving an import into a function does
