#!/usr/bin/env python3
"""Route the hand-labelled routine commits of real repositories through the real CLI.

    python3 bench/routing/routine.py --mirrors-dir /work/.mirror --work /tmp/routine [--check]

`routine/labels.tsv` lists commits of projects other than the benchmark's that a person read and
labelled routine (comment, docstring or pragma edits, typos, dependency and CI bumps, version
bumps, one-line renames, table entries).  Each repository is cloned from its snapshot (the
`fetch` tool's `<owner>+<name>` folders) with its whole history, and every commit is reviewed
as `tierbot review <sha>^! --dry-run --format json`, exactly as a user would.  The report gives
the tiers by class and every commit that went above Haiku with its units' reasons; `--check`
exits 1 unless at least 95% went to skip or Haiku and none to Opus.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
LABELS = os.path.join(HERE, "routine", "labels.tsv")
TIERS = ("skip", "haiku", "sonnet", "opus")


def default_tierbot() -> str:
    near = os.path.join(os.path.dirname(sys.executable), "tierbot")
    return near if os.path.exists(near) else "tierbot"


def read_labels(path: str) -> list[dict[str, str]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            repo, sha, cls, what = line.rstrip("\n").split("\t")
            rows.append({"repo": repo, "sha": sha, "class": cls, "what": what})
    return rows


def clone(repo: str, mirrors: str, work: str) -> str:
    """A full clone of the repository's snapshot (history included: it is a feature)."""
    dest = os.path.join(work, repo.replace("/", "+"))
    if os.path.isdir(os.path.join(dest, ".git")):
        return dest
    src = os.path.join(mirrors, repo.replace("/", "+"), "repo")
    if os.path.isdir(os.path.join(src, ".git")):
        src = os.path.join(src, ".git")
    subprocess.run(["git", "clone", "--quiet", src, dest], check=True)
    return dest


def route(tierbot: str, root: str, sha: str) -> dict[str, Any]:
    proc = subprocess.run(
        [tierbot, "review", f"{sha}^!", "--dry-run", "--format", "json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANTHROPIC_API_KEY": ""},
    )
    if proc.returncode not in (0, 1):
        return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--labels", default=LABELS)
    ap.add_argument("--mirrors-dir", default=os.environ.get("BENCH_MIRRORS_DIR", "/work/.mirror"))
    ap.add_argument("--work", default="/tmp/tierbot-routine")
    ap.add_argument("--tierbot", default=default_tierbot())
    ap.add_argument("--json-out", help="write every commit's route here")
    ap.add_argument("--check", action="store_true", help="exit 1 unless the targets hold")
    a = ap.parse_args(argv)
    rows = read_labels(a.labels)
    os.makedirs(a.work, exist_ok=True)
    start = time.perf_counter()
    by_class: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    results = []
    for row in rows:
        root = clone(row["repo"], a.mirrors_dir, a.work)
        data = route(a.tierbot, root, row["sha"])
        tier = data.get("route", {}).get("tier", "error")
        by_class[row["class"]][tier] += 1
        results.append(
            {**row, "tier": tier, "route": data.get("route"), "error": data.get("error")}
        )
    total = collections.Counter(r["tier"] for r in results)
    cheap = (total["skip"] + total["haiku"]) / len(results)
    print(f"{'class':10s} {'n':>4s} " + " ".join(f"{t:>6s}" for t in TIERS))
    for cls in sorted(by_class):
        c = by_class[cls]
        print(f"{cls:10s} {sum(c.values()):4d} " + " ".join(f"{c[t]:6d}" for t in TIERS))
    print(f"{'all':10s} {len(results):4d} " + " ".join(f"{total[t]:6d}" for t in TIERS))
    repos = sorted({r["repo"] for r in results})
    print(f"\n{len(results)} commits of {len(repos)} repositories ({', '.join(repos)})")
    for r in results:
        if r["tier"] in ("skip", "haiku"):
            continue
        print(f"\n{r['tier']:6s} {r['repo']} {r['sha']} [{r['class']}] {r['what']}")
        for u in (r["route"] or {}).get("units", []):
            print(f"    {u['tier']:6s} {u['risk_score']:.2f} {u['paths'][0]}: {u['reasons'][0]}")
        if r["error"]:
            print(f"    error: {r['error']}")
    print(
        f"\nRESULT routine_cheap={cheap:.3f} opus={total['opus']} errors={total['error']}"
        f" n={len(results)} ({time.perf_counter() - start:.0f}s)"
    )
    if a.json_out:
        with open(a.json_out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    if a.check and (cheap < 0.95 or total["opus"] or total["error"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
