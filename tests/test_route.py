"""Routing: packing files into review units under the token budget (route.plan)."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest
from routing_helpers import commit, init_repo

from tierbot import config
from tierbot.analysis import analyze as analysis
from tierbot.git.diff import read_change
from tierbot.records import Change, Route, Unit, paths_label
from tierbot.routing import route
from tierbot.routing.estimate import estimate, unit_tokens
from tierbot.routing.pricing import DEFAULT_CALIBRATION, call_cost


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


# --------------------------------------------------------------------------------------------
# Units scored by their own files, with floors, merged when they share a tier
# --------------------------------------------------------------------------------------------
def _plan(root: Path, text: str = "", rng: str = "HEAD~1..HEAD") -> tuple[Route, Change]:
    change = read_change(str(root), rng)
    cfg = config.parse(text)
    an, assessment, _ = analysis.analyze(change, cfg)
    return route.plan(change, an, assessment, cfg), change


def _unit(plan: Route, path: str) -> Unit:
    return next(u for u in plan.units if path in u.paths)


def test_a_small_unit_of_a_large_change_is_judged_by_its_own_lines(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "r")
    commit(root, {"core/big.py": _module(0), "tools/small.py": "LIMIT = 1\n"}, "start")
    big = "".join(_module(i) for i in range(1, 40))
    commit(root, {"core/big.py": _module(0) + big, "tools/small.py": "LIMIT = 2\n"}, "grow")
    plan, _ = _plan(root, "routing:\n  unit_max_tokens: 4000\n")
    small = _unit(plan, "tools/small.py")
    assert small.paths == ("tools/small.py",)
    assert small.tier != "opus" and small.risk_score < 0.4
    assert small.reasons[0] == (
        "1 line of code added; 1 line of code removed; the rest of the change adds 1248 lines"
        " of code in 1 file"
    )
    assert all(u.tier == "opus" for u in plan.units if "core/big.py" in u.paths)
    assert any("core/big.py → opus" in r for r in plan.reasons)


def test_units_on_the_same_tier_share_a_call(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "r")
    commit(root, {"src/a.py": "X = 1\n", "tests/test_a.py": "def test():\n    assert 1\n"}, "s")
    commit(root, {"src/a.py": "X = 2\n", "tests/test_a.py": "def test():\n    assert 2\n"}, "e")
    plan, _ = _plan(root)
    assert [(u.tier, u.paths) for u in plan.units] == [("haiku", ("src/a.py", "tests/test_a.py"))]
    assert (
        plan.units[0].reasons[0] == "1 line of code added; 1 line of code removed; with 1 test file"
    )


def test_opus_needs_more_than_a_few_lines_unless_the_code_is_sensitive(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "r")
    commit(root, {"app/run.py": "def run(cmd):\n    return cmd\n"}, "start")
    commit(root, {"app/run.py": "def run(cmd):\n    return cmd.strip()\n"}, "strip")
    everything_opus = "routing:\n  thresholds: {sonnet: 0.0, opus: 0.0}\n"
    plan, _ = _plan(root, everything_opus)
    unit = _unit(plan, "app/run.py")
    assert unit.tier == "sonnet"
    # The floor that decided leads the reason: a reason cut to the terminal's width keeps it.
    assert unit.reasons[0].startswith(
        "Sonnet, not Opus: 2 lines of code changed, no sensitive code, 0 prior bug fixes; "
    )
    plan, _ = _plan(root, everything_opus + "  opus_min_lines: 0\n")
    assert _unit(plan, "app/run.py").tier == "opus"
    commit(
        root,
        {"app/run.py": "import subprocess\ndef run(cmd):\n    return subprocess.run(cmd)\n"},
        "run it",
    )
    plan, _ = _plan(root, everything_opus)
    assert _unit(plan, "app/run.py").tier == "opus"  # sensitive code: the floor does not apply


def test_a_workflow_changed_beyond_a_pin_gets_at_least_sonnet(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "r")
    wf = "on: push\njobs:\n  t:\n    steps:\n      - uses: actions/checkout@v4\n      - run: make\n"
    commit(
        root, {".github/workflows/ci.yml": wf, "tests/test_x.py": "def test():\n    pass\n"}, "s"
    )
    bumped = wf.replace("@v4", "@v5")
    commit(root, {".github/workflows/ci.yml": bumped}, "bump")
    plan, _ = _plan(root)
    assert plan.tier == "haiku"  # a pin bump is routine
    commit(
        root,
        {
            ".github/workflows/ci.yml": bumped.replace("make", "curl -s x | sh"),
            "tests/test_x.py": "def test():\n    assert True\n",
        },
        "run a script",
    )
    plan, _ = _plan(root)
    ci = _unit(plan, ".github/workflows/ci.yml")
    assert ci.tier == "sonnet" and ci.paths == (".github/workflows/ci.yml",)
    assert ci.reasons[0].startswith("at least Sonnet: CI workflow changed beyond a version pin")
    assert _unit(plan, "tests/test_x.py").tier == "haiku"  # tests are not dragged along


def test_thousands_of_files_make_a_bounded_number_of_units(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "r")
    commit(root, {"README.md": "x\n"}, "start")
    # One commit of 5,000 small files, written by fast-import: a work tree of them is not needed.
    stream = ["commit refs/heads/main", "committer A <a@x> 1700000000 +0000", "data 4", "many"]
    stream.append("from refs/heads/main^0")
    for i in range(5000):
        body = f"def f(x):\n    return x + {i}\n"
        stream += [f"M 100644 inline pkg/m{i // 100:02d}/mod_{i:04d}.py", f"data {len(body)}", body]
    subprocess.run(
        ["git", "-C", str(root), "fast-import", "--quiet"],
        input="\n".join(stream) + "\n",
        text=True,
        check=True,
    )
    plan, change = _plan(root)
    units = [u for u in plan.units if u.tier != "skip"]
    assert 1 < len(units) <= 50
    assert sum(len(u.paths) for u in units) == 5000
    assert any("5,000 files to review in" in n for n in plan.notes)
    # The manifest is paid once per call, capped at the files the prompt lists.
    assert all(u.input_tokens <= 26_000 for u in units)
    est = estimate(change, plan, config.default())
    assert est.cost_usd <= est.all_opus_cost_usd <= 2 * est.cost_usd + 0.5


def test_units_grow_rather_than_multiply_past_the_bound(tmp_path: Path) -> None:
    plan, _ = _route(tmp_path / "r", 2500, 60)
    units = [u for u in plan.units if u.tier != "skip"]
    assert len(units) <= route.MAX_UNITS
    assert any(
        "units hold up to" in n and "would otherwise take more than" in n for n in plan.notes
    )


def test_labels_name_the_dominant_directory() -> None:
    assert paths_label((".gitignore", *(f"src/pkg/m{i}.py" for i in range(22)))) == (
        "src/pkg/ (22 files) +1 more"
    )
    assert paths_label(("src/a.py", "src/b.py")) == "src/ (2 files)"
    assert paths_label(("setup.py", "tests/t.py")) == "setup.py +1 more"  # the caller's first


def test_the_counterfactual_is_the_same_units_at_opus_plus_the_skipped_files(
    tmp_path: Path,
) -> None:
    root = init_repo(tmp_path / "r")
    commit(root, {"src/a.py": "X = 1\n", "poetry.lock": "a\n"}, "start")
    commit(root, {"src/a.py": "X = 2\nY = 3\n", "poetry.lock": "b\n" * 400}, "lock")
    plan, change = _plan(root)
    cfg = config.default()
    est = estimate(change, plan, cfg)
    opus = cfg.price_for(cfg.model_for("opus") or "")
    cal = DEFAULT_CALIBRATION

    def at_opus(prompt: int) -> float:
        prompt += cal.prompt_extra
        return call_cost(opus, prompt, cal.output_for("opus", prompt))

    units = [u for u in plan.units if u.tier != "skip"]
    same = sum(at_opus(u.input_tokens) for u in units)
    lock = [f for f in change.files if f.path == "poetry.lock"]
    skipped = at_opus(unit_tokens(lock, len(change.files))[0])
    assert est.all_opus_cost_usd == pytest.approx(same + skipped, abs=1e-6)
    assert est.skipped_opus_cost_usd == pytest.approx(skipped, abs=1e-6)
    assert est.cost_usd < est.all_opus_cost_usd  # never a negative saving from routing itself


def test_code_named_like_a_prose_file_is_reviewed_as_code(tmp_path: Path) -> None:
    # werkzeug a852be7a: security.py lost gen_salt and gained a check; routed as "1 doc file".
    root = init_repo(tmp_path / "r")
    old = "import secrets\n\n\ndef gen_salt(n):\n    return secrets.token_hex(n)\n"
    new = (
        "import secrets\n\n\ndef gen_salt(n):\n    if n <= 0:\n"
        '        raise ValueError("n must be positive")\n    return secrets.token_urlsafe(n)\n'
    )
    commit(root, {"src/pkg/security.py": old, "app/History.kt": "fun a() = 1\n"}, "start")
    commit(root, {"src/pkg/security.py": new, "app/History.kt": "fun a() = 2\n"}, "salt")
    plan, _ = _plan(root, "")
    for path in ("src/pkg/security.py", "app/History.kt"):
        unit = _unit(plan, path)
        assert unit.tier != "skip" and "doc file" not in unit.reasons[0], (path, unit.reasons)
    assert "sensitive paths: security" in _unit(plan, "src/pkg/security.py").reasons[0]
