"""Where tierbot keeps its ledger and cache on each platform (TIERBOT_HOME, then the OS's user
cache directory)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tierbot.review import ledger


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("linux", {"XDG_CACHE_HOME": "/x/cache"}, "/x/cache/tierbot"),
        ("linux", {}, "~/.cache/tierbot"),
        ("darwin", {}, "~/Library/Caches/tierbot"),
        (
            "win32",
            {"LOCALAPPDATA": "C:/Users/u/AppData/Local"},
            "C:/Users/u/AppData/Local/tierbot/Cache",
        ),
    ],
)
def test_home_per_platform(
    monkeypatch: pytest.MonkeyPatch, platform: str, env: dict[str, str], expected: str
) -> None:
    monkeypatch.delenv("TIERBOT_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("LOCALAPPDATA", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "platform", platform)
    assert ledger.home() == Path(expected).expanduser()


def test_tierbot_home_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIERBOT_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("XDG_CACHE_HOME", "/elsewhere")
    assert ledger.home() == tmp_path / "h"
