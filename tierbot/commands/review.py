"""`tierbot review [RANGE] [-- PATH...]`: review a range of the repository by hand."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
from collections.abc import Iterator
from typing import NamedTuple, TextIO

from tierbot import config as config_mod
from tierbot import outcome
from tierbot.commands.confirm import spend_above
from tierbot.errors import BadInput
from tierbot.git import repository
from tierbot.git.diff import read_change
from tierbot.output import guard
from tierbot.paths import printable
from tierbot.pipeline import Options, run_review
from tierbot.records import Change, ReviewResult
from tierbot.reporters.text import summary_line


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
    budget: float | None = None  # USD (inf: no limit); None: the config's, by command
    yes: bool = False  # spend above the budget without asking
    no_cache: bool = False
    verbose: bool = False
    quiet: bool = False


def say(message: str, quiet: bool = False) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def emit(
    result: ReviewResult, fmt: str, output: TextIO | None, verbose: bool, quiet: bool = False
) -> None:
    """Write the report to `output` (opened by `open_output`) or stdout; colour only on a tty."""
    from tierbot import reporters
    from tierbot.reporters.text import finding_lines

    color = output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    if quiet and fmt == "text":
        text = "\n".join(finding_lines(result))
    else:
        columns = width() if output is None else None  # a file gets every reason whole
        text = reporters.render(fmt, result, color=color, verbose=verbose, width=columns)
    write_report(text, output, fmt)


def write_report(text: str, output: TextIO | None, fmt: str) -> None:
    """`text` of format `fmt`, kept data for CI runners (`guard`), to `output` (opened by
    `open_output`, emptied first) or stdout."""
    if text and not text.endswith("\n"):
        text += "\n"
    text = guard(text, fmt)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        with contextlib.suppress(OSError):  # a pipe or a device cannot be truncated
            output.truncate(0)
        output.write(text)
        output.flush()
    except OSError as e:
        raise BadInput(f"cannot write {output.name}: {e.strerror}") from None


@contextlib.contextmanager
def open_output(path: str | None) -> Iterator[TextIO | None]:
    """`--output`, really opened for writing before the review (and its spending) starts.

    Opened for appending, so nothing in an existing file changes until the report is written;
    a file this run created is removed again when the run fails before writing it.
    """
    if path is None:
        yield None
        return
    existed = os.path.lexists(path)
    try:
        f = open(path, "a", encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
    except OSError as e:
        raise BadInput(f"cannot write {path}: {e.strerror or e}") from None
    done = False
    try:
        yield f
        done = True
    finally:
        f.close()
        if not done and not existed:
            with contextlib.suppress(OSError):
                os.unlink(path)


def width() -> int | None:
    """Columns for a text report on stdout: the terminal's (or COLUMNS); None for a pipe,
    whose reader gets every reason whole."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit():
        return shutil.get_terminal_size().columns
    return None


def nothing_to_review(args: Args, change: Change) -> str:
    """Why the change is empty, and what to run instead."""
    where = f" under {printable(' '.join(args.paths))}" if args.paths else ""
    if args.staged:
        return (
            f"tierbot: nothing staged{where}: `git add` the changes to review,"
            " or run `tierbot review` for every uncommitted change"
        )
    if not args.range:
        return (
            f"tierbot: nothing to review: no uncommitted changes{where}"
            " (`tierbot review HEAD~1` reviews the last commit)"
        )
    spec = printable(" ".join(args.range))
    return f"tierbot: nothing to review: no changes{where} in {spec} ({change.range.sides})"


def main(args: Args, cwd: str = ".") -> int:
    root = repository.toplevel(cwd)
    cfg = config_mod.load(args.config, root)
    if args.budget is not None and not (
        math.isinf(args.budget) or 0 <= args.budget <= config_mod.MAX_NUMBER
    ):
        raise BadInput("--budget must be a number of USD >= 0, or none")
    fail_on = args.fail_on or cfg.fail_on
    with open_output(args.output) as output:
        change = read_change(cwd, args.range, staged=args.staged, paths=args.paths)
        if not change.files:
            say(guard(nothing_to_review(args, change)), args.quiet)
            if args.format == "text" and output is None:
                return 0  # a text report of nothing would only repeat that line
        opts = Options(
            dry_run=args.dry_run,
            tier=args.tier,
            budget_usd=args.budget,
            use_cache=not args.no_cache,
            repo_label=root,
            fail_on=fail_on,
            over_budget=lambda est, limit: spend_above(
                "this review", est.cost_usd, limit, args.yes
            ),
        )
        result = run_review(change, cfg, opts)
        emit(result, args.format, output, args.verbose, args.quiet)
    if args.output is not None:
        say(guard(summary_line(result, args.output)), args.quiet)
    decision = outcome.decide(result, fail_on, cfg.on_error)
    if decision.warning:
        say(f"tierbot: {decision.warning}")
    return decision.code
