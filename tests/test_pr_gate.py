"""`tierbot pr` as a merge gate that holds: bad events, no checkout, pushes, outages, forgeries.

Real git checkouts, the real PyGithub, and the loopback fake GitHub made to misbehave on cue.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fake_github import APP_BOT, BOT, MEMBER_USER, OTHER_BOT
from gitrepo import git
from pr_helpers import BASE_FILES, SECRET, PrWorld, feature, world

from tierbot.cli import main

__all__ = ["world"]  # the fixture


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


# --- a push after a blocking run: the gate stays shut while the finding is open --------------


def comments_posted(w: PrWorld) -> list[str]:
    return [c["path"] for c in w.fake.review_comments]


def test_a_push_after_a_blocking_run_keeps_the_finding_open(world: PrWorld) -> None:
    base, head1 = feature(world, {"config.py": f"KEY = '{SECRET}'\nDEBUG = False\n"})
    world.publish(base, head1)
    first = world.run(fail_on="high")
    assert first.code == 1 and first.outputs["blocking"] == "true"
    head2 = world.commit({"README.md": "# demo\n\nUsage notes.\n"}, "docs only")
    world.publish(base, head2)
    second = world.run(fail_on="high")
    # Only README.md was reviewed, but the secret is still in the code: still blocking.
    assert second.code == 1, second.err
    assert second.outputs == {**second.outputs, "findings": "1", "blocking": "true"}
    [edit] = second.calls("PATCH", "/issues/comments/")
    summary = edit.body["body"]
    assert "**1 open finding** (1 critical)" in summary
    assert "`config.py:1`" in summary and "open since an earlier push" in summary
    assert "Open from earlier pushes: 1" in summary
    assert second.calls("POST", "/reviews") == []  # nothing new to say inline
    assert "::error" not in second.out  # posted normally, no fallback
    assert "1 open finding" in second.step_summary


def test_an_earlier_finding_follows_its_line_and_closes_when_the_line_changes(
    world: PrWorld,
) -> None:
    base, head1 = feature(world, {"config.py": f"KEY = '{SECRET}'\nDEBUG = False\n"})
    world.publish(base, head1)
    world.run(fail_on="high")
    # Lines added above the secret move it from line 1 to line 3: it stays open there.
    head2 = world.commit(
        {"config.py": f'"""Settings."""\n\nKEY = \'{SECRET}\'\nDEBUG = False\n'}, "docstring"
    )
    world.publish(base, head2)
    moved = world.run(fail_on="high")
    assert moved.code == 1 and moved.outputs["findings"] == "1"
    assert "`config.py:3`" in moved.calls("PATCH", "/issues/comments/")[0].body["body"]
    # The line itself is changed: that finding closes (this push's review sees the new line).
    head3 = world.commit(
        {"config.py": '"""Settings."""\n\nKEY = os.environ["KEY"]\nDEBUG = False\n'}, "fix"
    )
    world.publish(base, head3)
    fixed = world.run(fail_on="high")
    assert fixed.code == 0, fixed.err
    assert fixed.outputs["findings"] == "0" and fixed.outputs["blocking"] == "false"
    summary = fixed.calls("PATCH", "/issues/comments/")[0].body["body"]
    assert "**0 open findings**" in summary
    assert "1 on lines this push changed" in summary


def test_a_resolved_thread_closes_its_finding(world: PrWorld) -> None:
    base, head1 = feature(world, {"config.py": f"KEY = '{SECRET}'\n"})
    world.publish(base, head1)
    world.run(fail_on="high")
    [comment] = world.fake.review_comments
    world.fake.resolved.add(comment["id"])  # a reviewer resolves the conversation
    head2 = world.commit({"README.md": "# demo\n\nmore\n"}, "docs")
    world.publish(base, head2)
    res = world.run(fail_on="high")
    assert res.code == 0, res.err
    assert res.outputs["findings"] == "0"
    assert res.calls("POST", "/graphql")  # resolution is only in GraphQL
    assert "1 resolved by a reviewer" in res.calls("PATCH", "/issues/comments/")[0].body["body"]


def test_a_file_reverted_to_the_base_closes_its_findings(world: PrWorld) -> None:
    base, head1 = feature(world, {"config.py": f"KEY = '{SECRET}'\n"})
    world.publish(base, head1)
    world.run(fail_on="high")
    git(world.repo, "rm", "-q", "config.py")
    head2 = world.commit({}, "drop the file again")
    world.publish(base, head2)
    res = world.run(fail_on="high")
    assert res.code == 0 and res.outputs["findings"] == "0"


def test_a_forged_state_block_is_never_read(world: PrWorld) -> None:
    """Only our own summary's list counts; a member's copy claiming "nothing open" does not."""
    base, head1 = feature(world, {"config.py": f"KEY = '{SECRET}'\n"})
    world.publish(base, head1)
    world.run(fail_on="high")
    [ours] = world.summary_comments()
    from tierbot.github import state

    empty, _ = state.block(head1, [], _empty_change())
    forged = ours["body"].replace(ours["body"].split("\n")[2], empty)
    world.fake.add_comment(1, forged, MEMBER_USER, "MEMBER")
    world.fake.issue_comments.reverse()  # the forgery comes first in the listing
    head2 = world.commit({"README.md": "# demo\n\nmore\n"}, "docs")
    world.publish(base, head2)
    res = world.run(fail_on="high")
    assert res.code == 1 and res.outputs["findings"] == "1"


def _empty_change() -> Any:
    from tierbot.records import Change, Range

    return Change(root="", range=Range("", "0" * 40, None), files=())


# --- whose markers count: only tierbot's own identity's ----------------------------------------


@pytest.mark.parametrize(
    ("author", "association"),
    [(OTHER_BOT, "NONE"), (MEMBER_USER, "MEMBER"), (APP_BOT, "NONE")],
    ids=["another-bot", "member", "an-app-we-are-not"],
)
def test_markers_by_anyone_else_are_ignored_and_never_edited(
    world: PrWorld, author: dict[str, Any], association: str
) -> None:
    base, head = feature(world, {"config.py": f"KEY = '{SECRET}'\n"})
    world.publish(base, head)
    # A summary claiming this head was reviewed (so its commits would be skipped) ...
    summary = world.fake.add_comment(
        1, f"<!-- tierbot:summary -->\n<!-- tierbot:head={head} -->", author, association
    )
    # ... and an inline comment claiming the secret's finding was posted already.
    fingerprint = json.loads(world.run(dry_run=True, fmt="json").out)["findings"][0]["fingerprint"]
    world.fake.add_review_comment(
        1, f"old <!-- tierbot:fp={fingerprint} -->", "config.py", 1, author, association
    )
    res = world.run(fail_on="high")
    assert res.code == 1
    assert res.calls("PATCH", f"/issues/comments/{summary['id']}") == []  # not ours: untouched
    [posted] = res.calls("POST", "/issues/1/comments")
    assert "Ignored 2 comments carrying tierbot markers" in posted.body["body"]
    [review] = res.calls("POST", "/reviews")  # the finding is posted: the forged fp is ignored
    assert [c["path"] for c in review.body["comments"]] == ["config.py"]
    assert summary["body"] == f"<!-- tierbot:summary -->\n<!-- tierbot:head={head} -->"


def test_a_github_app_finds_its_own_comments_by_bot_login(world: PrWorld) -> None:
    base = world.commit(
        {**BASE_FILES, ".tierbot.yml": "github:\n  bot_login: tierbot-app[bot]\n"}, "base"
    )
    git(world.repo, "checkout", "-q", "-b", "feature")
    head = world.commit({"config.py": f"KEY = '{SECRET}'\n"}, "f")
    world.publish(base, head)
    world.fake.actor = APP_BOT  # the token is a GitHub App installation token
    world.fake.add_comment(1, f"<!-- tierbot:summary -->\n<!-- tierbot:head={head} -->", BOT)
    first = world.run()
    assert len(first.calls("POST", "/issues/1/comments")) == 1  # the workflow bot's is not ours
    second = world.run()
    assert second.calls("POST", "/issues/1/comments") == []
    assert len(second.calls("PATCH", "/issues/comments/")) == 1
    assert len(world.fake.reviews) == 1
    assert not any(r.path == "/user" for r in world.fake.requests)


def test_an_app_without_bot_login_is_told_what_to_set(world: PrWorld) -> None:
    base, head = feature(world, {"config.py": f"KEY = '{SECRET}'\n"})
    world.publish(base, head)
    world.fake.actor = APP_BOT
    res = world.run()
    [summary] = res.calls("POST", "/issues/1/comments")
    assert [r.path for r in res.requests if r.method == "POST"] == [
        "/repos/octo/demo/pulls/1/reviews",
        "/repos/octo/demo/issues/1/comments",
    ]
    # The review came back written by the app: the summary says what to configure.
    assert "set github.bot_login: 'tierbot-app[bot]'" in summary.body["body"]


def test_a_personal_token_finds_its_comments_by_its_user(world: PrWorld) -> None:
    base, head = feature(world, {"config.py": f"KEY = '{SECRET}'\n"})
    world.publish(base, head)
    token = "ghp_" + "a" * 36
    alice = {"login": "alice", "id": 77, "type": "User"}
    world.monkeypatch.setenv("GITHUB_TOKEN", token)
    world.fake.token_users[token] = alice
    world.fake.actor = alice
    world.run()
    second = world.run()
    assert second.calls("POST", "/issues/1/comments") == [] and second.calls("GET", "/user")
    assert len(second.calls("PATCH", "/issues/comments/")) == 1


# --- writes that fail after they were stored are never repeated -------------------------------


def test_a_review_and_summary_stored_then_answered_502_are_not_posted_again(
    world: PrWorld,
) -> None:
    base, head = feature(world, {"a.py": f"A = '{SECRET}'\n", "b.py": f"B = '{SECRET}'\n"})
    world.publish(base, head)
    world.fake.store_then_fail = 2  # the review and the summary: stored, then 502
    res = world.run()
    assert res.code == 0, res.err
    assert len(res.calls("POST", "/reviews")) == 1 and len(world.fake.reviews) == 1
    assert len(world.fake.review_comments) == 2
    assert len(res.calls("POST", "/issues/1/comments")) == 1
    assert len(world.summary_comments()) == 1
    assert res.calls("GET", "/pulls/1/reviews")  # looked before doing anything again
    assert "::error" not in res.out  # it all landed: no fallback
    note = "GitHub answered an error to 'review' but had done it; it was not repeated."
    assert note in world.summary_comments()[0]["body"]
    # The edit of the next run is stored and answered 502 too: re-read, not repeated.
    world.fake.store_then_fail = 1
    again = world.run()
    assert len(again.calls("PATCH", "/issues/comments/")) == 1
    assert again.calls("GET", f"/issues/comments/{world.summary_comments()[0]['id']}")
    assert len(world.fake.reviews) == 1 and len(world.summary_comments()) == 1


def test_a_write_that_did_not_land_is_tried_once_more_never_eleven_times(
    world: PrWorld,
) -> None:
    base, head = feature(world, {"a.py": f"A = '{SECRET}'\n"})
    world.publish(base, head)
    world.fake.fail_writes = 502  # nothing is stored
    res = world.run()
    assert len(res.calls("POST", "/reviews")) == 2  # PyGithub's default retried POST 10 times
    assert world.fake.reviews == [] and "::error file=a.py,line=1" in res.out
    assert "could not post to the pull request" in res.step_summary


# --- bounded waits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "methods"),
    [
        ("secondary", ("POST",)),
        ("secondary429", ("POST",)),
        ("secondary", ("GET",)),
        ("primary", ("GET",)),
    ],
)
def test_a_rate_limit_asking_for_an_hour_is_not_waited_for(
    world: PrWorld, kind: str, methods: tuple[str, ...]
) -> None:
    base, head = feature(world, {"a.py": f"A = '{SECRET}'\n"})
    world.publish(base, head)
    world.fake.rate_limit(kind, methods=methods, retry_after=3600, count=50)
    res = world.run(fail_on="high")  # pytest-timeout (120 s) would stop an hour's sleep
    assert res.code == 1  # the review itself is whole: the finding still blocks
    assert "::error file=a.py,line=1" in res.out
    assert "could not post to the pull request" in res.step_summary
    assert "GitHub rate limit while trying to" in res.step_summary
    assert re.search(r"asked to wait 3[56]\d\d s \(tierbot waits at most 60 s\)", res.step_summary)
    assert world.fake.reviews == [] and world.summary_comments() == []


def test_a_short_rate_limit_is_waited_for_once(world: PrWorld) -> None:
    base, head = feature(world, {"a.py": f"A = '{SECRET}'\n"})
    world.publish(base, head)
    world.fake.rate_limit("secondary", methods=("POST",), retry_after=1)
    res = world.run()
    assert len(res.calls("POST", "/reviews")) == 2 and len(world.fake.reviews) == 1
    assert len(world.summary_comments()) == 1 and "::error" not in res.out


def test_by_number_with_github_rate_limited_is_exit_3_in_one_line_at_once(
    world: PrWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = feature(world, {"a.py": "x = 1\n"})
    world.publish(base, head)
    world.monkeypatch.delenv("GITHUB_EVENT_PATH")
    world.monkeypatch.chdir(tmp_path)
    world.fake.rate_limit("primary", methods=("GET",), retry_after=3600, count=50)
    code, err = cli(world, capsys, "--repo", world.fake.full_name, "--number", "1")
    assert code == 3
    assert err.startswith("tierbot: GitHub rate limit while trying to read repository octo/demo")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "asked to wait" in world.summary_path.read_text()


# --- a model that rewords or re-anchors a finding ---------------------------------------------

APP = "def total(items):\n    s = 0\n    for i in items:\n        s += i\n    return s\n"


def test_a_reworded_reanchored_model_finding_is_not_posted_twice(world: PrWorld) -> None:
    from fake_anthropic import answer, fake_anthropic, finding

    base, head = feature(world, {"calc.py": APP})
    world.publish(base, head)
    with fake_anthropic() as model:
        world.monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key-000000000000000000")
        world.monkeypatch.setenv("ANTHROPIC_BASE_URL", model.url)
        model.script("*", answer([finding("calc.py", 3, "Loop can be sum()", severity="medium")]))
        first = world.run(no_cache=True)
        # A re-run of the same head: the model words it differently and anchors a line lower.
        model.script(
            "*", answer([finding("calc.py", 4, "Use the built-in sum() here", severity="medium")])
        )
        second = world.run(no_cache=True)
        assert len(model.requests) >= 2
    assert len(first.calls("POST", "/reviews")) == 1
    assert second.calls("POST", "/reviews") == []
    assert len(world.fake.review_comments) == 1
    [edit] = second.calls("PATCH", "/issues/comments/")
    assert "Use the built-in sum() here" in edit.body["body"]
    assert "inline (earlier)" in edit.body["body"]


def test_a_summary_without_a_list_of_open_findings_gets_a_full_review(world: PrWorld) -> None:
    """An older tierbot's summary (head marker, no list): a push is reviewed whole, so the
    secret of the first push is found again instead of being forgotten."""
    base, head1 = feature(world, {"config.py": f"KEY = '{SECRET}'\n"})
    world.publish(base, head1)
    world.fake.add_comment(1, f"<!-- tierbot:summary -->\n<!-- tierbot:head={head1} -->", BOT)
    head2 = world.commit({"README.md": "# demo\n\nmore\n"}, "docs")
    world.publish(base, head2)
    res = world.run(fail_on="high")
    assert res.code == 1 and res.outputs["findings"] == "1"
    body = res.calls("PATCH", "/issues/comments/")[0].body["body"]
    assert "missing or incomplete" in body and "the whole pull request" in body
