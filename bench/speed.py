"""Speed and memory of the offline path, compared side by side in one run.

1. `tierbot review HEAD~1 --dry-run --format json` on a one-file change, cold process (target:
   median <= 0.5 s), next to `python -c pass` + `git diff HEAD~1` in the same run, and
   neither `anthropic` nor `github` imported.
2. `tierbot hook` on a docs- and lockfile-only staged change (skip path; target <= 0.5 s).
3. A 50,000-changed-line diff over 250 files, end to end (target <= 2.0 s, <= 250 MB peak), with
   the time split into its stages, next to `git diff` for the same range.
4. With `--repo PATH --range A..B`: the same end-to-end measure on a real repository's range.

Wall-clock targets are reported, not asserted: a loaded machine changes seconds, not ratios, so
each line also gives the ratio to the baseline measured moments before.

Run: python bench/speed.py [--repo PATH --range A..B]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@x",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@x",
}
ENV.pop("ANTHROPIC_API_KEY", None)
# An installed package has its bytecode compiled; a sandbox that forbids writing it would measure
# compiling tierbot's source on every run instead (about 70 ms).
ENV.pop("PYTHONDONTWRITEBYTECODE", None)


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(("git", *args), cwd=repo, check=True, capture_output=True, env=ENV).stdout


def make_repo(root: Path, files: int, commits: int = 30) -> Path:
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


def timed(run: Callable[[], object], times: int) -> list[float]:
    out = []
    for _ in range(times):
        t0 = time.perf_counter()
        run()
        out.append(time.perf_counter() - t0)
    return out


def proc(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, env=env or ENV)
    if done.returncode not in (0, 1):  # 1: findings at or above --fail-on, a finished review
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.decode()[-2000:]}")


def tierbot(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "tierbot", *args)


def peak_mb(cmd: Sequence[str], cwd: Path) -> float:
    """Peak RSS of one run of `cmd`, from a fresh measuring process."""
    code = (
        "import resource, subprocess, sys;"
        "subprocess.run(sys.argv[1:], capture_output=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        (sys.executable, "-c", code, *cmd), cwd=cwd, capture_output=True, text=True, env=ENV
    )
    return int(out.stdout.strip() or 0) / 1024


def one_file(root: Path) -> None:
    repo = make_repo(root, files=14, commits=5)
    (repo / "pkg0" / "mod0.py").write_text(module(0, 20, 1))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one file")
    imports = subprocess.run(
        (sys.executable, "-X", "importtime", *tierbot("review", "HEAD~1", "--dry-run")[1:]),
        cwd=repo,
        capture_output=True,
        text=True,
        env=ENV,
    ).stderr
    loaded = {line.rsplit("|", 1)[-1].strip() for line in imports.splitlines() if "|" in line}
    heavy = sorted(m for m in loaded if m.split(".")[0] in ("anthropic", "github", "httpx2"))
    runs = 9
    base = statistics.median(
        timed(lambda: proc((sys.executable, "-c", "pass"), repo), runs)
    ) + statistics.median(timed(lambda: proc(("git", "diff", "HEAD~1"), repo), runs))
    ours = timed(
        lambda: proc(tierbot("review", "HEAD~1", "--dry-run", "--format", "json"), repo), runs
    )
    med = statistics.median(ours)
    print(
        f"one-file dry run: median {med:.3f} s (min {min(ours):.3f}) over {runs} cold processes;"
        f" python -c pass + git diff: {base:.3f} s; ratio {med / base:.1f}x;"
        f" heavy imports: {heavy or 'none'}"
    )
    print(
        f"RESULT one_file_dry_run_s={med:.3f} target<=0.5 ratio={med / base:.1f}"
        f" {'ok' if med <= 0.5 and not heavy else 'over'}"
    )


def hook_skip(root: Path) -> None:
    """`tierbot hook` on a docs- and lockfile-only staged change: routes to skip, no model call."""
    (root / "hook").mkdir()
    repo = make_repo(root / "hook", files=14, commits=5)
    (repo / "README.md").write_text("# docs\n\nchanged words\n")
    (repo / "poetry.lock").write_text("lock = 2\n" * 500)
    git(repo, "add", "-A")
    # A key is set on purpose: a skipped change must not even load the SDK.
    env = {**ENV, "ANTHROPIC_API_KEY": "unused", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    times = timed(lambda: proc(tierbot("hook"), repo, env), 7)
    med = statistics.median(times)
    base = statistics.median(timed(lambda: proc((sys.executable, "-c", "pass"), repo), 7))
    print(
        f"hook on a docs+lockfile change: median {med:.3f} s over 7 runs ({med / base:.1f}x"
        " python -c pass)"
    )
    print(f"RESULT hook_skip_s={med:.3f} target<=0.5 {'ok' if med <= 0.5 else 'over'}")


def stages(repo: Path, spec: str) -> dict[str, float]:
    """Where the time of one review goes, stage by stage, in this process."""
    sys.path.insert(0, str(ROOT))
    from tierbot import config
    from tierbot.analysis import complexity, risk, sides
    from tierbot.analysis.analyze import analyze
    from tierbot.git import diff, history, repository
    from tierbot.reporters import render
    from tierbot.review import rules
    from tierbot.routing.estimate import estimate
    from tierbot.routing.route import plan

    cfg = config.default()
    split: dict[str, float] = {}
    t = time.perf_counter()
    r = repository.discover(str(repo))
    _, args = r.parse_range([spec], False)
    text = r.run("diff", *repository.PATCH_OPTS, *args)
    split["git diff (patch)"] = time.perf_counter() - t
    t = time.perf_counter()
    diff._patch_set(text.decode("utf-8", "surrogateescape"))
    split["unidiff parse"] = time.perf_counter() - t
    t = time.perf_counter()
    change = diff.read_change(str(repo), spec)
    split["read_change (git + parse)"] = time.perf_counter() - t
    t = time.perf_counter()
    texts = sides.read(change.root, change.range, change.files)
    split["file sides"] = time.perf_counter() - t
    t = time.perf_counter()
    complexity.deltas(change.files, texts)
    split["complexity"] = time.perf_counter() - t
    t = time.perf_counter()
    hist = history.file_history(
        change.root, change.range.base, [f.path for f in change.files], cfg.routing.history_commits
    )
    split["history"] = time.perf_counter() - t
    analysis, assessment, _ = analyze(change, cfg)
    t = time.perf_counter()
    risk.assess(change.files, analysis.files, hist, cfg, texts)
    split["risk"] = time.perf_counter() - t
    t = time.perf_counter()
    rules.check(change.files, cfg)
    split["rules"] = time.perf_counter() - t
    t = time.perf_counter()
    route = plan(change, analysis, assessment, cfg)
    estimate(change, route, cfg)
    split["route + estimate"] = time.perf_counter() - t
    from tierbot.pipeline import Options, run_review

    result = run_review(change, cfg, Options(dry_run=True))
    t = time.perf_counter()
    render("json", result)
    split["json"] = time.perf_counter() - t
    return split


def end_to_end(repo: Path, spec: str, label: str, target: float | None) -> None:
    out = git(repo, "diff", spec)
    changed = sum(1 for line in out.splitlines() if line[:1] in (b"+", b"-"))
    git_s = statistics.median(timed(lambda: proc(("git", "diff", spec), repo), 3))
    cmd = tierbot("review", spec, "--dry-run", "--format", "json")
    runs = timed(lambda: proc(cmd, repo), 3)
    med = statistics.median(runs)
    mb = peak_mb(cmd, repo)
    split = stages(repo, spec)
    parts = ", ".join(f"{k} {v:.3f}" for k, v in split.items())
    print(
        f"{label}: ~{changed} changed lines; git diff {git_s:.3f} s; whole `tierbot review"
        f" --dry-run` {med:.3f} s ({med / git_s:.1f}x git diff); peak RSS {mb:.0f} MB; in-process"
        f" split: {parts}"
    )
    verdict = "" if target is None else (" ok" if med <= target and mb <= 250 else " over")
    print(
        f"RESULT {label.replace(' ', '_')}_s={med:.3f}"
        + (f" target<={target}" if target is not None else "")
        + f" ratio_git={med / git_s:.1f} peak_mb={mb:.0f} target<=250{verdict}"
    )


def large(root: Path) -> None:
    files, funcs = 250, 33  # 250 files x 33 functions x 3 lines x 2 sides ~ 50,000 lines
    repo = make_repo(root, files=files, commits=30)
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
    end_to_end(repo, "HEAD~1..HEAD", "large synthetic diff", 2.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", help="a real repository to measure as well")
    parser.add_argument("--range", help="its range, e.g. v1.0..v1.1")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        one_file(Path(tmp))
        hook_skip(Path(tmp))
        large(Path(tmp))
    if args.repo and args.range:
        end_to_end(Path(args.repo), args.range, "real range", 2.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
