"""From a finished review to an exit code (SPEC §2), shared by every command."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from tierbot.errors import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK
from tierbot.records import Finding, ReviewResult, severity_rank


class Outcome(NamedTuple):
    code: int
    warning: str | None  # one line for stderr (fail-open on an incomplete review)


def blocking(findings: Iterable[Finding], fail_on: str) -> list[Finding]:
    """Findings at or above `fail_on`; a cheaper tier's finding that Opus could not verify
    never blocks on its own word (SPEC §7)."""
    if fail_on == "none":
        return []
    bar = severity_rank(fail_on)
    return [
        f for f in findings if severity_rank(f.severity) >= bar and f.verification != "unverified"
    ]


def incomplete_reason(result: ReviewResult) -> str | None:
    if result.status not in ("partial", "failed"):
        return None
    return next((n for n in reversed(result.notes) if n), "the model review did not finish")


def decide(result: ReviewResult, fail_on: str, on_error: str) -> Outcome:
    """Findings at or above `fail_on` -> 1; else an incomplete review -> 3 (closed) or 0 (open)."""
    if blocking(result.findings, fail_on):
        return Outcome(EXIT_FINDINGS, None)
    reason = incomplete_reason(result)
    if reason is None:
        return Outcome(EXIT_OK, None)
    if on_error == "open":
        return Outcome(EXIT_OK, f"warning: review incomplete ({reason}); not blocking")
    return Outcome(EXIT_INCOMPLETE, f"review incomplete: {reason}")
