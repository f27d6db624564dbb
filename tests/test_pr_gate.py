"""`tierbot pr` as a merge gate that holds: bad events, no checkout, pushes, outages, forgeries.

Real git checkouts, the real PyGithub, and the loopback fake GitHub made to misbehave on cue.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitrepo import git
from pr_helpers import SECRET, PrWorld, world

from tierbot.cli import main

__all__ = ["world"]  # the fixture

BASE_FILES: dict[str, str | bytes] = {
    "app.py": "def main():\n    return 1\n",
    "README.md": "# demo\n",
}


def feature(w: PrWorld, files: dict[str, str | bytes]) -> tuple[str, str]:
    base = w.commit(BASE_FILES, "base")
    git(w.repo, "checkout", "-q", "-b", "feature")
    head = w.commit(files, "feature")
    return base, head


def cli(w: PrWorld, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    w.summary_path.write_text("")
    w.output_path.write_text("")
    code = main(["pr", *argv])
    return code, capsys.readouterr().err


# --- bad input ------------------------------------------------------------------------------


def test_pr_by_number_works_outside_any_git_checkout(
    world: PrWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = feature(world, {"a.py": f"A = '{SECRET}'\n"})
    world.publish(base, head)
    nowhere = tmp_path / "not-a-checkout"
    nowhere.mkdir()
    world.monkeypatch.delenv("GITHUB_EVENT_PATH")
    world.monkeypatch.chdir(nowhere)
    code, err = cli(world, capsys, "--repo", world.fake.full_name, "--number", "1")
    assert code == 0, err
    assert "internal error" not in err
    [review] = [r for r in world.fake.requests if r.method == "POST" and "/reviews" in r.path]
    assert [c["path"] for c in review.body["comments"]] == ["a.py"]
    [summary] = world.summary_comments()
    assert "no local checkout" in summary["body"]


@pytest.mark.parametrize(
    ("side", "value"),
    [
        ("head", "--upload-pack=touch {marker}"),
        ("base", "--upload-pack=touch {marker}"),
        ("head", "HEAD"),
        ("head", "a" * 39),
        ("head", 12345),
    ],
)
def test_event_shas_are_refused_before_any_git_call(
    world: PrWorld,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    side: str,
    value: object,
) -> None:
    base, head = feature(world, {"a.py": "x = 1\n"})
    world.publish(base, head)
    marker = tmp_path / "pwned"
    event_path = tmp_path / "event.json"
    event = json.loads(event_path.read_text())
    event["pull_request"][side]["sha"] = (
        value.format(marker=marker) if isinstance(value, str) else value
    )
    event_path.write_text(json.dumps(event))
    # A checkout lacking the commits, with an origin to fetch them from, is what makes tierbot
    # run `git fetch`: where an unchecked `--upload-pack=...` would run a command.
    git(tmp_path, "clone", "-q", "--bare", str(world.repo), str(tmp_path / "origin.git"))
    git(world.repo, "remote", "add", "origin", str(tmp_path / "origin.git"))
    git(world.repo, "checkout", "-q", "--orphan", "empty")
    git(world.repo, "rm", "-rq", "--cached", ".")
    git(world.repo, "branch", "-D", "feature")
    git(world.repo, "reflog", "expire", "--expire=now", "--all")
    git(world.repo, "gc", "-q", "--prune=now")
    world.monkeypatch.chdir(world.repo)
    code, err = cli(world, capsys)
    assert code == 2, err
    assert f"the pull request's {side} sha is not a commit id" in err
    assert len(err.strip().splitlines()) == 1
    assert not marker.exists()
    assert [r for r in world.fake.requests if r.method != "GET"] == []
