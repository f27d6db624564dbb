#!/usr/bin/env python3
"""Review the recent history of real repositories, commit by commit, and count what went wrong.

    python3 bench/routing/sweep.py --mirrors-dir /work/.mirror --work /tmp/routine \
        [--commits 60] [owner/name ...]

For each repository (by default the routine corpus's seven), the last `--commits` commits are
reviewed one by one (`tierbot review <sha>^! --dry-run --format json`) and the last 50 as one
range, the way a user meets them.  Any exit but 0 or 1 is an error and is printed with its
message.  The table gives the tiers, and how many units without production code were routed
above Haiku (a unit of tests or docs should stay cheap).
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import time

from routine import LABELS, TIERS, clone, default_tierbot, read_labels, route


def commits(root: str, n: int) -> list[str]:
    out = subprocess.run(
        ["git", "log", "--format=%H", f"--max-count={n}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("repos", nargs="*", help="owner/name (default: the routine corpus's)")
    ap.add_argument("--mirrors-dir", default=os.environ.get("BENCH_MIRRORS_DIR", "/work/.mirror"))
    ap.add_argument("--work", default="/tmp/tierbot-routine")
    ap.add_argument("--commits", type=int, default=60)
    ap.add_argument("--tierbot", default=default_tierbot())
    a = ap.parse_args(argv)
    repos = a.repos or sorted({r["repo"] for r in read_labels(LABELS)})
    os.makedirs(a.work, exist_ok=True)
    start = time.perf_counter()
    errors = reviewed = cheap_misses = 0
    print(f"{'repository':24s} {'n':>4s} " + " ".join(f"{t:>6s}" for t in TIERS) + "  range")
    for repo in repos:
        root = clone(repo, a.mirrors_dir, a.work)
        tiers: collections.Counter[str] = collections.Counter()
        for sha in commits(root, a.commits):
            data = route(a.tierbot, root, sha)
            reviewed += 1
            if "error" in data:
                errors += 1
                print(f"  error {repo} {sha[:10]}: {data['error']}", file=sys.stderr)
                continue
            tiers[data["route"]["tier"]] += 1
            for u in data["route"]["units"]:
                if u["tier"] in ("sonnet", "opus") and u["reasons"][0].startswith("no production"):
                    cheap_misses += 1
                    print(f"  {u['tier']} {repo} {sha[:10]} {u['paths'][0]}: {u['reasons'][0]}")
        proc = subprocess.run(
            [a.tierbot, "review", "HEAD~50", "HEAD", "--dry-run"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "ANTHROPIC_API_KEY": ""},
        )
        ranged = "ok" if proc.returncode in (0, 1) else f"exit {proc.returncode}"
        errors += ranged != "ok"
        n = sum(tiers.values())
        print(f"{repo:24s} {n:4d} " + " ".join(f"{tiers[t]:6d}" for t in TIERS) + f"  {ranged}")
    print(
        f"\nRESULT reviewed={reviewed} errors={errors} no_code_units_above_haiku={cheap_misses}"
        f" ({time.perf_counter() - start:.0f}s)"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
