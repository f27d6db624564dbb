"""`--format text`: for people at a terminal.

A routing table, the findings as `path:line: severity: message` (the shape editors and CI log
scanners already parse), notes, and one cost line.  Colour only when the caller asks for it.
"""

from __future__ import annotations

from tierbot.paths import printable
from tierbot.records import ReviewResult
from tierbot.reporters import (
    by_severity,
    cost_summary,
    money,
    one_line,
    unit_files,
    unit_reason,
    verify_line,
)

_SEVERITY_COLOR = {"critical": "1;31", "high": "31", "medium": "33", "low": "36", "info": "2"}
_TIER_COLOR = {"opus": "35", "sonnet": "34", "haiku": "32", "skip": "2"}
_FILES_WIDTH = 48
_REASON_WIDTH = 72


def _safe(text: str) -> str:
    """Paths and ids may hold control characters, line breaks or bidi overrides: show them as
    escapes, never let them reach the terminal."""
    return printable(text)


def _clip(text: str, width: int, *, keep_end: bool = False) -> str:
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1) :] if keep_end else text[: width - 1] + "…"


def _range_label(result: ReviewResult) -> str:
    spec = result.range.spec
    if spec == "":
        what = "uncommitted changes"
    elif spec == "--staged":
        what = "staged changes"
    else:
        what = spec
    return f"{_safe(what)} ({result.range.sides})"


def render(result: ReviewResult, *, color: bool = False, verbose: bool = False) -> str:
    def paint(text: str, code: str | None) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if color and code else text

    a = result.analysis
    out: list[str] = []
    out.append(
        paint("tierbot", "1")
        + f": {_range_label(result)}: {len(a.files)} file{'s' if len(a.files) != 1 else ''},"
        f" +{a.lines_added} -{a.lines_removed}, risk {a.risk_score:.2f}"
        f" -> {paint(result.route.tier, _TIER_COLOR.get(result.route.tier))}"
    )
    status_line = {
        "dry-run": "dry run: no model was called",
        "partial": "review incomplete: some units were not reviewed (see notes)",
        "failed": "review failed (see notes)",
    }.get(result.status)
    if result.status == "offline" and not any("model review" in n for n in result.notes):
        status_line = "model review skipped"
    if status_line:
        out.append(paint(status_line, "1;33" if result.status in ("partial", "failed") else "2"))

    if verbose and a.signals:
        out.append("")
        out.append(paint("signals:", "1"))
        for sig in a.signals:
            where = f" ({', '.join(_safe(p) for p in sig.paths)})" if sig.paths else ""
            out.append(f"  {sig.weight:+.2f} {_safe(sig.id)}: {one_line(sig.detail)}{where}")

    if result.route.units:
        rows = [
            (
                _safe(u.id),
                u.tier,
                _safe(unit_files(u))
                if verbose
                else _clip(_safe(unit_files(u)), _FILES_WIDTH, keep_end=True),
                f"{u.risk_score:.2f}",
                one_line(unit_reason(u))
                if verbose
                else _clip(one_line(unit_reason(u)), _REASON_WIDTH),
            )
            for u in result.route.units
        ]
        header = ("unit", "tier", "files", "risk", "reason")
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(4)]
        out.append("")
        out.append(
            paint(
                "  ".join(h.ljust(w) for h, w in zip(header, [*widths, 0], strict=True)).rstrip(),
                "1",
            )
        )
        for uid, tier, files, risk, reason in rows:
            out.append(
                "  ".join(
                    [
                        uid.ljust(widths[0]),
                        paint(tier.ljust(widths[1]), _TIER_COLOR.get(tier)),
                        files.ljust(widths[2]),
                        risk.rjust(widths[3]),
                        reason,
                    ]
                ).rstrip()
            )

    out.append("")
    if result.findings:
        for f in by_severity(result.findings):
            where = _safe(f.path) + (f":{f.line}" if f.line is not None else "")
            title, message = one_line(f.title), one_line(f.message)
            text = f"{title}: {message}" if title and not message.startswith(title) else message
            text = text or title
            extra = (
                f" [{_safe(f.category)}, {_safe(f.source)}, {f.confidence:.2f}]" if verbose else ""
            )
            out.append(
                f"{where}: {paint(f.severity, _SEVERITY_COLOR.get(f.severity))}: {text}{extra}"
            )
    elif result.status == "complete":
        out.append("no findings")
    elif result.status in ("offline", "dry-run"):
        out.append("no findings from the local rules")
    else:
        out.append("no findings so far")

    for note in result.notes:
        out.append(paint("note:", "2") + " " + one_line(note))

    out.append(_cost_line(result))
    verified = verify_line(result)
    if verified:
        out.append(f"  {verified}")
    return "\n".join(out) + "\n"


def finding_lines(result: ReviewResult) -> list[str]:
    """Findings alone, most severe first, as `path:line: severity: title: message` (no colour)."""
    lines = []
    for f in by_severity(result.findings):
        where = _safe(f.path) + (f":{f.line}" if f.line is not None else "")
        lines.append(f"{where}: {f.severity}: {one_line(f.title)}: {one_line(f.message)}")
    return lines


def cost_line(result: ReviewResult) -> str:
    return _cost_line(result)


def _cost_line(result: ReviewResult) -> str:
    c = cost_summary(result)
    kind = "spent" if c.spent else "estimated"
    detail = ""
    if c.all_opus_usd > 0 and c.saved_pct is not None:
        detail = f" (all-Opus {money(c.all_opus_usd)}, {c.saved_pct}% saved)"
    n = result.usage.calls
    calls = ""
    if c.spent:
        calls = f" on {n} model call{'s' if n != 1 else ''}" if n else " (no model calls)"
    return f"cost: {money(c.cost_usd)} {kind}{calls}{detail}"
