"""Spending across runners: `tierbot costs --export` per ledger, `--merge` over many exports."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from fake_anthropic import FakeAnthropic
from gitrepo import commit
from jsonschema import Draft202012Validator

import tierbot
from tierbot.cli import main
from tierbot.commands import costs
from tierbot.errors import BadInput
from tierbot.review.ledger import DB_NAME, SCHEMA_VERSION, CallRow, Ledger

DATA = Path(tierbot.__file__).parent / "data"
ROW = Draft202012Validator(json.loads((DATA / "cost-row-1.schema.json").read_text()))
COSTS = Draft202012Validator(json.loads((DATA / "costs-1.schema.json").read_text()))
NOV = time.mktime((2026, 11, 15, 12, 0, 0, 0, 0, -1))
DEC = time.mktime((2026, 12, 1, 12, 0, 0, 0, 0, -1))


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def row(repo: str, command: str, tier: str, cost: float, when: float, **kw: Any) -> CallRow:
    return CallRow(
        repo,
        "HEAD~1",
        "u1",
        tier,
        f"claude-{tier}-5-5",
        1000,
        200,
        cost_usd=cost,
        all_opus_cost_usd=cost * 4,
        command=command,
        time=when,
        **kw,
    )


# Three runners, each with its own ledger.
RUNNERS: dict[str, list[CallRow]] = {
    "a": [
        row("acme/api", "pr", "haiku", 0.001, NOV),
        row("acme/api", "pr", "sonnet", 0.02, DEC),
        row("acme/api", "pr", "haiku", 0.0, DEC, cache_hit=True, outcome="cache_hit"),
    ],
    "b": [
        row("acme/api", "pr", "haiku", 0.002, DEC),
        row("acme/web", "audit", "opus", 0.05, DEC, batch="msgbatch_1"),
    ],
    "c": [
        row("acme/web", "pr", "opus", 0.1, NOV),
        row("acme/web", "hook", "haiku", 0.003, NOV),
    ],
}


def export_three(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> list[Path]:
    files = []
    for name, rows in RUNNERS.items():
        home = tmp_path / f"runner-{name}"
        monkeypatch.setenv("TIERBOT_HOME", str(home))
        with Ledger.open(home) as lg:
            for r in rows:
                lg.record(r)
        target = tmp_path / f"costs-{name}.jsonl"
        code, _, err = cli(capsys, "costs", "--export", str(target))
        assert code == 0 and f"exported {len(rows)} ledger rows" in err
        files.append(target)
    return files


def test_export_then_merge_of_three_ledgers_adds_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    files = export_three(tmp_path, monkeypatch, capsys)
    lines = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    assert len(lines) == 7
    for line in lines:
        assert [e.message for e in ROW.iter_errors(line)] == []
    assert len({line["ledger"] for line in lines}) == 3  # each ledger names itself

    # The same export twice (a re-uploaded artifact) counts once.
    code, out, _ = cli(
        capsys, "costs", "--merge", *map(str, files), str(files[0]), "--format", "json"
    )
    assert code == 0
    data = json.loads(out)
    assert [e.message for e in COSTS.iter_errors(data)] == []
    every = [r for rows in RUNNERS.values() for r in rows]
    paid = [r for r in every if not r.cache_hit]
    assert (data["exports"], data["rows"], data["duplicates"]) == (4, 7, 3)
    assert data["calls"] == len(paid) == 6 and data["cache_hits"] == 1
    assert data["cost_usd"] == pytest.approx(sum(r.cost_usd for r in paid))
    assert data["all_opus_cost_usd"] == pytest.approx(sum(r.all_opus_cost_usd for r in paid))
    assert data["by_tier"]["haiku"] == {"calls": 3, "cost_usd": pytest.approx(0.006)}
    groups = {(g["month"], g["repo"], g["command"], g["tier"]): g for g in data["groups"]}
    assert groups[("2026-12", "acme/api", "pr", "haiku")]["calls"] == 1
    assert groups[("2026-12", "acme/api", "pr", "haiku")]["cache_hits"] == 1
    assert groups[("2026-11", "acme/web", "pr", "opus")]["cost_usd"] == pytest.approx(0.1)
    assert groups[("2026-12", "acme/web", "audit", "opus")]["calls"] == 1
    assert sum(g["cost_usd"] for g in data["groups"]) == pytest.approx(data["cost_usd"])
    # Each ledger's own summary and the merge agree.
    for name, rows in RUNNERS.items():
        monkeypatch.setenv("TIERBOT_HOME", str(tmp_path / f"runner-{name}"))
        assert costs.summary(None)["calls"] == sum(not r.cache_hit for r in rows)

    code, text, _ = cli(capsys, "costs", "--merge", *map(str, files), str(files[0]))
    assert code == 0
    assert "4 exports, 7 rows, 3 found twice (counted once)" in text
    assert "2026-11  acme/web  pr       opus        1 call   $0.1000" in text


def test_merge_takes_a_period_and_export_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    files = export_three(tmp_path, monkeypatch, capsys)
    code, out, _ = cli(
        capsys, "costs", "--merge", *map(str, files), "--since", "2026-12-01", "--format", "json"
    )
    data = json.loads(out)
    assert {g["month"] for g in data["groups"]} == {"2026-12"} and data["calls"] == 3
    monkeypatch.setenv("TIERBOT_HOME", str(tmp_path / "runner-a"))
    target = tmp_path / "nov.jsonl"
    code, _, _ = cli(capsys, "costs", "--export", str(target), "--until", "2026-12-01")
    assert code == 0 and len(target.read_text().splitlines()) == 1


@pytest.mark.parametrize(
    "line,problem",
    [
        ("not json", "not JSON"),
        ('{"schema": "tierbot.costs/1"}', "not a tierbot.cost-row/1 line"),
        ("{BAD_COST}", "cost_usd: -1 is not a possible cost"),
        ("{BAD_TOKENS}", "input_tokens: expected a whole number of tokens"),
        ("{BAD_TIME}", "time: expected an ISO date"),
    ],
)
def test_a_bad_export_line_is_exit_2_naming_the_file_and_line(
    line: str,
    problem: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    [good, *_] = export_three(tmp_path, monkeypatch, capsys)
    first = json.loads(good.read_text().splitlines()[0])
    bad = {
        "{BAD_COST}": json.dumps({**first, "cost_usd": -1}),
        "{BAD_TOKENS}": json.dumps({**first, "input_tokens": "lots"}),
        "{BAD_TIME}": json.dumps({**first, "time": "yesterday"}),
    }.get(line, line)
    target = tmp_path / "bad.jsonl"
    target.write_text(good.read_text() + bad + "\n")
    code, out, err = cli(capsys, "costs", "--merge", str(target))
    assert code == 2 and out == ""
    assert err.startswith(f"tierbot: {target}:4: ") and problem in err
    assert len(err.splitlines()) == 1


def test_since_takes_a_moment_to_the_microsecond(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the action passes: rows of the same second before the run began are not its own."""
    monkeypatch.setenv("TIERBOT_HOME", str(tmp_path))
    with Ledger.open(tmp_path) as lg:
        lg.record(row("r", "pr", "haiku", 0.01, DEC + 0.25))
        lg.record(row("r", "pr", "haiku", 0.02, DEC + 0.75))
    target = tmp_path / "run.jsonl"
    assert cli(capsys, "costs", "--since", f"@{DEC + 0.5}", "--export", str(target))[0] == 0
    [line] = [json.loads(x) for x in target.read_text().splitlines()]
    assert line["cost_usd"] == 0.02
    for bad in ("@soon", "@nan", "@inf"):
        with pytest.raises(BadInput, match="--since"):
            costs.parse_since(bad)


def test_merge_and_export_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli(capsys, "costs", "a.jsonl")[0] == 2
    assert cli(capsys, "costs", "--merge")[0] == 2
    code, _, err = cli(capsys, "costs", "--merge", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "cannot read" in err
    code, _, err = cli(capsys, "costs", "--export", str(tmp_path / "no" / "dir.jsonl"))
    assert code == 2 and "cannot write" in err


def test_a_schema_1_ledger_is_migrated_and_its_rows_kept(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript(
        """
        CREATE TABLE calls (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL,
            repo TEXT NOT NULL, range TEXT NOT NULL, unit TEXT NOT NULL, tier TEXT NOT NULL,
            model TEXT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
            cache_write_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL,
            cost_usd REAL NOT NULL, all_opus_cost_usd REAL NOT NULL, cache_hit INTEGER NOT NULL,
            outcome TEXT NOT NULL);
        INSERT INTO calls VALUES (1, 1.0, 'r', '', 'u1', 'haiku', 'm', 10, 5, 0, 0, 0.5, 1.0, 0,
            'ok');
        PRAGMA user_version=1;
        """
    )
    db.close()
    # A reader (costs) sees the old rows as they are, without changing the file.
    with Ledger(tmp_path / DB_NAME, readonly=True) as lg:
        [old] = lg.calls()
        assert (old.command, old.batch, old.cost_usd) == ("", "", 0.5)
    with Ledger.open(tmp_path) as lg:
        assert lg.writable and lg.ledger_id()
        [old] = lg.calls()
        assert old.cost_usd == 0.5 and old.command == ""
        assert lg.record(CallRow("r", "", "u2", "opus", "m", 1, 1, command="audit", request="b/1"))
        assert not lg.record(CallRow("r", "", "u2", "opus", "m", 1, 1, request="b/1"))  # once
    db = sqlite3.connect(tmp_path / DB_NAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert db.execute("SELECT count(*), max(command) FROM calls").fetchone() == (2, "audit")
    db.close()


def test_a_real_review_exports_its_command_and_cost(
    repo: Path,
    fake: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    code = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(30))
    commit(repo, {"app.py": code})
    commit(repo, {"app.py": code + "def g(items):\n    return items[0]\n"})
    monkeypatch.chdir(repo)
    assert cli(capsys, "review", "HEAD~1", "--format", "json")[0] == 0
    target = tmp_path / "run.jsonl"
    assert cli(capsys, "costs", "--export", str(target))[0] == 0
    [line] = [json.loads(x) for x in target.read_text().splitlines()]
    assert line["command"] == "review" and line["cost_usd"] > 0 and line["batch"] == ""
    assert not (repo / DB_NAME).exists()  # nothing written inside the working tree
