"""Helpers for the audit tests: a real history of many commits, a model that finds something on
each unit's first added line, and tierbot run in-process or as a process that can be killed."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_anthropic import (
    FakeAnthropic,
    Recorded,
    Reply,
    answer,
    finding,
    is_verification,
    verdict,
    verdicts,
)
from gitrepo import commit
from model_helpers import user_text

from tierbot.cli import main
from tierbot.review.ledger import DB_NAME, home

_HEADER = re.compile(r"^=== (.+?) \((?:added|modified|renamed|copied)", re.M)
_ADDED = re.compile(r"^\s*(\d+) \+ ", re.M)


def module(name: str, n: int) -> str:
    return "".join(f"def {name}_{i}(x):\n    return x + {i}\n\n" for i in range(n))


def history(repo: Path, n: int) -> list[str]:
    """A base commit, then `n` commits that each add a function to one of a few modules."""
    files = {f"app/m{k}.py": module(f"m{k}", 20) for k in range(5)}
    commit(repo, {**files, "README.md": "# demo\n"}, "base")
    shas = []
    for i in range(n):
        path = f"app/m{i % 5}.py"
        files[path] += f"def added_{i}(items):\n    return items[{i}] / len(items)\n\n"
        shas.append(commit(repo, {path: files[path]}, f"add added_{i}"))
    return shas


def first_added(req: Recorded) -> tuple[str, int] | None:
    """The first file of the unit and its first added line, as the prompt numbers it."""
    text = user_text(req)
    head = _HEADER.search(text)
    line = _ADDED.search(text, head.end()) if head else None
    return (head.group(1), int(line.group(1))) if head and line else None


def finds_on_first_added_line(
    severity: str = "medium", title: str = "divides by a length that may be zero"
) -> Callable[[Recorded], Reply | None]:
    """Every review answers one finding on its unit's first added line."""

    def respond(req: Recorded) -> Reply | None:
        if is_verification(req):
            return None
        where = first_added(req)
        if where is None:
            return answer([])
        return answer([finding(where[0], where[1], title, severity=severity)])

    return respond


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def audit_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run(capsys, "audit", *argv, "--format", "json")
    return code, json.loads(out), err


def spawn(repo: Path, *argv: str) -> subprocess.Popen[str]:
    """tierbot as its own process (the tests kill it), with this test's environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "tierbot", *argv],
        cwd=repo,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ledger_rows(sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(home() / DB_NAME)
    try:
        return list(db.execute(sql, args).fetchall())
    finally:
        db.close()


def ledger_write(sql: str) -> None:
    db = sqlite3.connect(home() / DB_NAME)
    try:
        db.execute(sql)
        db.commit()
    finally:
        db.close()


def batch_calls() -> list[tuple[Any, ...]]:
    """The ledger's rows for batch requests: (request, cost, input, output, write, read)."""
    return ledger_rows(
        "SELECT request, cost_usd, input_tokens, output_tokens, cache_write_tokens,"
        " cache_read_tokens, model, command FROM calls WHERE batch != '' ORDER BY id"
    )


def setup(monkeypatch: pytest.MonkeyPatch, fake: FakeAnthropic, repo: Path) -> None:
    monkeypatch.chdir(repo)
    monkeypatch.setenv("TIERBOT_BATCH_POLL_S", "0.01")
    fake.responder = reviewer()


def confirms_every_finding(req: Recorded) -> Reply | None:
    """Opus's verification: every finding it is asked about is confirmed."""
    if not is_verification(req):
        return None
    text = user_text(req) if isinstance(req.json["messages"][0]["content"], list) else ""
    ids = [int(i) for i in re.findall(r"## Finding (\d+):", text)]
    return verdicts(*(verdict(i) for i in ids))


def reviewer(severity: str = "medium") -> Callable[[Recorded], Reply | None]:
    """Reviews find one thing on each unit's first added line; Opus confirms what it checks."""
    reviews = finds_on_first_added_line(severity)

    def respond(req: Recorded) -> Reply | None:
        return confirms_every_finding(req) or reviews(req)

    return respond
