"""Routing: packing files into review units under the token budget (route.plan)."""

from __future__ import annotations

import itertools
from pathlib import Path

from routing_helpers import commit, init_repo

from tierbot import config
from tierbot.analysis import analyze as analysis
from tierbot.git.diff import read_change
from tierbot.records import Change, Route
from tierbot.routing import route
from tierbot.routing.estimate import unit_tokens


def _module(i: int) -> str:
    body = "".join(f"    total_{j} = value * {j} + offset_{i}\n" for j in range(30))
    return f"def compute_{i}(value, offset_{i}):\n{body}    return total_0\n"


def _route(root: Path, budget: int, files: int) -> tuple[Route, Change]:
    init_repo(root)
    commit(root, {"README.md": "x\n"}, "initial")
    commit(root, {f"pkg/mod_{i:02d}.py": _module(i) for i in range(files)}, "add modules")
    change = read_change(str(root), "HEAD~1..HEAD")
    cfg = config.parse(f"routing:\n  unit_max_tokens: {budget}\n")
    an, scores, _ = analysis.analyze(change, cfg)
    return route.plan(change, an, scores, cfg, force="haiku"), change


def test_prompt_overhead_is_paid_once_per_unit_not_per_file(tmp_path: Path) -> None:
    # 12 files whose patches together fit one unit of 9,000 tokens, but not if each file were
    # charged the 1,500-token prompt again (12 x 1,500 alone is 18,000).
    plan, change = _route(tmp_path / "r", 9000, 12)
    n = len(change.files)
    code = [f for f in change.files if f.path.endswith(".py")]
    assert sum(unit_tokens([f], n)[0] for f in code) > 9000  # per-file overhead would split
    units = [u for u in plan.units if u.tier != "skip"]
    assert len(units) == 1
    assert len(units[0].paths) == 12
    assert units[0].input_tokens == unit_tokens(code, n)[0] <= 9000


def test_units_stay_within_the_budget_and_cover_every_file(tmp_path: Path) -> None:
    plan, change = _route(tmp_path / "r", 3500, 12)
    n = len(change.files)
    units = [u for u in plan.units if u.tier != "skip"]
    assert len(units) > 1
    assert all(u.input_tokens <= 3500 for u in units)
    covered = sorted(p for u in units for p in u.paths)
    assert covered == [f"pkg/mod_{i:02d}.py" for i in range(12)]
    # Greedy packing fills each unit before opening the next: no two neighbours would fit one.
    patch = {u.id: u.input_tokens - unit_tokens([], n)[0] for u in units}
    for a, b in itertools.pairwise(u.id for u in units):
        assert unit_tokens([], n)[0] + patch[a] + patch[b] > 3500
