"""`tierbot hook` on real repositories against a loopback Claude, through the real entry point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic, answer, error, finding, verdict, verdicts
from gitrepo import commit, git, write

from tierbot.cli import main

CODE = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(30))


@pytest.fixture
def staged(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    commit(repo, {"app/core.py": CODE, "README.md": "# x\n"})
    write(repo, {"app/core.py": CODE + "def added(x):\n    return eval(x)\n"})
    git(repo, "add", "-A")
    monkeypatch.chdir(repo)
    return repo


def hook(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["hook", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_blocking_finding_fails_the_commit(
    staged: Path, fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script("*", answer([finding("app/core.py", 92, "eval of input", severity="high")]))
    fake.script_verdicts(verdicts(verdict(1, "confirmed", "eval of user input")))
    code, out, _ = hook(capsys)
    assert code == 1
    assert "app/core.py:92: high: eval of input" in out
    assert out.splitlines()[-2].startswith("tierbot: cost: $")
    assert out.splitlines()[-1].startswith("tierbot:   of which Opus verification: $")
    # The cheap tier's blocking finding was checked by Opus before it blocked the commit.
    review, check = fake.requests
    assert review.model != "claude-opus-5-5" and check.model == "claude-opus-5-5"
    assert "eval of input" in check.text


def test_low_finding_passes_and_rerun_is_free(
    staged: Path, fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script("*", answer([finding("app/core.py", 91, "naming", severity="low")]))
    code, out, _ = hook(capsys)
    assert code == 0 and "app/core.py:91: low: naming" in out
    assert len(fake.requests) == 1
    # e.g. another hook failed and the user commits again: same staged change, from the cache
    code, out, _ = hook(capsys)
    assert code == 0 and "app/core.py:91: low: naming" in out
    assert len(fake.requests) == 1
    assert "$0.0000 spent" in out


def test_commit_is_capped_at_sonnet(
    staged: Path, fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    write(staged, {".tierbot.yml": "routing:\n  thresholds: {sonnet: 0.0, opus: 0.0}\n"})
    code, _, _ = hook(capsys)
    assert code == 0
    assert [r.model for r in fake.requests] == ["claude-sonnet-5-5"]


def test_no_key_runs_rules_and_says_so(staged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(staged, {"app/keys.py": 'TOKEN = "ghp_' + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + '"\n'})
    git(staged, "add", "-A")
    code, out, _ = hook(capsys)
    assert code == 1  # the leaked token is critical, key or no key
    assert "app/keys.py:1: critical:" in out
    assert "model review skipped" in out


def test_outage_never_blocks(
    staged: Path, fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script("*", *[error(529)] * 10)
    code, _, err = hook(capsys)
    assert code == 0
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "not blocking" in warnings[0]


def test_outage_blocks_when_closed(
    staged: Path, fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    write(staged, {".tierbot.yml": "hook:\n  on_error: closed\n"})
    fake.script("*", *[error(401)] * 3)
    code, _, err = hook(capsys)
    assert code == 3 and "ANTHROPIC_API_KEY" in err


def test_timeout_keeps_what_finished(
    staged: Path, fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    write(staged, {".tierbot.yml": "hook:\n  timeout_s: 1\n"})
    fake.script("*", answer([], delay=4.0))
    code, out, err = hook(capsys)
    assert code == 0
    assert "warning" in err and "not blocking" in err
    # The unit that did not finish is named, not lost, on the one warning line.
    assert re.search(r"unit u1 \(\w+\) failed: the API did not answer within [0-9.]+s", err)
    assert out == "" and len(err.strip().splitlines()) == 1


def test_docs_only_commit_makes_no_call(
    repo: Path,
    fake: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    commit(repo, {"README.md": "# x\n", "poetry.lock": "a\n"})
    write(repo, {"README.md": "# x\n\nMore words.\n", "poetry.lock": "b\n"})
    git(repo, "add", "-A")
    monkeypatch.chdir(repo)
    code, out, _ = hook(capsys)
    assert code == 0 and fake.requests == []
    assert "[skip]" in out


def test_push_range_reaches_opus(
    repo: Path,
    fake: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = commit(
        repo,
        {
            "app/core.py": CODE,
            ".tierbot.yml": "routing:\n  thresholds: {sonnet: 0.0, opus: 0.0}\n"
            "  opus_min_lines: 0\n",
        },
    )
    commit(repo, {"app/core.py": CODE + "def pushed():\n    return 1\n"})
    new = commit(repo, {"app/other.py": "X = 1\n"})
    write(repo, {"app/staged.py": "unrelated = True\n"})
    git(repo, "add", "-A")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("PRE_COMMIT_FROM_REF", old)
    monkeypatch.setenv("PRE_COMMIT_TO_REF", new)
    code, _, _ = hook(capsys)
    assert code == 0
    assert {r.model for r in fake.requests} == {"claude-opus-5-5"}
    sent = fake.bodies()
    assert "def pushed" in sent and "unrelated = True" not in sent
