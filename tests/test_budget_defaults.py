"""Default budgets per command, `none`, and asking before an interactive review overspends."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic
from gitrepo import commit

from tierbot import config
from tierbot.cli import main
from tierbot.errors import BadInput


@pytest.fixture
def change(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One commit that adds a small function to a module: a review of a few cents."""
    scale = "".join(f"def scale{i}(x):\n    return x * {i}\n\n" for i in range(20))
    commit(repo, {"lib/scale.py": scale})
    commit(repo, {"lib/scale.py": scale + "def first(items):\n    return items[0]\n"})
    monkeypatch.chdir(repo)
    return repo


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out), err


class Terminal(io.StringIO):
    """A stdin that is a terminal, with the answer the person types."""

    def isatty(self) -> bool:
        return True


def test_defaults_per_command_and_the_ways_to_set_them() -> None:
    limits = config.default().budget
    assert (limits.for_command("review"), limits.for_command("hook")) == (1.0, 0.25)
    assert limits.for_command("pr") == 2.0
    one = config.parse("budget:\n  max_usd_per_review: 3\n").budget
    assert [one.for_command(c) for c in config.COMMANDS] == [3.0, 3.0, 3.0]
    none = config.parse("budget:\n  max_usd_per_review: none\n").budget
    assert [none.for_command(c) for c in config.COMMANDS] == [None, None, None]
    mixed = config.parse("budget:\n  max_usd_per_review: {hook: none, pr: 5}\n").budget
    assert [mixed.for_command(c) for c in config.COMMANDS] == [1.0, None, 5.0]
    with pytest.raises(BadInput, match=r"'budget.max_usd_per_review.pr' must be a number of USD"):
        config.parse("budget:\n  max_usd_per_review: {pr: -1}\n")
    with pytest.raises(BadInput, match=r"unknown key 'budget.max_usd_per_review.revew'"):
        config.parse("budget:\n  max_usd_per_review: {revew: 1}\n")


def test_a_dry_run_says_when_the_budget_would_bite(
    change: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, doc, _ = cli(capsys, "review", "HEAD~1", "--dry-run", "--format", "json", "--budget", "0")
    assert any("above the $0.00 budget of `review`" in n for n in doc["notes"])  # type: ignore[attr-defined]
    _, doc, _ = cli(capsys, "review", "HEAD~1", "--dry-run", "--format", "json")
    assert not any("budget" in n for n in doc["notes"])  # type: ignore[attr-defined]


def test_bad_budget_is_one_line_and_exit_2(
    change: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "HEAD~1", "--budget", "lots"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        "tierbot: Invalid value for '--budget': must be a number of USD from 0 to 1e9 or none,"
        " not 'lots'"
    )


def test_non_interactive_runs_keep_the_budget_without_asking(
    change: Path, fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, err = cli(capsys, "review", "HEAD~1", "--format", "json", "--budget", "0.0001")
    assert code == 0 and fake.requests == []
    assert "Spend above the budget?" not in err
    assert any("budget" in n for n in doc["notes"])  # type: ignore[attr-defined]


@pytest.mark.parametrize(("answer", "spends"), [("y\n", True), ("\n", False), ("no\n", False)])
def test_an_interactive_review_asks_before_spending_above_the_budget(
    change: Path,
    fake: FakeAnthropic,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    spends: bool,
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    code, doc, err = cli(capsys, "review", "HEAD~1", "--format", "json", "--budget", "0.0001")
    assert code == 0
    assert "above the $0.00 budget" in err and "Spend above the budget? [y/N]" in err
    assert bool(fake.requests) is spends
    usage = doc["usage"]
    assert (usage["cost_usd"] > 0.0001) is spends  # type: ignore[index]


def test_yes_spends_without_asking(
    change: Path,
    fake: FakeAnthropic,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal(""))
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    code, _, err = cli(capsys, "review", "HEAD~1", "--format", "json", "--budget", "0.0001", "-y")
    assert code == 0 and fake.requests
    assert "Spend above" not in err


def test_budget_none_lifts_the_default(
    change: Path, fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    (change / ".tierbot.yml").write_text("budget:\n  max_usd_per_review: 0.0001\n")
    code, _, _ = cli(capsys, "review", "HEAD~1", "--format", "json")
    assert code == 0 and fake.requests == []  # the configured limit holds
    code, _, _ = cli(capsys, "review", "HEAD~1", "--format", "json", "--budget", "none")
    assert code == 0 and fake.requests
