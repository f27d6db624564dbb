"""Speed and memory of the offline path (issue 2 targets).

1. `tierbot review HEAD~1 --dry-run --format json` on a one-file change, cold process: < 0.5 s,
   and neither `anthropic` nor `github` imported.
2. A 50,000-changed-line diff over 250 files: analysis < 3 x `git diff` + 0.5 s, peak memory
   < 250 MB, with the time split into git, parse, complexity, history and the rest.

Run: python bench/speed.py            (prints one RESULT line per target; exit 1 if one fails)
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@x",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@x",
}
ENV.pop("ANTHROPIC_API_KEY", None)


def git(repo: Path, *args: str) -> None:
    subprocess.run(("git", *args), cwd=repo, check=True, capture_output=True, env=ENV)


def make_repo(root: Path, files: int, funcs: int, commits: int = 30) -> Path:
    repo = root / f"repo{files}"
    repo.mkdir()
    git(repo, "init", "-q")
    for c in range(commits):  # some history for the history signals to read
        for i in range(0, files, 7):
            p = repo / f"pkg{i % 10}" / f"mod{i}.py"
            p.parent.mkdir(exist_ok=True)
            p.write_text(f"VERSION = {c}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"fix bug {c}" if c % 3 == 0 else f"change {c}")
    return repo


def module(i: int, funcs: int, variant: int) -> str:
    out = [f"VERSION = {variant}\n"]
    for f in range(funcs):
        out.append(
            f"def f{f}(x, y):\n"
            f"    if x > {f + variant}:\n"
            f"        return x * y + {i} + {variant}\n"
            f"    for k in range(y):\n"
            f"        x += k * {variant + 1}\n"
            f"    return x\n\n"
        )
    return "".join(out)


def dry_run(repo: Path, *extra: str) -> tuple[float, int, str]:
    """One cold `tierbot review HEAD~1 --dry-run --format json`; `extra` goes to python itself."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(
        (
            sys.executable,
            *extra,
            "-m",
            "tierbot",
            "review",
            "HEAD~1",
            "--dry-run",
            "--format",
            "json",
        ),
        cwd=repo,
        capture_output=True,
        text=True,
        env=ENV,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"tierbot failed: {proc.stderr[-2000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak_kb, before), proc.stderr


def one_file(root: Path) -> bool:
    repo = make_repo(root, files=14, funcs=5, commits=5)
    (repo / "pkg0" / "mod0.py").write_text(module(0, 20, 1))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one file")
    # importtime output is large; time without it, check imports with it.
    _, _, imports = dry_run(repo, "-X", "importtime")
    loaded = {line.rsplit("|", 1)[-1].strip() for line in imports.splitlines() if "|" in line}
    heavy = sorted(m for m in loaded if m.split(".")[0] in ("anthropic", "github", "httpx2"))
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        subprocess.run(
            (sys.executable, "-m", "tierbot", "review", "HEAD~1", "--dry-run", "--format", "json"),
            cwd=repo,
            capture_output=True,
            check=True,
            env=ENV,
        )
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    ok = med < 0.5 and not heavy
    print(
        f"one-file dry run: median {med:.3f} s, min {min(times):.3f} s over 7 cold processes;"
        f" heavy imports: {heavy or 'none'}"
    )
    print(f"RESULT one_file_dry_run_s={med:.3f} target<0.5 {'ok' if ok else 'FAIL'}")
    return ok


def hook_skip(root: Path) -> bool:
    """`tierbot hook` on a docs- and lockfile-only staged change: routes to skip, no model call."""
    (root / "hook").mkdir()
    repo = make_repo(root / "hook", files=14, funcs=5, commits=5)
    (repo / "README.md").write_text("# docs\n\nchanged words\n")
    (repo / "poetry.lock").write_text("lock = 2\n" * 500)
    git(repo, "add", "-A")
    # A key is set on purpose: a skipped change must not even load the SDK.
    env = {**ENV, "ANTHROPIC_API_KEY": "unused", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        proc = subprocess.run(
            (sys.executable, "-m", "tierbot", "hook"),
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
        )
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0 or "[skip]" not in proc.stdout:
            raise SystemExit(f"hook did not skip: {proc.stdout} {proc.stderr}")
    med = statistics.median(times)
    print(f"hook on a docs+lockfile change: median {med:.3f} s, min {min(times):.3f} s over 7 runs")
    print(f"RESULT hook_skip_s={med:.3f} target<0.5 {'ok' if med < 0.5 else 'FAIL'}")
    return med < 0.5


def large(root: Path) -> bool:
    files, funcs = 250, 33  # 250 files x 33 functions x 3 lines x 2 sides ~ 50,000 lines
    repo = make_repo(root, files=files, funcs=0, commits=30)
    for i in range(files):
        p = repo / f"pkg{i % 10}" / f"mod{i}.py"
        p.parent.mkdir(exist_ok=True)
        p.write_text(module(i, funcs, 0))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    for i in range(files):
        (repo / f"pkg{i % 10}" / f"mod{i}.py").write_text(module(i, funcs, 1) + "\n# end\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "big change")

    git_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run(
            ("git", "diff", "HEAD~1", "HEAD"), cwd=repo, capture_output=True, check=True
        ).stdout
        git_times.append(time.perf_counter() - t0)
    git_s = statistics.median(git_times)
    changed = sum(1 for line in out.splitlines() if line[:1] in (b"+", b"-")) - 2 * files

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tierbot import config
    from tierbot.analysis import complexity, risk
    from tierbot.analysis.analyze import analyze
    from tierbot.git import diff, history
    from tierbot.git import repository as gitio

    cfg = config.default()
    t = time.perf_counter()
    _, args = gitio.parse_range(str(repo), "HEAD~1", False)
    raw = gitio.run(str(repo), "diff", *gitio.DIFF_OPTS, "--raw", "--numstat", "-z", *args)
    text = gitio.run(str(repo), "diff", *gitio.DIFF_OPTS, *args)
    split = {"git": time.perf_counter() - t}
    t = time.perf_counter()
    diff.parse_raw(raw)
    diff.parse(text.decode("utf-8", "surrogateescape"))
    split["parse"] = time.perf_counter() - t
    change = diff.read_change(str(repo), "HEAD~1")
    t = time.perf_counter()
    complexity.deltas(change.root, change.range, change.files)
    split["complexity"] = time.perf_counter() - t
    t = time.perf_counter()
    hist = history.file_history(
        change.root, change.range.base, [f.path for f in change.files], cfg.routing.history_commits
    )
    split["history"] = time.perf_counter() - t
    t = time.perf_counter()
    analysis, _, _ = analyze(change, cfg)
    whole_analysis = time.perf_counter() - t
    t = time.perf_counter()
    risk.assess(change.files, analysis.files, hist, cfg)
    split["risk"] = time.perf_counter() - t

    runs = [dry_run(repo) for _ in range(3)]
    elapsed = statistics.median(r[0] for r in runs)
    peak_kb = max(r[1] for r in runs)
    bound = 3 * git_s + 0.5
    peak_mb = peak_kb / 1024
    ok = elapsed < bound and peak_mb < 250
    parts = ", ".join(f"{k} {v:.3f}" for k, v in split.items())
    print(
        f"large diff: {changed} changed lines over {len(change.files)} files; git diff"
        f" {git_s:.3f} s; whole `tierbot review --dry-run` {elapsed:.3f} s (in-process analysis"
        f" {whole_analysis:.3f} s: {parts}); peak RSS {peak_mb:.0f} MB"
    )
    print(
        f"RESULT large_diff_s={elapsed:.3f} target<{bound:.3f} peak_mb={peak_mb:.0f} target<250"
        f" {'ok' if ok else 'FAIL'}"
    )
    return ok


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        ok = one_file(Path(tmp))
        ok = hook_skip(Path(tmp)) and ok
        ok = large(Path(tmp)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
