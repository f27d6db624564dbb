"""`tierbot review` end to end through the real entry point, on real repositories."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from gitrepo import commit, git, write

from tierbot.cli import main

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "tierbot" / "data" / "review-1.schema.json").read_text()
)


def run(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch, *argv: str
) -> tuple[int, str, str]:
    monkeypatch.chdir(repo)
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def history(repo: Path) -> Path:
    commit(repo, {"README.md": "# demo\n", "src/app.py": "def f(x):\n    return x\n"})
    commit(repo, {"src/app.py": "def f(x):\n    if x:\n        return x\n    return 0\n"})
    commit(repo, {"src/util.py": "def g():\n    return 1\n", "poetry.lock": "x\n" * 50})
    commit(repo, {"README.md": "# demo\n\nMore.\n"})
    return repo


def test_review_head3_offline(
    history: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, history, monkeypatch, "review", "HEAD~3")
    assert code == 0
    assert "src/ (2 files)" in out and "lockfile" in out
    assert "model review skipped" in out + err
    assert "cost:" in out and "all-Opus" in out


@pytest.mark.parametrize("dry", [True, False])
def test_json_validates(
    history: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, dry: bool
) -> None:
    argv = ["review", "HEAD~3", "--format", "json"] + (["--dry-run"] if dry else [])
    code, out, _ = run(capsys, history, monkeypatch, *argv)
    doc = json.loads(out)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert code == 0
    assert doc["status"] == ("dry-run" if dry else "offline")
    assert doc["analysis"]["files"] == 4
    assert 0.0 <= doc["analysis"]["risk_score"] <= 1.0
    stats = {s["path"]: s for s in doc["analysis"]["file_stats"]}
    assert stats["poetry.lock"]["skip_reason"] == "lockfile"
    assert stats["README.md"]["skip_reason"] == "docs"
    assert stats["src/app.py"]["complexity_delta"] == 1
    tiers = {p: u["tier"] for u in doc["route"]["units"] for p in u["paths"]}
    assert tiers["poetry.lock"] == "skip" and tiers["src/app.py"] != "skip"
    assert doc["estimate"]["all_opus_cost_usd"] > doc["estimate"]["cost_usd"] > 0


def test_findings_fail_and_output_file(
    history: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    key = "AKIA" + "QWERTYUIOPASDFGH"
    write(history, {"src/conf.py": f'AWS_KEY = "{key}"\n<<<<<<< HEAD\n'})
    git(history, "add", "-A")
    out_file = tmp_path / "r.json"
    code, out, _ = run(
        capsys,
        history,
        monkeypatch,
        "review",
        "--staged",
        "--format",
        "json",
        "--output",
        str(out_file),
    )
    assert code == 1 and out == ""
    doc = json.loads(out_file.read_text())
    severities = {f["severity"] for f in doc["findings"]}
    assert {"critical", "high"} <= severities
    assert key not in out_file.read_text()
    code, _, _ = run(capsys, history, monkeypatch, "review", "--staged", "--fail-on", "none")
    assert code == 0


def test_forced_tier_and_path_filter(
    history: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(
        capsys,
        history,
        monkeypatch,
        "review",
        "HEAD~3",
        "--dry-run",
        "--format",
        "json",
        "--tier",
        "opus",
        "--",
        "src",
    )
    doc = json.loads(out)
    assert code == 0 and doc["route"]["tier"] == "opus"
    assert {s["path"] for s in doc["analysis"]["file_stats"]} == {"src/app.py", "src/util.py"}


@pytest.mark.parametrize("fmt", ["text", "markdown", "sarif", "github"])
def test_every_format_renders(
    history: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    code, out, _ = run(
        capsys, history, monkeypatch, "review", "HEAD~3", "--dry-run", "--format", fmt
    )
    assert code == 0
    # Annotations exist only for findings; every other format always says something.
    assert out.strip() or fmt == "github"


BAD = [
    (["review", "nope"], "bad revision 'nope'"),
    (["review", "HEAD..nope"], "bad revision"),
    (["review", "--format", "xml"], "Invalid value for '--format'"),
    (["review", "--budget", "-1"], "--budget"),
    (["review", "--config", "missing.yml"], "cannot read missing.yml"),
    (["review", "--output", "no/such/dir/r.json"], "cannot write no/such/dir/r.json"),
]


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_bad_input_exit_2(
    history: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    code, _, err = run(capsys, history, monkeypatch, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "routing:\n  treshold: 1\n",
            "unknown key 'routing.treshold' (did you mean 'thresholds'?)",
        ),
        ("fail_on: [\n", "line 2"),
        ("hook:\n  timeout_s: soon\n", "'hook.timeout_s' must be a number"),
        ("- a\n- b\n", "top level must be a mapping"),
        ('ignore: ["[z-a]"]\n', "config: 'ignore[0]' is not a valid glob"),
        (
            "path_instructions:\n  - {path: 'src/[b-a]', instructions: x}\n",
            "'path_instructions[0].path' is not a valid glob",
        ),
    ],
)
def test_invalid_config(
    history: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    message: str,
) -> None:
    write(history, {".tierbot.yml": text})
    code, _, err = run(capsys, history, monkeypatch, "review", "HEAD~1", "--dry-run")
    assert code == 2 and message in err and "Traceback" not in err


def test_not_a_repo_and_empty_repo(
    tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    code, _, err = run(capsys, plain, monkeypatch, "review")
    assert code == 2 and "not a git repository" in err
    code, _, err = run(capsys, repo, monkeypatch, "review")
    assert code == 2 and "no commits yet" in err
    code, _, err = run(capsys, repo, monkeypatch, "review", "HEAD~3")
    assert code == 2 and "no commits yet" in err


def test_empty_range_and_unmatched_paths(
    history: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, history, monkeypatch, "review", "HEAD..HEAD", "--format", "json")
    assert code == 0 and "nothing to review" in err
    assert json.loads(out)["route"]["tier"] == "skip"
    code, _, err = run(capsys, history, monkeypatch, "review", "HEAD~3", "--", "no/such/dir")
    assert code == 0 and "nothing to review" in err and "no/such/dir" in err


def test_binary_only_and_non_utf8(
    history: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(history, {"img.png": b"\x89PNG\0\0\1"})
    code, out, _ = run(capsys, history, monkeypatch, "review", "HEAD~1", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["route"]["tier"] == "skip"
    assert doc["analysis"]["file_stats"][0]["skip_reason"] == "binary"
    commit(history, {"src/latin.py": b"# caf\xe9\nx = 'cr\xe8me'\n"})
    code, out, _ = run(capsys, history, monkeypatch, "review", "HEAD~1", "--format", "json")
    assert code == 0
    assert json.loads(out)["analysis"]["lines_added"] == 2


def test_huge_generated_file(
    history: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    line = "window.__DATA__ = " + "[1,2,3,4,5,6,7,8,9,0]," * 20 + "\n"
    size = 20 * 1024 * 1024
    commit(history, {"static/data.js": line * (size // len(line))})
    code, out, _ = run(capsys, history, monkeypatch, "review", "HEAD~1", "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert doc["analysis"]["file_stats"][0]["skip_reason"] == "too large"
    assert doc["route"]["tier"] == "skip"


def test_init_writes_defaults_once(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tierbot import config

    code, _, _ = run(capsys, repo, monkeypatch, "init")
    assert code == 0
    text = (repo / ".tierbot.yml").read_text()
    assert config.parse(text) == config.default()
    code, _, err = run(capsys, repo, monkeypatch, "init")
    assert code == 2 and "already exists" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("tierbot 0.")


def test_weights_may_be_negative_but_must_be_numbers(
    history: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tierbot import config

    assert config.parse("routing:\n  weights: {base: -2.5}\n").routing.weights == {"base": -2.5}
    write(history, {".tierbot.yml": "routing:\n  weights: {base: high}\n"})
    code, _, err = run(capsys, history, monkeypatch, "review", "HEAD~1", "--dry-run")
    assert code == 2 and "'routing.weights.base' must be a number" in err


def test_each_unit_is_routed_and_explained_by_its_own_files(
    history: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    risky = "".join(
        f"def check{i}(user, token):\n    if token == user.secret{i}:\n"
        f"        return subprocess.run(token, shell=True)\n    return None\n\n"
        for i in range(15)
    )
    tests = "".join(f"def test_{i}():\n    assert check{i}(1, 2) is None\n\n" for i in range(15))
    commit(history, {"src/auth.py": risky, "tests/test_checks.py": tests})
    code, out, _ = run(
        capsys, history, monkeypatch, "review", "HEAD~1", "--dry-run", "--format", "json"
    )
    units = {p: u for u in json.loads(out)["route"]["units"] for p in u["paths"]}
    assert code == 0
    assert units["src/auth.py"]["tier"] == "opus"
    assert "sensitive paths: auth" in units["src/auth.py"]["reasons"][0]
    assert units["tests/test_checks.py"]["tier"] == "haiku"
    assert units["tests/test_checks.py"]["reasons"][0] == "no production code: 1 test file"


def test_quiet_prints_findings_only(
    history: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(history, {"src/late.py": "def later():\n    # TODO: handle errors\n    return 1\n"})
    code, out, err = run(capsys, history, monkeypatch, "review", "HEAD~1", "-q")
    assert code == 0 and err == ""
    assert out.splitlines() == [out.splitlines()[0]] and out.startswith("src/late.py:2: info:")
    code, out, _ = run(capsys, history, monkeypatch, "review", "HEAD..HEAD", "-q")
    assert code == 0 and out == ""


def test_pr_without_a_pull_request_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pr"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tierbot pr: give --repo OWNER/NAME --number N")
    assert len(err.strip().splitlines()) == 1
