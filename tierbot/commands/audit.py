"""`tierbot audit RANGE`: every commit of RANGE reviewed through the Message Batches API.

Each commit along the first parents (merges with `--merges`) is one change, analysed, routed
and checked by the local rules exactly as `tierbot review <sha>^!` would; its model units become
requests of a Message Batch (`review/batch.py`) at half price.  The estimate (batch prices) and
the budget come before anything is sent; a person at a terminal is asked before the audit spends
above the budget.  A rerun of the same command, or `--resume`, takes up the batches of an
interrupted run instead of sending them again.  One report covers every commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, TextIO

from tierbot import config as config_mod
from tierbot.commands.confirm import spend_above
from tierbot.commands.costs import duration_s
from tierbot.commands.review import open_output, say, write_report
from tierbot.config import Config
from tierbot.errors import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK, BadInput
from tierbot.git import history, repository
from tierbot.git.diff import read_change
from tierbot.outcome import Outcome, blocking
from tierbot.pipeline import Options, conclude, intent, run_review
from tierbot.records import (
    TIERS,
    AuditEstimate,
    AuditResult,
    AuditStatus,
    BatchSummary,
    CommitReview,
    Range,
    ReviewResult,
    Status,
    Usage,
)
from tierbot.review.claude import has_credentials
from tierbot.routing.pricing import BATCH_PRICE_FACTOR
from tierbot.words import plural

if TYPE_CHECKING:
    from tierbot.review import batch

# What an audit may spend without --budget: a few hundred commits at batch prices.
DEFAULT_BUDGET_USD = 10.0
DEFAULT_WAIT = "1h"
MAX_COMMITS = 1000
OFFLINE_NOTE = (
    "model review skipped: no ANTHROPIC_API_KEY (nor another credential the SDK reads); "
    "local rule checks only"
)


class Args(NamedTuple):
    range: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    merges: bool = False
    format: str = "text"
    output: str | None = None
    tier: str = "auto"
    fail_on: str | None = None  # None: the config's fail_on
    config: str | None = None
    budget: float | None = None  # None: DEFAULT_BUDGET_USD
    yes: bool = False
    no_cache: bool = False
    resume: bool = False
    cancel: bool = False
    wait: str | None = None  # a duration; None: DEFAULT_WAIT
    dry_run: bool = False
    max_commits: int = MAX_COMMITS
    verbose: bool = False
    quiet: bool = False


class _Planned(NamedTuple):
    commit: history.Commit
    change_planned: ReviewResult  # analysis, route, estimate and local findings
    work: batch.Work


def main(args: Args, cwd: str = ".") -> int:
    root = repository.toplevel(cwd)
    args = _resumed(args, root)
    cfg = config_mod.load(args.config, root)
    wait = duration_s(args.wait or DEFAULT_WAIT)
    if wait is None:
        raise BadInput(f"--wait: expected a duration (90s, 30m, 2h) or seconds, not {args.wait!r}")
    if args.max_commits < 1:
        raise BadInput("--max-commits must be at least 1")
    fail_on = args.fail_on or cfg.fail_on
    with open_output(args.output) as output:
        rng, commits = _commits(root, args)
        planned = _plan(root, commits, cfg, args, fail_on)
        estimate = _estimate(planned)
        limit = DEFAULT_BUDGET_USD if args.budget is None else args.budget
        say(_estimate_line(rng, commits, estimate, limit), args.quiet)
        offline = not has_credentials()
        if args.dry_run or offline or (estimate.requests == 0 and not args.cancel):
            status: Status = "dry-run" if args.dry_run else "complete"
            if offline and not args.dry_run and estimate.requests:
                status = "offline"
            result = _report(rng, planned, None, cfg, estimate, limit, status)
            if status == "offline":
                result = dataclasses.replace(result, notes=(OFFLINE_NOTE,))
        else:
            keep = (
                limit
                if estimate.cost_usd <= limit
                else spend_above("this audit (at batch prices)", estimate.cost_usd, limit, args.yes)
            )
            result = _audit(root, rng, planned, cfg, args, fail_on, estimate, keep, wait)
        _emit(result, args, output)
    decision = _decide(result, fail_on, cfg.on_error)
    if decision.warning:
        say(f"tierbot: {decision.warning}")
    return decision.code


# --- which commits ------------------------------------------------------------------------


def _resumed(args: Args, root: str) -> Args:
    """`--resume` without RANGE: the last unfinished audit of this repository, as it was run."""
    if not args.resume or args.range:
        return args
    from tierbot.review import batchlog
    from tierbot.review.ledger import DB_NAME, Ledger, home

    path = home() / DB_NAME
    found = None
    if path.exists():
        try:
            with Ledger(path, readonly=True) as ledger:
                found = batchlog.last_audit(ledger, root)
        except Exception as e:
            raise BadInput(f"--resume: cannot read the ledger {path}: {e}") from None
    if found is None:
        raise BadInput(f"--resume: no unfinished audit of {root} in the ledger ({path})")
    saved = found.args
    paths, most, tier = saved.get("paths"), saved.get("max_commits"), saved.get("tier")
    return args._replace(
        range=(str(saved.get("range", "")),),
        paths=tuple(str(p) for p in paths) if isinstance(paths, list) else (),
        merges=saved.get("merges") is True,
        tier=str(tier) if tier in ("auto", *TIERS) else "auto",
        max_commits=max(args.max_commits, most if isinstance(most, int) else 0),
    )


def _commits(root: str, args: Args) -> tuple[Range, list[history.Commit]]:
    """RANGE (`A..B`, `A...B`, or `REV` for all of REV's history) along first parents."""
    if len(args.range) != 1 or not args.range[0].strip():
        raise BadInput("tierbot audit takes one RANGE, e.g. HEAD~50..HEAD (or --resume)")
    spec = args.range[0].strip()
    repo = repository.at(root)
    if "..." in spec:
        left, right = spec.split("...", 1)
        a, head = repo.commit(left or "HEAD"), repo.commit(right or "HEAD")
        base: str | None = repo.merge_base(a, head)
        if base is None:
            raise BadInput(f"bad range {spec!r}: the two sides have no common ancestor")
    elif ".." in spec:
        left, right = spec.split("..", 1)
        base, head = repo.commit(left or "HEAD"), repo.commit(right or "HEAD")
    else:
        base, head = None, repo.commit(spec)
    commits = history.first_parent(root, base, head, args.max_commits, merges=args.merges)
    if len(commits) > args.max_commits:
        raise BadInput(
            f"{spec} holds more than {args.max_commits} commits: audit a narrower range "
            "or raise --max-commits"
        )
    if not commits:
        raise BadInput(f"no commits to audit in {spec}")
    return Range(spec, base or "", head), commits


def _plan(
    root: str, commits: list[history.Commit], cfg: Config, args: Args, fail_on: str
) -> list[_Planned]:
    """Each commit analysed, routed, estimated and checked by the local rules (nothing sent)."""
    from tierbot.review.batch import Work

    out = []
    show = sys.stderr.isatty() and not args.quiet
    # No limit per commit: the audit's own budget covers the whole range (batch.over_budget).
    options = Options(
        dry_run=True,
        tier=args.tier,
        budget_usd=math.inf,
        repo_label=root,
        fail_on=fail_on,
        command="audit",
    )
    for i, c in enumerate(commits, 1):
        if show:
            print(f"\rtierbot: analysing commit {i}/{len(commits)}", end="", file=sys.stderr)
        change = read_change(root, f"{c.sha}^!", paths=args.paths)
        planned = run_review(change, cfg, options)
        work = Work(
            c.sha,
            change,
            planned.analysis,
            planned.route,
            planned.findings,
            intent(change),
        )
        out.append(_Planned(c, planned, work))
    if show:
        print("\r\x1b[K", end="", file=sys.stderr)
    return out


def _estimate(planned: list[_Planned]) -> AuditEstimate:
    units = sum(1 for p in planned for u in p.change_planned.route.units if u.tier != "skip")
    one_by_one = sum(p.change_planned.estimate.cost_usd for p in planned)
    opus = sum(p.change_planned.estimate.all_opus_cost_usd for p in planned)
    return AuditEstimate(
        units, one_by_one * BATCH_PRICE_FACTOR, one_by_one, opus * BATCH_PRICE_FACTOR
    )


def _estimate_line(
    rng: Range, commits: list[history.Commit], e: AuditEstimate, limit: float
) -> str:
    return (
        f"tierbot: audit {rng.spec}: {plural(len(commits), 'commit')},"
        f" {plural(e.requests, 'review unit')}; estimated ${e.cost_usd:.4f} at batch prices"
        f" (one by one ${e.interactive_cost_usd:.4f}); budget ${limit:.2f}"
    )


# --- the audit ----------------------------------------------------------------------------


def _audit(
    root: str,
    rng: Range,
    planned: list[_Planned],
    cfg: Config,
    args: Args,
    fail_on: str,
    estimate: AuditEstimate,
    limit: float | None,
    wait: float,
) -> AuditResult:
    from tierbot.review import batch, batchlog, calibrate
    from tierbot.review.ledger import Ledger

    key = _audit_key(root, planned, args)
    settings = batch.Settings(
        config=cfg,
        repo_label=root,
        audit_key=key,
        calibration=calibrate.calibration(cfg),
        budget_usd=limit,
        use_cache=not args.no_cache,
        fail_on=fail_on,
        wait_s=wait,
        cancel=args.cancel,
    )
    saved: dict[str, object] = {
        "range": rng.spec,
        "paths": list(args.paths),
        "merges": args.merges,
        "tier": args.tier,
        "max_commits": args.max_commits,
    }
    with Ledger.open() as ledger:
        if ledger.writable:
            batchlog.audit_started(ledger, key, root, saved)
    try:
        done = batch.run([p.work for p in planned], settings, _progress(args.quiet))
    except KeyboardInterrupt:
        say(
            "tierbot: interrupted: batches already sent keep running on the API; rerun the same"
            " command (or `tierbot audit --resume`) to collect them (nothing is sent twice)"
        )
        raise
    if not done.running:
        with Ledger.open() as ledger:
            if ledger.writable:
                batchlog.audit_done(ledger, key)
    return _report(rng, planned, done, cfg, estimate, limit, None)


def _audit_key(root: str, planned: list[_Planned], args: Args) -> str:
    """The same commits, paths and tier: the same audit (for --resume and --cancel)."""
    h = hashlib.sha256()
    for part in (root, args.tier, json.dumps(list(args.paths)), *(p.commit.sha for p in planned)):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()[:32]


def _report(
    rng: Range,
    planned: list[_Planned],
    done: batch.Result | None,
    cfg: Config,
    estimate: AuditEstimate,
    limit: float | None,
    status: Status | None,
) -> AuditResult:
    """One report: each commit's review concluded as a single review is (`pipeline.conclude`)."""
    commits = []
    usage = Usage()
    outcomes = done.outcomes if done is not None else (None,) * len(planned)
    for p, outcome in zip(planned, outcomes, strict=True):
        base = p.change_planned
        if outcome is None:
            reviewable = any(u.tier != "skip" for u in base.route.units)
            single = "complete" if status == "offline" and not reviewable else status
            base = dataclasses.replace(base, status=single or "complete")
        reviewed = conclude(p.work.change, cfg, base, outcome)
        commits.append(CommitReview(p.commit.sha, p.commit.subject, p.commit.parents, reviewed))
        usage = usage + reviewed.usage
    batches: tuple[BatchSummary, ...] = ()
    notes: tuple[str, ...] = ()
    overall: AuditStatus = status or "complete"
    if done is not None:
        batches = tuple(
            BatchSummary(b.batch_id, b.kind, b.requests, b.state, tuple(sorted(b.counts.items())))
            for b in done.batches
        )
        notes = done.notes
        overall = _status(commits, done)
    return AuditResult(
        status=overall,
        range=rng,
        commits=tuple(commits),
        estimate=estimate,
        usage=usage,
        batches=batches,
        budget_usd=limit,
        notes=notes,
    )


def _status(commits: list[CommitReview], done: batch.Result) -> AuditStatus:
    if done.running:
        return "running"
    statuses = {c.result.status for c in commits}
    if statuses == {"failed"}:
        return "failed"
    if statuses & {"failed", "partial"}:
        return "partial"
    return "complete"


def _progress(quiet: bool) -> Callable[[batch.Progress], None] | None:
    """Counts from the batches' request_counts while they run: one updated line on a terminal,
    a line per check elsewhere (CI logs)."""
    if quiet:
        return None
    tty = sys.stderr.isatty()

    def show(p: batch.Progress) -> None:
        done = sum(n for k, n in p.counts.items() if k != "processing")
        parts = ", ".join(f"{p.counts.get(k, 0)} {k}" for k in _OUTCOMES if p.counts.get(k))
        bar = ""
        if tty and p.requests:
            filled = round(20 * done / p.requests)
            bar = "[" + "#" * filled + "." * (20 - filled) + "] "
        line = (
            f"tierbot: {bar}{done}/{p.requests} requests done"
            + (f" ({parts})" if parts else "")
            + f" in {plural(len(p.batch_ids), 'batch')}"
            + f" · {_clock(p.elapsed_s)}"
            + (f" · next check in {_clock(p.next_check_s)}" if p.next_check_s > 0 else "")
        )
        if tty:
            end = "\n" if p.next_check_s <= 0 else ""
            print(f"\r\x1b[K{line}", end=end, file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    return show


_OUTCOMES = ("succeeded", "errored", "expired", "canceled")


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


# --- the report and the exit code ----------------------------------------------------------


def _emit(result: AuditResult, args: Args, output: TextIO | None) -> None:
    from tierbot.reporters import audit as reporter

    text = reporter.render(args.format, result, verbose=args.verbose)
    if args.quiet and args.format == "text":  # the findings (indented) and the cost line
        text = "\n".join(ln for ln in text.splitlines() if ln.startswith(("  ", "cost:")))
    write_report(text, output, args.format)


def _decide(result: AuditResult, fail_on: str, on_error: str) -> Outcome:
    """Findings at or above `fail_on` in any commit -> 1; else an unfinished audit -> 3 (closed)
    or 0 with a warning (open); the same rules as a single review (SPEC §2)."""
    found = [f for c in result.commits for f in c.result.findings]
    if blocking(found, fail_on):
        return Outcome(EXIT_FINDINGS, None)
    if result.status not in ("partial", "failed", "running"):
        return Outcome(EXIT_OK, None)
    reason = {
        "running": "batches are still running: rerun to collect them",
        "failed": "no commit could be reviewed (see notes)",
    }.get(result.status, "some commits were not fully reviewed (see notes)")
    if on_error == "open":
        return Outcome(EXIT_OK, f"warning: audit incomplete ({reason}); not blocking")
    return Outcome(EXIT_INCOMPLETE, f"audit incomplete: {reason}")
