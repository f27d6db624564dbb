"""Cyclomatic complexity delta of the functions a change touches (lizard, old vs new content)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from tierbot.analysis.sides import Sides
from tierbot.paths import lizard_reads
from tierbot.records import FileDiff

# lizard reads only ~15k lines/s, so old+new lines fed to it are bounded.  Files are measured
# largest change first, so the bound drops the least informative ones; a huge change is judged by
# its size already and gets a smaller share.
MAX_LINES = 2_500
HUGE_CHANGE_LINES = 5_000
HUGE_CHANGE_MAX_LINES = 1_000


def _functions(path: str, source: str) -> dict[str, tuple[int, int, int]]:
    path_before = list(sys.path)
    from lizard import analyze_file

    # Importing lizard puts the directory of sys.argv[0] first on sys.path: under `python -m
    # tierbot` that is tierbot/ itself, and every later top-level import (`secrets`, `github`)
    # would find our modules instead of the real ones.
    sys.path[:] = path_before

    info = analyze_file.analyze_source_code(path, source)
    return {
        f.long_name: (f.start_line, f.end_line, f.cyclomatic_complexity) for f in info.function_list
    }


def _delta(path: str, old: str | None, new: str, added: set[int]) -> int:
    new_fns = _functions(path, new)
    old_fns = _functions(path, old) if old else {}
    delta = 0
    for name, (start, end, cc) in new_fns.items():
        if any(start <= n <= end for n in added):
            delta += cc - old_fns.get(name, (0, 0, 0))[2]
    for name, (_, _, cc) in old_fns.items():
        if name not in new_fns:
            delta -= cc
    return delta


def deltas(files: Sequence[FileDiff], sides: Mapping[str, Sides]) -> tuple[dict[str, int], int]:
    """Complexity delta per path, and how many readable files were left out by the bound."""
    candidates = [f for f in files if f.hunks and lizard_reads(f.path) and f.status != "deleted"]
    candidates.sort(key=lambda f: -f.lines_added)
    result: dict[str, int] = {}
    huge = sum(f.lines_added for f in candidates) > HUGE_CHANGE_LINES
    budget = HUGE_CHANGE_MAX_LINES if huge else MAX_LINES
    left_out = 0
    for f in candidates:
        side = sides.get(f.path)
        if side is None or side.new is None:
            left_out += side is None
            continue
        cost = side.new.count("\n") + (side.old.count("\n") if side.old else 0)
        if cost > budget:
            left_out += 1
            continue
        budget -= cost
        result[f.path] = _delta(f.path, side.old, side.new, {n for n, _ in f.added_lines})
    return result, left_out
