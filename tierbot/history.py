"""File history from `git log`, bounded so analysis stays fast on big repositories.

PLACEHOLDER interface (owned by the router work): returns no history yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class FileHistory(NamedTuple):
    changes: int  # prior commits touching the file, within the bounded window
    fixes: int  # of which look like bug fixes
    authors: int  # distinct authors of those commits
    age_days: float | None  # days since the oldest commit seen touching it; None if unseen


def file_history(
    root: str, rev: str, paths: Sequence[str], max_commits: int
) -> dict[str, FileHistory]:
    return {}
