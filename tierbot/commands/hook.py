"""`tierbot hook`: the pre-commit entry.

Reviews exactly what is being committed (the index; pre-commit has stashed the rest) or, when
pre-commit sets PRE_COMMIT_FROM_REF/TO_REF, exactly what is being pushed.  Output reads like a
linter.  By default an unreachable API never blocks a commit: one warning line, exit 0.
"""

from __future__ import annotations

import os
import sys
import time
from typing import NamedTuple

from tierbot import config as config_mod
from tierbot import outcome
from tierbot.git import repository
from tierbot.git.diff import read_change
from tierbot.output import guard
from tierbot.pipeline import Options, run_review
from tierbot.records import ReviewResult, Tier
from tierbot.reporters import cost_line, one_line, shown_notes, verify_line
from tierbot.reporters.text import finding_lines, header_line


class Args(NamedTuple):
    config: str | None = None
    fail_on: str | None = None  # None: hook.fail_on from config
    max_tier: str | None = None  # None: hook.max_tier, else sonnet (commit) / opus (push)
    dry_run: bool = False
    no_cache: bool = False
    verbose: bool = False


def push_range(root: str) -> str | None:
    """The pushed range from pre-commit's environment, or None for a commit."""
    from_ref = os.environ.get("PRE_COMMIT_FROM_REF")
    to_ref = os.environ.get("PRE_COMMIT_TO_REF")
    if from_ref and to_ref:
        return f"{from_ref}...{to_ref}"
    if os.environ.get("PRE_COMMIT_REMOTE_NAME"):
        # pre-commit sets no refs when the push includes the root commit: review the newest
        # one (the root itself against the empty tree when it is the only one).
        return "HEAD^!"
    return None


# pre-commit runs the hook for `--all-files` and for a commit that stages nothing, too: say what
# the hook looks at instead of passing in silence.
NOTHING_STAGED = (
    "tierbot: nothing staged: this hook reviews the change being committed (or pushed), not the"
    " files pre-commit lists; run `tierbot review` for the work tree"
)
NOTHING_PUSHED = "tierbot: nothing to review: the pushed commits change no files"


def render(result: ReviewResult, verbose: bool = False) -> str:
    """What was reviewed, the findings like a linter's, notes, and the cost line."""
    lines = finding_lines(result)
    if result.status == "failed":
        # Nothing was reviewed: the one warning line on stderr says why; a header, notes and a
        # $0 cost would only repeat it.
        return "".join(f"{line}\n" for line in lines)
    lines.insert(0, header_line(result))
    lines.extend(f"tierbot: {one_line(n)}" for n in shown_notes(result, verbose))
    tiers = sorted({u.tier for u in result.route.units if u.tier != "skip"})
    lines.append(
        f"tierbot: {cost_line(result)} [{result.route.tier}"
        f"{' via ' + ', '.join(tiers) if len(tiers) > 1 else ''}]"
    )
    verified = verify_line(result)
    if verified:
        lines.append(f"tierbot:   {verified}")
    return "\n".join(lines) + "\n"


def main(args: Args, cwd: str = ".") -> int:
    root = repository.toplevel(cwd)
    cfg = config_mod.load(args.config, root)
    pushed = push_range(root)
    max_tier = args.max_tier or cfg.hook.max_tier or ("opus" if pushed else "sonnet")
    started = time.monotonic()
    change = read_change(root, pushed, staged=pushed is None)
    if not change.files:
        print(NOTHING_PUSHED if pushed else NOTHING_STAGED)
        return 0
    fail_on = args.fail_on or cfg.hook.fail_on
    options = Options(
        dry_run=args.dry_run,
        use_cache=not args.no_cache,
        max_tier=_tier(max_tier),
        deadline=started + cfg.hook.timeout_s,
        repo_label=root,
        fail_on=fail_on,
        command="hook",
    )
    result = run_review(change, cfg, options)
    sys.stdout.write(guard(render(result, args.verbose)))
    decision = outcome.decide(result, fail_on, cfg.hook.on_error)
    if decision.warning:
        print(f"tierbot: {decision.warning}", file=sys.stderr)
    return decision.code


def _tier(name: str) -> Tier:
    assert name in ("skip", "haiku", "sonnet", "opus")
    return name  # type: ignore[return-value]
