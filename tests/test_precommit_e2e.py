"""The real pre-commit framework installs this repository's hooks and git runs them.

Installing the hook environment (pip install of this repository into a fresh virtualenv) is the
slow part: every test here shares one snapshot of this repository and one PRE_COMMIT_HOME, so it
happens once.  The user configurations name only the hook ids: verbosity, `always_run` and the
stages come from this repository's `.pre-commit-hooks.yaml`, as they do for a user.
Slow: `python -m pytest -m slow` (and `.ci/run`) runs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from fake_anthropic import (
    answer,
    error,
    fake_anthropic,
    finding,
    is_verification,
    verdict,
    verdicts,
)
from gitrepo import commit, git, write

HERE = Path(__file__).resolve().parents[1]


def snapshot_of_this_repo(dest: Path) -> str:
    """This work tree as one commit (uncommitted edits included), so its rev is stable."""
    files = (
        subprocess.run(
            ("git", "ls-files", "-co", "--exclude-standard", "-z"),
            cwd=HERE,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    dest.mkdir()
    git(dest, "init", "-q")
    for name in filter(None, files):
        src = HERE / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "snapshot", "--no-verify")
    return git(dest, "rev-parse", "HEAD")


class HookSource(NamedTuple):
    path: Path  # a snapshot of this repository, as the `repo:` of a user's configuration
    rev: str
    home: Path  # PRE_COMMIT_HOME shared by every test: the hook environment is built once


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HookSource]:
    if not (HERE / ".git").exists():
        pytest.skip("needs this repository as a git clone")
    base = tmp_path_factory.mktemp("hook-source")
    rev = snapshot_of_this_repo(base / "tierbot-src")
    yield HookSource(base / "tierbot-src", rev, base / "pre-commit-home")


def user_config(src: HookSource) -> str:
    """The README's snippet: hook ids only, nothing that overrides the manifest."""
    return (
        f"repos:\n- repo: {src.path}\n  rev: {src.rev}\n  hooks:\n"
        "  - id: tierbot\n  - id: tierbot-push\n"
    )


def hook_env(src: HookSource) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env["PRE_COMMIT_HOME"] = str(src.home)
    return env


def install(repo: Path, env: dict[str, str]) -> None:
    proc = run(
        repo,
        env,
        sys.executable,
        "-m",
        "pre_commit",
        "install",
        "--hook-type",
        "pre-commit",
        "--hook-type",
        "pre-push",
    )
    assert proc.returncode == 0, proc.stdout


def run(repo: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    # git hooks write to stderr; keep one stream, in order, as a user sees it.
    return subprocess.run(
        argv,
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_git_commit_and_push_through_pre_commit(
    repo: Path, tmp_path: Path, source: HookSource
) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    code = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(20))
    commit(
        repo,
        {
            "app/core.py": code,
            "README.md": "# demo\n",
            ".pre-commit-config.yaml": user_config(source),
        },
    )
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    env = hook_env(source)
    install(repo, env)

    with fake_anthropic() as fake:
        keyed = {**env, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake.url}

        # A high finding blocks the commit, printed like a linter.
        write(repo, {"app/core.py": code + "def run(cmd):\n    return eval(cmd)\n"})
        git(repo, "add", "-A")
        fake.script("*", answer([finding("app/core.py", 62, "eval of input", severity="high")]))
        fake.script_verdicts(verdicts(verdict(1, "confirmed", "cmd comes from the caller")))
        proc = run(repo, keyed, "git", "commit", "-m", "eval")
        assert proc.returncode != 0, proc.stdout
        assert "app/core.py:62: high: eval of input" in proc.stdout
        assert "tierbot: cost: $" in proc.stdout
        # One review, never by Opus on a commit (the commit hook is capped at Sonnet); the cheap
        # tier's blocking finding is then checked by Opus before it blocks.
        review, check = fake.requests
        assert review.model in ("claude-haiku-5-5", "claude-sonnet-5-5")
        assert check.model == "claude-opus-5-5" and is_verification(check)
        assert git(repo, "log", "--format=%s", "-1") == "change"  # nothing was committed

        # A low finding does not block (a new staged change, so it is reviewed again).
        write(repo, {"app/core.py": code + "def run(cmd):\n    return len(cmd)\n"})
        git(repo, "add", "-A")
        fake.script("*", answer([finding("app/core.py", 62, "naming", severity="low")]))
        proc = run(repo, keyed, "git", "commit", "-m", "len")
        assert proc.returncode == 0, proc.stdout
        assert "app/core.py:62: low: naming" in proc.stdout

        # An outage never blocks a commit: one warning line.
        write(repo, {"app/core.py": code + "def run(cmd):\n    return cmd\n"})
        git(repo, "add", "-A")
        fake.script("*", *[error(529)] * 10)
        proc = run(repo, keyed, "git", "commit", "-m", "outage")
        assert proc.returncode == 0, proc.stdout
        assert "not blocking" in proc.stdout

        # A docs-only commit makes no model call.
        before = len(fake.requests)
        write(repo, {"README.md": "# demo\n\nMore words.\n"})
        git(repo, "add", "-A")
        proc = run(repo, keyed, "git", "commit", "-m", "docs")
        assert proc.returncode == 0 and len(fake.requests) == before, proc.stdout

        # The push hook reviews the pushed commits, and may use Opus.
        write(
            repo,
            {
                ".tierbot.yml": "routing:\n  thresholds: {sonnet: 0.0, opus: 0.0}\n"
                "  opus_min_lines: 0\n"
            },
        )
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "config", "--no-verify")
        fake.script("*", answer([]))
        before = len(fake.requests)
        proc = run(repo, keyed, "git", "push", "origin", "main")
        assert proc.returncode == 0, proc.stdout
        pushed = fake.requests[before:]
        assert pushed and {r.model for r in pushed} == {"claude-opus-5-5"}
        assert "def run(cmd):" in "".join(r.text for r in pushed)

    # No key: local rules only, with a notice; a leaked token still blocks.
    write(repo, {"app/keys.py": 'TOKEN = "ghp_' + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + '"\n'})
    git(repo, "add", "-A")
    proc = run(repo, env, "git", "commit", "-m", "token")
    assert proc.returncode != 0
    assert "app/keys.py:1: critical:" in proc.stdout
    assert "model review skipped" in proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_new_user_sees_what_the_hook_found(repo: Path, source: HookSource) -> None:
    code = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(20))
    commit(
        repo,
        {
            "app/core.py": code,
            "app/old.py": code,
            "README.md": "# demo\n",
            ".pre-commit-config.yaml": user_config(source),
        },
    )
    env = hook_env(source)  # no key: the local rules and the estimate
    install(repo, env)

    # Findings below the blocking severity pass the commit and are still shown, cost line too.
    write(repo, {"app/core.py": code + "def run(x):\n    breakpoint()  # TODO: remove\n"})
    git(repo, "add", "-A")
    proc = run(repo, env, "git", "commit", "-m", "debug")
    assert proc.returncode == 0, proc.stdout
    assert "tierbot (review staged changes)" in proc.stdout and "Passed" in proc.stdout
    assert "tierbot: staged changes (" in proc.stdout
    assert "app/core.py:62: medium:" in proc.stdout
    assert "app/core.py:62: info: TODO comment added" in proc.stdout
    assert "tierbot: cost: $" in proc.stdout
    assert git(repo, "log", "--format=%s", "-1") == "debug"

    # A commit that only deletes a file is a change: the hook runs and says what it reviewed.
    git(repo, "rm", "-q", "app/old.py")
    proc = run(repo, env, "git", "commit", "-m", "delete")
    assert proc.returncode == 0, proc.stdout
    assert "no files to check" not in proc.stdout and "Skipped" not in proc.stdout
    assert "1 file, +0 -60" in proc.stdout and "tierbot: cost: $" in proc.stdout

    # `--all-files` with nothing staged and no pushed range: one line saying what the hook reviews.
    proc = run(repo, env, sys.executable, "-m", "pre_commit", "run", "--all-files")
    assert proc.returncode == 0, proc.stdout
    said = [line for line in proc.stdout.splitlines() if line.startswith("tierbot:")]
    assert said == [
        "tierbot: nothing staged: this hook reviews the change being committed (or pushed), not"
        " the files pre-commit lists; run `tierbot review` for the work tree"
    ], proc.stdout
