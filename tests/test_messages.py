"""What `tierbot review` says, read as a user reads it: grammar, the routing table, notes, and the
one-line messages for empty changes and for a report written to a file."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from gitrepo import commit, git, write

from tierbot.cli import main
from tierbot.words import plural, with_article

CODE = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(10))


def review(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch, *argv: str
) -> tuple[int, str, str]:
    monkeypatch.chdir(repo)
    code = main(["review", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(repo: Path) -> Path:
    commit(repo, {"src/app.py": CODE, "README.md": "# demo\n"})
    return repo


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("AWS access key id", "an AWS access key id"),
        ("GitHub token", "a GitHub token"),
        ("Anthropic API key", "an Anthropic API key"),
        ("OpenAI-style API key", "an OpenAI-style API key"),
        ("npm token", "an npm token"),
        ("SSH key", "an SSH key"),
        ("JSON Web Token", "a JSON Web Token"),
        ("URL", "a URL"),
        ("TODO", "a TODO"),
        ("FIXME", "a FIXME"),
        ("XXX", "an XXX"),
        ("unit", "a unit"),
        ("hour", "an hour"),
        ("element", "an element"),
        ("Docker registry credentials", "Docker registry credentials"),
        ("secret (custom pattern)", "a secret (custom pattern)"),
    ],
)
def test_articles(phrase: str, expected: str) -> None:
    assert with_article(phrase) == expected


def test_plurals() -> None:
    assert [plural(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    assert plural(2, "directory") == "2 directories"
    assert plural(2, "match") == "2 matches"
    assert plural(2, "key") == "2 keys"
    assert plural(2, "file too large", "files too large") == "2 files too large"


def _hand_made_plurals(source: str) -> list[int]:
    """Lines whose strings say `file(s)` or pick an `s` by hand (`{'s' if n != 1 else ''}`)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.search(r"[a-z]\(s\)", node.value):
                lines.append(node.lineno)
        elif isinstance(node, ast.IfExp) and "s" in (
            getattr(node.body, "value", None),
            getattr(node.orelse, "value", None),
        ):
            lines.append(node.lineno)
    return lines


def test_no_count_in_the_package_is_made_by_hand() -> None:
    """Counts go through `words.plural`, so none reads `1 files` or `file(s)`."""
    package = Path(__file__).parents[1] / "tierbot"
    offenders = [
        f"{p.relative_to(package)}:{line}"
        for p in package.rglob("*.py")
        if p.name != "prompt.py"  # text for the model, not for a reader
        for line in _hand_made_plurals(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    assert sorted(
        _hand_made_plurals("x = f\"{n} file{'s' if n != 1 else ''}\"\ny = 'unit(s)'\n")
    ) == [1, 2]


def test_secret_finding_reads_an_aws_key(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project, {"src/conf.py": 'KEY = "AKIA' + 'QWERTYUIOPASDFGH"\n'})
    git(project, "add", "-A")
    code, out, _ = review(capsys, project, monkeypatch, "--staged")
    assert code == 1
    assert "looks like an AWS access key id." in out
    assert "a AWS" not in out


def test_one_new_file_and_skipped_counts_read_right(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(project, {"src/new.py": "def g():\n    return 1\n", "poetry.lock": "x\n"})
    code, out, _ = review(capsys, project, monkeypatch, "HEAD~1", "-v")
    assert code == 0
    assert "1 of 1 code file is new" in out
    assert "(1 lockfile)" in out
    assert "1 lockfiles" not in out and " are new" not in out


def test_analysis_bounds_only_under_verbose(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One file too long for the complexity budget: the review is whole, only a feature is not.
    big = "".join(f"def big{i}(x):\n    return x * {i}\n\n" for i in range(900))
    commit(project, {"src/big.py": big, "src/small.py": CODE})
    note = "complexity not measured for 1 file (analysis bound)"
    code, out, _ = review(capsys, project, monkeypatch, "HEAD~1")
    assert code == 0 and "complexity not measured" not in out
    code, out, _ = review(capsys, project, monkeypatch, "HEAD~1", "-v")
    assert code == 0 and f"note: {note}" in out
    code, out, _ = review(capsys, project, monkeypatch, "HEAD~1", "--format", "json")
    assert note in json.loads(out)["notes"]  # the machine-readable report keeps every note


def _table(out: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("unit "))
    end = lines.index("", start)
    return lines[start:end]


@pytest.fixture
def long_reasons(project: Path) -> Path:
    risky = "".join(
        f"def check{i}(user, token):\n    if token == user.secret{i}:\n"
        f"        return subprocess.run(token, shell=True)\n    return None\n\n"
        for i in range(15)
    )
    tests = "".join(f"def test_{i}():\n    assert check{i}(1, 2) is None\n\n" for i in range(15))
    commit(project, {"src/auth.py": risky, "tests/test_checks.py": tests, "docs/a.md": "x\n"})
    return project


def test_reason_column_is_whole_on_a_wide_terminal(
    long_reasons: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    code, out, _ = review(capsys, long_reasons, monkeypatch, "HEAD~1", "--dry-run")
    _, doc, _ = review(capsys, long_reasons, monkeypatch, "HEAD~1", "--dry-run", "--format", "json")
    assert code == 0
    units = {u["paths"][0]: u for u in json.loads(doc)["route"]["units"]}
    rows = {row.split()[2]: row for row in _table(out)[1:]}
    assert not any("…" in row for row in rows.values())
    for path, unit in units.items():
        # A unit's reason says why, not its tier and score again: the table has columns for those.
        tier, score = unit["tier"], f"{unit['risk_score']:.2f}"
        assert not unit["reasons"][0].startswith(f"{tier}: ")
        row = rows[path]
        assert row.split()[1] == tier and row.split()[3] == score
        assert f"{tier}:" not in row and f"risk {score}" not in row
    auth = rows["src/auth.py"]
    assert auth.endswith(units["src/auth.py"]["reasons"][0]) and len(auth) > 100
    assert rows["docs/a.md"].endswith("  nothing for a model to review (1 doc)")


@pytest.mark.parametrize("columns", [80, 120])
def test_reason_column_fits_the_terminal(
    long_reasons: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    columns: int,
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, _ = review(capsys, long_reasons, monkeypatch, "HEAD~1", "--dry-run")
    assert code == 0
    table = _table(out)
    assert all(len(row) < columns for row in table), table
    assert any(row.endswith("…") for row in table)  # the long sensitive-code reason was cut


def test_piped_report_keeps_reasons_whole(
    long_reasons: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    code, out, _ = review(capsys, long_reasons, monkeypatch, "HEAD~1", "--dry-run")
    assert code == 0 and not any("…" in row for row in _table(out))
    assert max(len(row) for row in _table(out)) > 120


def test_nothing_staged_says_so(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project, {"src/app.py": CODE + "x = 1\n"})  # changed, but not staged
    code, out, err = review(capsys, project, monkeypatch, "--staged")
    assert code == 0 and out == ""
    assert err == (
        "tierbot: nothing staged: `git add` the changes to review,"
        " or run `tierbot review` for every uncommitted change\n"
    )


def test_clean_tree_and_empty_range_say_what_to_run(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = review(capsys, project, monkeypatch)
    assert code == 0 and out == ""
    assert err == (
        "tierbot: nothing to review: no uncommitted changes"
        " (`tierbot review HEAD~1` reviews the last commit)\n"
    )
    head = git(project, "rev-parse", "--short=7", "HEAD")
    code, out, err = review(capsys, project, monkeypatch, "HEAD", "--", "docs")
    assert code == 0 and out == ""
    assert (
        err == f"tierbot: nothing to review: no changes under docs in HEAD ({head}..working tree)\n"
    )


def test_output_file_prints_one_summary_line(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    write(project, {"src/conf.py": 'KEY = "AKIA' + 'QWERTYUIOPASDFGH"\n# TODO: load it\n'})
    git(project, "add", "-A")
    report = tmp_path / "report.json"
    code, out, err = review(
        capsys, project, monkeypatch, "--staged", "--format", "json", "-o", str(report)
    )
    assert code == 1 and out == ""
    doc = json.loads(report.read_text())
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tierbot: 2 findings (1 critical, 1 info), tier ")
    assert f"tier {doc['route']['tier']}, cost: $" in lines[0]
    assert lines[0].endswith(f"; report written to {report}")
    # -q keeps stderr for errors only.
    code, out, err = review(
        capsys, project, monkeypatch, "--staged", "-q", "--format", "json", "-o", str(report)
    )
    assert code == 1 and out == "" and err == ""


# --- the hook ----------------------------------------------------------------------------


def hook(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    monkeypatch.chdir(repo)
    code = main(["hook"])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def test_hook_with_nothing_staged_says_what_it_reviews(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project, {"src/app.py": CODE + "x = 1\n"})  # `pre-commit run --all-files`: unstaged
    code, out = hook(capsys, project, monkeypatch)
    assert code == 0
    assert out == (
        "tierbot: nothing staged: this hook reviews the change being committed (or pushed), not"
        " the files pre-commit lists; run `tierbot review` for the work tree\n"
    )
    monkeypatch.setenv("PRE_COMMIT_FROM_REF", "HEAD")
    monkeypatch.setenv("PRE_COMMIT_TO_REF", "HEAD")
    code, out = hook(capsys, project, monkeypatch)
    assert code == 0
    assert out == "tierbot: nothing to review: the pushed commits change no files\n"


def test_hook_reviews_a_deletion_and_says_what_it_reviewed(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    git(project, "rm", "-q", "src/app.py")
    code, out = hook(capsys, project, monkeypatch)
    head = git(project, "rev-parse", "--short=7", "HEAD")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"tierbot: staged changes ({head}..index): 1 file, +0 -30, risk ")
    assert lines[-1].startswith("tierbot: cost: $")


def test_hook_leaves_analysis_bounds_out(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    big = "".join(f"def big{i}(x):\n    return x * {i}\n\n" for i in range(900))
    write(project, {"src/big.py": big, "src/small.py": CODE})
    git(project, "add", "-A")
    code, out = hook(capsys, project, monkeypatch)
    assert code == 0 and "tierbot: cost: $" in out
    assert "analysis bound" not in out and "complexity not measured" not in out


# --- revisions that name nothing -----------------------------------------------------------


def test_past_the_first_commit_says_how_far_history_goes(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(project, {"src/more.py": CODE})
    code, _, err = review(capsys, project, monkeypatch, "HEAD~3")
    assert code == 2
    assert err == "tierbot: bad revision 'HEAD~3': HEAD has 2 commits, the oldest is HEAD~1\n"
    code, _, err = review(capsys, project, monkeypatch, "nope")
    assert code == 2 and err == "tierbot: bad revision 'nope'\n"


def test_shallow_clone_says_how_to_fetch_history(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for i in range(3):
        commit(project, {"src/app.py": CODE + f"x = {i}\n"})
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{project}", str(shallow))
    code, _, err = review(capsys, shallow, monkeypatch, "HEAD~3")
    assert code == 2
    assert err.startswith("tierbot: bad revision 'HEAD~3': this clone is shallow")
    assert "`git fetch --unshallow`" in err


def test_missing_commit_object_is_named(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(project, {"src/app.py": CODE + "x = 1\n"})
    parent = git(project, "rev-parse", "HEAD~1")
    (project / ".git" / "objects" / parent[:2] / parent[2:]).unlink()
    code, _, err = review(capsys, project, monkeypatch, "HEAD~1")
    assert code == 2
    assert err == (
        f"tierbot: the repository is missing an object {parent} (a partial or damaged clone):"
        " run `git fetch` (or `git fsck` to check it)\n"
    )


def test_root_commit_is_compared_with_the_empty_tree(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = commit(repo, {"src/app.py": CODE})
    code, out, _ = review(capsys, repo, monkeypatch, "HEAD^!")
    assert code == 0
    assert out.splitlines()[0].startswith(
        f"tierbot: HEAD^! (empty tree..{root[:7]}): 1 file, +30 -0"
    )


def test_first_push_of_a_new_repository_reviews_its_commit(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # pre-commit sets no refs when every pushed commit is new, down to the root.
    root = commit(repo, {"src/app.py": CODE})
    monkeypatch.setenv("PRE_COMMIT_REMOTE_NAME", "origin")
    code, out = hook(capsys, repo, monkeypatch)
    assert code == 0
    assert out.startswith(f"tierbot: HEAD^! (empty tree..{root[:7]}): 1 file, +30 -0, risk ")
