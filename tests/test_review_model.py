"""`tierbot review` with a (loopback) Claude: findings on the right lines, cost, saving, ledger."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from fake_anthropic import FakeAnthropic, answer, error, finding, verdict, verdicts
from gitrepo import commit

from tierbot.cli import main

DATA = Path(__file__).parents[1] / "tierbot" / "data"
REVIEW_SCHEMA = json.loads((DATA / "review-1.schema.json").read_text())
COSTS_SCHEMA = json.loads((DATA / "costs-1.schema.json").read_text())
CODE = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(30))


@pytest.fixture
def three_commits(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    commit(repo, {"app/core.py": CODE, "docs/guide.md": "# guide\n"})
    commit(repo, {"app/core.py": CODE + "def g(items):\n    return items[0]\n"})
    commit(repo, {"app/extra.py": "LIMIT = 3\n"})
    commit(repo, {"docs/guide.md": "# guide\n\nmore\n"})
    monkeypatch.chdir(repo)
    return repo


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_review_head3_with_claude_then_costs(
    three_commits: Path, fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script(
        "*",
        answer(
            [
                finding(
                    "app/core.py",
                    92,
                    "IndexError on empty list",
                    severity="high",
                    suggestion="    return items[0] if items else None",
                ),
                finding("app/core.py", 5, "not part of this change", severity="medium"),
                finding("elsewhere.py", 1, "unknown file", severity="low"),
            ]
        ),
    )
    fake.script_verdicts(verdicts(verdict(1, "confirmed", "items may be empty")))
    code, out, _ = cli(capsys, "review", "HEAD~3", "--format", "json")
    doc = json.loads(out)
    jsonschema.Draft202012Validator(REVIEW_SCHEMA).validate(doc)
    assert code == 1  # a high finding at the default --fail-on high
    assert doc["status"] == "complete"
    model_findings = [f for f in doc["findings"] if f["source"] != "rules"]
    assert [(f["path"], f["line"], f["severity"]) for f in model_findings] == [
        ("app/core.py", 92, "high")
    ]
    assert model_findings[0]["suggestion"] == "    return items[0] if items else None"
    assert model_findings[0]["fingerprint"]
    # The two findings that do not belong on a diff line are counted, never posted.
    assert "1 finding outside the diff moved to the summary" in doc["notes"]
    assert "1 finding on files not in the change moved to the summary" in doc["notes"]
    assert "not on a diff line: app/core.py:5: medium: not part of this change" in doc["notes"]
    assert "not on a diff line: elsewhere.py:1: low: unknown file" in doc["notes"]
    assert doc["usage"]["calls"] == len(fake.requests) >= 1
    assert 0 < doc["usage"]["cost_usd"] < doc["usage"]["all_opus_cost_usd"]

    code, out, _ = cli(capsys, "costs", "--format", "json")
    costs = json.loads(out)
    jsonschema.Draft202012Validator(COSTS_SCHEMA).validate(costs)
    assert costs["calls"] == doc["usage"]["calls"]
    assert costs["cost_usd"] == pytest.approx(doc["usage"]["cost_usd"], abs=1e-6)
    assert costs["saved_usd"] > 0

    # Re-reviewing the unchanged range is served from the cache: no new request, no new cost.
    sent = len(fake.requests)
    code, out, _ = cli(capsys, "review", "HEAD~3", "--format", "json")
    assert code == 1 and len(fake.requests) == sent
    assert json.loads(out)["usage"]["cost_usd"] == 0
    code, out, _ = cli(capsys, "costs", "--format", "json")
    assert json.loads(out)["cache_hits"] >= 1


def test_rejected_key_is_exit_3_with_json(
    three_commits: Path, fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script("*", error(401, message="invalid x-api-key"))
    code, out, err = cli(capsys, "review", "HEAD~3", "--format", "json")
    assert code == 3
    assert "ANTHROPIC_API_KEY" in err and "Traceback" not in err
    doc = json.loads(out)
    jsonschema.Draft202012Validator(REVIEW_SCHEMA).validate(doc)
    assert doc["status"] == "failed"


def test_fail_open_config_warns_and_exits_0(
    three_commits: Path, fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    (three_commits / ".tierbot.yml").write_text("on_error: open\n")
    fake.script("*", *[error(529)] * 10)
    code, _, err = cli(capsys, "review", "HEAD~3")
    assert code == 0
    assert len([line for line in err.splitlines() if line.startswith("tierbot: warning")]) == 1


def test_budget_never_exceeded(
    three_commits: Path, fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(
        capsys, "review", "HEAD~3", "--format", "json", "--tier", "opus", "--budget", "0.0001"
    )
    doc = json.loads(out)
    assert code == 0 and doc["usage"]["cost_usd"] <= 0.0001
    assert fake.requests == []  # not even one Opus call fits in $0.0001
    assert any("budget" in n for n in doc["notes"])
