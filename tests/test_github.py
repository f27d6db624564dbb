"""tierbot/github.py: markers, which findings may go inline, and the REST calls via PyGithub."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from fake_github import BOT, CONTRIBUTOR_USER, FakeGitHub, Pull, PullFile

from tierbot.findings import near_key
from tierbot.git.diff import parse
from tierbot.github import pull as gh
from tierbot.records import FileDiff, Finding

PATCH = "@@ -1,3 +1,5 @@\n a\n+b\n+c\n d\n e\n@@ -20,2 +22,3 @@\n x\n+y\n z"


def finding(
    path: str = "f.py",
    line: int | None = 2,
    end: int | None = None,
    *,
    severity: str = "medium",
    title: str = "t",
    fp: str = "",
    suggestion: str | None = None,
) -> Finding:
    return Finding(
        path=path,
        line=line,
        end_line=end,
        severity=severity,  # type: ignore[arg-type]
        category="bug",
        title=title,
        message="m",
        source="sonnet",
        suggestion=suggestion,
        fingerprint=fp,
    )


def diff_file() -> FileDiff:
    (fd,) = parse(f"diff --git a/f.py b/f.py\n--- a/f.py\n+++ b/f.py\n{PATCH}\n")
    return fd


def test_diff_lines_agree_with_the_files_api_patch() -> None:
    assert gh.diff_lines([diff_file()]) == gh.lines_from_patches({"f.py": PATCH})
    assert gh.lines_from_patches({"f.py": PATCH})["f.py"][23] == 1


def test_plan_puts_only_diff_lines_inline_most_severe_first_and_caps() -> None:
    lines = gh.diff_lines([diff_file()])
    fs = [
        finding(line=2, severity="low", title="a"),
        finding(line=3, severity="critical", title="b"),
        finding(line=23, severity="high", title="c"),
        finding(line=10, title="off"),
        finding("other.py", 1, title="elsewhere"),
        finding(line=None, title="file-level"),
    ]
    plan = gh.plan_comments(fs, lines, [], max_comments=2)
    assert [p.finding.title for p in plan.inline] == ["b", "c"]
    assert [f.title for f in plan.over_limit] == ["a"]
    assert sorted(f.title for f in plan.not_on_diff) == ["elsewhere", "file-level", "off"]
    for p in plan.inline:
        assert p.comment["side"] == "RIGHT" and p.comment["line"] in lines["f.py"]


def test_plan_skips_fingerprints_already_posted_and_duplicates() -> None:
    lines = gh.diff_lines([diff_file()])
    a, b = finding(line=2, fp="fp-a"), finding(line=3, fp="fp-b")
    earlier = [gh.Posted("fp-a", None, "f.py", 22)]
    plan = gh.plan_comments([a, b, b], lines, earlier, max_comments=10)
    assert [p.fingerprint for p in plan.inline] == ["fp-b"]
    assert len(plan.already_posted) == 2  # fp-a from before, the second fp-b from this run
    marker = f"<!-- tierbot:fp=fp-b near={near_key(b)} -->"
    assert marker in plan.inline[0].comment["body"]
    assert gh.fingerprints_in(marker) == {"fp-b"}


def test_a_reworded_finding_a_line_away_is_not_posted_again() -> None:
    """A model that moves its anchor by a line or rewords its title: same file, same category."""
    lines = gh.diff_lines([diff_file()])
    before = finding(line=2, title="Unchecked input", fp="fp-old")
    earlier = [gh.Posted("fp-old", near_key(before), "f.py", 2)]
    moved = finding(line=3, title="Input is never validated", fp="fp-new")
    other_kind = dataclasses.replace(moved, category="performance", fingerprint="fp-perf")
    far = finding(line=23, title="Unchecked input again", fp="fp-far")
    plan = gh.plan_comments([moved, other_kind, far], lines, earlier, max_comments=10)
    assert [f.fingerprint for f in plan.already_posted] == ["fp-new"]
    assert sorted(p.fingerprint for p in plan.inline) == ["fp-far", "fp-perf"]


def test_ranges_stay_inside_one_hunk_with_start_below_line() -> None:
    lines = gh.diff_lines([diff_file()])
    inside = gh.plan_comments([finding(line=2, end=4, suggestion="B\nC\nD")], lines, [], 5)
    c = inside.inline[0].comment
    assert (c["start_line"], c["line"]) == (2, 4) and "```suggestion\nB\nC\nD\n```" in c["body"]
    across = gh.plan_comments([finding(line=4, end=23, suggestion="z")], lines, [], 5)
    c = across.inline[0].comment
    assert c["line"] == 4 and "start_line" not in c
    # The suggestion would replace only line 4, not the range: it is shown, not offered.
    assert "```suggestion" not in c["body"] and "Suggested replacement" in c["body"]


def test_unsafe_fingerprints_are_hashed_for_the_marker() -> None:
    f = finding(fp="x --> <script>")
    fp = gh.fingerprint_of(f)
    assert fp != f.fingerprint and gh.fingerprints_in(f"<!-- tierbot:fp={fp} -->") == {fp}
    assert gh.fingerprint_of(finding(fp="rules:abc.123")) == "rules:abc.123"


def test_markers_round_trip() -> None:
    sha = "ab" * 20
    body = f"{gh.SUMMARY_MARKER}\n<!-- tierbot:head={sha} -->\n"
    assert gh.last_head(body) == sha and gh.last_head("nothing") is None


def test_pull_from_payload_and_fork_detection() -> None:
    with FakeGitHub() as fake:
        pr = Pull(3, "1" * 40, "2" * 40, draft=True)
        payload = fake.pull_json(pr)
        info = gh.pull_from_payload(payload, fake.full_name)
        assert (info.number, info.base_sha, info.head_sha, info.draft) == (
            3,
            "1" * 40,
            "2" * 40,
            True,
        )
        assert not info.from_fork
        payload["head"]["repo"] = {"full_name": "someone/demo"}
        assert gh.pull_from_payload(payload, fake.full_name).from_fork
    from tierbot.errors import BadInput

    with pytest.raises(BadInput):
        gh.pull_from_payload({"number": 1}, "o/r")


@pytest.fixture
def fake() -> Any:
    with FakeGitHub(prefix="/api/v3") as f:  # Enterprise-style base URL
        f.pulls[7] = Pull(7, "1" * 40, "2" * 40, files=[PullFile("f.py", "modified", PATCH)])
        yield f


def client(fake: FakeGitHub) -> gh.Client:
    c = gh.Client("ghs_token", fake.url, write_delay=0, request_delay=0)
    c.open_pull(fake.full_name, 7)
    return c


def test_client_posts_reviews_github_accepts_and_gets_422_for_the_rest(fake: FakeGitHub) -> None:
    c = client(fake)
    ok = {
        "path": "f.py",
        "line": 4,
        "start_line": 2,
        "start_side": "RIGHT",
        "side": "RIGHT",
        "body": "x",
    }
    c.post_review("2" * 40, "body", "COMMENT", [ok])
    assert fake.reviews[-1]["commit_id"] == "2" * 40
    for bad in (
        {**ok, "line": 10, "start_line": None},  # not a diff line
        {**ok, "start_line": 4},  # start not below line
        {**ok, "start_line": 3, "line": 23},
    ):  # across hunks
        bad = {k: v for k, v in bad.items() if v is not None}
        with pytest.raises(gh.ReviewRejected):
            c.post_review("2" * 40, "body", "COMMENT", [bad])
    assert len(fake.reviews) == 1
    assert all(r.path.startswith("/repos/") for r in fake.requests)  # under /api/v3


def test_client_finds_only_trusted_markers_across_pages(fake: FakeGitHub) -> None:
    for i in range(45):  # more than one page of comments
        fake.add_comment(7, f"chatter {i}", CONTRIBUTOR_USER, "CONTRIBUTOR")
    fake.add_comment(
        7, f"{gh.SUMMARY_MARKER}\n<!-- tierbot:head={'9' * 40} -->", CONTRIBUTOR_USER, "CONTRIBUTOR"
    )
    ours = fake.add_comment(7, f"{gh.SUMMARY_MARKER}\n<!-- tierbot:head={'2' * 40} -->", BOT)
    c = client(fake)
    found = c.existing()
    assert found.summary_id == ours["id"] and gh.last_head(found.summary_body) == "2" * 40
    c.upsert_summary("new body " + gh.SUMMARY_MARKER)
    assert ours["body"].startswith("new body")
    assert not any(r.path == "/user" for r in fake.requests)


def test_client_turns_403_into_denied(fake: FakeGitHub) -> None:
    fake.read_only = True
    c = client(fake)
    c.existing()
    with pytest.raises(gh.GitHubDenied, match="Resource not accessible by integration"):
        c.upsert_summary(gh.SUMMARY_MARKER)


def test_client_reads_base_files_and_patches(fake: FakeGitHub) -> None:
    fake.contents[("1" * 40, ".tierbot.yml")] = b"fail_on: low\n"
    c = client(fake)
    assert c.file_at(".tierbot.yml", "1" * 40) == "fail_on: low\n"
    assert c.file_at(".tierbot.yml", "2" * 40) is None
    patches, raw = c.patches()
    assert patches == {"f.py": PATCH} and raw[0]["status"] == "modified"


def test_a_write_that_times_out_after_it_was_stored_is_found_not_repeated(
    fake: FakeGitHub,
) -> None:
    fake.answer_delay = 2.5  # the review is stored, the answer comes after the client gave up
    c = gh.Client("ghs_token", fake.url, write_delay=0, request_delay=0, timeout=1)
    c.open_pull(fake.full_name, 7)
    comment = {"path": "f.py", "line": 2, "side": "RIGHT", "body": "x"}
    c.post_review("2" * 40, "body", "COMMENT", [comment])
    assert len(fake.reviews) == 1 and len(fake.review_comments) == 1
    assert len(fake.writes("POST", "/reviews")) == 1
    assert any("had done it" in n for n in c.notes)
    assert f"<!-- tierbot:review={c.run_id} -->" in fake.reviews[0]["body"]


def test_nothing_is_asked_of_github_once_the_run_is_out_of_time(fake: FakeGitHub) -> None:
    c = client(fake)
    c.clock.deadline = time.monotonic() - 1
    before = len(fake.requests)
    with pytest.raises(gh.GitHubFailed, match=r"no time left .*github.timeout_s"):
        c.existing()
    assert len(fake.requests) == before
    assert not gh.Clock(time.monotonic() + 30).allows(45)  # past the deadline
    assert not gh.Clock(time.monotonic() + 3600).allows(61)  # past the cap


def test_reads_are_retried_with_bounded_waits_and_writes_are_not(fake: FakeGitHub) -> None:
    c = client(fake)
    fake.rate_limit("secondary", methods=("GET",), retry_after=1, count=2)
    assert c.existing().summary_id is None  # two short waits, then the answer
    fake.rate_limit("secondary429", methods=("GET",), retry_after=3600)
    started = time.monotonic()
    with pytest.raises(gh.GitHubFailed, match="asked to wait 3600 s"):
        c.existing()
    assert time.monotonic() - started < 5
    fake.fail_writes = 503
    with pytest.raises(gh.GitHubFailed):
        c.upsert_summary(gh.SUMMARY_MARKER)
    # One try, a look at the comments, one more try: never PyGithub's ten POSTs.
    assert len(fake.writes("POST", "/issues/7/comments")) == 2
