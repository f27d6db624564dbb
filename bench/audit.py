"""`tierbot audit` of 500 commits of a real repository's history, against the loopback batch API.

    .venv/bin/python bench/audit.py                    (prints RESULT lines; exit 1 on a miss)
    .venv/bin/python bench/audit.py --repo /work/.mirror/python-attrs+attrs/repo --commits 500

The repository's git directory is cloned to a temp dir (`fetch` brings python-attrs/attrs to
/work/.mirror/python-attrs+attrs/repo).  Its last N first-parent, non-merge commits are audited:

1. plan: `tierbot audit --dry-run` in this process: the estimate at batch prices against the same
   commits' interactive estimate (target: 50% +- 1 point: the Batch API halves every price).
2. submit: `tierbot audit` in a fresh process (the SDK import included): seconds from the process
   start to the batch's create request at the loopback API, requests per commit over all rounds
   (reviews, retries, Opus verification), batches and the wall time to the report.
3. bill: what the loopback model billed for the audit (its usage at batch prices, from the
   report and the ledger) against the interactive estimate of the same commits (informational:
   it also holds the estimate's own error, bench/model_concurrency.py), and against the
   interactive bill of a sample of the same commits reviewed one by one (`tierbot review
   <sha>^!` through POST /v1/messages, same loopback model): the batch bill of those commits
   over their interactive bill (target 50% +- 10 points; caching differs a little: no cache
   priming in a batch).

The loopback "model" answers every review with 0-2 findings on the unit's added lines (a third
of them high, so cheaper tiers' findings go to Opus verification) and thinks by effort, billed
like the API.  Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from audit_helpers import confirms_every_finding
from fake_anthropic import Batch, Recorded, Reply, answer, fake_anthropic, finding
from model_helpers import user_text

DEFAULT_REPO = "/work/.mirror/python-attrs+attrs/repo"
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
_HEADER = re.compile(r"^=== (.+?) \((?:added|modified|renamed|copied)", re.M)
_ADDED = re.compile(r"^\s*(\d+) \+ ", re.M)
_NONCE = re.compile(r"UNTRUSTED-[0-9a-f]+")


def model(req: Recorded) -> Reply:
    """0-2 findings on the unit's added lines, decided by the unit's text (deterministic)."""
    verdict = confirms_every_finding(req)
    if verdict is not None:
        return verdict
    text = user_text(req)
    # The fence nonce differs per review: the same unit gets the same answer however it is sent.
    key = _NONCE.sub("UNTRUSTED-", text)
    digest = int(hashlib.sha256(key.encode("utf-8", "replace")).hexdigest(), 16)
    found = []
    for head in list(_HEADER.finditer(text))[: digest % 3]:
        line = _ADDED.search(text, head.end())
        if line is not None:
            severity = ("high", "medium", "low")[(digest >> 8) % 3]
            found.append(finding(head.group(1), int(line.group(1)), "a problem", severity=severity))
    return answer(found)


def cli(args: list[str], cwd: Path) -> tuple[int, str, str]:
    from tierbot.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    finally:
        os.chdir(here)
    return code, out.getvalue(), err.getvalue()


def clone(source: str, into: Path) -> Path:
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", source, str(into)],
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    return into


def range_of(repo: Path, n: int) -> tuple[str, list[str]]:
    shas = subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "log",
            "--first-parent",
            "--no-merges",
            "--format=%H",
            f"--max-count={n + 1}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    commits = list(reversed(shas[:n]))
    return f"{shas[n]}..HEAD", commits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=DEFAULT_REPO, help="a git directory or repository to clone")
    ap.add_argument("--commits", type=int, default=500)
    ap.add_argument("--sample", type=int, default=40, help="commits reviewed one by one too")
    args = ap.parse_args()
    if not Path(args.repo).exists():
        print(f"no repository at {args.repo}: fetch python-attrs/attrs first", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="tierbot-bench-audit-"))
    repo = clone(args.repo, tmp / "repo")
    spec, commits = range_of(repo, args.commits)
    ok = True
    with fake_anthropic() as fake:
        fake.responder = model
        os.environ.update(
            {
                "ANTHROPIC_BASE_URL": fake.url,
                "ANTHROPIC_API_KEY": "bench-key",
                "TIERBOT_HOME": str(tmp / "home"),
                "TIERBOT_BATCH_POLL_S": "0.2",
            }
        )
        flags = ["--budget", "1000", "--yes", "--max-commits", str(args.commits)]

        # 1. the plan
        started = time.monotonic()
        code, out, err = cli(["audit", spec, "--dry-run", "--format", "json", *flags], repo)
        plan_s = time.monotonic() - started
        assert code == 0, err
        planned = json.loads(out)
        e = planned["estimate"]
        ratio = e["cost_usd"] / e["interactive_cost_usd"]
        good = abs(ratio - 0.5) <= 0.01
        ok &= good
        print(
            f"RESULT commits={len(planned['commits'])} review_units={e['requests']} "
            f"plan_s={plan_s:.1f} ({plan_s / len(commits):.3f} s/commit)"
        )
        print(
            f"RESULT estimate_batch_usd={e['cost_usd']:.4f} "
            f"estimate_interactive_usd={e['interactive_cost_usd']:.4f} "
            f"batch_over_interactive={ratio:.3f} target=0.50+-0.01 {'ok' if good else 'MISS'}"
        )

        # 2. submit, in a fresh process
        created: list[float] = []

        def hook(event: str, batch: Batch | None) -> bool:
            if event == "created":
                created.append(time.monotonic())
            return False

        fake.batch_hook = hook
        report = tmp / "audit.json"
        t0 = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "tierbot",
                "audit",
                spec,
                "--format",
                "json",
                "-o",
                str(report),
                *flags,
            ],
            cwd=repo,
            capture_output=True,
            text=True,
            env=dict(os.environ),
        )
        wall = time.monotonic() - t0
        assert proc.returncode in (0, 1), proc.stderr
        doc = json.loads(report.read_text())
        requests = len(fake.batch_requests())
        sizes = ", ".join(str(len(b.requests)) for b in fake.batches.values())
        print(
            f"RESULT submit_s={created[0] - t0:.1f} (process start to the create request; "
            f"{(created[0] - t0) / len(commits) * 1000:.0f} ms/commit) wall_s={wall:.1f} "
            f"batches={len(fake.batches)} ({sizes} requests) "
            f"requests_per_commit={requests / len(commits):.2f} status={doc['status']}"
        )
        findings = sum(doc["findings"].values())
        print(
            f"RESULT findings={findings} commits_with_findings="
            f"{sum(1 for c in doc['commits'] if c['review']['findings'])}"
        )

        # 3. the bill
        billed = doc["usage"]["cost_usd"]
        print(
            f"RESULT billed_batch_usd={billed:.4f} over_interactive_estimate="
            f"{billed / e['interactive_cost_usd']:.3f} (informational: also the estimate's own "
            f"error on an empty ledger) all_opus_batch_usd={doc['usage']['all_opus_cost_usd']:.4f}"
        )
        per_commit = {c["sha"]: c["review"]["usage"]["cost_usd"] for c in doc["commits"]}
        sample = commits[:: max(1, len(commits) // args.sample)][: args.sample]
        os.environ["TIERBOT_HOME"] = str(tmp / "home-interactive")
        interactive = 0.0
        for sha in sample:
            code, out, err = cli(
                ["review", f"{sha}^!", "--format", "json", "--budget", "100"], repo
            )
            assert code in (0, 1), err
            interactive += json.loads(out)["usage"]["cost_usd"]

        batch_part = sum(per_commit[s] for s in sample)
        share = batch_part / interactive if interactive else float("nan")
        good = abs(share - 0.5) <= 0.1
        ok &= good
        print(
            f"RESULT sample={len(sample)} batch_billed_usd={batch_part:.4f} "
            f"interactive_billed_usd={interactive:.4f} batch_over_interactive={share:.3f} "
            f"target=0.50+-0.10 {'ok' if good else 'MISS'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
