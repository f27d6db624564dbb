"""Helpers for the rules/redact/findings tests: real `git diff` text parsed into FileDiff records,
and fake secrets assembled at run time (so no token-shaped literal sits in the test sources)."""

from __future__ import annotations

import random
import string
import subprocess
from pathlib import Path

from tierbot.git.diff import parse
from tierbot.records import FileDiff


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(("git", *args), cwd=repo, check=True, capture_output=True)
    return out.stdout.decode("utf-8", "surrogateescape")


def write(repo: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def init(repo: Path) -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "commit.gpgsign", "false")
    git(repo, "config", "user.name", "Test Author")
    git(repo, "config", "user.email", "author@example.invalid")
    return repo


def change_files(
    repo: Path, before: dict[str, str], after: dict[str, str | None]
) -> tuple[FileDiff, ...]:
    """In a fresh repository at `repo`: commit `before`, apply `after` (None deletes), and parse
    `git diff --cached HEAD` with tierbot's own parser."""
    init(repo)
    git(repo, "commit", "-q", "--allow-empty", "--no-verify", "-m", "root")
    if before:
        write(repo, before)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "--no-verify", "-m", "before")
    for name, text in after.items():
        if text is None:
            (repo / name).unlink()
        else:
            write(repo, {name: text})
    git(repo, "add", "-A")
    text = git(
        repo,
        "-c",
        "core.quotePath=false",
        "diff",
        "--cached",
        "--no-color",
        "--no-ext-diff",
        "-M",
        "HEAD",
    )
    return parse(text)


def by_path(files: tuple[FileDiff, ...]) -> dict[str, FileDiff]:
    return {f.path: f for f in files}


def fake(
    prefix: str, length: int, alphabet: str = string.ascii_letters + string.digits, seed: int = 7
) -> str:
    """A random-looking token: `prefix` + `length` characters (deterministic per seed)."""
    rng = random.Random(seed)
    body = "".join(rng.choice(alphabet) for _ in range(length))
    # Make sure the body mixes letters and digits, as real keys do.
    return prefix + "7" + body[1:-1] + "Q"


def fake_secrets() -> dict[str, str]:
    """One planted secret per detector kind (values only)."""
    upper = string.ascii_uppercase + string.digits
    b64 = string.ascii_letters + string.digits + "/+"
    return {
        "aws_access_key_id": "AKIA" + fake("", 16, upper, seed=1),
        "aws_secret_access_key": fake("", 40, b64, seed=2),
        "github_token": "gh" + "p_" + fake("", 36, seed=3),
        "github_pat": "github" + "_pat_" + fake("", 22, seed=4) + "_" + fake("", 59, seed=5),
        "anthropic_api_key": "sk-" + "ant-api03-" + fake("", 80, seed=6),
        "openai_api_key": "sk-" + "proj-" + fake("", 48, seed=8),
        "slack_token": "xo" + "xb-" + fake("", 10, string.digits, 9) + "-" + fake("", 24, seed=10),
        "stripe_key": "sk" + "_live_" + fake("", 24, seed=11),
        "google_api_key": "AI" + "za" + fake("", 35, seed=12),
        "npm_token": "np" + "m_" + fake("", 36, seed=13),
        "jwt": "ey"
        + "J"
        + fake("", 30, seed=14)
        + ".ey"
        + "J"
        + fake("", 40, seed=15)
        + "."
        + fake("", 43, seed=16),
        "generic_secret": fake("", 32, string.hexdigits.lower()[:16], seed=17),
        "url_password": fake("", 14, seed=18),
    }


def private_key_lines(kind: str = "RSA", body_lines: int = 5) -> list[str]:
    rng = random.Random(99)
    alphabet = string.ascii_letters + string.digits + "+/"
    body = ["".join(rng.choice(alphabet) for _ in range(64)) for _ in range(body_lines)]
    return [f"-----BEGIN {kind} PRIVATE KEY-----", *body, f"-----END {kind} PRIVATE KEY-----"]
