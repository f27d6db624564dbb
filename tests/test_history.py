from __future__ import annotations

import time
from pathlib import Path

from routing_helpers import commit, init_repo

from tierbot.git.history import FileHistory, file_history, is_fix_subject

DAY = 86400


def test_fix_subjects() -> None:
    assert is_fix_subject("Fix crash when the option is missing")
    assert is_fix_subject("handle regression in parser (#12)")
    assert is_fix_subject("bugfix: off by one")
    assert not is_fix_subject("Fix typo in README")
    assert not is_fix_subject("fix docs build")
    assert not is_fix_subject("Add a prefix option")  # 'prefix' is not 'fix'
    assert not is_fix_subject("Refactor the parser")


def test_history_counts_changes_fixes_authors_and_age(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    t0 = 1_600_000_000
    commit(repo, {"a.py": "1\n", "b.py": "1\n"}, "initial", when=t0)
    commit(
        repo, {"a.py": "2\n"}, "Fix crash in a", author="Bob <BOB@example.com>", when=t0 + 10 * DAY
    )
    commit(repo, {"a.py": "3\n"}, "Add feature", author="Bob <bob@example.com>", when=t0 + 20 * DAY)
    commit(repo, {"c.py": "1\n"}, "Add c", when=t0 + 30 * DAY)
    base = commit(repo, {"d.txt": "x\n"}, "unrelated", when=t0 + 40 * DAY)

    hist = file_history(str(repo), base, ["a.py", "b.py", "new.py"], 100)
    assert hist["a.py"] == FileHistory(changes=3, fixes=1, authors=2, age_days=40.0, last_days=20.0)
    assert hist["b.py"] == FileHistory(1, 0, 1, 40.0, 40.0)
    assert hist["new.py"] == FileHistory(0, 0, 0, None, None)


def test_history_sees_only_the_past_of_rev_and_the_window(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    t0 = 1_600_000_000
    first = commit(repo, {"a.py": "1\n"}, "initial", when=t0)
    for i in range(5):
        commit(repo, {"a.py": f"{i}\n"}, f"fix bug {i}", when=t0 + (i + 1) * DAY)
    # From the first commit, the later fixes are the future: invisible.
    assert file_history(str(repo), first, ["a.py"], 100)["a.py"].changes == 1
    # The window bounds the walk: only the 2 newest commits are read.
    bounded = file_history(str(repo), "HEAD", ["a.py"], 2)["a.py"]
    assert (bounded.changes, bounded.fixes, bounded.age_days) == (2, 2, 1.0)


def test_history_never_fails_the_review(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")  # unborn branch: no HEAD yet
    assert file_history(str(repo), "HEAD", ["a.py"], 100) == {
        "a.py": FileHistory(0, 0, 0, None, None)
    }
    assert file_history(str(tmp_path / "missing"), "HEAD", ["a.py"], 100)["a.py"].changes == 0
    assert file_history(str(repo), "HEAD", [], 100) == {}


def test_history_is_fast_for_many_paths(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    for i in range(30):
        commit(
            repo,
            {f"pkg/m{j}.py": f"{i}\n" for j in range(i % 7, 250, 7)},
            f"change {i}",
            when=1_600_000_000 + i * DAY,
        )
    paths = [f"pkg/m{j}.py" for j in range(250)]
    start = time.perf_counter()
    hist = file_history(str(repo), "HEAD", paths, 2000)
    elapsed = time.perf_counter() - start
    assert len(hist) == 250
    assert sum(h.changes for h in hist.values()) == sum(
        len(range(i % 7, 250, 7)) for i in range(30)
    )
    assert elapsed < 1.0


def test_history_counts_the_projects_fix_rate_without_merges(tmp_path: Path) -> None:
    from routing_helpers import git

    repo = init_repo(tmp_path / "r")
    t0 = 1_600_000_000
    commit(repo, {"a.py": "1\n"}, "initial", when=t0)
    git(repo, "checkout", "-q", "-b", "topic")
    commit(repo, {"b.py": "1\n"}, "Fix bug in b", when=t0 + DAY)
    git(repo, "checkout", "-q", "main")
    commit(repo, {"c.py": "1\n"}, "Fix crash in c", when=t0 + 2 * DAY)
    git(
        repo,
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge branch 'fix-everything'",
        "topic",
        env={
            "GIT_AUTHOR_DATE": f"{t0 + 3 * DAY} +0000",
            "GIT_COMMITTER_DATE": f"{t0 + 3 * DAY} +0000",
            "GIT_AUTHOR_NAME": "A",
            "GIT_AUTHOR_EMAIL": "a@x",
            "GIT_COMMITTER_NAME": "A",
            "GIT_COMMITTER_EMAIL": "a@x",
        },
    )
    hist = file_history(str(repo), "HEAD", ["a.py", "b.py"], 100)
    assert (hist.commits, hist.fixes) == (3, 2)  # the merge is neither
    assert hist["b.py"].fixes == 1
    assert hist["a.py"].age_days == 3.0  # measured from the merge: the base itself


def test_bots_and_dependency_updates_are_not_development_history(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    t0 = 1_600_000_000
    commit(repo, {"a.py": "1\n"}, "initial", when=t0)
    commit(repo, {"a.py": "2\n"}, "Fix crash in a", when=t0 + DAY)
    bots = [
        ("renovate[bot] <29139614+renovate[bot]@users.noreply.github.com>", "fix(deps): update x"),
        ("dependabot[bot] <49699333+dependabot[bot]@users.noreply.github.com>", "Bump y"),
        ("Ann <ann@example.com>", "fix(deps): update module golang.org/x/sys to v0.30.0"),
        ("Ann <ann@example.com>", "build(deps-dev): bump pytest from 8.0 to 8.1"),
        ("pre-commit-ci[bot] <66853113+pre-commit-ci[bot]@users.noreply.github.com>", "fix hooks"),
    ]
    for i, (author, subject) in enumerate(bots):
        commit(repo, {"a.py": f"{i + 3}\n"}, subject, author=author, when=t0 + (i + 2) * DAY)
    hist = file_history(str(repo), "HEAD", ["a.py"], 100)
    # One fix in two development commits: the bots and dependency updates count for nothing.
    assert (hist.commits, hist.fixes, hist.skipped) == (2, 1, 5)
    assert hist["a.py"] == FileHistory(2, 1, 1, 6.0, 5.0)
    assert not hist.truncated


def test_automated_commits_by_author_or_subject() -> None:
    from tierbot.git.history import is_automated

    assert is_automated("dependabot[bot] <x@users.noreply.github.com>", "Bump a from 1 to 2")
    assert is_automated("Renovate Bot <bot@renovateapp.com>", "Update dependency b to v2")
    assert is_automated("Ann <ann@example.com>", "chore(deps): update all non-major dependencies")
    assert is_automated("Ann <ann@example.com>", "Bump requests from 2.31.0 to 2.32.0 (#12)")
    assert not is_automated("Ann <ann@example.com>", "Fix dependency resolution when a is None")
    assert not is_automated("Bob Renovated <bob@example.com>", "Fix crash on empty input")


def test_a_shallow_clone_is_told_apart_and_its_history_is_neutral(tmp_path: Path) -> None:
    from routing_helpers import git

    from tierbot import config
    from tierbot.analysis.analyze import analyze
    from tierbot.git.diff import read_change

    repo = init_repo(tmp_path / "r")
    t0 = 1_600_000_000
    for i in range(6):
        commit(repo, {"a.py": f"x = {i}\n"}, f"Fix bug {i}", when=t0 + i * DAY)
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "2", f"file://{repo}", str(shallow))
    hist = file_history(str(shallow), "HEAD", ["a.py"], 100)
    assert hist.truncated and hist.commits == 2  # the window ran into the cut
    full = file_history(str(repo), "HEAD", ["a.py"], 100)
    assert not full.truncated and full.fixes == 6
    # A shallow clone deep enough for the window is not cut: nothing to say.
    assert not file_history(str(shallow), "HEAD", ["a.py"], 1).truncated

    cfg = config.default()
    analysis, assessment, notes = analyze(read_change(str(shallow), "HEAD~1..HEAD"), cfg)
    assert sum("shallow clone" in n for n in notes) == 1
    assert assessment.facts["a.py"].history == FileHistory(0, 0, 0, None, None)
    ids = {s.id: s for s in analysis.signals}
    assert "history.fixes" not in ids and "project.fix_rate" not in ids
    assert "history.unseen" not in ids
