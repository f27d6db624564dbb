"""`tierbot pr`: review a GitHub pull request and post the result where reviewers look.

The pull request comes from the Actions event (`GITHUB_EVENT_PATH`) or `--repo/--number`.
Review settings come from the *base* commit, so a pull request cannot loosen its own review.  The
diff comes from the local checkout when it has both commits, else from the API.  Posting degrades
instead of failing: a read-only token (fork pull requests) gets annotations and the step summary.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from tierbot import config as config_mod
from tierbot import environment, findings, outcome, reporters
from tierbot.errors import BadInput, TierbotError, shown
from tierbot.findings import NEAR_LINES, near_key
from tierbot.git import repository
from tierbot.github import pull as gh
from tierbot.github import sanitize, state
from tierbot.output import guard
from tierbot.records import Change, FileDiff, Range, ReviewResult
from tierbot.words import plural, verb

DEFAULT_API = "https://api.github.com"


@dataclass
class _Run:
    """What one run learned and decided, for the summary, the outputs and the exit code."""

    notes: list[str] = field(default_factory=list)
    incremental_from: str | None = None
    reviewed_spec: str = ""
    fallback: str | None = None  # why we could not post to the pull request


def main(
    *,
    repo: str | None = None,
    number: int | None = None,
    config_path: str | None = None,
    fail_on: str | None = None,
    dry_run: bool = False,
    fmt: str | None = None,
    tier: str = "auto",
    budget: float | None = None,
    no_cache: bool = False,
    cwd: str = ".",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Review one pull request; return the exit code (SPEC §2; default fail-on `none`)."""
    out = out or sys.stdout
    err = err or sys.stderr
    env = os.environ
    run = _Run()

    target = _identify(repo, number, env, err)
    if target is None:
        return 0  # not a pull request event: noted already

    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or ""
    api_url = env.get("GITHUB_API_URL") or DEFAULT_API
    client: gh.Client | None = None
    if token:
        # Until the base branch's github.timeout_s is known, its default bounds the run.
        clock = gh.Clock(time.monotonic() + config_mod.GitHub().timeout_s)
        # Tests and Enterprise servers without secondary rate limits may drop PyGithub's pauses.
        pause = _seconds(environment.text("TIERBOT_GITHUB_THROTTLE"))
        if pause is None:
            client = gh.Client(token, api_url, clock=clock)
        else:
            client = gh.Client(
                token, api_url, clock=clock, write_delay=pause, request_delay=pause / 4
            )
    elif not isinstance(target, gh.PullInfo):
        raise BadInput("tierbot pr: GITHUB_TOKEN is not set (needed to read the pull request)")
    else:
        run.fallback = "no GITHUB_TOKEN, so nothing can be posted to the pull request"

    try:
        return _review(
            target,
            client,
            run,
            config_path=config_path,
            fail_on=fail_on,
            dry_run=dry_run,
            fmt=fmt,
            tier=tier,
            budget=budget,
            no_cache=no_cache,
            cwd=cwd,
            out=out,
            err=err,
        )
    except TierbotError as e:
        _step_summary(
            env,
            f"## tierbot review\n\n**tierbot could not review this pull request:** "
            f"{sanitize.text(str(e))}\n",
        )
        raise
    finally:
        if client is not None:
            client.close()


def _seconds(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number <= 60 else None


def _identify(
    repo: str | None, number: int | None, env: Any, err: TextIO
) -> gh.PullInfo | tuple[str, int] | None:
    """The event's pull request, or (repo, number) to ask the API for; None: not a PR event."""
    if (repo is None) != (number is None):
        raise BadInput("tierbot pr: --repo and --number go together")
    if repo is not None and number is not None:
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise BadInput(f"tierbot pr: --repo must be OWNER/NAME, not {shown(repo)}")
        return repo, number
    event_path = env.get("GITHUB_EVENT_PATH")
    if not event_path:
        raise BadInput(
            "tierbot pr: give --repo OWNER/NAME --number N, or run it in a GitHub "
            "Actions workflow triggered by pull_request"
        )
    name = env.get("GITHUB_EVENT_NAME", "")
    payload = gh.read_event(event_path)
    pr = payload.get("pull_request")
    if (name and name not in gh.PR_EVENTS) or not isinstance(pr, dict):
        print(
            f"tierbot: nothing to do: the {name or 'workflow'} event is not a pull request "
            "(tierbot pr reviews pull_request and pull_request_target events)",
            file=err,
        )
        _step_summary(
            env, f"tierbot: skipped, the `{name or 'unknown'}` event is not a pull request.\n"
        )
        return None
    full = (payload.get("repository") or {}).get("full_name") or env.get("GITHUB_REPOSITORY", "")
    return gh.pull_from_payload(pr, str(full))


def _review(
    target: gh.PullInfo | tuple[str, int],
    client: gh.Client | None,
    run: _Run,
    *,
    config_path: str | None,
    fail_on: str | None,
    dry_run: bool,
    fmt: str | None,
    tier: str,
    budget: float | None,
    no_cache: bool,
    cwd: str,
    out: TextIO,
    err: TextIO,
) -> int:
    from tierbot.pipeline import Options, run_review

    env = os.environ
    started = time.monotonic()
    from_event = isinstance(target, gh.PullInfo)
    if isinstance(target, gh.PullInfo):
        # The event's shas are what the workflow checked out; the API object is for posting.
        info = target
        if client is not None:
            try:
                client.open_pull(info.repo, info.number)
            except (gh.GitHubDenied, gh.GitHubFailed) as e:
                run.fallback = str(e)
                client = None
    else:
        assert client is not None
        info = client.open_pull(*target)

    root = _local_root(cwd)
    cfg, cfg_fail_on = _base_config(info, root, client, config_path, run)
    if client is not None:
        client.clock.deadline = started + cfg.github.timeout_s
        client.set_identity(cfg.github.bot_login)

    if info.draft and not cfg.github.review_drafts:
        msg = (
            f"tierbot: skipped: pull request #{info.number} is a draft "
            "(set github.review_drafts: true to review drafts)"
        )
        print(msg, file=err)
        _step_summary(env, msg + "\n")
        return 0

    existing = gh.Existing(None, "")
    if client is not None:
        try:
            existing = client.existing()
        except (gh.GitHubDenied, gh.GitHubFailed) as e:
            # Without knowing what is posted, posting could repeat it: annotations instead.
            run.fallback = str(e)
            client = None
    if existing.ignored:
        run.notes.append(
            f"Ignored {plural(existing.ignored, 'comment')} carrying tierbot markers that "
            f"{client.identity if client else 'tierbot'} did not write."
        )

    full, review_change = _changes(info, root, client, existing, run, fetch=from_event)
    threshold = fail_on or cfg_fail_on or "none"
    opts = Options(
        dry_run=dry_run,
        tier=tier,
        budget_usd=budget,
        use_cache=not no_cache,
        repo_label=info.repo,
        fail_on=threshold,
        intent=gh.intent(info),
        command="pr",
    )
    fresh = run_review(review_change, cfg, opts)
    if fresh.status == "offline":
        run.notes.append(
            "No ANTHROPIC_API_KEY: this is the offline review (analysis, routing, "
            "cost estimate and local rule checks; no model was called)."
        )
    # The gate covers every finding open at this head, not only this push's (SPEC §6).
    result, carried = _open_findings(fresh, existing, full, review_change, client, run)

    lines = gh.diff_lines(full.files)
    # Uncertain and minor findings are listed in the summary only (github.inline_min_severity,
    # min_confidence); only this run's findings are new, earlier ones were placed already.
    inline, _ = findings.inline_split(
        fresh.findings, cfg.min_confidence, cfg.github.inline_min_severity
    )
    plan = gh.plan_comments(inline, lines, existing.posted, cfg.github.max_comments)
    posted, refused = 0, ()
    state_line, left_out = state.block(info.head_sha, result.findings, full)
    if left_out:
        run.notes.append(
            f"{plural(left_out, 'lower-severity open finding')} did not fit the summary's list: "
            "the next push is reviewed whole."
        )
    if not dry_run and client is not None and run.fallback is None:
        try:
            posted, refused = _post_review(client, info, plan, cfg.github.review_event, run)
            ctx = _context(info, run, posted, refused, carried, existing, client)
            client.upsert_summary(gh.summary_body(result, plan, ctx, state_line))
        except (gh.GitHubDenied, gh.ReviewRejected) as e:
            run.fallback = str(e)
        except TierbotError as e:
            # GitHub failing after the review is done must not lose the review.
            if isinstance(e, BadInput):
                raise
            run.fallback = str(e)
    ctx = _context(info, run, posted, refused, carried, existing, client)
    body = gh.summary_body(result, plan, ctx)

    if run.fallback is not None:
        reason = run.fallback
        if info.from_fork:
            reason += " (pull requests from forks get a read-only token)"
        print(
            f"tierbot: could not post to the pull request: {reason}; "
            "findings follow as annotations",
            file=err,
        )
        annotations = reporters.render("github", result)
        if annotations:
            out.write(
                guard(annotations if annotations.endswith("\n") else annotations + "\n", "github")
            )
        body = (
            f"> **tierbot could not post to the pull request:** {sanitize.text(reason)}. "
            "The findings are shown as annotations and below.\n\n" + body
        )
    elif dry_run:
        print("tierbot: dry run: nothing posted", file=err)
        if fmt is None:
            out.write(guard(body + "\n", "markdown"))
    if fmt is not None:
        text = reporters.render(fmt, result)
        out.write(guard(text if text.endswith("\n") else text + "\n", fmt))

    decision = outcome.decide(result, threshold, cfg.on_error)
    _step_summary(env, body + "\n")
    _outputs(env, result, blocking=bool(outcome.blocking(result.findings, threshold)))
    if decision.warning:
        print(f"tierbot: {decision.warning}", file=err)
    print(
        f"tierbot: {plural(len(result.findings), 'open finding')}"
        f" ({len(fresh.findings)} from this run), tier {result.route.tier},"
        f" {plural(posted, 'inline comment')} posted, {reporters.cost_line(result)}",
        file=err,
    )
    return decision.code


def _open_findings(
    fresh: ReviewResult,
    existing: gh.Existing,
    full: Change,
    push: Change,
    client: gh.Client | None,
    run: _Run,
) -> tuple[ReviewResult, frozenset[str]]:
    """This run's findings plus the earlier ones still open; and the carried fingerprints."""
    before = state.read(existing.summary_body) if existing.summary_id is not None else None
    if run.incremental_from is None or before is None or before.head != run.incremental_from:
        return fresh, frozenset()  # a full review: it found everything that is open
    resolved = client.resolved(existing.posted) if client is not None else set()
    if resolved is None:
        run.notes.append(
            "Could not read which review threads are resolved: earlier findings stay open."
        )
        resolved = set()
    carried = state.carry(before, push, full, resolved)
    mine = {f.fingerprint for f in fresh.findings}
    near = {(f.path, near_key(f), f.line) for f in fresh.findings if f.line is not None}
    kept = [
        f
        for f in carried.findings
        if f.fingerprint not in mine
        and not any(
            p == f.path and k == near_key(f) and abs(n - (f.line or 0)) <= NEAR_LINES
            for p, k, n in near
        )
    ]
    closed = [
        (carried.changed, "on lines this push changed (reviewed again)"),
        (carried.gone, "in files the pull request no longer changes"),
        (carried.resolved, "resolved by a reviewer"),
    ]
    said = "; ".join(f"{n} {why}" for n, why in closed if n)
    if said:
        run.notes.append(f"Findings of earlier pushes closed since the last review: {said}.")
    findings = tuple(sorted((*fresh.findings, *kept), key=lambda f: (f.path, f.line or 0)))
    return dataclasses.replace(fresh, findings=findings), frozenset(f.fingerprint for f in kept)


def _context(
    info: gh.PullInfo,
    run: _Run,
    posted: int,
    refused: Sequence[Any],
    carried: frozenset[str],
    existing: gh.Existing,
    client: gh.Client | None,
) -> gh.SummaryContext:
    return gh.SummaryContext(
        head_sha=info.head_sha,
        base_sha=info.base_sha,
        reviewed_spec=run.reviewed_spec,
        incremental_from=run.incremental_from,
        posted_inline=posted,
        inline_failed=tuple(refused),
        notes=(*run.notes, *(client.notes if client is not None else ())),
        carried=carried,
        posted_before=existing.fingerprints,
    )


def _post_review(
    client: gh.Client, info: gh.PullInfo, plan: gh.Plan, event: str, run: _Run
) -> tuple[int, tuple[Any, ...]]:
    """Post one review; on 422 retry without what GitHub cannot place, then without any."""
    if not plan.inline:
        return 0, ()
    body = (
        f"tierbot: {plural(len(plan.inline), 'new finding')} on this push; "
        "the summary comment has the routing, cost and full list."
    )
    items = list(plan.inline)
    try:
        client.post_review(info.head_sha, body, event, [p.comment for p in items])
        return len(items), ()
    except gh.ReviewRejected as e:
        first = str(e)
    # Check each comment against GitHub's own view of the diff and drop those it cannot place.
    patches, _ = client.patches()
    gh_lines = gh.lines_from_patches(patches)
    keep = [p for p in items if _fits(p.comment, gh_lines)]
    refused = [p.finding for p in items if p not in keep]
    if keep and (refused or event != "COMMENT"):
        try:
            # A 422 that no comment explains may be the event (e.g. Actions may not approve).
            client.post_review(info.head_sha, body, "COMMENT", [p.comment for p in keep])
            run.notes.append(
                f"GitHub rejected the first review ({first}); posted it again "
                f"without {plural(len(refused), 'comment')} it could not place."
            )
            return len(keep), tuple(refused)
        except gh.ReviewRejected:
            pass
    run.notes.append(
        f"GitHub rejected the review ({first}); its {plural(len(items), 'inline comment')} "
        f"{verb(len(items), 'is', 'are')} listed in this summary instead."
    )
    return 0, tuple(p.finding for p in items)


def _fits(comment: dict[str, Any], lines: dict[str, dict[int, int]]) -> bool:
    file_lines = lines.get(comment["path"], {})
    line = comment["line"]
    if line not in file_lines:
        return False
    start = comment.get("start_line")
    return start is None or (start < line and file_lines.get(start) == file_lines[line])


# --- where the diff and the settings come from -------------------------------------------


def _local_root(cwd: str) -> str | None:
    try:
        return repository.toplevel(cwd)
    except BadInput:
        return None


def _base_config(
    info: gh.PullInfo,
    root: str | None,
    client: gh.Client | None,
    config_path: str | None,
    run: _Run,
) -> tuple[config_mod.Config, str | None]:
    """The review settings as the base commit has them; the PR's own edits never count."""
    name = config_path or config_mod.CONFIG_NAME
    text: str | None = None
    where = f"{name} at the base commit {info.base_sha[:12]}"
    if (
        config_path
        and os.path.isabs(config_path)
        and (root is None or os.path.commonpath([root, os.path.abspath(config_path)]) != root)
    ):
        # A file outside the checkout was put there by the workflow, not by the pull request.
        text = config_mod.read(config_path)
        return config_mod.parse(text, config_path), _explicit_fail_on(text, config_path)
    if root is not None and config_path and os.path.isabs(config_path):
        name = os.path.relpath(config_path, root)
    if root is not None and repository.at(root).has(info.base_sha):
        text = repository.at(root).text_at(info.base_sha, name.replace(os.sep, "/"))
    elif client is not None:
        text = client.file_at(name, info.base_sha)
    else:
        run.notes.append(f"Could not read {where}: using the default settings.")
        return config_mod.default(), None
    if text is None:
        if config_path:
            run.notes.append(f"{where} does not exist: using the default settings.")
        return config_mod.default(), None
    return config_mod.parse(text, where), _explicit_fail_on(text, where)


def _explicit_fail_on(text: str, name: str) -> str | None:
    """`fail_on` only when the file sets it: `pr` defaults to `none`, not the config default."""
    data = config_mod.document(text, name)  # parsed (and so checked) already
    value = data.get("fail_on") if isinstance(data, dict) else None
    return str(value) if isinstance(value, str) else None


def _have(root: str, *shas: str) -> bool:
    return repository.at(root).has(*shas)


def _fetch(root: str, *shas: str) -> bool:
    """Fetch commits a shallow checkout lacks; never prompt for credentials."""
    return repository.at(root).fetch(*shas)


def _is_ancestor(root: str, old: str, new: str) -> bool:
    return repository.at(root).is_ancestor(old, new)


def _changes(
    info: gh.PullInfo,
    root: str | None,
    client: gh.Client | None,
    existing: gh.Existing,
    run: _Run,
    *,
    fetch: bool,
) -> tuple[Change, Change]:
    """(the whole pull request's diff, the part to review this run)."""
    from tierbot.git.diff import read_change

    spec = f"{info.base_sha}...{info.head_sha}"
    full: Change | None = None
    # Only a workflow's own checkout is worth fetching into; elsewhere the API is the source.
    if root is not None and (
        _have(root, info.base_sha, info.head_sha)
        or (fetch and _fetch(root, info.base_sha, info.head_sha))
    ):
        try:
            full = read_change(root, spec)
        except BadInput as e:  # e.g. a shallow clone without the merge base
            run.notes.append(
                f"The local checkout could not diff {spec[:30]}… ({e}); "
                "used the API's diff instead."
            )
    run.reviewed_spec = spec
    last = gh.last_head(existing.summary_body)
    if full is None:
        if client is None:
            raise BadInput(
                "tierbot pr: the checkout lacks the pull request's commits and there "
                "is no GITHUB_TOKEN to read its diff from the API"
            )
        if last is not None and last != info.head_sha:
            run.notes.append(
                "Without the commits in a local checkout the whole pull request was "
                "reviewed again; findings already posted are not repeated."
            )
        api = _api_change(client, info)
        return api, api
    if last is None or last == info.head_sha or root is None:
        return full, full
    before = state.read(existing.summary_body)
    if before is None or before.head != last or before.left_out:
        # Reviewing only the new commits would lose what the summary cannot carry forward.
        run.notes.append(
            "The summary's list of open findings is missing or incomplete (an older tierbot, "
            "or more findings than it holds): reviewed the whole pull request again."
        )
        return full, full
    if _have(root, last) and _is_ancestor(root, last, info.head_sha):
        run.incremental_from = last
        run.reviewed_spec = f"{last}..{info.head_sha}"
        return full, read_change(root, f"{last}..{info.head_sha}")
    run.notes.append(
        f"The last reviewed commit {last[:12]} is no longer in this pull request's "
        "history (force-push): reviewed the whole pull request again."
    )
    return full, full


def _api_change(client: gh.Client, info: gh.PullInfo) -> Change:
    """The pull request's diff from the files API, parsed like a local one."""
    from tierbot.git.diff import parse

    _, entries = client.patches()
    text = "".join(_file_diff(e) for e in entries)
    files: tuple[FileDiff, ...] = parse(text)
    return Change(
        root="",  # no checkout holds these commits: nothing to read complexity or history from
        range=Range(f"{info.base_sha}...{info.head_sha}", info.base_sha, info.head_sha),
        files=files,
        diff_bytes=len(text.encode("utf-8", "surrogateescape")),
        notes=("The diff came from the GitHub API (the checkout lacks the commits).",),
    )


def _file_diff(e: dict[str, Any]) -> str:
    """One file of the files API as `git diff` would print it."""
    path: str = e["filename"]
    status: str = e.get("status", "modified")
    patch: str | None = e.get("patch")
    old = e.get("previous_filename") or path
    head = f"diff --git a/{old} b/{path}\n"
    if status == "added":
        head += "new file mode 100644\n"
    elif status == "removed":
        head += "deleted file mode 100644\n"
    elif status == "renamed":
        head += f"similarity index 90%\nrename from {old}\nrename to {path}\n"
    if not patch:
        if status == "renamed":
            return head
        return head + f"Binary files a/{old} and b/{path} differ\n"
    minus = "/dev/null" if status == "added" else f"a/{old}"
    plus = "/dev/null" if status == "removed" else f"b/{path}"
    return head + f"--- {minus}\n+++ {plus}\n" + patch.rstrip("\n") + "\n"


# --- what a runner reads back ---------------------------------------------------------------


def _step_summary(env: Any, text: str) -> None:
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(sanitize.cap_bytes(text))
    except OSError as e:
        print(f"tierbot: cannot write the step summary {path}: {e.strerror}", file=sys.stderr)


def _outputs(env: Any, result: ReviewResult, *, blocking: bool) -> None:
    path = env.get("GITHUB_OUTPUT")
    if not path:
        return
    cost = result.usage.cost_usd if result.usage.calls else 0.0
    values = {
        "tier": result.route.tier,
        "cost-usd": f"{cost:.6f}",
        "findings": str(len(result.findings)),
        "blocking": "true" if blocking else "false",
    }
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.writelines(f"{k}={v}\n" for k, v in values.items())
    except OSError as e:
        print(f"tierbot: cannot write GITHUB_OUTPUT {path}: {e.strerror}", file=sys.stderr)
