"""Helpers for the routing tests: real git repositories with scripted history."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path


def git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full_env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        **(env or {}),
    }
    proc = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, env=full_env, check=True
    )
    return proc.stdout.strip()


def init_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    return root


def commit(
    root: Path,
    files: Mapping[str, str | None],
    message: str,
    author: str = "Ann <ann@example.com>",
    when: int = 1_700_000_000,
) -> str:
    """Write (or delete, for None) files and commit them at `when` (unix seconds)."""
    for name, text in files.items():
        path = root / name
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if files:
        git(root, "add", "-A", "--", *files)
    name, _, email = author.partition(" <")
    email = email.rstrip(">")
    stamp = f"{when} +0000"
    env = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_COMMITTER_DATE": stamp,
    }
    git(root, "commit", "-q", "--allow-empty", "-m", message, env=env)
    return git(root, "rev-parse", "HEAD")
