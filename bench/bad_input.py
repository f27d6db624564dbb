"""Every hostile input of issue #11, run as a real `tierbot` process: exit code, lines, time.

Config files (an alias bomb, deep nesting, /dev/zero, /dev/urandom, 50 MB, non-finite numbers,
duplicate keys, inverted thresholds, escape sequences), bad option values, and `tierbot pr`
against the loopback GitHub of the tests answering "wait an hour" (a secondary rate limit with
`Retry-After: 3600`, an exhausted primary limit) or storing a write and answering 502.

The contract: bad input exits 2 with one short line, never 3, never a traceback, at once; GitHub
asking for an hour costs a capped wait, never the hour.  Times are reported, not asserted.

Run: python bench/bad_input.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fake_github import FakeGitHub, Pull  # the tests' loopback GitHub
from hostile import BOMB
from pr_helpers import file_patches

TIERBOT = [sys.executable, "-m", "tierbot"]
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "GITHUB_"))},
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@x",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@x",
}
CONFIGS: dict[str, str | None] = {
    "alias bomb (1 KB, 9^9 values)": BOMB,
    "nested 100,000 deep": "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "nested 40 deep (block)": "".join("  " * i + f"k{i}:\n" for i in range(40)),
    "/dev/zero": None,
    "/dev/urandom": None,
    "50 MB file": "",
    "weights: {base: .inf}": "routing:\n  weights: {base: .inf}\n",
    "thresholds.sonnet: .nan": "routing:\n  thresholds: {sonnet: .nan}\n",
    "budget .nan": "budget:\n  max_usd_per_review: .nan\n",
    "duplicate key": "fail_on: high\nfail_on: none\n",
    "inverted thresholds": "routing:\n  thresholds: {sonnet: 0.8, opus: 0.5}\n",
    "escape sequence value": 'fail_on: "\\e]52;c;x\\a\\e[2J"\n',
    "10 KB value": "fail_on: " + "x" * 10_000 + "\n",
    'ignore: ["[z-a]"]': 'ignore: ["[z-a]"]\n',
}


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [*TIERBOT, *argv], cwd=cwd, env=env, capture_output=True, timeout=600, check=False
    )
    return proc.returncode, proc.stderr.decode("utf-8", "replace"), time.monotonic() - started


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(("git", *args), cwd=repo, env=ENV, capture_output=True, check=True)
    return out.stdout.decode().strip()


def report(case: str, code: int, err: str, seconds: float) -> None:
    lines = err.strip().splitlines()
    traceback = "Traceback" in err
    first = lines[0] if lines else ""
    shown = first if len(first) <= 90 else first[:89] + "…"
    print(
        f"{case:<34} exit {code}  {len(lines)} line(s), {len(err):>4} chars"
        f"{'  TRACEBACK' if traceback else ''}  {seconds:6.2f} s  {shown}"
    )


def configs(repo: Path, tmp: Path) -> None:
    print("== tierbot review HEAD~1 --dry-run --config FILE")
    for case, text in CONFIGS.items():
        if text is None:
            path = case
        else:
            path = str(tmp / "case.yml")
            if case == "50 MB file":
                with open(path, "w") as f:
                    f.write("ignore:\n" + "  - 'src/**/*.py'\n" * (50 * 1024 * 1024 // 16))
            else:
                Path(path).write_text(text)
        report(case, *run(["review", "HEAD~1", "--dry-run", "--config", path], repo, ENV))


def options(repo: Path, tmp: Path) -> None:
    print("== options")
    unwritable = "/proc/version"
    cases = {
        "--budget nan": ["review", "HEAD~1", "--budget", "nan"],
        "--budget -1": ["review", "HEAD~1", "--budget", "-1"],
        f"--output {unwritable}": ["review", "HEAD~1", "--dry-run", "-o", unwritable],
        "--format with escapes": ["review", "HEAD~1", "--format", "x\x1b[31m" + "y" * 2000],
        "revision with escapes": ["review", "nope\x1b[2J"],
    }
    for case, argv in cases.items():
        report(case, *run(argv, repo, ENV))
    link = repo / ".tierbot.yml"
    target = tmp / "victim"
    target.write_text("precious\n")
    link.symlink_to(target)
    report("init --force through a symlink", *run(["init", "--force"], repo, ENV))
    link.unlink()
    for name, value in (("empty", ""), ("root", "/")):
        env = {**ENV, "HOME": value, "TIERBOT_HOME": value, "XDG_CACHE_HOME": value}
        code, err, seconds = run(["costs"], repo, env)
        report(f"costs with HOME etc. {name}", code, err, seconds)


def github(repo: Path, tmp: Path) -> None:
    print("== tierbot pr (loopback GitHub, token ghs_..., fail-on high)")
    base = git(repo, "rev-parse", "HEAD~1")
    head = git(repo, "rev-parse", "HEAD")
    files, diff = file_patches(repo, base, head)
    cases = {
        "secondary limit, Retry-After 3600": ("secondary", ("GET", "POST", "PATCH")),
        "primary limit exhausted (reset 1 h)": ("primary", ("GET", "POST", "PATCH")),
        "429, Retry-After 3600, on writes": ("secondary429", ("POST", "PATCH")),
        "writes stored, then 502": ("stored-502", ()),
        "event head sha --upload-pack=...": ("inject", ()),
    }
    for case, (kind, methods) in cases.items():
        with FakeGitHub() as fake:
            fake.pulls[1] = Pull(1, base, head, files=files, diff=diff)
            event = fake.pull_json(fake.pulls[1])
            if kind == "inject":
                event["head"]["sha"] = f"--upload-pack=touch {tmp / 'pwned'}"
            elif kind == "stored-502":
                fake.store_then_fail = 10
            else:
                fake.rate_limit(kind, methods=methods, retry_after=3600, count=1000)
            path = tmp / "event.json"
            path.write_text(json.dumps({"pull_request": event, "repository": fake.repo_json()}))
            env = {
                **ENV,
                "GITHUB_EVENT_NAME": "pull_request",
                "GITHUB_EVENT_PATH": str(path),
                "GITHUB_API_URL": fake.url,
                "GITHUB_TOKEN": "ghs_" + "0" * 36,
                "TIERBOT_HOME": str(tmp / "home"),
            }
            code, err, seconds = run(["pr", "--fail-on", "high"], repo, env)
            posts = [r for r in fake.requests if r.method in ("POST", "PATCH")]
            last = err.strip().splitlines()[-1:] or [""]
            extra = f" [{len(posts)} writes sent, {len(fake.reviews)} reviews stored]"
            report(case, code, err, seconds)
            print(f"{'':<34} {extra.strip()}; last line: {last[0][:100]}")
    print(f"{'':<34} injected command ran: {(tmp / 'pwned').exists()}")


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        repo = tmp / "repo"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        (repo / "app.py").write_text("def f():\n    return 1\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "base")
        (repo / "keys.py").write_text("K = 'AKIAIOSFODNN7EXAMPLF'\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "a secret")
        configs(repo, tmp)
        options(repo, tmp)
        github(repo, tmp)


if __name__ == "__main__":
    main()
