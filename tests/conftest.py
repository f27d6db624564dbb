"""Shared fixtures: real git repositories in temp dirs, and an isolated environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic, fake_anthropic
from gitrepo import git


@pytest.fixture(autouse=True)
def isolated_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """No real key, no real GitHub, no user config: every test starts from a known state."""
    for var in list(os.environ):
        if var.startswith(("ANTHROPIC_", "GITHUB_", "GIT_", "PRE_COMMIT", "TIERBOT_")):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("SKIP", raising=False)
    monkeypatch.setenv("TIERBOT_HOME", str(tmp_path_factory.mktemp("tierbot-home")))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Author")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "author@example.invalid")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    yield


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    """A loopback fake of the Messages API, with the real SDK pointed at it by the environment."""
    with fake_anthropic() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        yield server


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository (no commits yet) on branch main."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "commit.gpgsign", "false")
    return path
