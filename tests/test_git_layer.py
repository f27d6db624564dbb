"""The repository layer against real repositories: every range form `git diff` takes, and the
broken states users meet (a corrupt index, missing objects, a merge in progress, paths outside the
repository).  Each answer is a BadInput with one line, never an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitrepo import commit, git, write

from tierbot.errors import BadInput
from tierbot.git import repository
from tierbot.git.diff import read_change


@pytest.fixture
def three(repo: Path) -> list[str]:
    return [
        commit(repo, {"a.py": "x = 1\n"}),
        commit(repo, {"a.py": "x = 2\n"}),
        commit(repo, {"b.py": "y = 1\n"}),
    ]


def _sides(repo: Path, *revs: str) -> tuple[str, str | None, list[str]]:
    change = read_change(str(repo), list(revs))
    return change.range.base, change.range.head, [f.path for f in change.files]


def test_every_two_endpoint_form(repo: Path, three: list[str]) -> None:
    a, b, c = three
    assert _sides(repo, "HEAD~2", "HEAD~1") == (a, b, ["a.py"])  # A B
    assert _sides(repo, "HEAD~2..HEAD~1") == (a, b, ["a.py"])  # A..B
    assert _sides(repo, "HEAD~1^!") == (a, b, ["a.py"])  # the commit alone
    assert _sides(repo, "HEAD^@") == (b, c, ["b.py"])  # its parent against it
    assert _sides(repo, f"{a[:10]}..") == (a, c, ["a.py", "b.py"])  # an open end is HEAD
    assert _sides(repo, "HEAD~2") == (a, None, ["a.py", "b.py"])  # REV: against the work tree
    first = read_change(str(repo), [f"{a}^!"])  # the root commit: against the empty tree
    assert first.range.base == repository.EMPTY_TREE and [f.status for f in first.files] == [
        "added"
    ]


@pytest.mark.parametrize(
    ("revs", "message"),
    [
        (["HEAD~2..HEAD~1..HEAD"], "a range has two ends"),
        (["HEAD~2...HEAD~1...HEAD"], "a range has two ends"),
        (["HEAD~2", "HEAD~1", "HEAD"], "at most two revisions"),
        (["HEAD~2..HEAD", "HEAD"], "either A B or A..B"),
        (["--upload-pack=touch /tmp/x"], "bad revision"),
        (["no-such-branch^!"], "bad revision 'no-such-branch'"),
    ],
)
def test_malformed_ranges(repo: Path, three: list[str], revs: list[str], message: str) -> None:
    with pytest.raises(BadInput, match=message) as e:
        read_change(str(repo), revs)
    assert "\n" not in str(e.value)


def test_found_from_a_subdirectory_and_a_linked_worktree(
    repo: Path, three: list[str], tmp_path: Path
) -> None:
    write(repo, {"deep/er/c.py": "z = 1\n"})
    assert repository.toplevel(str(repo / "deep" / "er")) == str(repo.resolve())
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), "HEAD~1")
    change = read_change(str(tmp_path / "wt"), ["HEAD~1"])
    assert change.root == str((tmp_path / "wt").resolve()) and change.range.base == three[0]


def test_corrupt_index_is_one_line_naming_the_fix(repo: Path, three: list[str]) -> None:
    index = repo / ".git" / "index"
    index.write_bytes(b"DIRC" + b"\0" * 7 + b"garbage" * 3)
    with pytest.raises(BadInput, match=r"index \(.git/index\) is corrupt: run `git reset`"):
        read_change(str(repo), [], staged=True)


def test_missing_objects_name_the_object_and_the_fix(repo: Path, three: list[str]) -> None:
    blob = git(repo, "rev-parse", "HEAD~1:a.py")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    with pytest.raises(BadInput, match=r"missing an object.*git fetch.*git fsck"):
        read_change(str(repo), ["HEAD~2..HEAD~1"])


def test_a_path_outside_the_repository(repo: Path, three: list[str]) -> None:
    with pytest.raises(BadInput, match="outside the repository"):
        read_change(str(repo), ["HEAD~1"], paths=("../elsewhere.py",))


def test_a_merge_in_progress_names_the_unmerged_files(repo: Path, three: list[str]) -> None:
    git(repo, "checkout", "-q", "-b", "side", "HEAD~1")
    commit(repo, {"b.py": "y = 'side'\n"})
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "side", check=False)
    with pytest.raises(BadInput, match=r"merge or rebase is in progress .*\(b\.py\)"):
        read_change(str(repo), [], staged=True)


def test_blobs_and_text_at_a_revision_through_gitpython(repo: Path, three: list[str]) -> None:
    write(repo, {"dir with space/c d.py": "v = 1\n"})
    git(repo, "add", "-A")
    r = repository.at(str(repo))
    assert r.blobs(["HEAD~2:a.py", ":dir with space/c d.py", "HEAD:missing", "HEAD:"]) == [
        b"x = 1\n",
        b"v = 1\n",
        None,
        None,  # a tree is not a blob
    ]
    assert r.text_at(three[1], "a.py") == "x = 2\n" and r.text_at(three[1], "nope") is None


def test_fetch_refuses_anything_but_hex_shas(repo: Path, three: list[str]) -> None:
    r = repository.at(str(repo))
    assert not r.fetch("--upload-pack=touch /tmp/tierbot-pwned")
    assert not Path("/tmp/tierbot-pwned").exists()
    assert r.has(three[0]) and not r.has("0" * 40) and not r.has("--all")


def test_a_deleted_file_is_counted_not_parsed(repo: Path) -> None:
    commit(repo, {"gone.py": "a = 1\nb = 2\nc = 3\n", "kept.py": "x = 1\n"})
    git(repo, "rm", "-q", "gone.py")
    git(repo, "commit", "-qm", "delete")
    (f,) = read_change(str(repo), ["HEAD^!"]).files
    assert (f.path, f.status, f.lines_removed, f.patch, f.new_lines) == (
        "gone.py",
        "deleted",
        3,
        None,
        {},
    )
