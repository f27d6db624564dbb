"""Help and usage errors, as a new user meets them: through the real entry point."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import click
import pytest
from gitrepo import commit, git

from tierbot.cli import cli, main

COMMANDS = sorted(cli.commands)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_bare_tierbot_prints_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 0 and err == ""
    assert out.startswith("Usage: tierbot [OPTIONS] COMMAND [ARGS]...\n")
    assert all(f"  {name} " in out for name in COMMANDS)
    assert "--help')" not in out  # nothing glued to the last line
    assert out == run(capsys, "--help")[1]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_examples_and_described_options(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run(capsys, command, "--help")
    assert code == 0 and err == ""
    assert "\n  Examples:\n" in out
    examples = out.split("\n  Examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert any(f"tierbot {command}" in line for line in examples), examples
    undescribed = [
        p.name for p in cli.commands[command].params if isinstance(p, click.Option) and not p.help
    ]
    assert undescribed == []
    # Help reads on an 80-column terminal: no hand-made line wraps there.
    assert max(len(line) for line in out.splitlines()) < 80


def test_review_help_explains_range(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "review", "--help")
    assert out.startswith("Usage: tierbot review [OPTIONS] [RANGE] [-- PATH...]\n")
    forms = {
        "(none)": "uncommitted changes",
        "--staged": "the index against HEAD",
        "REV": "REV against the working tree",
        "A..B or A B": "A against B",
        "A...B": "merge base",
        "A^!": "the commit A alone",
        "A^@": "parent",
        "-- PATH...": "only these paths",
    }
    for form, meaning in forms.items():
        line = next((ln for ln in out.splitlines() if ln.strip().startswith(form + " ")), "")
        assert meaning in line, (form, line)
    assert re.search(r"--format \[text\|json\|markdown\|sarif\|github\]\s+Report format", out)


@pytest.fixture
def branches(repo: Path) -> Path:
    commit(repo, {"src/app.py": "def f(x):\n    return x\n", "README.md": "# demo\n"})
    for i in range(5):
        commit(repo, {f"src/m{i}.py": f"def g{i}():\n    return {i}\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"src/feature.py": "def h():\n    return 1\n"})
    git(repo, "checkout", "-q", "main")
    return repo


def test_every_review_example_runs(
    branches: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(branches)
    _, out, _ = run(capsys, "review", "--help")
    examples = out.split("\n  Examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    sha = git(branches, "rev-parse", "--short", "HEAD~1")
    for line in examples:
        argv = shlex.split(line.replace("a1b2c3d", sha), comments=True)
        assert argv[:2] == ["tierbot", "review"], line
        code, out, err = run(capsys, *argv[1:])
        assert code == 0, (line, err)
        assert "tierbot: " in out + err, line
    plan = json.loads((branches / "plan.json").read_text())
    assert plan["status"] == "dry-run"


BAD_USAGE = [
    (["review", "--bogus"], "No such option '--bogus'", "review"),
    (["review", "--format", "xml"], "Invalid value for '--format'", "review"),
    (["review", "-o"], "Option '-o' requires an argument.", "review"),
    (["costs", "--format"], "Option '--format' requires an argument.", "costs"),
    (["pr", "--number", "x"], "'x' is not a valid integer", "pr"),
    (["revew"], "No such command 'revew'. Did you mean 'review'?", None),
    (["--bogus"], "No such option '--bogus'", None),
]


@pytest.mark.parametrize(("argv", "message", "command"), BAD_USAGE)
def test_usage_errors_are_one_line_and_one_hint(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str, command: str | None
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("tierbot: ") and message in lines[0]
    where = f"tierbot {command}" if command else "tierbot"
    assert lines[1].startswith(f"usage: {where} [OPTIONS]")
    assert lines[1].endswith(f"(see '{where} --help')")
