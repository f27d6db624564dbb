"""`--format text`: for people at a terminal.

A routing table, the findings as `path:line: severity: message` (the shape editors and CI log
scanners already parse), notes, and one cost line.  Colour only when the caller asks for it.
"""

from __future__ import annotations

from tierbot.paths import printable
from tierbot.records import ReviewResult
from tierbot.reporters import (
    by_severity,
    cost_line,
    findings_count,
    one_line,
    shown_notes,
    unit_files,
    unit_reason,
    verify_line,
)
from tierbot.words import plural

_SEVERITY_COLOR = {"critical": "1;31", "high": "31", "medium": "33", "low": "36", "info": "2"}
_TIER_COLOR = {"opus": "35", "sonnet": "34", "haiku": "32", "skip": "2"}
_FILES_WIDTH = 48
_REASON_MIN_WIDTH = 24  # below this a clipped reason says nothing: let the line wrap instead


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


def _paint(text: str, code: str | None, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def header_line(result: ReviewResult, *, color: bool = False) -> str:
    """`tierbot: HEAD~3 (87cc9ef..working tree): 4 files, +58 -1, risk 0.58 -> sonnet`."""
    a, tier = result.analysis, result.route.tier
    return (
        _paint("tierbot", "1", color) + f": {_range_label(result)}: {plural(len(a.files), 'file')},"
        f" +{a.lines_added} -{a.lines_removed}, risk {a.risk_score:.2f}"
        f" -> {_paint(tier, _TIER_COLOR.get(tier), color)}"
    )


def render(
    result: ReviewResult, *, color: bool = False, verbose: bool = False, width: int | None = None
) -> str:
    """The report; `width` (the terminal's) fits the reason column, None leaves it whole."""

    def paint(text: str, code: str | None) -> str:
        return _paint(text, code, color)

    a = result.analysis
    out: list[str] = [header_line(result, color=color)]
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
                one_line(unit_reason(u)),
            )
            for u in result.route.units
        ]
        header = ("unit", "tier", "files", "risk", "reason")
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(4)]
        if width is not None and not verbose:
            room = max(width - sum(widths) - 2 * len(widths) - 1, _REASON_MIN_WIDTH)
            rows = [(*r[:4], _clip(r[4], room)) for r in rows]
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

    for note in shown_notes(result, verbose):
        out.append(paint("note:", "2") + " " + one_line(note))

    out.append(cost_line(result))
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


def summary_line(result: ReviewResult, where: str) -> str:
    """One line for stderr when the report went to a file: findings, tier, cost, where."""
    return (
        f"tierbot: {findings_count(result.findings)}, tier {result.route.tier},"
        f" {cost_line(result)}; report written to {_safe(where)}"
    )
