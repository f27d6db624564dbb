"""The command line: option parsing only; each subcommand's work lives in tierbot/commands/."""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from tierbot import __version__
from tierbot.errors import (
    EXIT_BAD_INPUT,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    TierbotError,
    one_line,
    shown,
)
from tierbot.records import SEVERITIES, TIERS
from tierbot.reporters import FORMATS

# The choices come from the records and reporters they name, so they cannot drift apart.
FORMAT = click.Choice(FORMATS)
SEVERITY = click.Choice(("none", *SEVERITIES))
TIER = click.Choice(("auto", *TIERS))
REVIEW_TIER = click.Choice(TIERS[1:])


class _Usd(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on
    """A budget in USD: a finite number from 0 (float() alone takes nan, inf and -1), or `none`
    for no limit (given as inf: None already means "the configured budget")."""

    name = "USD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.strip().lower() == "none":
            return float("inf")
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not 0 <= number <= 1e9:  # nan fails every comparison
            self.fail(
                f"must be a number of USD from 0 to 1e9 or none, not {shown(value)}", param, ctx
            )
        return number


USD = _Usd()
# Options that mean the same wherever they are taken.
TIER_OPTION = click.option(
    "--tier",
    type=TIER,
    default="auto",
    show_default=True,
    help="Send every reviewable part to this tier (auto: route each by its risk).",
)
CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Settings file [.tierbot.yml at the repository root].",
)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  tierbot review HEAD~3        # the last 3 commits and anything uncommitted
  tierbot review --dry-run     # the plan and its cost; no model call
  tierbot init                 # write .tierbot.yml with every default
  tierbot COMMAND --help       # a command's options and examples

Without ANTHROPIC_API_KEY tierbot still analyses, routes, estimates the cost and runs the
local checks; it says that the model review was skipped.""",
)
@click.version_option(__version__, prog_name="tierbot", message="%(prog)s %(version)s")
def cli() -> None:
    """Review git changes with Claude, spending money where the risk is.

    Each part of a change goes to the cheapest model tier that can review it well (skip, Haiku,
    Sonnet or Opus); the report says why, what it cost, and what all-Opus would have cost.
    """


REVIEW_HELP = """Review RANGE, read as `git diff` reads it:

\b
  (none)         uncommitted changes, staged and unstaged, against HEAD
  --staged       the index against HEAD: what `git commit` would record
  REV            REV against the working tree (committed and uncommitted)
  A..B or A B    A against B
  A...B          what B adds since it left A (their merge base against B)
  A^!            the commit A alone (its first parent against A)
  A^@            A's (first) parent against A
  -- PATH...     only these paths (after every option)

The first line of the report says which two sides were compared.

\b
Examples:
  tierbot review                  # what is not committed yet
  tierbot review HEAD~3           # last 3 commits and uncommitted changes
  tierbot review HEAD~3 HEAD      # the last 3 commits only
  tierbot review main...feature   # what feature adds since it left main
  tierbot review 'a1b2c3d^!'      # one commit
  tierbot review HEAD~5 -- src/   # only paths under src/
  tierbot review HEAD~1 --dry-run --format json -o plan.json

Exit status: 0 nothing at or above --fail-on, 1 findings at or above it, 2 bad input
(usage, config, revision), 3 the model review could not finish and on_error is closed.
"""


@cli.command(
    help=REVIEW_HELP,
    short_help="Review commits, a range, or uncommitted changes.",
    context_settings={"ignore_unknown_options": False},
)
@click.argument("range_", metavar="[RANGE] [-- PATH...]", nargs=-1)
@click.option("--staged", is_flag=True, help="Review the index against HEAD (takes no RANGE).")
@click.option(
    "--dry-run", is_flag=True, help="Analyze, route and estimate the cost; no model call."
)
@click.option(
    "--format",
    "fmt",
    type=FORMAT,
    default="text",
    show_default=True,
    help="Report format: text for people, json (schema tierbot.review/1), markdown,"
    " sarif (SARIF 2.1.0 for code scanning) or github (workflow-command annotations).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write the report to FILE instead of stdout; a one-line summary goes to stderr.",
)
@TIER_OPTION
@click.option(
    "--fail-on",
    type=SEVERITY,
    help="Exit 1 on a finding at or above this severity [fail_on in .tierbot.yml: high].",
)
@CONFIG_OPTION
@click.option(
    "--budget",
    type=USD,
    help="Most USD to spend on this review, or none"
    " [budget.max_usd_per_review in .tierbot.yml: review $1.00].",
)
@click.option(
    "-y",
    "--yes",
    is_flag=True,
    help="Spend above the budget without asking (a terminal is asked first; scripts never).",
)
@click.option("--no-cache", is_flag=True, help="Do not reuse cached reviews.")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Also show every risk signal, whole table cells and the analysis bounds.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only findings and errors.")
@click.pass_obj
def review(obj: dict[str, Any], /, range_: tuple[str, ...], **kw: Any) -> int:
    from tierbot.commands import review as cmd

    args = cmd.Args(
        range=range_,
        paths=obj["paths"],
        staged=kw["staged"],
        dry_run=kw["dry_run"],
        format=kw["fmt"],
        output=kw["output"],
        tier=kw["tier"],
        fail_on=kw["fail_on"],
        config=kw["config_path"],
        budget=kw["budget"],
        yes=kw["yes"],
        no_cache=kw["no_cache"],
        verbose=kw["verbose"],
        quiet=kw["quiet"],
    )
    return cmd.main(args)


@cli.command(
    epilog="""\b
Examples:
  tierbot init                   # .tierbot.yml at the repository root
  tierbot init --force           # start again from the defaults"""
)
@click.option("--force", is_flag=True, help="Overwrite an existing .tierbot.yml.")
def init(force: bool) -> int:
    """Write a commented .tierbot.yml with every setting and its default."""
    from tierbot.commands import init as cmd

    return cmd.main(force=force)


HOOK_HELP = """The pre-commit entry: review what is being committed.

Run by the pre-commit framework, not by hand: on commit it reviews the staged change (pre-commit
has set the rest aside); on push, with PRE_COMMIT_FROM_REF/PRE_COMMIT_TO_REF set, the pushed
commits.  Findings print like a linter's, then one cost line.  A finding at or above
hook.fail_on blocks; an unreachable API never does (hook.on_error: open).

\b
Examples:
  pre-commit install --hook-type pre-commit --hook-type pre-push
  pre-commit run tierbot         # the hook on what is staged now
  SKIP=tierbot git commit ...    # commit without this hook
  tierbot hook --dry-run         # by hand: the staged change's plan and cost
"""


@cli.command(help=HOOK_HELP, short_help="The pre-commit hook: review what is being committed.")
@CONFIG_OPTION
@click.option("--fail-on", type=SEVERITY, help="Block at or above this severity [hook.fail_on].")
@click.option(
    "--max-tier",
    type=REVIEW_TIER,
    help="Highest tier [sonnet on commit, opus on push].",
)
@click.option("--dry-run", is_flag=True, help="Analyze and route only; no model call.")
@click.option("--no-cache", is_flag=True, help="Do not reuse cached reviews.")
def hook(
    config_path: str | None,
    fail_on: str | None,
    max_tier: str | None,
    dry_run: bool,
    no_cache: bool,
) -> int:
    from tierbot.commands import hook as cmd

    return cmd.main(
        cmd.Args(
            config=config_path,
            fail_on=fail_on,
            max_tier=max_tier,
            dry_run=dry_run,
            no_cache=no_cache,
        )
    )


@cli.command(
    epilog="""\b
Examples:
  tierbot pr                     # in a GitHub Actions pull_request workflow
  tierbot pr --repo OWNER/NAME --number 12 --dry-run   # from anywhere

See docs/github.md for the workflow and what gets posted."""
)
@click.option("--repo", metavar="OWNER/NAME", help="Repository [GITHUB_REPOSITORY].")
@click.option("--number", type=int, help="Pull request number [from GITHUB_EVENT_PATH].")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Config file (default: .tierbot.yml of the base branch).",
)
@click.option("--fail-on", type=SEVERITY, help="Exit 1 at or above this severity [none].")
@click.option("--dry-run", is_flag=True, help="Analyze and route only; no model call.")
@click.option("--format", "fmt", type=FORMAT, help="Also print the report in this format.")
@click.option("--tier", type=TIER, default="auto", show_default=True, help="Force a tier.")
@click.option("--budget", type=USD, help="Most USD to spend on this review, or none [$2.00].")
@click.option("--no-cache", is_flag=True, help="Do not reuse cached reviews.")
def pr(**kw: Any) -> int:
    """Review a GitHub pull request and post the results to it."""
    from tierbot.commands import pr as cmd

    return cmd.main(**kw)


@cli.command(
    epilog="""\b
Examples:
  tierbot costs                  # everything in the ledger
  tierbot costs --since 7d       # the last week (or 12h, 2w, 2026-11-01)
  tierbot costs --format json    # schema tierbot.costs/1
  tierbot costs --since 30d --export a.jsonl    # the rows, as JSON lines
  tierbot costs --merge runner-*.jsonl         # exports of many runners"""
)
@click.argument("files", nargs=-1, metavar="[FILE...]")
@click.option("--since", help="Only calls since this date (YYYY-MM-DD) or age (7d, 12h).")
@click.option("--until", help="Only calls before this date (YYYY-MM-DD) or age.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json (schema tierbot.costs/1) for scripts.",
)
@click.option(
    "--export",
    type=click.Path(dir_okay=False),
    help="Write the ledger's rows of the period to FILE as JSON lines ('-': stdout).",
)
@click.option(
    "--merge",
    is_flag=True,
    help="Add up the exports FILE... by repository, tier, command and month.",
)
def costs(
    files: tuple[str, ...],
    since: str | None,
    until: str | None,
    fmt: str,
    export: str | None,
    merge: bool,
) -> int:
    """Spending and savings from the local ledger ($TIERBOT_HOME), or many runners' exports."""
    from tierbot.commands import costs as cmd

    if files and not merge:
        raise click.UsageError("FILE... are read only with --merge")
    if merge and export:
        raise click.UsageError("--merge and --export do not go together")
    if merge:
        if not files:
            raise click.UsageError("--merge needs at least one exported FILE")
        return cmd.merge_main(files, fmt, since, until)
    if export:
        return cmd.export_main(export, since, until)
    return cmd.main(since, fmt, until)


AUDIT_FORMAT = click.Choice(("text", "json", "markdown", "sarif"))


AUDIT_HELP = """Review every commit of RANGE through the Message Batches API, at half price.

\b
  A..B           the commits of B since A, along first parents
  A...B          the commits B adds since it left A
  REV            all of REV's history (at most --max-commits)
  -- PATH...     only these paths (after every option)

Each commit is reviewed as `tierbot review <sha>^!` would review it; every review unit is one
request of a Message Batch. The estimate (batch prices) and the budget come before anything is
sent. A rerun of the same command, or --resume, takes up its batches instead of sending them
again; answers land in the review cache, so reviewing one of those commits later is free.

\b
Examples:
  tierbot audit HEAD~50..HEAD             # the last 50 commits
  tierbot audit v1.2.0..v1.3.0 --dry-run  # the cost; nothing is sent
  tierbot audit main~500..main --budget 25 --format json -o audit.json
  tierbot audit HEAD~50..HEAD --wait 0    # send, and collect later
  tierbot audit --resume                  # collect an interrupted audit

Exit status as for `review`; 3 also while batches are still running (rerun to collect them).
"""


@cli.command(help=AUDIT_HELP, short_help="Review every commit of a range at batch prices.")
@click.argument("range_", metavar="RANGE [-- PATH...]", nargs=-1)
@click.option(
    "--merges", is_flag=True, help="Also review merge commits, each against its first parent."
)
@click.option(
    "--format",
    "fmt",
    type=AUDIT_FORMAT,
    default="text",
    show_default=True,
    help="Report format: text for people, json (schema tierbot.audit/1), markdown, or sarif"
    " (one run for every commit).",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to FILE.")
@TIER_OPTION
@click.option(
    "--fail-on",
    type=SEVERITY,
    help="Exit 1 on a finding at or above this severity in any commit [fail_on: high].",
)
@CONFIG_OPTION
@click.option("--budget", type=USD, help="Most USD the whole audit may spend [10].")
@click.option("-y", "--yes", is_flag=True, help="Spend above the budget without asking.")
@click.option("--no-cache", is_flag=True, help="Do not reuse cached or stored answers.")
@click.option("--resume", is_flag=True, help="Continue the last unfinished audit (no RANGE).")
@click.option("--cancel", is_flag=True, help="Cancel this audit's running batches.")
@click.option(
    "--wait",
    metavar="DURATION",
    help="How long to wait for the batches (90s, 30m, 2h) [1h]; 0: send and leave.",
)
@click.option("--dry-run", is_flag=True, help="Analyze, route and estimate; send nothing.")
@click.option(
    "--max-commits",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Refuse a range of more commits.",
)
@click.option("-v", "--verbose", is_flag=True, help="Every commit, and every note.")
@click.option("-q", "--quiet", is_flag=True, help="Only findings and errors.")
@click.pass_obj
def audit(obj: dict[str, Any], /, range_: tuple[str, ...], **kw: Any) -> int:
    from tierbot.commands import audit as cmd

    # Every other option has its Args field's name.
    fmt, config = kw.pop("fmt"), kw.pop("config_path")
    args = cmd.Args(range=range_, paths=obj["paths"], format=fmt, config=config, **kw)
    return cmd.main(args)


def _crash_log() -> str:
    from tierbot.review.ledger import home

    path = home() / "crash.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"--- {datetime.datetime.now().isoformat()} tierbot {__version__}\n")
        f.write(f"argv: {sys.argv!r}\n")
        traceback.print_exc(file=f)
    return str(path)


def usage_error(e: click.UsageError, args: Sequence[str]) -> str:
    """Two lines: what was wrong, and the command's usage with where to read more."""
    message = " ".join(e.format_message().split())
    ctx = e.ctx
    if ctx is None:  # click's parser leaves out the context for some errors (`--format` alone)
        ctx = click.Context(cli, info_name="tierbot")
        sub = cli.commands.get(args[0]) if args else None
        if sub is not None:
            ctx = click.Context(sub, info_name=args[0], parent=ctx)
    where = f"tierbot {ctx.info_name}" if ctx.parent else "tierbot"
    usage = " ".join(ctx.get_usage().split()).removeprefix("Usage: ")
    return f"{one_line(f'tierbot: {message}')}\nusage: {usage} (see '{where} --help')"


def main(argv: Sequence[str] | None = None) -> int:
    code = _main(argv)
    if argv is None and "anthropic" in sys.modules:
        # Tearing down the SDK's thousands of classes at exit takes 0.3-1 s, after the review
        # is done: everything is written and closed by now, so a real run leaves at once.
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # Paths after `--` are pathspecs (as with git); click would mistake the first for RANGE.
    paths: tuple[str, ...] = ()
    if "--" in args:
        i = args.index("--")
        args, paths = args[:i], tuple(args[i + 1 :])
    if not args:
        # Bare `tierbot` is a request for help, like `tierbot --help`: exit 0, help on stdout.
        with click.Context(cli, info_name="tierbot") as ctx:
            click.echo(ctx.get_help())
        return 0
    try:
        rv = cli.main(args=args, prog_name="tierbot", standalone_mode=False, obj={"paths": paths})
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:
        print(usage_error(e, args), file=sys.stderr)
        return EXIT_BAD_INPUT
    except click.ClickException as e:
        print(one_line(f"tierbot: {e.format_message()}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("tierbot: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TierbotError as e:
        from tierbot.output import guard

        message = guard(str(e))  # may quote a revision, a path or an API answer
        print(message if message.startswith("tierbot") else f"tierbot: {message}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); nothing left to report to.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:
        try:
            where = _crash_log()
        except OSError:
            where = "(no crash log could be written)"
        first = (str(e).splitlines() or [""])[0]
        print(
            f"tierbot: internal error: {type(e).__name__}: {first}; details in {where}",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
