"""Benchmark: concurrent unit reviews, and what a typical 300-line change sends per tier.

    /work/venv/bin/python bench/model_concurrency.py

1. Eight units against the loopback fake API answering after 1 s each, through the real SDK, with
   concurrency 4: wall time from the first request to the last answer (target < 2.5 s; ~2 s ideal).
2. Offline token estimate (chars/3.2) of the requests a synthetic 300-line change (6 files, 3
   review units) sends at each tier, and what prompt caching of the shared prefix saves.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_anthropic import fake_anthropic

from tierbot import config as config_mod
from tierbot.git.diff import read_change
from tierbot.records import Analysis, Change, FileStat, Route, Tier, Unit
from tierbot.review import model
from tierbot.review import prompt as P
from tierbot.routing.pricing import EXPECTED_OUTPUT_TOKENS, call_cost, estimate_tokens


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def module(name: str, funcs: int, changed: bool) -> str:
    out = [f'"""{name}: request handling helpers."""', "", "import json", "import os", ""]
    for i in range(funcs):
        out += [
            f"def {name}_step_{i}(payload, retries=3):",
            "    data = json.loads(payload or '{}')",
            f"    if data.get('id') == {i}:",
            f"        return os.environ.get('STEP_{i}', data)",
        ]
        if changed:
            out += [
                f"    for attempt in range(retries):  # new retry loop {i}",
                f"        if data.get('ok_{i}'):",
                f"            return data['ok_{i}'] + attempt",
                "    raise RuntimeError('gave up')",
            ]
        out.append("")
    return "\n".join(out) + "\n"


def make_change(root: Path, files: int, funcs: int) -> Change:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    for changed in (False, True):
        for i in range(files):
            (root / "svc").mkdir(exist_ok=True)
            (root / "svc" / f"m{i}.py").write_text(module(f"m{i}", funcs, changed))
        git(root, "add", "-A")
        git(root, "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q", "-m", "c")
    return read_change(str(root), "HEAD~1..HEAD")


def analysis_of(change: Change) -> Analysis:
    stats = tuple(
        FileStat(
            f.path, None, f.status, "Python", f.lines_added, f.lines_removed, len(f.hunks), 0, None
        )
        for f in change.files
    )
    return Analysis(
        stats,
        sum(f.lines_added for f in change.files),
        sum(f.lines_removed for f in change.files),
        sum(len(f.hunks) for f in change.files),
        0,
        0.5,
        (),
    )


def route_of(change: Change, per_unit: int, tier: Tier) -> Route:
    cfg = config_mod.default()
    paths = [f.path for f in change.files]
    units = tuple(
        Unit(
            f"u{i // per_unit + 1}",
            tier,
            cfg.model_for(tier),
            tuple(paths[i : i + per_unit]),
            0.5,
            ("bench",),
        )
        for i in range(0, len(paths), per_unit)
    )
    return Route(tier, ("bench",), units)


def concurrency(tmp: Path) -> float:
    change = make_change(tmp / "conc", files=8, funcs=3)
    route = route_of(change, 1, "haiku")
    cfg = dataclasses.replace(config_mod.default(), concurrency=4)
    import anthropic  # noqa: F401  -- import cost is not what this measures

    with fake_anthropic() as fake:
        fake.default_delay = 1.0
        os.environ.update(
            ANTHROPIC_BASE_URL=fake.url,
            ANTHROPIC_API_KEY="bench-key",
            TIERBOT_HOME=str(tmp / "home"),
        )
        started = time.monotonic()
        out = model.review(
            change, analysis_of(change), route, (), cfg, budget_usd=None, use_cache=False
        )
        total = time.monotonic() - started
        assert out.status == "complete", out.error
        wall = max(r.finished for r in fake.requests) - min(r.started for r in fake.requests)
        print(
            f"concurrency: {len(fake.requests)} units, 1.0 s each, concurrency 4: "
            f"first request -> last answer {wall:.2f} s (review() total {total:.2f} s; "
            f"target < 2.5 s) {'OK' if wall < 2.5 else 'TOO SLOW'}"
        )
        return wall


def tokens(tmp: Path) -> None:
    change = make_change(tmp / "tok", files=6, funcs=13)
    added = sum(f.lines_added for f in change.files)
    cfg = config_mod.default()
    print(
        f"\ntypical change: {len(change.files)} files, +{added} -"
        f"{sum(f.lines_removed for f in change.files)} lines, 3 units of 2 files"
    )
    print(
        f"{'tier':<7} {'prompt tok':>10} {'prefix tok':>10} {'out tok':>8} {'no cache $':>11} "
        f"{'cached $':>10} {'cached, 4 at once $':>20} {'saving':>7}  primed"
    )
    for tier in ("haiku", "sonnet", "opus"):
        route = route_of(change, 2, tier)  # type: ignore[arg-type]
        prefix = P.build_prefix(change, analysis_of(change), route, cfg)
        price = cfg.price_for(cfg.model_for(tier) or "")  # type: ignore[arg-type]
        shared = estimate_tokens(P.system_static(tier) + prefix.text)  # type: ignore[arg-type]
        units = [estimate_tokens(P.build_unit(change, u, (), cfg).text) for u in route.units]
        out = EXPECTED_OUTPUT_TOKENS[tier] * len(units)
        plain = sum(call_cost(price, shared + u, EXPECTED_OUTPUT_TOKENS[tier]) for u in units)
        # Sequential: the first unit writes the prefix, the others read it.
        cached = sum(
            call_cost(
                price,
                u,
                EXPECTED_OUTPUT_TOKENS[tier],
                cache_write_tokens=shared if i == 0 else 0,
                cache_read_tokens=0 if i == 0 else shared,
            )
            for i, u in enumerate(units)
        )
        # Concurrent: the first wave (up to 4) all miss and write.
        wave = sum(
            call_cost(
                price,
                u,
                EXPECTED_OUTPUT_TOKENS[tier],
                cache_write_tokens=shared if i < 4 else 0,
                cache_read_tokens=0 if i < 4 else shared,
            )
            for i, u in enumerate(units)
        )
        total_prompt = shared * len(units) + sum(units)
        # The rule model.review uses to decide whether to run one unit alone first.
        prime_saving = (min(len(units), 4) - 1) * shared * (price.cache_write - price.cache_read)
        primed = "yes" if prime_saving / 1e6 >= model.PRIME_MIN_SAVING_USD else "no"
        print(
            f"{tier:<7} {total_prompt:>10} {shared:>10} {out:>8} {plain:>11.5f} {cached:>10.5f} "
            f"{wave:>20.5f} {100 * (plain - cached) / plain:>6.1f}%  {primed}"
        )


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        wall = concurrency(Path(d))
        tokens(Path(d))
    return 0 if wall < 2.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
