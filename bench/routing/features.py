#!/usr/bin/env python3
"""Extract tierbot's own risk features for every commit of a routing-benchmark split.

The features come from tierbot's real pipeline (`diff.read_change` -> `analysis.analyze`, which
reads history and scores the change, then `route.pack`, which forms the candidate review units),
run on the benchmark's clones.  History is read from each commit's parent, so it sees only the
past, exactly as in the benchmark's sandboxes.

    python3 bench/routing/features.py --bench-root /tmp/tierbot-bench --out /tmp/feat.jsonl

One JSON line per commit: the split row's label, sha and file_chars, tierbot's change-level
feature values (`features`: id -> value), per-file details (role, skip reason, sizes) and the
candidate units with their own feature values and what the routing floors look at, so that
fit.py can refit weights and simulate routing without re-reading git.
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
from tierbot.analysis import risk
from tierbot.git.diff import read_change
from tierbot.routing import route
from tierbot.routing.estimate import diff_tokens

_CFG = config.default()


def clone_dir(bench_root: str, repo: str) -> str:
    return os.path.join(bench_root, "repos", repo.replace("/", "__"))


def extract(args: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    bench_root, row = args
    root = clone_dir(bench_root, row["repo"])
    start = time.perf_counter()
    change = read_change(root, f"{row['parent']}..{row['sha']}")
    an, assessment, _ = analysis.analyze(change, _CFG)
    room, groups, _ = route.pack(change, an, assessment, _CFG)
    elapsed = time.perf_counter() - start
    facts = assessment.facts
    chars = row["file_chars"]
    files = [
        {
            "path": s.path,
            "role": facts[s.path].role if s.path in facts else risk.file_role(s.path),
            "skip": s.skip_reason,
            "la": s.lines_added,
            "ld": s.lines_removed,
            "buggy": s.path in (row.get("buggy_paths") or ()),
            "chars": chars.get(s.path, 0),
        }
        for s in an.files
    ]
    units = []
    for group in groups:
        paths = [f.path for f in group]
        scored = assessment.unit(paths)
        members = [facts[p] for p in paths if p in facts]
        code = [x for x in members if x.role == "code"]
        units.append(
            {
                "paths": paths,
                "features": {ft.id: ft.value for ft in scored.features},
                "offset": risk.unit_offset(members, ROLE_OFFSETS),
                "lines": sum(x.added + x.removed for x in code),
                "fixes": sum(x.history.fixes for x in code),
                "sensitive": any(x.constructs or x.sensitive for x in code),
                "workflow": any(x.workflow for x in members),
                "tokens": diff_tokens(group),
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
        "file_chars": chars,
        "buggy_paths": row.get("buggy_paths") or [],
        "features": {ft.id: ft.value for ft in assessment.features},
        "score": assessment.score,
        "files": files,
        "units": units,
        "room": room,
        "secs": round(elapsed, 3),
    }


# The role offsets of the shipped model (set, not fitted; the same in every fold).
ROLE_OFFSETS = {
    k.removeprefix("role."): v for k, v in risk.shipped_model().weights.items() if k[:5] == "role."
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
