"""Sample ReviewResults covering every status and the awkward cases reporters must survive.

Shared: other tests (CLI, GitHub poster) may import these builders.
"""

from __future__ import annotations

from dataclasses import replace

from tierbot.records import (
    Analysis,
    Estimate,
    FileStat,
    Finding,
    Range,
    ReviewResult,
    Route,
    Signal,
    Unit,
    Usage,
)

BASE = "1f3a5c7e9b2d4f6a8c0e1f3a5c7e9b2d4f6a8c0e"
HEAD = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"

FILES = (
    FileStat("src/auth/login.py", None, "modified", "python", 40, 12, 3, 4, None, 0.81),
    FileStat("src/auth/tokens.py", None, "added", "python", 25, 0, 1, 2, None, 0.7),
    FileStat("docs/guide é.md", None, "modified", "markdown", 3, 1, 1, 0, None, 0.05),
    FileStat(
        "my dir/new name.py",
        "my dir/old name.py",
        "renamed",
        "python",
        0,
        0,
        0,
        0,
        "pure rename",
        0.0,
    ),
    FileStat("package-lock.json", None, "modified", "json", 300, 280, 9, 0, "lockfile", 0.0),
)

SIGNALS = (
    Signal(
        "sensitive_path",
        0.35,
        "touches authentication code",
        ("src/auth/login.py", "src/auth/tokens.py"),
    ),
    Signal("complexity", 0.2, "cyclomatic complexity +6", ("src/auth/login.py",)),
    Signal("tests_touched", -0.05, "tests changed with the code"),
)

UNITS = (
    Unit(
        "u1",
        "opus",
        "claude-opus-5-5",
        ("src/auth/login.py", "src/auth/tokens.py"),
        0.81,
        ("security-sensitive path src/auth/", "complexity +6"),
        9000,
        1200,
        None,
    ),
    Unit(
        "u2",
        "haiku",
        "claude-haiku-5-5",
        ("docs/guide é.md",),
        0.05,
        ("small docs change",),
        800,
        200,
        None,
    ),
    Unit(
        "u3",
        "skip",
        None,
        ("my dir/new name.py", "package-lock.json"),
        0.0,
        ("pure rename", "lockfile"),
        0,
        0,
        None,
    ),
)

ANALYSIS = Analysis(FILES, 368, 293, 14, 6, 0.8123456, SIGNALS)
ROUTE = Route("opus", ("u1: security-sensitive path",), UNITS)
ESTIMATE = Estimate(9800, 1400, 0.0647891234, 0.0672123456)

FINDINGS = (
    Finding(
        "src/auth/login.py",
        12,
        12,
        "critical",
        "secret",
        "AWS access key",
        "An AWS access key id was added; rotate it.",
        "rules",
        None,
        1.0,
        "fp-secret-1",
    ),
    Finding(
        "src/auth/login.py",
        30,
        34,
        "high",
        "logic",
        "Token check <bypass> | always true",
        "The `if` on line 30\nalways passes when `token` is `None`.\n<script>alert(1)</script>",
        "opus",
        "if token is None:\n    raise Unauthorized()",
        0.87654,
        "fp-logic-2",
    ),
    Finding(
        "docs/guide é.md",
        2,
        None,
        "low",
        "style",
        "Typo",
        "Spelling: *recieve*.",
        "haiku",
        None,
        0.6,
        "fp-typo-3",
    ),
    Finding(
        "my dir/new name.py",
        None,
        None,
        "info",
        "design",
        "Rename leftover",
        "Old name still referenced in docs, 50% of the time.",
        "sonnet",
        None,
        0.5,
        "fp-4",
    ),
    Finding(
        "src/auth/tokens.py",
        5,
        7,
        "medium",
        "debug-leftover",
        "print() left in",
        "Remove the print call: it logs tokens.",
        "rules",
        None,
        1.0,
        "fp-print-5",
    ),
)


def dry_run() -> ReviewResult:
    return ReviewResult("dry-run", Range("HEAD~3", BASE, None), ANALYSIS, ROUTE, ESTIMATE)


def offline() -> ReviewResult:
    return ReviewResult(
        "offline",
        Range("", BASE, None),
        ANALYSIS,
        ROUTE,
        ESTIMATE,
        findings=FINDINGS[:1],
        notes=("model review skipped: no ANTHROPIC_API_KEY; local rules only",),
    )


def complete() -> ReviewResult:
    return ReviewResult(
        "complete",
        Range("main...feature", BASE, HEAD),
        ANALYSIS,
        ROUTE,
        ESTIMATE,
        findings=FINDINGS,
        usage=Usage(2, 10100, 1350, 4000, 1200, 0.0123456789, 0.0456789123),
    )


def partial() -> ReviewResult:
    return ReviewResult(
        "partial",
        Range("--staged", BASE, None),
        ANALYSIS,
        ROUTE,
        ESTIMATE,
        findings=FINDINGS[2:],
        usage=Usage(1, 900, 150, 0, 0, 0.000165, 0.0066),
        notes=(
            "u1 (opus) not reviewed: model API unreachable",
            "2 model findings dropped: lines outside the diff",
            "finding on vendor/x.js moved to summary: path not in the change",
        ),
    )


def failed() -> ReviewResult:
    return ReviewResult(
        "failed",
        Range("HEAD", BASE, None),
        ANALYSIS,
        ROUTE,
        ESTIMATE,
        notes=("review failed: the API rejected the key (401)",),
    )


def empty() -> ReviewResult:
    """Nothing to review at all: no files, no units."""
    return ReviewResult(
        "complete",
        Range("", BASE, None),
        Analysis((), 0, 0, 0, 0, 0.0, ()),
        Route("skip", ("nothing to review",), ()),
        Estimate(0, 0, 0.0, 0.0),
    )


def many_findings(n: int = 40, severity: str = "high") -> ReviewResult:
    base = complete()
    findings = tuple(
        replace(
            FINDINGS[1],
            line=i + 1,
            end_line=i + 1,
            severity=severity,  # type: ignore[arg-type]
            fingerprint=f"fp-{severity}-{i}",
            title=f"Issue {i}",
        )
        for i in range(n)
    )
    return replace(base, findings=findings)


def ALL() -> dict[str, ReviewResult]:
    return {
        "dry-run": dry_run(),
        "offline": offline(),
        "complete": complete(),
        "partial": partial(),
        "failed": failed(),
        "empty": empty(),
    }
