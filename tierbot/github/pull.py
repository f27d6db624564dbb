"""Pull-request reading and posting through PyGithub (imported lazily).

Everything GitHub-shaped lives here: the pull request's identity, our hidden markers, which findings
may become inline review comments (only lines GitHub will accept), the comment and summary bodies,
and the few API calls we make.  `commands/pr.py` decides *what* to review; this module only talks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tierbot.errors import BadInput, TierbotError, shown
from tierbot.findings import NEAR_LINES, near_key, suggestion_fits
from tierbot.github import sanitize
from tierbot.records import (
    SEVERITIES,
    FileDiff,
    Finding,
    ReviewResult,
    severity_rank,
)
from tierbot.reporters import cost_line, markdown
from tierbot.words import plural

SUMMARY_MARKER = "<!-- tierbot:summary -->"
_HEAD_MARKER = re.compile(r"<!-- tierbot:head=([0-9a-f]{7,64}) -->")
_FP_MARKER = re.compile(r"<!-- tierbot:fp=([A-Za-z0-9._:-]{1,128})(?: near=([0-9a-f]{12}))? -->")
_FP_SAFE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
PR_EVENTS = ("pull_request", "pull_request_target")


class GitHubDenied(TierbotError):
    """The token may not do this (403/401): fall back to annotations and the step summary."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 0)


class ReviewRejected(TierbotError):
    """GitHub answered 422 to the review (a comment it could not place)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 0)


@dataclass(frozen=True)
class PullInfo:
    repo: str  # OWNER/NAME
    number: int
    base_sha: str
    head_sha: str
    base_ref: str
    head_ref: str
    draft: bool
    state: str
    head_repo: str | None  # OWNER/NAME of the head; differs from `repo` for forks
    title: str = ""  # the author's words: the review's stated intent, never trusted
    body: str = ""

    @property
    def from_fork(self) -> bool:
        return self.head_repo is not None and self.head_repo != self.repo


def intent(info: PullInfo) -> str:
    """What the pull request says it is for (bounded again where the prompt is built)."""
    parts = [f"Pull request title: {info.title.strip()}"] if info.title.strip() else []
    if info.body.strip():
        parts.append("Pull request description:\n" + info.body.strip()[:8000])
    return "\n\n".join(parts)


def pull_from_payload(pr: Mapping[str, Any], repo: str) -> PullInfo:
    """A PullInfo from a `pull_request` object of an event payload or of the REST API.

    The shas go to git as revisions, so anything but a full hex object name is refused here,
    before any git call (`--upload-pack=...` in an event file must never reach `git fetch`).
    """
    try:
        head, base = pr["head"], pr["base"]
        head_repo = (head.get("repo") or {}).get("full_name")
        return PullInfo(
            repo=str((base.get("repo") or {}).get("full_name") or repo),
            number=int(pr["number"]),
            base_sha=_sha(base["sha"], "base"),
            head_sha=_sha(head["sha"], "head"),
            base_ref=str(base.get("ref", "")),
            head_ref=str(head.get("ref", "")),
            draft=bool(pr.get("draft", False)),
            state=str(pr.get("state", "open")),
            head_repo=str(head_repo) if head_repo else None,
            title=str(pr.get("title") or ""),
            body=str(pr.get("body") or ""),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise BadInput(f"the pull request event has no usable pull_request object ({e})") from None


_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _sha(value: object, side: str) -> str:
    if not isinstance(value, str) or not _SHA.fullmatch(value):
        raise BadInput(
            f"the pull request's {side} sha is not a commit id (40 or 64 hex digits): "
            f"{shown(value)}"
        )
    return value


def read_event(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise BadInput(f"cannot read GITHUB_EVENT_PATH {path}: {e}") from None
    if not isinstance(data, dict):
        raise BadInput(f"GITHUB_EVENT_PATH {path} does not hold a JSON object")
    return data


# --- markers --------------------------------------------------------------------------------


def last_head(body: str) -> str | None:
    m = _HEAD_MARKER.search(body)
    return m.group(1) if m else None


def fingerprints_in(body: str) -> set[str]:
    return {m.group(1) for m in _FP_MARKER.finditer(body)}


def fingerprint_of(f: Finding) -> str:
    """The finding's own fingerprint when it is marker-safe, else a stable hash of what it says."""
    if f.fingerprint and _FP_SAFE.fullmatch(f.fingerprint):
        return f.fingerprint
    basis = f.fingerprint or "\0".join((f.path, f.category, f.title, str(f.line)))
    return hashlib.sha256(basis.encode("utf-8", "surrogateescape")).hexdigest()[:20]


# --- which findings may go inline -----------------------------------------------------------


def diff_lines(files: Iterable[FileDiff]) -> dict[str, dict[int, int]]:
    """path -> {new-side line -> hunk index}: every line GitHub lets a RIGHT comment sit on."""
    out: dict[str, dict[int, int]] = {}
    for fd in files:
        if fd.new_lines:
            out[fd.path] = {n: nl.hunk for n, nl in fd.new_lines.items()}
    return out


def lines_from_patches(patches: Mapping[str, str]) -> dict[str, dict[int, int]]:
    """Like `diff_lines`, from the files API's per-file `patch` text (hunks only)."""
    from tierbot.git.diff import parse

    files: list[FileDiff] = []
    for path, patch in patches.items():
        header = f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
        try:
            files.extend(parse(header + patch.rstrip("\n") + "\n"))
        except BadInput:
            continue  # a patch GitHub cut short: no comment can be placed on it
    return diff_lines(files)


@dataclass(frozen=True)
class Posted:
    """One inline comment tierbot wrote earlier, as GitHub shows it now."""

    fingerprint: str
    near: str | None  # findings.near_key of its finding (None in comments of older versions)
    path: str
    line: int | None  # where it sits at the current head (None: outdated)
    comment_id: int = 0


@dataclass(frozen=True)
class Existing:
    summary_id: int | None
    summary_body: str
    posted: tuple[Posted, ...] = ()
    ignored: int = 0  # comments by anyone else that carry tierbot markers (never trusted)

    @property
    def fingerprints(self) -> frozenset[str]:
        return frozenset(p.fingerprint for p in self.posted)


@dataclass(frozen=True)
class Planned:
    finding: Finding
    fingerprint: str
    comment: dict[str, Any]  # the review comment as the REST API takes it


@dataclass(frozen=True)
class Plan:
    inline: tuple[Planned, ...]
    already_posted: tuple[Finding, ...]  # an earlier run posted these (same fingerprint)
    over_limit: tuple[Finding, ...]  # beyond max_comments
    not_on_diff: tuple[Finding, ...]  # no line of the pull request's diff to sit on


def plan_comments(
    findings: Sequence[Finding],
    lines: Mapping[str, Mapping[int, int]],
    posted: Sequence[Posted],
    max_comments: int,
) -> Plan:
    """Decide which findings become inline comments; most severe first, never twice.

    "Twice" is by fingerprint, or by an earlier comment of ours in the same file and category
    within NEAR_LINES of the finding (a model moving its anchor by a line is the same finding).
    """
    inline: list[Planned] = []
    already: list[Finding] = []
    over: list[Finding] = []
    off: list[Finding] = []
    seen = {p.fingerprint for p in posted}
    near: dict[tuple[str, str], list[int]] = {}
    for p in posted:
        if p.near is not None and p.line is not None:
            near.setdefault((p.path, p.near), []).append(p.line)
    order = sorted(
        findings, key=lambda f: (-severity_rank(f.severity), f.path, f.line or 0, f.title)
    )
    for f in order:
        fp = fingerprint_of(f)
        nearby = near.get((f.path, near_key(f)), []) if f.line is not None else []
        if fp in seen or any(abs(n - (f.line or 0)) <= NEAR_LINES for n in nearby):
            already.append(f)
            continue
        seen.add(fp)
        file_lines = lines.get(f.path, {})
        if f.line is None or f.line not in file_lines:
            off.append(f)
            continue
        if len(inline) >= max_comments:
            over.append(f)
            continue
        inline.append(Planned(f, fp, _comment(f, fp, file_lines)))
    return Plan(tuple(inline), tuple(already), tuple(over), tuple(off))


def _comment(f: Finding, fp: str, file_lines: Mapping[int, int]) -> dict[str, Any]:
    assert f.line is not None
    end = f.end_line
    # A range needs both ends in one hunk with start strictly below line; else one line.
    ranged = (
        end is not None
        and end > f.line
        and end in file_lines
        and file_lines[end] == file_lines[f.line]
        and all(n in file_lines for n in range(f.line, end + 1))
    )
    comment: dict[str, Any] = {"path": f.path, "side": "RIGHT"}
    if ranged:
        assert end is not None
        comment.update(line=end, start_line=f.line, start_side="RIGHT")
    else:
        comment["line"] = f.line
    # A suggestion replaces exactly the commented lines: offer one only on the lines it was
    # written for (anchoring may have clamped the finding's range).
    last = end if ranged and end is not None else f.line
    comment["body"] = comment_body(f, fp, suggest=suggestion_fits(f, f.line, last))
    return comment


def comment_body(f: Finding, fp: str, *, suggest: bool = True) -> str:
    head = f"**{_badge(f.severity)} {sanitize.text(f.title).strip() or f.category}**"
    meta = f"<sub>{sanitize.cell(f.category)} · {sanitize.cell(f.source)}</sub>"
    parts = [f"{head}  \n{meta}", sanitize.text(f.message).strip()]
    if f.suggestion is not None:
        if suggest:
            parts.append(sanitize.code_fence(f.suggestion, "suggestion"))
        else:
            parts.append("Suggested replacement:\n" + sanitize.code_fence(f.suggestion))
    marker = f"<!-- tierbot:fp={fp} near={near_key(f)} -->"
    body = "\n\n".join(p for p in parts if p)
    return sanitize.cap(body, sanitize.GITHUB_BODY_LIMIT - len(marker) - 2) + "\n\n" + marker


_BADGES = {
    "critical": "🛑 critical",
    "high": "🔴 high",
    "medium": "🟠 medium",
    "low": "🟡 low",
    "info": "🔵 info",
}


def _badge(severity: str) -> str:
    return _BADGES.get(severity, severity)


# --- the summary comment --------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryContext:
    head_sha: str
    base_sha: str
    reviewed_spec: str  # what was reviewed, e.g. "abc1234...def5678"
    incremental_from: str | None  # last reviewed head when only new commits were reviewed
    posted_inline: int  # inline comments this run really posted
    inline_failed: tuple[Finding, ...] = ()  # GitHub refused them even after a retry
    notes: tuple[str, ...] = ()  # things the reader must know (offline, fallback, ...)
    carried: frozenset[str] = frozenset()  # fingerprints still open from earlier pushes
    posted_before: frozenset[str] = frozenset()  # fingerprints of our earlier inline comments


def summary_body(
    result: ReviewResult, plan: Plan, ctx: SummaryContext, state_line: str = ""
) -> str:
    """The summary comment: `result.findings` are all the findings open at the head.

    `state_line` (the hidden list of open findings, `state.block`) goes near the top, so that
    cutting an over-long body never cuts it."""
    lines: list[str] = [SUMMARY_MARKER, f"<!-- tierbot:head={ctx.head_sha} -->"]
    if state_line:
        lines.append(state_line)
    lines.append("")
    counts = {s: 0 for s in SEVERITIES}
    for f in result.findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    total = len(result.findings)
    by_sev = ", ".join(f"{n} {s}" for s in reversed(SEVERITIES) if (n := counts[s]))
    lines.append("## tierbot review")
    lines.append("")
    lines.append(
        f"**{plural(total, 'open finding')}**"
        + (f" ({by_sev})" if by_sev else "")
        + f" · tier **{result.route.tier}** · {cost_line(result)}"
    )
    scope = (
        f"the commits since the last review (`{ctx.incremental_from[:12]}..{ctx.head_sha[:12]}`)"
        if ctx.incremental_from
        else f"the whole pull request (`{ctx.base_sha[:12]}...{ctx.head_sha[:12]}`)"
    )
    lines.append(f"Reviewed {scope}; status `{result.status}`.")
    if result.usage.verify_cost_usd > 0:
        lines.append(
            f"Opus verification of cheaper tiers' findings: ${result.usage.verify_cost_usd:.4f}."
        )
    if ctx.carried:
        lines.append(
            f"Open from earlier pushes: {len(ctx.carried)} (their lines are unchanged and no "
            "reviewer resolved them)."
        )
    for note in ctx.notes:
        lines.append(f"> **Note:** {sanitize.text(note)}")
    lines.append("")

    # The routing table and the findings are the Markdown report's own rendering.
    lines += ["### Routing", "", *markdown.ROUTING_HEAD, *markdown.routing_rows(result)]
    if not result.route.units:
        lines.append("| (nothing to review) | skip | 0.00 | - |")
    lines.append("")

    if result.findings:
        lines.append("### Findings")
        inline_fps = {p.fingerprint for p in plan.inline}
        failed = {fingerprint_of(f) for f in ctx.inline_failed}
        where: dict[str, str] = {}
        for f in plan.already_posted:
            where[fingerprint_of(f)] = "inline (earlier)"
        for f in plan.over_limit:
            where[fingerprint_of(f)] = "here only: over max_comments"
        for f in plan.not_on_diff:
            where[fingerprint_of(f)] = "here only: not on a diff line"
        for sev in reversed(SEVERITIES):
            group = [f for f in result.findings if f.severity == sev]
            if not group:
                continue
            lines += ["", f"**{_badge(sev)}** ({len(group)})", ""]
            for f in sorted(group, key=lambda f: (f.path, f.line or 0)):
                fp = fingerprint_of(f)
                if fp in failed:
                    place = "here only: GitHub refused the inline comment"
                elif fp in inline_fps:
                    place = "inline"
                elif fp in ctx.carried:
                    earlier = "inline" if fp in ctx.posted_before else "here"
                    place = f"{earlier}, open since an earlier push"
                else:
                    place = where.get(fp, "here only")
                # The suggestion is in the inline comment; here the finding and where it is.
                lines.append(markdown.finding_block(f, place=place, suggestion=False))
        lines.append("")

    skipped = [fs for fs in result.analysis.files if fs.skip_reason]
    dropped = [n for n in result.notes if n]
    if skipped or dropped:
        lines.append("<details><summary>Skipped and dropped</summary>")
        lines.append("")
        for fs in skipped:
            lines.append(
                f"- `{sanitize.cell(fs.path).replace('`', '')}`: "
                f"{sanitize.cell(fs.skip_reason or '')}"
            )
        for note in dropped:
            lines.append(f"- {sanitize.cell(note)}")
        lines += ["", "</details>", ""]
    lines.append(
        f"<sub>{plural(ctx.posted_inline, 'inline comment')}"
        f" posted this run · reviewed head `{ctx.head_sha[:12]}`</sub>"
    )
    return sanitize.cap("\n".join(lines))


# --- the API --------------------------------------------------------------------------------

# The longest single wait GitHub may ask of a run (Retry-After, a rate-limit reset); asked for
# more, tierbot stops talking to GitHub and reports through annotations and the step summary.
WAIT_CAP_S = 60.0
REQUEST_TIMEOUT_S = 30  # one HTTP request; the run's total is `github.timeout_s`
WORKFLOW_BOT = "github-actions[bot]"
# Token kinds that belong to a user (GET /user names them); `ghs_` is an installation token (the
# workflow's GITHUB_TOKEN, a GitHub App), which cannot read GET /user.
_USER_TOKENS = ("ghp_", "github_pat_", "gho_", "ghu_")


class GitHubFailed(TierbotError):
    """GitHub did not do what was asked: down, too slow, or rate limiting past the cap.

    `maybe_done` is True when a write may still have been stored (a 5xx, a timeout, a dropped
    connection): it must be checked for before it is tried again.  `wait` is set when GitHub
    said it did nothing and when to ask again (a rate limit).
    """

    def __init__(self, message: str, *, maybe_done: bool = False, wait: float | None = None):
        super().__init__(message, 3)
        self.maybe_done = maybe_done
        self.wait = wait


@dataclass
class Clock:
    """The run's time with GitHub: a deadline for everything, and a cap on any single wait."""

    deadline: float
    cap: float = WAIT_CAP_S

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def allows(self, wait: float) -> bool:
        return wait <= self.cap and wait <= self.left()


def _bounded_retry(clock: Clock) -> Any:
    """PyGithub's retry, made to repeat reads only and never to wait past the cap or deadline.

    PyGithub 2.10's default `GithubRetry` repeats POST on a 5xx: a review GitHub stored before
    answering 502 was posted again.  Writes are never repeated here; `Client._write` decides.
    """
    from github import GithubRetry
    from github.GithubException import RateLimitExceededExceedsMaxWait

    class BoundedRetry(GithubRetry):
        clock: Clock

        def new(self, **kw: Any) -> Any:
            fresh = super().new(**kw)
            fresh.clock = self.clock
            return fresh

        def sleep(self, response: Any = None) -> None:
            wait = None
            if response is not None and self.respect_retry_after_header:
                wait = self.get_retry_after(response)
            if wait is None:
                wait = self.get_backoff_time()
            if not self.clock.allows(wait):
                headers = dict(response.headers) if response is not None else {}
                status = response.status if response is not None else 0
                raise RateLimitExceededExceedsMaxWait(status, None, headers, wait=wait)
            if wait > 0:
                time.sleep(wait)

    retry = BoundedRetry(
        total=3,
        backoff_factor=0.5,
        allowed_methods=frozenset({"GET", "HEAD"}),
        secondary_rate_wait=clock.cap,
        max_rate_limit_wait=clock.cap,
    )
    retry.clock = clock
    return retry


class Client:
    """The REST calls `tierbot pr` makes, with GitHub errors turned into ours.

    Only comments written by `identity` count as tierbot's; every wait is bounded by `clock`;
    a write that fails in a way that may have stored it is looked for before it is repeated.
    """

    def __init__(
        self,
        token: str,
        api_url: str,
        *,
        clock: Clock | None = None,
        write_delay: float = 1.0,
        request_delay: float = 0.25,
        timeout: int = REQUEST_TIMEOUT_S,
    ) -> None:
        from github import Auth, Github

        # PyGithub narrates retries at INFO; tierbot's own one-line messages say what matters.
        logging.getLogger("github").setLevel(logging.WARNING)
        self.clock = clock or Clock(time.monotonic() + 300)
        self._token = token
        self._gh = Github(
            auth=Auth.Token(token),
            base_url=api_url.rstrip("/"),
            seconds_between_writes=write_delay,
            seconds_between_requests=request_delay,
            timeout=timeout,
            retry=_bounded_retry(self.clock),
            per_page=100,
        )
        self._repo: Any = None
        self._pull: Any = None
        self._summary: Any = None
        self._login: str | None = None
        self._configured: str | None = None
        self.run_id = uuid.uuid4().hex[:16]  # marks this run's review, to find it after a 5xx
        self.notes: list[str] = []  # what the reader of the summary should know

    def close(self) -> None:
        self._gh.close()

    # -- errors and waits ------------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from github import GithubException, RateLimitExceededException

        if self.clock.left() <= 0:
            raise GitHubFailed(f"GitHub: no time left to {what} (github.timeout_s reached)")
        try:
            return fn(*args, **kwargs)
        except GithubException as e:
            msg = _message(e)
            limited = e.status == 429 or (e.status == 403 and "rate limit" in msg.lower())
            if isinstance(e, RateLimitExceededException) or limited:
                wait = _wait_of(e)
                asked = f"asked to wait {wait:.0f} s" if wait is not None else "rate limited"
                raise GitHubFailed(
                    f"GitHub rate limit while trying to {what}: {asked} "
                    f"(tierbot waits at most {self.clock.cap:.0f} s)",
                    wait=wait,
                ) from None
            if e.status in (401, 403):
                raise GitHubDenied(f"GitHub refused to {what} ({e.status}: {msg})") from None
            if e.status == 422:
                raise ReviewRejected(f"GitHub rejected the {what} (422: {msg})") from None
            if e.status == 404:
                raise BadInput(f"GitHub: cannot {what}: not found (404)") from None
            raise GitHubFailed(
                f"GitHub: cannot {what} ({e.status}: {msg})", maybe_done=e.status >= 500
            ) from None
        except OSError as e:  # requests' errors: timeouts, refused or dropped connections
            raise GitHubFailed(f"GitHub: cannot {what}: {_first(e)}", maybe_done=True) from None

    def _write(self, what: str, do: Any, landed: Any) -> Any:
        """One write, tried at most twice; never again before checking that it did not land."""
        for attempt in (1, 2):
            try:
                return self._call(what, do)
            except GitHubFailed as e:
                if attempt == 2:
                    raise
                if e.maybe_done:
                    found = landed()  # a failing re-read raises: nothing more is written
                    if found is not None:
                        self.notes.append(
                            f"GitHub answered an error to '{what}' but had done it; "
                            "it was not repeated."
                        )
                        return found
                elif e.wait is not None and self.clock.allows(e.wait):
                    time.sleep(e.wait)  # a rate limit: GitHub did nothing, and said when
                else:
                    raise
        raise AssertionError("unreachable")

    # -- identity --------------------------------------------------------------------------

    def set_identity(self, bot_login: str | None) -> None:
        """The login tierbot posts as, from `github.bot_login` (None: work it out)."""
        self._configured = bot_login
        self._login = bot_login

    @property
    def identity(self) -> str:
        if self._login is None:
            self._login = self._own_login()
        return self._login

    def _own_login(self) -> str:
        """A user's token names its user (GET /user); an installation token cannot read it."""
        if self._token.startswith("ghs_"):
            return WORKFLOW_BOT
        try:
            user = self._call("read the token's user", lambda: self._gh.get_user().login)
        except (GitHubDenied, BadInput):
            if self._token.startswith(_USER_TOKENS):
                raise
            return WORKFLOW_BOT  # an unprefixed (older or Enterprise) installation token
        return str(user or WORKFLOW_BOT)

    def _mine(self, item: Any) -> bool:
        user = getattr(item, "user", None)
        login = getattr(user, "login", None) if user is not None else None
        return isinstance(login, str) and login.lower() == self.identity.lower()

    def _learn(self, created: Any) -> None:
        """What GitHub says wrote our comment is who we are; say so if config disagreed."""
        login = getattr(getattr(created, "user", None), "login", None)
        if isinstance(login, str) and login.lower() != self.identity.lower():
            self.notes.append(
                f"tierbot posts as {login}, but looked for its comments from {self.identity}: "
                f"set github.bot_login: {login!r} in .tierbot.yml so it finds them next time."
            )
            self._login = login

    # -- reads -----------------------------------------------------------------------------

    def open_pull(self, repo: str, number: int) -> PullInfo:
        self._repo = self._call(f"read repository {repo}", self._gh.get_repo, repo)
        self._pull = self._call(f"read pull request #{number}", self._repo.get_pull, number)
        return pull_from_payload(self._pull.raw_data, repo)

    def file_at(self, path: str, ref: str) -> str | None:
        """A file's text at `ref`, or None when it does not exist there."""
        from github import UnknownObjectException

        try:
            content = self._call(f"read {path}", self._repo.get_contents, path, ref=ref)
        except BadInput:
            return None
        except UnknownObjectException:
            return None
        if isinstance(content, list):  # a directory
            return None
        data: bytes = content.decoded_content
        return data.decode("utf-8", "replace")

    def patches(self) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """path -> patch (hunks) of every file GitHub shows; plus the raw file entries."""
        entries = self._call("list the pull request's files", lambda: list(self._pull.get_files()))
        raw = [e.raw_data for e in entries]
        return {r["filename"]: r["patch"] for r in raw if r.get("patch")}, raw

    def _summary_comment(self) -> Any:
        for c in self._call("read comments", lambda: list(self._pull.get_issue_comments())):
            if SUMMARY_MARKER in (c.body or "") and self._mine(c):
                return c
        return None

    def existing(self) -> Existing:
        """Our summary comment and inline comments: by marker AND by our own identity only."""
        ignored = 0
        summary = None
        for c in self._call("read comments", lambda: list(self._pull.get_issue_comments())):
            body = c.body or ""
            if "<!-- tierbot:" not in body:
                continue
            if not self._mine(c):
                ignored += 1  # a contributor, a member or another bot: never trusted
            elif summary is None and SUMMARY_MARKER in body:
                summary = c
        self._summary = summary
        posted: list[Posted] = []
        comments = self._call(
            "read review comments", lambda: list(self._pull.get_review_comments())
        )
        for c in comments:
            found = _FP_MARKER.search(c.body or "")
            if found is None:
                continue
            if not self._mine(c):
                ignored += 1
                continue
            line = getattr(c, "line", None)
            posted.append(
                Posted(
                    found.group(1),
                    found.group(2),
                    str(c.path),
                    line if isinstance(line, int) else None,
                    int(c.id),
                )
            )
        return Existing(
            summary.id if summary is not None else None,
            summary.body if summary is not None else "",
            tuple(posted),
            ignored,
        )

    def resolved(self, posted: Sequence[Posted]) -> set[str] | None:
        """Fingerprints of our inline comments whose thread a reviewer resolved (None: unknown).

        Only the GraphQL API knows whether a thread is resolved; it names apps without "[bot]".
        """
        if not posted or self._repo is None or self._pull is None:
            return set()
        owner, name = str(self._repo.full_name).split("/", 1)
        me = self.identity.lower().removesuffix("[bot]")
        found: set[str] = set()
        cursor: str | None = None
        for _ in range(20):  # 2,000 threads at most: bounded like everything else
            try:
                _, data = self._call(
                    "read which review threads are resolved",
                    self._gh.requester.graphql_query,
                    _THREADS_QUERY,
                    {"owner": owner, "name": name, "number": self._pull.number, "cursor": cursor},
                )
            except (GitHubFailed, GitHubDenied, BadInput):
                return None
            threads = data["data"]["repository"]["pullRequest"]["reviewThreads"]
            for t in threads["nodes"]:
                first = (t.get("comments") or {}).get("nodes") or [{}]
                author = str((first[0].get("author") or {}).get("login", "")).lower()
                marker = _FP_MARKER.search(str(first[0].get("body") or ""))
                if t.get("isResolved") and marker and author.removesuffix("[bot]") == me:
                    found.add(marker.group(1))
            if not threads["pageInfo"]["hasNextPage"]:
                return found
            cursor = threads["pageInfo"]["endCursor"]
        return found

    # -- writes ----------------------------------------------------------------------------

    def post_review(
        self, head_sha: str, body: str, event: str, comments: Sequence[dict[str, Any]]
    ) -> None:
        commit = self._repo.get_commit(head_sha)  # lazy: the sha comes from the url
        marker = f"<!-- tierbot:review={self.run_id} -->"
        text = sanitize.cap(body, sanitize.GITHUB_BODY_LIMIT - len(marker) - 1) + "\n" + marker

        def landed() -> Any:
            reviews = self._call("re-read reviews", lambda: list(self._pull.get_reviews()))
            return next((r for r in reviews if marker in (r.body or "") and self._mine(r)), None)

        created = self._write(
            "review",
            lambda: self._pull.create_review(
                commit=commit, body=text, event=event, comments=list(comments)
            ),
            landed,
        )
        self._learn(created)

    def upsert_summary(self, body: str) -> None:
        """Edit the summary comment `existing()` found, or post the first one."""
        body = sanitize.cap(body)
        if self._summary is not None:
            summary = self._summary
            if not self._mine(summary):  # existing() only keeps ours; this is the last guard
                raise GitHubDenied(f"the summary comment {summary.id} is not {self.identity}'s")

            def edited() -> Any:
                self._call("re-read the summary comment", summary.update)
                return summary if summary.body == body else None

            self._write("edit the summary comment", lambda: summary.edit(body), edited)
            return
        created = self._write(
            "post the summary comment",
            lambda: self._pull.create_issue_comment(body),
            self._summary_comment,
        )
        self._summary = created
        self._learn(created)


_THREADS_QUERY = """
query($owner: String!, $name: String!, $number: Int!, $cursor: String) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      reviewThreads(first: 100, after: $cursor) {
        pageInfo { hasNextPage endCursor }
        nodes { isResolved comments(first: 1) { nodes { body author { login } } } }
      }
    }
  }
}
"""


def _wait_of(e: Any) -> float | None:
    """The seconds a rate-limit answer asks for: its own wait, Retry-After, or the reset."""
    wait = getattr(e, "wait", None)
    if isinstance(wait, (int, float)):
        return float(wait)
    headers = {str(k).lower(): v for k, v in (getattr(e, "headers", None) or {}).items()}
    try:
        if "retry-after" in headers:
            return float(headers["retry-after"])
        if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            return max(0.0, float(headers["x-ratelimit-reset"]) - time.time())
    except ValueError:
        return None
    return None


def _first(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:200]


def _message(e: Any) -> str:
    data = getattr(e, "data", None)
    if isinstance(data, dict):
        msg = str(data.get("message", ""))
        errors = data.get("errors")
        if errors:
            msg += ": " + "; ".join(str(x) for x in errors)[:300]
        return msg
    return str(data or e)[:300]
