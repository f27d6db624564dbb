"""`tierbot review [RANGE] [-- PATH...]`: review a range of the repository by hand."""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

from tierbot import config as config_mod
from tierbot import outcome
from tierbot.errors import BadInput
from tierbot.git import repository
from tierbot.git.diff import read_change
from tierbot.pipeline import Options, run_review
from tierbot.records import ReviewResult


class Args(NamedTuple):
    range: tuple[str, ...] = ()  # 0-2 revisions, read as `git diff` reads them
    paths: tuple[str, ...] = ()
    staged: bool = False
    dry_run: bool = False
    format: str = "text"
    output: str | None = None
    tier: str = "auto"
    fail_on: str | None = None  # None: the config's fail_on
    config: str | None = None
    budget: float | None = None
    no_cache: bool = False
    verbose: bool = False
    quiet: bool = False


def say(message: str, quiet: bool = False) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def emit(
    result: ReviewResult, fmt: str, output: str | None, verbose: bool, quiet: bool = False
) -> None:
    """Write the report to `output` or stdout; colour only on a terminal."""
    from tierbot import reporters
    from tierbot.reporters.text import finding_lines

    color = output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    if quiet and fmt == "text":
        text = "\n".join(finding_lines(result))
    else:
        text = reporters.render(fmt, result, color=color, verbose=verbose)
    if text and not text.endswith("\n"):
        text += "\n"
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        with open(output, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
    except OSError as e:
        raise BadInput(f"cannot write {output}: {e.strerror}") from None


def main(args: Args, cwd: str = ".") -> int:
    root = repository.toplevel(cwd)
    cfg = config_mod.load(args.config, root)
    if args.budget is not None and args.budget < 0:
        raise BadInput("--budget must be a number of USD >= 0")
    if args.output is not None:
        # Fail before any money is spent, not after: a finished review is never thrown away.
        parent = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise BadInput(f"cannot write {args.output}: {parent} is not a writable directory")
    change = read_change(cwd, args.range, staged=args.staged, paths=args.paths)
    if not change.files:
        where = f" under {' '.join(args.paths)}" if args.paths else ""
        say(
            f"tierbot: nothing to review: no changes between {change.range.sides}{where}",
            args.quiet,
        )
    fail_on = args.fail_on or cfg.fail_on
    opts = Options(
        dry_run=args.dry_run,
        tier=args.tier,
        budget_usd=args.budget,
        use_cache=not args.no_cache,
        repo_label=root,
        fail_on=fail_on,
    )
    result = run_review(change, cfg, opts)
    emit(result, args.format, args.output, args.verbose, args.quiet)
    decision = outcome.decide(result, fail_on, cfg.on_error)
    if decision.warning:
        say(f"tierbot: {decision.warning}")
    return decision.code
