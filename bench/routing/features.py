#!/usr/bin/env python3
"""Extract tierbot's own risk features for every commit of a routing-benchmark split.

The features come from tierbot's real pipeline (`diff.read_change` -> `analysis.analyze`, which
calls `history.file_history` and `risk.assess`), run on the benchmark's clones.  History is read
from each commit's parent, so it sees only the past, exactly as in the benchmark's sandboxes.

    python3 bench/routing/features.py --bench-root /tmp/tierbot-bench --out /tmp/feat.jsonl

One JSON line per commit: the split row's label, sha and file_chars, tierbot's feature values
(`features`: id -> value) and per-file details (role, stats, history, sensitivity) so that fit.py
can also try feature variants without re-reading git.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repository root: tierbot

from tierbot import config
from tierbot.analysis import analyze as analysis
from tierbot.analysis import risk, sensitive
from tierbot.git import history
from tierbot.git.diff import read_change

_CFG = config.default()


def clone_dir(bench_root: str, repo: str) -> str:
    return os.path.join(bench_root, "repos", repo.replace("/", "__"))


def extract(args: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    bench_root, row = args
    root = clone_dir(bench_root, row["repo"])
    captured: dict[str, Any] = {}
    real_assess, real_history = risk.assess, history.file_history

    def assess(*a: Any, **kw: Any) -> risk.Assessment:
        result = real_assess(*a, **kw)
        captured["assessment"] = result
        captured["stats"] = a[1]
        return result

    def file_history(*a: Any, **kw: Any) -> dict[str, history.FileHistory]:
        result = real_history(*a, **kw)
        captured["history"] = result
        return result

    risk.assess = assess  # type: ignore[assignment]
    history.file_history = file_history  # type: ignore[assignment]
    start = time.perf_counter()
    try:
        change = read_change(root, f"{row['parent']}..{row['sha']}")
        analysis.analyze(change, _CFG)
    finally:
        risk.assess, history.file_history = real_assess, real_history
    elapsed = time.perf_counter() - start
    result: risk.Assessment = captured["assessment"]
    hist: dict[str, history.FileHistory] = captured.get("history", {})
    by_path = {f.path: f for f in change.files}
    kinds = risk.classify(change.files, captured["stats"])
    files = []
    for s in captured["stats"]:
        f = by_path[s.path]
        h = hist.get(s.old_path or s.path) or hist.get(s.path)
        files.append(
            {
                "path": s.path,
                "old_path": s.old_path,
                "status": s.status,
                "role": kinds[s.path].role if s.path in kinds else risk.file_role(s.path),
                "skip": s.skip_reason,
                "sub": list(kinds[s.path][1:]) if s.path in kinds else [0, 0],
                "la": s.lines_added,
                "ld": s.lines_removed,
                "hunks": s.hunks,
                "cd": s.complexity_delta,
                "hist": list(h) if h is not None else None,
                "sens": list(sensitive.path_categories(s.path)),
                "code": sorted({c.category for c in sensitive.code_hits(f.added_lines)}),
                "buggy": s.path in (row.get("buggy_paths") or ()),
                "chars": row["file_chars"].get(s.path, 0),
            }
        )
    return {
        "repo": row["repo"],
        "sha": row["sha"],
        "label": row["label"],
        "la": row["la"],
        "ld": row["ld"],
        "nf": row["nf"],
        "nd": row["nd"],
        "entropy": row["entropy"],
        "diff_chars": row["diff_chars"],
        "file_chars": row["file_chars"],
        "buggy_paths": row.get("buggy_paths") or [],
        "features": {ft.id: ft.value for ft in result.features},
        "score": result.score,
        "files": files,
        "secs": round(elapsed, 3),
        "project": [getattr(hist, "commits", 0), getattr(hist, "fixes", 0)],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bench-root", default=os.environ.get("BENCH_ROOT", "/tmp/tierbot-bench"))
    ap.add_argument("--split", default="dev", help="reads <bench-root>/<split>.jsonl")
    ap.add_argument("--out", required=True)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    with open(os.path.join(a.bench_root, f"{a.split}.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    start = time.perf_counter()
    with multiprocessing.Pool(a.jobs) as pool, open(a.out, "w", encoding="utf-8") as out:
        for i, rec in enumerate(pool.imap(extract, [(a.bench_root, r) for r in rows], 8)):
            out.write(json.dumps(rec) + "\n")
            if (i + 1) % 200 == 0:
                print(f"{i + 1}/{len(rows)} {time.perf_counter() - start:.0f}s", file=sys.stderr)
    print(
        f"wrote {a.out}: {len(rows)} commits in {time.perf_counter() - start:.0f}s", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
