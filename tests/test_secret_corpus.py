"""The false-positive corpus from real history, kept as fixtures (no network in CI).

`bench/secrets_corpus.py` scanned the last 300 non-merge commits of seven repositories; every
blocking secret or conflict finding it met is reproduced by a small file under
tests/data/secret-corpus/ (a few lines of the original, named as it was, see `_stored`),
together with the cases the issue lists.  They are committed to a real repository and reviewed
by the real command (`tierbot review HEAD~1..HEAD --dry-run --format json`): none may block,
each must still be visible at its expected severity, and true leaks next to them must still
block.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from gitrepo import commit, git
from planted import Rand, pem

from tierbot.cli import main

CORPUS = Path(__file__).parent / "data" / "secret-corpus"
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))["cases"]


def _stored(path: str) -> str:
    """Fixtures are stored as `<name>.fixture` so that neither pytest nor ruff takes them for our
    code, and prose as `<stem>.fixture.<ext>` so that tierbot's own review reads it as prose."""
    stem, _, ext = path.rpartition(".")
    return f"{stem}.fixture.{ext}" if ext in ("md", "rst") else f"{path}.fixture"


def _review(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    monkeypatch.chdir(repo)
    code = main(["review", "HEAD~1..HEAD", "--dry-run", "--format", "json"])
    out = capsys.readouterr().out
    data: dict[str, Any] = json.loads(out)
    assert code == (
        1 if any(f["severity"] in ("high", "critical") for f in data["findings"]) else 0
    )
    return data


def test_real_false_alarms_do_not_block_and_true_leaks_still_do(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commit(repo, {"README.md": "# corpus\n"}, "root")
    for case in CASES:
        target = repo / case["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CORPUS / _stored(case["file"]), target)
    # True leaks among them: a real-looking key where requests keeps its test certificates, a
    # provider token in a test, a password in application code.
    r = Rand(seed=42)
    leaks = {
        "requests/tests/certs/valid/server/server.key": "\n".join(pem(r, "PRIVATE KEY", 10)) + "\n",
        "issue/tests/test_deploy.py": f'TOKEN = "ghp_{r(36)}"\n',
        "issue/src/settings.py": f'DB_PASSWORD = "{r(10)}!{r(6)}"\n',
    }
    commit(repo, dict(leaks), "corpus")
    git(repo, "status")
    data = _review(repo, monkeypatch, capsys)

    by_file: dict[str, list[dict[str, Any]]] = {}
    for f in data["findings"]:
        by_file.setdefault(f["path"], []).append(f)
    for case in CASES:
        found = by_file.get(case["file"], [])
        assert not [f for f in found if f["severity"] in ("high", "critical")], case
        secrets = {f["severity"] for f in found if f["category"] == "secret"}
        expected = set() if case["secret"] is None else {case["secret"]}
        assert secrets == expected, (case["file"], found)
        assert not [f for f in found if f["category"] == "conflict-marker"], case
    for path in leaks:
        assert [f["severity"] for f in by_file[path] if f["category"] == "secret"] == [
            "critical"
        ], path
