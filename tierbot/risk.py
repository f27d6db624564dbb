"""The risk model: features of a change -> risk_score in 0..1 and explained signals.

PLACEHOLDER (owned by the router work): lines added only, squashed logistically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from tierbot.config import Config
from tierbot.history import FileHistory
from tierbot.records import FileDiff, FileStat, Signal


class Assessment(NamedTuple):
    score: float
    signals: tuple[Signal, ...]
    file_scores: dict[str, float]  # path -> 0..1, for per-unit routing


def _squash(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def assess(
    files: Sequence[FileDiff],
    stats: Sequence[FileStat],
    history: Mapping[str, FileHistory],
    config: Config,
) -> Assessment:
    reviewed = [s for s in stats if s.skip_reason is None]
    added = sum(s.lines_added for s in reviewed)
    w = 0.8 * math.log1p(added)
    score = _squash(w - 3.0)
    signals = (Signal("size.lines_added", round(w, 3), f"{added} lines added",
                      tuple(s.path for s in reviewed)),) if reviewed else ()
    file_scores = {s.path: _squash(0.8 * math.log1p(s.lines_added) - 3.0) for s in reviewed}
    return Assessment(score, signals, file_scores)
