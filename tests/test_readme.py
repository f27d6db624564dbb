"""The README's first screen holds the two set-up commands `.ci/run` runs from a fresh clone, and
its hook snippet pins a commit whose manifest shows the hook's output."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_commands() -> list[str]:
    """The commands exactly as `.ci/run` reads and runs them."""
    out = subprocess.run(
        ("bash", str(ROOT / ".ci" / "setup-commands"), str(ROOT / "README.md")),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.splitlines()


def test_first_screen_is_two_commands_in_a_virtual_environment() -> None:
    commands = readme_commands()
    assert len(commands) == 2, commands
    block = README.index("```sh\n" + commands[0])
    assert README[:block].count("\n") < 15  # on the first screen
    steps = [shlex.split(command, comments=True) for command in commands]
    first = " ".join(steps[0])
    assert first.startswith("python3 -m venv .venv && ")
    assert first.endswith(" && .venv/bin/tierbot review HEAD~3")
    assert " ".join(steps[1]).endswith(" && .venv/bin/python -m pytest -q")
    # PEP 668: nothing is pip-installed into the system Python, and nothing needs a key.
    for command in commands:
        pips = re.findall(r"(\S*pip) install", command)
        assert pips and all(p == ".venv/bin/pip" for p in pips), command
        assert "sudo" not in command and "ANTHROPIC" not in command


def test_ci_runs_the_readme_commands_from_a_fresh_clone() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'git clone --quiet "$repo"' in ci
    assert ".ci/setup-commands README.md" in ci
    assert 'bash -c "${commands[0]}"' in ci and 'bash -c "${commands[1]}"' in ci
    assert "python -m pytest -q -m slow" in ci


def test_hook_snippet_pins_a_commit_with_a_verbose_manifest() -> None:
    snippet = README.split("```yaml\n# .pre-commit-config.yaml\n", 1)[1].split("```", 1)[0]
    rev = yaml.safe_load(snippet)["repos"][0]["rev"]
    assert re.fullmatch(r"[0-9a-f]{40}", rev), rev
    assert "pin a tag" in README and "pre-commit autoupdate" in README

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(("git", *args), cwd=ROOT, capture_output=True, text=True)

    if git("rev-parse", "--is-shallow-repository").stdout.strip() != "false":
        pytest.skip("needs this repository's full history")
    assert git("merge-base", "--is-ancestor", rev, "HEAD").returncode == 0, rev
    shown = git("show", f"{rev}:.pre-commit-hooks.yaml")
    assert shown.returncode == 0, shown.stderr
    hooks = {h["id"]: h for h in yaml.safe_load(shown.stdout)}
    assert set(hooks) == {"tierbot", "tierbot-push"}
    for hook in hooks.values():
        assert hook["verbose"] is True and hook["always_run"] is True
        assert hook["pass_filenames"] is False and hook["require_serial"] is True
