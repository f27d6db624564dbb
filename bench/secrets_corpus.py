"""False blocks on real history (issue 10): the last N non-merge commits of local clones, each
through `tierbot review <sha>~1..<sha> --dry-run --format json`, and every blocking finding listed
with its line so that it can be classified by hand.

Run:  python bench/secrets_corpus.py /tmp/corpus/yarl /tmp/corpus/werkzeug ... [--commits 300]
      [--in-process] [--json results.json]   (the JSON lists blocking and visible secret findings)

Clones come from `git clone <mirror> /tmp/corpus/<name>`; nothing here touches the network.
`--in-process` calls the same command in this interpreter (same code path after argument
parsing, much faster); without it every commit is a fresh `python -m tierbot` process.
Prints one RESULT line per repository, a total, and the secret findings by severity (the
non-blocking ones are what a reviewer sees as noise); blocking = at or above `high` (the default
`--fail-on` of `tierbot review`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BLOCKING = ("high", "critical")


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(("git", *args), cwd=repo, check=True, capture_output=True)
    return out.stdout.decode("utf-8", "replace")


def commits(repo: Path, n: int) -> list[str]:
    """The newest `n` non-merge commits that have a parent (a root commit has no `<sha>~1`)."""
    shas = git(repo, "rev-list", "--no-merges", f"--max-count={n + 1}", "HEAD").split()
    roots = set(git(repo, "rev-list", "--max-parents=0", "HEAD").split())
    return [s for s in shas if s not in roots][:n]


def review_json(repo: Path, sha: str, in_process: bool) -> tuple[int, dict]:
    spec = f"{sha}~1..{sha}"
    if in_process:
        from tierbot.cli import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            cwd = os.getcwd()
            os.chdir(repo)
            try:
                code = main(["review", spec, "--dry-run", "--format", "json"])
            finally:
                os.chdir(cwd)
        text = out.getvalue()
    else:
        proc = subprocess.run(
            [sys.executable, "-m", "tierbot", "review", spec, "--dry-run", "--format", "json"],
            cwd=repo,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        code, text = proc.returncode, proc.stdout
        if code not in (0, 1):
            print(f"  {sha[:10]}: exit {code}: {proc.stderr.strip()[:200]}", file=sys.stderr)
    return code, (json.loads(text) if text.strip() else {})


def line_text(repo: Path, sha: str, path: str, line: int | None) -> str:
    if not line:
        return ""
    try:
        content = git(repo, "show", f"{sha}:{path}").splitlines()
    except subprocess.CalledProcessError:
        return ""
    return content[line - 1].strip()[:160] if 0 < line <= len(content) else ""


def _where(repo: Path, sha: str, f: dict) -> dict:
    return {
        "path": f["path"],
        "line": f["line"],
        "severity": f["severity"],
        "category": f["category"],
        "title": f["title"],
        "text": line_text(repo, sha, f["path"], f["line"]),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("repos", nargs="+", type=Path)
    ap.add_argument("--commits", type=int, default=300)
    ap.add_argument("--in-process", action="store_true")
    ap.add_argument("--json", type=Path, help="write every blocking finding here")
    args = ap.parse_args()
    for var in [v for v in os.environ if v.startswith(("ANTHROPIC_", "GITHUB_", "TIERBOT_"))]:
        del os.environ[var]
    os.environ["TIERBOT_HOME"] = tempfile.mkdtemp(prefix="tierbot-corpus-")

    total_commits = total_blocked = 0
    errors = 0
    secret_counts: dict[str, int] = {}
    visible: list[dict] = []  # non-blocking secret findings, for a look at the noise
    report: list[dict] = []
    started = time.monotonic()
    for repo in args.repos:
        shas = commits(repo, args.commits)
        blocked = 0
        for sha in shas:
            _, data = review_json(repo, sha, args.in_process)
            if not data:
                errors += 1
                continue
            for f in data.get("findings", []):
                if f["category"] == "secret":
                    secret_counts[f["severity"]] = secret_counts.get(f["severity"], 0) + 1
                    if f["severity"] not in BLOCKING:
                        visible.append({"repo": repo.name, "sha": sha, **_where(repo, sha, f)})
            hits = [f for f in data.get("findings", []) if f["severity"] in BLOCKING]
            if hits:
                blocked += 1
            for f in hits:
                row = {"repo": repo.name, "sha": sha, **_where(repo, sha, f)}
                report.append(row)
                print(
                    f"  {repo.name} {sha[:10]} {f['path']}:{f['line']} {f['severity']}"
                    f" {f['title']} | {row['text']}"
                )
        total_commits += len(shas)
        total_blocked += blocked
        print(f"RESULT {repo.name}: {len(shas)} commits, {blocked} with a blocking finding")
    per_k = 1000 * total_blocked / total_commits if total_commits else 0.0
    print(
        f"RESULT total: {total_commits} commits, {total_blocked} with a blocking finding "
        f"({per_k:.2f} per 1,000), {len(report)} blocking findings, {errors} errors, "
        f"{time.monotonic() - started:.0f} s"
    )
    print(
        "RESULT secret findings by severity: "
        + ", ".join(f"{k} {v}" for k, v in sorted(secret_counts.items()))
    )
    if args.json:
        args.json.write_text(json.dumps({"blocking": report, "visible": visible}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
