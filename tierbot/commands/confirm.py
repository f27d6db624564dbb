"""Asking before a command spends more than its budget: one question for `review` and `audit`."""

from __future__ import annotations

import sys


def spend_above(what: str, cost_usd: float, limit: float, yes: bool) -> float | None:
    """The budget to keep when `what` is estimated at `cost_usd`, above `limit`.

    `--yes` spends without asking (None: no limit); a person at a terminal is asked; anything else
    (scripts, CI, the pre-commit hook) keeps the budget and never waits for an answer.  Kept, the
    budget plan moves the least risky units a tier down, then skips them, to fit it.
    """
    if yes:
        return None
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return limit
    print(
        f"tierbot: {what} is estimated at ${cost_usd:.2f}, above the ${limit:.2f} budget"
        " (budget.max_usd_per_review, --budget).",
        file=sys.stderr,
    )
    print(
        f"  y: spend it (no limit this time)   N: stay within ${limit:.2f} (lower-risk units"
        " go to a cheaper tier or are skipped)",
        file=sys.stderr,
    )
    print("Spend above the budget? [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    return None if answer in ("y", "yes") else limit
