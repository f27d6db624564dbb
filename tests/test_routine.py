"""Routine changes stay cheap: each class of bench/routing/routine/labels.tsv reproduced in a small
synthetic repository (no third-party code) and reviewed through the real CLI.

The repository is built to tempt the router: its code files have a long history of bug fixes and
the project's log is full of dependency bots whose subjects say "fix(deps)", which is exactly where
routine edits used to reach Sonnet or Opus.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from routing_helpers import commit, init_repo

from tierbot.cli import main

DAY = 86400
T0 = 1_700_000_000
BOT = "renovate[bot] <29139614+renovate[bot]@users.noreply.github.com>"

APP = '''"""Requests with retries."""

import time

__version__ = "2.4.0"

MODELS = {
    "small": 4096,
    "large": 8192,
}


def get_items(client, url):
    """Fetch the items at `url`.

    The client retries three times.
    """
    for attempt in range(3):  # noqa: B007
        response = client.get(url)
        if response.ok:
            return response.json()
        time.sleep(2**attempt)
    raise ValueError("cannot recieve the items")
'''
GO = "package app\n\n// Run runs the app.\nfunc Run() error {\n\treturn nil\n}\n"
JS = "/**\n * Start the server.\n * @return {Server}\n */\nexports.start = function () {};\n"
WORKFLOW = """on: push
jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        node: [18, 20]
    steps:
      - uses: actions/checkout@8e5e7e5ab8b370d6c329ec480221332ada57f0ab # v3.5.2
      - uses: actions/setup-node@v3
      - run: npm test
"""
PACKAGE = (
    '{\n  "name": "app",\n  "version": "1.0.0",\n  "dependencies": {\n    "qs": "^6.14.1"\n  }\n}\n'
)
GOMOD = "module example.com/app\n\ngo 1.22\n\nrequire github.com/x/y v1.0.8\n"
GOSUM = "github.com/x/y v1.0.8 h1:abc=\ngithub.com/x/y v1.0.8/go.mod h1:def=\n"


TABLE = 'MAX_TOKENS = {\n    "small": 4096,\n    "large": 8192,\n}\n'
TABLE_TEST = (
    "from app.max_tokens import MAX_TOKENS\n\n\ndef test_small():\n    assert MAX_TOKENS['small']\n"
)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose code files needed fixes and whose log is half dependency bots."""
    repo = init_repo(tmp_path_factory.mktemp("routine") / "project")
    files = {
        "app/client.py": APP,
        "app/run.go": GO,
        "lib/server.js": JS,
        "app/max_tokens.py": TABLE,
        "tests/test_get_max_tokens.py": TABLE_TEST,
        ".github/workflows/ci.yml": WORKFLOW,
        "package.json": PACKAGE,
        "go.mod": GOMOD,
        "go.sum": GOSUM,
        "requirements.txt": "requests==2.31.0\n",
        "README.md": "# app\n\nUsed by:\n\n- alpha\n",
        "CHANGES.md": "# Changes\n",
        ".pre-commit-config.yaml": "repos:\n- repo: https://github.com/x/hooks\n  rev: v0.4.1\n",
    }
    commit(repo, files, "start", when=T0)
    when = T0
    for i in range(16):
        when += DAY
        subject = f"Fix crash number {i}" if i % 4 == 0 else f"Add option {i}"
        commit(
            repo,
            {
                "app/client.py": APP.replace("range(3)", f"range({3 + i})"),
                "app/run.go": GO.replace("nil", f"nil // {i}"),
                "lib/server.js": JS.replace("{}", f"{{ /* {i} */ }}"),
            },
            subject,
            when=when,
        )
        for j in range(2):
            pin = f"requests==2.31.{2 * i + j}\n"
            commit(repo, {"requirements.txt": pin}, "fix(deps): update requests", BOT, when)
    commit(repo, files, "Prepare the release", when=when + DAY)
    return repo


@pytest.fixture
def project(history: Path, tmp_path: Path) -> Path:
    """A fresh copy of the project for one test (built once: it takes some 50 commits)."""
    return Path(shutil.copytree(history, tmp_path / "project", symlinks=True))


def edit(repo: Path, path: str, old: str, new: str) -> dict[str, str]:
    text = (repo / path).read_text(encoding="utf-8")
    assert old in text, (path, old)
    return {path: text.replace(old, new, 1)}


CLASSES = {
    "comment": lambda r: edit(r, "app/run.go", "// Run runs the app.", "// Run starts the app."),
    "docstring": lambda r: edit(
        r, "app/client.py", "    The client retries three times.\n", "    Retries three times.\n"
    ),
    "jsdoc": lambda r: edit(r, "lib/server.js", " * @return {Server}\n", " * @returns {Server}\n"),
    "pragma": lambda r: edit(r, "app/client.py", "  # noqa: B007", ""),
    "pragma-go": lambda r: edit(r, "app/run.go", "\treturn nil", "\treturn nil //nolint:nilerr"),
    "typo": lambda r: edit(r, "app/client.py", "cannot recieve", "cannot receive"),
    "rename": lambda r: edit(r, "app/client.py", "def get_items(", "def fetch_items("),
    "version": lambda r: {
        **edit(r, "app/client.py", '"2.4.0"', '"2.4.1"'),
        **edit(r, "CHANGES.md", "# Changes\n", "# Changes\n\n## 2.4.1\n\n- Fixes.\n"),
    },
    "deps-npm": lambda r: edit(r, "package.json", '"^6.14.1"', '"^6.15.2"'),
    "deps-go": lambda r: {
        **edit(r, "go.mod", "v1.0.8", "v1.0.9"),
        "go.sum": GOSUM.replace("v1.0.8", "v1.0.9").replace("abc", "xyz"),
    },
    "deps-pip": lambda r: edit(r, "requirements.txt", "requests==2.31.0", "requests==2.32.0"),
    "deps-hooks": lambda r: edit(r, ".pre-commit-config.yaml", "rev: v0.4.1", "rev: v0.5.0"),
    "ci-pin": lambda r: edit(
        r,
        ".github/workflows/ci.yml",
        "8e5e7e5ab8b370d6c329ec480221332ada57f0ab # v3.5.2",
        "b4ffde65f46336ab88eb53be808477a3936bae11 # v4.1.1",
    ),
    "ci-version": lambda r: edit(r, ".github/workflows/ci.yml", "setup-node@v3", "setup-node@v4"),
    "ci-matrix": lambda r: edit(r, ".github/workflows/ci.yml", "[18, 20]", "[18, 20, 22]"),
    "table-docs": lambda r: edit(r, "README.md", "- alpha\n", "- alpha\n- beta\n"),
    "table-code": lambda r: {
        **edit(r, "app/max_tokens.py", '    "large"', '    "huge": 16384,\n    "large"'),
        **edit(r, "tests/test_get_max_tokens.py", "['small']", "['huge']"),
    },
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_routine_changes_stay_on_skip_or_haiku(
    project: Path, kind: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(project, CLASSES[kind](project), f"routine: {kind}", when=T0 + 40 * DAY)
    monkeypatch.chdir(project)
    code = main(["review", "HEAD^!", "--dry-run", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    tiers = {u["tier"] for u in doc["route"]["units"]}
    assert doc["route"]["tier"] in ("skip", "haiku"), doc["route"]["reasons"]
    assert tiers <= {"skip", "haiku"}
    # The bots' "fix(deps)" commits are not bug fixes: the project's rate is its own.
    fix_rate = [s for s in doc["analysis"]["signals"] if s["id"] == "project.fix_rate"]
    assert all(s["detail"].startswith("4 of the last 18 commits") for s in fix_rate)
    # A test named after tokens is not authentication code (a CI workflow is still CI).
    sensitive = [s for s in doc["analysis"]["signals"] if s["id"] == "sensitive.paths"]
    assert all(s["detail"] == "sensitive paths: ci" for s in sensitive), sensitive
    if kind not in ("table-code", "table-docs") and not kind.startswith(("deps", "ci")):
        code_units = [u for u in doc["route"]["units"] if u["tier"] == "haiku"]
        assert code_units and all("routine edits only" in u["reasons"][0] for u in code_units)


def test_the_same_history_still_sends_real_code_up(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "".join(
        f"    if attempt == {i}:\n        response = client.get(url, timeout={i})\n"
        for i in range(12)
    )
    change = edit(project, "app/client.py", "        response = client.get(url)\n", body)
    commit(project, change, "Tune timeouts", when=T0 + 40 * DAY)
    monkeypatch.chdir(project)
    main(["review", "HEAD^!", "--dry-run", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["route"]["tier"] in ("sonnet", "opus")
