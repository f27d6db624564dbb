#!/usr/bin/env python3
"""Run the shared routing benchmark against tierbot.

The benchmark lives in `../shared/bench/routing/` next to this repository (override with
$TIERBOT_SHARED_BENCH); it is read-only and never imported by tierbot.  Subcommands:

  run.py build                 build the dev split (clones + SZZ) into the bench root
  run.py eval [-- EXTRA...]    score `tierbot review ... --dry-run` with the shipped model
  run.py loro                  leave-one-repository-out through the real CLI: extract features,
                               fit a model without each repository, route that repository's
                               commits with it, and print a RESULT line per held-out repository
                               and the pooled one
  run.py curve                 held-out cost against Opus recall (simulated, a few seconds)

Common options: --bench-root (default $BENCH_ROOT or /tmp/tierbot-bench), --mirrors-dir (for
build), --jobs (2), --tierbot (the tierbot executable, default: the one next to this Python).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get(
    "TIERBOT_SHARED_BENCH", os.path.join(os.path.dirname(ROOT), "shared", "bench", "routing")
)


def default_tierbot() -> str:
    near = os.path.join(os.path.dirname(sys.executable), "tierbot")
    return near if os.path.exists(near) else "tierbot"


def router(tierbot: str, config: str | None = None, model: str | None = None) -> str:
    cmd = f"{shlex.quote(tierbot)} review {{parent}}..{{sha}} --dry-run --format json"
    if model:
        cmd = f"TIERBOT_RISK_MODEL={model} {cmd}"
    return cmd + (f" --config {shlex.quote(config)}" if config else "")


def shared(script: str, *args: str) -> int:
    cmd = [sys.executable, os.path.join(SHARED, script), *args]
    print("+ " + " ".join(shlex.quote(c) for c in cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=False).returncode


def result_line(rows: list[dict[str, Any]], recs: list[dict[str, Any]]) -> str:
    """The benchmark's RESULT metrics for a subset, from evaluate.py's per-commit records."""
    sys.path.insert(0, SHARED)
    import metrics

    la = {r["sha"]: float(r["la"]) for r in rows}
    ok = [x for x in recs if not x["error"]]
    bug = [x for x in ok if x["label"] == "buggy"]
    cln = [x for x in ok if x["label"] == "clean"]
    triv = [x for x in ok if x["label"] == "trivial"]
    auc = metrics.auc_mann_whitney([x["risk"] for x in bug], [x["risk"] for x in cln])
    la_auc = metrics.auc_mann_whitney([la[x["sha"]] for x in bug], [la[x["sha"]] for x in cln])
    weakest = [x["weakest_buggy_tier"] for x in bug if x["weakest_buggy_tier"]]
    rank = metrics.TIER_RANK

    def share(items: list[Any], pred: Any) -> float:
        return sum(1 for i in items if pred(i)) / len(items) if items else float("nan")

    vals = {
        "auc": auc,
        "la_auc": la_auc,
        "auc_delta": auc - la_auc,
        "opus_recall": share(bug, lambda x: x["tier"] == "opus"),
        "file_opus_recall": share(weakest, lambda t: rank[t] >= rank["opus"]),
        "file_sonnet_plus_recall": share(weakest, lambda t: rank[t] >= rank["sonnet"]),
        "cost_fraction": sum(x["cost"] for x in ok) / sum(x["all_opus_cost"] for x in ok),
        "unit_cost_fraction": sum(x["unit_cost"] for x in ok) / sum(x["all_opus_cost"] for x in ok),
        "trivial_cheap": share(triv, lambda x: x["tier"] in ("skip", "haiku")),
    }
    return (
        "RESULT "
        + " ".join(f"{k}={v:.3f}" for k, v in vals.items())
        + f" errors={len(recs) - len(ok)}"
    )


def cmd_loro(a: argparse.Namespace, extra: list[str]) -> int:
    work = a.work or os.path.join(a.bench_root, "tierbot-loro")
    os.makedirs(work, exist_ok=True)
    feats = os.path.join(work, "features.jsonl")
    start = time.perf_counter()
    if not (a.reuse_features and os.path.exists(feats)):
        subprocess.run(
            [
                sys.executable,
                os.path.join(HERE, "features.py"),
                "--bench-root",
                a.bench_root,
                "--out",
                feats,
                "--jobs",
                str(a.jobs),
            ],
            check=True,
        )
    folds = os.path.join(work, "folds")
    subprocess.run(
        [
            sys.executable,
            os.path.join(HERE, "fit.py"),
            "--features",
            feats,
            "--fold-configs",
            folds,
        ],
        check=True,
    )
    out = os.path.join(work, "loro.json")
    # {repo} is owner/name: each commit is routed by the model fitted without its repository.
    rc = shared(
        "evaluate.py",
        "--bench-root",
        a.bench_root,
        "--jobs",
        str(a.jobs),
        "--router",
        router(a.tierbot, model=os.path.join(folds, "{repo}.yml")),
        "--json-out",
        out,
        *extra,
    )
    if rc == 2 or not os.path.exists(out):
        return rc
    with open(out, encoding="utf-8") as f:
        recs = json.load(f)["per_commit"]
    with open(os.path.join(a.bench_root, "dev.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    print(
        "\nleave-one-repository-out through the CLI (each repository routed by a model fitted "
        "and calibrated on the other two):"
    )
    for repo in sorted({x["repo"] for x in recs}):
        print(f"held-out {repo:18s} " + result_line(rows, [x for x in recs if x["repo"] == repo]))
    print(f"pooled   {'(all held out)':18s} " + result_line(rows, recs))
    print(f"total {time.perf_counter() - start:.0f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("command", choices=("build", "eval", "loro", "curve"))
    ap.add_argument("--bench-root", default=os.environ.get("BENCH_ROOT", "/tmp/tierbot-bench"))
    ap.add_argument("--mirrors-dir", default=os.environ.get("BENCH_MIRRORS_DIR"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tierbot", default=default_tierbot())
    ap.add_argument("--config", help="a .tierbot.yml for `eval` (e.g. other weights)")
    ap.add_argument(
        "--work", help="loro/curve scratch directory (default <bench-root>/tierbot-loro)"
    )
    ap.add_argument(
        "--reuse-features",
        action="store_true",
        help="loro: keep <work>/features.jsonl if it exists (same code, no re-run)",
    )
    a = ap.parse_args(argv)
    if not os.path.isdir(SHARED):
        print(
            f"run.py: the shared benchmark is not at {SHARED} (set TIERBOT_SHARED_BENCH)",
            file=sys.stderr,
        )
        return 2
    if a.command == "build":
        more = ["--mirrors-dir", a.mirrors_dir] if a.mirrors_dir else []
        return shared("build.py", "--bench-root", a.bench_root, *more, *extra)
    if a.command == "eval":
        return shared(
            "evaluate.py",
            "--bench-root",
            a.bench_root,
            "--jobs",
            str(a.jobs),
            "--router",
            router(a.tierbot, a.config),
            *extra,
        )
    if a.command == "loro":
        return cmd_loro(a, extra)
    work = a.work or os.path.join(a.bench_root, "tierbot-loro")
    feats = os.path.join(work, "features.jsonl")
    if not os.path.exists(feats):
        os.makedirs(work, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                os.path.join(HERE, "features.py"),
                "--bench-root",
                a.bench_root,
                "--out",
                feats,
                "--jobs",
                str(a.jobs),
            ],
            check=True,
        )
    return subprocess.run(
        [sys.executable, os.path.join(HERE, "fit.py"), "--features", feats, "--curve", *extra],
        check=False,
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
