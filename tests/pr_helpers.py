"""A pull request world for `tierbot pr` tests: a real git checkout, the fake GitHub, an event.

`PrWorld.publish(base, head)` makes the fake serve the pull request exactly as GitHub would for
those two commits (the three-dot diff, per-file patches) and writes the Actions event file.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fake_github import FakeGitHub, Pull, PullFile
from gitrepo import commit, git

SECRET = "AKIAIOSFODNN7EXAMPLF"  # AWS key id shape: a critical rule finding, no model needed
BASE_FILES: dict[str, str | bytes] = {
    "app.py": "def main():\n    return 1\n",
    "README.md": "# demo\n",
}


def file_patches(repo: Path, base: str, head: str) -> tuple[list[PullFile], str]:
    """What GitHub's files API returns for base...head: one entry per file, hunks only."""
    diff = (
        git(repo, "-c", "core.quotePath=false", "diff", "--no-color", "-M", f"{base}...{head}")
        + "\n"
    )
    files: list[PullFile] = []
    for section in diff.split("diff --git ")[1:]:
        lines = section.split("\n")
        header = lines[0]
        status, old, new, patch_start = "modified", None, None, None
        for i, line in enumerate(lines[1:], 1):
            if line.startswith("@@"):
                patch_start = i
                break
            if line.startswith("new file mode"):
                status = "added"
            elif line.startswith("deleted file mode"):
                status = "removed"
            elif line.startswith("rename from "):
                status, old = "renamed", line[len("rename from ") :]
            elif line.startswith("rename to "):
                new = line[len("rename to ") :]
            elif line.startswith("+++ b/"):
                new = line[len("+++ b/") :]
            elif line.startswith("--- a/") and new is None:
                new = line[len("--- a/") :]
        if new is None:
            new = header.split(" b/", 1)[1]
        patch = None
        if patch_start is not None:
            patch = "\n".join(lines[patch_start:]).rstrip("\n")
        files.append(PullFile(new, status, patch, old))
    return files, diff


@dataclass
class PrWorld:
    repo: Path
    fake: FakeGitHub
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    number: int = 1
    summary_path: Path = field(init=False)
    output_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.summary_path = self.tmp / "step-summary.md"
        self.output_path = self.tmp / "github-output.txt"

    def commit(self, files: dict[str, str | bytes], message: str = "change") -> str:
        return commit(self.repo, files, message)

    def publish(
        self,
        base: str,
        head: str,
        *,
        draft: bool = False,
        event: str = "pull_request",
        base_ref: str = "main",
    ) -> Pull:
        files, diff = file_patches(self.repo, base, head)
        pr = Pull(
            self.number,
            base_sha=base,
            head_sha=head,
            base_ref=base_ref,
            draft=draft,
            files=files,
            diff=diff,
        )
        self.fake.pulls[self.number] = pr
        # The base branch's files, as the contents API serves them at the base sha.
        for name in git(self.repo, "ls-tree", "-r", "--name-only", base).splitlines():
            self.fake.contents[(base, name)] = git_bytes(self.repo, f"{base}:{name}")
        event_path = self.tmp / "event.json"
        event_path.write_text(
            json.dumps(
                {
                    "action": "synchronize",
                    "number": self.number,
                    "pull_request": self.fake.pull_json(pr),
                    "repository": self.fake.repo_json(),
                }
            )
        )
        self.env(event=event, event_path=str(event_path))
        return pr

    def env(self, *, event: str = "pull_request", event_path: str | None = None) -> None:
        mp = self.monkeypatch
        mp.setenv("GITHUB_ACTIONS", "true")
        mp.setenv("GITHUB_EVENT_NAME", event)
        if event_path:
            mp.setenv("GITHUB_EVENT_PATH", event_path)
        mp.setenv("GITHUB_API_URL", self.fake.url)
        mp.setenv("GITHUB_REPOSITORY", self.fake.full_name)
        mp.setenv("GITHUB_TOKEN", "ghs_fakeworkflowtoken0000000000000000000")
        mp.setenv("GITHUB_STEP_SUMMARY", str(self.summary_path))
        mp.setenv("GITHUB_OUTPUT", str(self.output_path))
        mp.setenv("TIERBOT_GITHUB_THROTTLE", "0")

    def run(self, **kwargs: Any) -> Result:
        from tierbot.commands import pr

        out, err = io.StringIO(), io.StringIO()
        before = len(self.fake.requests)
        self.summary_path.write_text("")
        self.output_path.write_text("")
        code = pr.main(cwd=str(kwargs.pop("cwd", self.repo)), out=out, err=err, **kwargs)
        return Result(
            code,
            out.getvalue(),
            err.getvalue(),
            self.fake.requests[before:],
            self.summary_path.read_text(),
            read_outputs(self.output_path),
        )

    def summary_comments(self) -> list[dict[str, Any]]:
        return [c for c in self.fake.issue_comments if "<!-- tierbot:summary -->" in c["body"]]


@dataclass
class Result:
    code: int
    out: str
    err: str
    requests: list[Any]
    step_summary: str
    outputs: dict[str, str]

    def calls(self, method: str, suffix: str) -> list[Any]:
        return [r for r in self.requests if r.method == method and suffix in r.path]


def read_outputs(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def git_bytes(repo: Path, obj: str) -> bytes:
    import subprocess

    return subprocess.run(("git", "show", obj), cwd=repo, check=True, capture_output=True).stdout


@pytest.fixture
def world(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    with FakeGitHub() as fake:
        yield PrWorld(repo, fake, tmp_path, monkeypatch)


def right_lines(repo: Path, base: str, head: str, path: str) -> set[int]:
    files, _ = file_patches(repo, base, head)
    for f in files:
        if f.filename == path:
            return {n for (side, n) in f.lines() if side == "RIGHT"}
    return set()


def feature(w: PrWorld, files: dict[str, str | bytes]) -> tuple[str, str]:
    """A base commit on main and a `feature` branch with `files` on top: (base, head)."""
    base = w.commit(BASE_FILES, "base")
    git(w.repo, "checkout", "-q", "-b", "feature")
    head = w.commit(files, "feature")
    return base, head
