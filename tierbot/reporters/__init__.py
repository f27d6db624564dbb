"""Reporters: one module per output format, behind one small interface.

Reporters turn a finished `ReviewResult` into text; they know nothing of the CLI (the CLI decides
colour, verbosity and where the text goes).  Submodules are imported on demand so that a dry run
pays only for the format it prints.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from tierbot.records import Finding, ReviewResult, Unit, paths_label, severity_rank

FORMATS = ("text", "json", "markdown", "sarif", "github")


def render(fmt: str, result: ReviewResult, *, color: bool = False, verbose: bool = False) -> str:
    """Render `result` in format `fmt` (one of FORMATS)."""
    if fmt == "text":
        from tierbot.reporters import text

        return text.render(result, color=color, verbose=verbose)
    if fmt == "json":
        from tierbot.reporters import jsonout

        return jsonout.render(result)
    if fmt == "markdown":
        from tierbot.reporters import markdown

        return markdown.render_markdown(result, verbose=verbose)
    if fmt == "sarif":
        from tierbot.reporters import sarif

        return sarif.render(result)
    if fmt == "github":
        # Not `from tierbot.reporters import annotations`: the __future__ import owns that name.
        from tierbot.reporters.annotations import render as render_annotations

        return render_annotations(result)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def to_dict(result: ReviewResult) -> dict[str, Any]:
    """The SPEC §4 JSON object (schema tierbot.review/1)."""
    from tierbot.reporters import jsonout

    return jsonout.to_dict(result)


# --- helpers shared by the human-facing formats -------------------------------------------


class CostSummary(NamedTuple):
    spent: bool  # True: money really spent (usage); False: an offline estimate
    cost_usd: float
    all_opus_usd: float
    saved_pct: int | None  # None when there is nothing to compare against


def cost_summary(result: ReviewResult) -> CostSummary:
    usage, estimate = result.usage, result.estimate
    if usage.calls > 0:
        spent, cost, opus = True, usage.cost_usd, usage.all_opus_cost_usd
    elif result.status in ("dry-run", "offline"):
        spent, cost, opus = False, estimate.cost_usd, estimate.all_opus_cost_usd
    elif result.status == "complete":
        # A finished review that needed no model call (all skipped or cached) spent nothing;
        # the all-Opus counterfactual is still the estimate's.
        spent, cost, opus = True, 0.0, estimate.all_opus_cost_usd
    else:
        # Nothing was reviewed: there is no saving to claim.
        spent, cost, opus = True, 0.0, 0.0
    saved = round(100 * (1 - cost / opus)) if opus > 0 else None
    return CostSummary(spent, cost, opus, saved)


def verify_line(result: ReviewResult) -> str | None:
    """The cost of Opus verifying cheaper tiers' findings, for its own line (None: none)."""
    if result.usage.calls > 0:
        if result.usage.verify_cost_usd <= 0:
            return None
        return f"of which Opus verification: {money(result.usage.verify_cost_usd)}"
    if result.status in ("dry-run", "offline") and result.estimate.verify_cost_usd > 0:
        return f"of which Opus verification (expected): {money(result.estimate.verify_cost_usd)}"
    return None


def money(usd: float) -> str:
    """Dollars with enough digits that cheap Haiku calls do not all read $0.00."""
    return f"${usd:.4f}" if usd < 1 else f"${usd:,.2f}"


def unit_files(unit: Unit) -> str:
    """A unit's files: the path itself, or their common directory and a count."""
    return paths_label(unit.paths)


def unit_reason(unit: Unit) -> str:
    reason = "; ".join(unit.reasons) if unit.reasons else "-"
    if unit.escalated_from:
        reason += f" (escalated from {unit.escalated_from})"
    return reason


def by_severity(findings: tuple[Finding, ...] | list[Finding]) -> list[Finding]:
    """Most severe first; ties keep the pipeline's order (path, line)."""
    return sorted(findings, key=lambda f: -severity_rank(f.severity))


def one_line(text: str) -> str:
    """Collapse whitespace and drop control characters (model text must not drive a terminal)."""
    cleaned = "".join(ch if ch.isprintable() or ch in "\t\n\r " else " " for ch in text)
    return " ".join(cleaned.split())
