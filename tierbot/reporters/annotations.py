"""`--format github`: GitHub Actions workflow-command annotations.

GitHub shows at most 10 errors, 10 warnings and 10 notices per step, so the most severe findings
go first and one closing notice counts what could not be annotated.
"""

from __future__ import annotations

from tierbot.records import Finding, ReviewResult
from tierbot.reporters import by_severity
from tierbot.words import plural

_COMMAND = {
    "critical": "error",
    "high": "error",
    "medium": "warning",
    "low": "notice",
    "info": "notice",
}
LIMIT_PER_KIND = 10


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding) -> str:
    props = [f"file={escape_property(f.path)}"]
    if f.line is not None and f.line >= 1:
        props.append(f"line={f.line}")
        if f.end_line is not None and f.end_line > f.line:
            props.append(f"endLine={f.end_line}")
    title = f.title.strip() or f.category
    props.append(f"title={escape_property(f'tierbot {f.severity}: {title}')}")
    message = f.message.strip() or title
    return f"::{_COMMAND[f.severity]} {','.join(props)}::{escape_data(message)}"


def render(result: ReviewResult) -> str:
    findings = by_severity(result.findings)
    counts = {"error": 0, "warning": 0, "notice": 0}
    wanted = {"error": 0, "warning": 0, "notice": 0}
    for f in findings:
        wanted[_COMMAND[f.severity]] += 1
    overflow = any(n > LIMIT_PER_KIND for n in wanted.values())
    # The closing count is itself a notice: keep one notice slot free for it.
    limits = {"error": LIMIT_PER_KIND, "warning": LIMIT_PER_KIND, "notice": LIMIT_PER_KIND}
    if overflow:
        limits["notice"] -= 1
    lines: list[str] = []
    skipped = 0
    for f in findings:
        kind = _COMMAND[f.severity]
        if counts[kind] >= limits[kind]:
            skipped += 1
            continue
        counts[kind] += 1
        lines.append(annotation(f))
    if skipped:
        lines.append(
            "::notice title=tierbot::"
            + escape_data(
                f"{plural(skipped, 'more finding')} not annotated"
                f" (GitHub shows at most {LIMIT_PER_KIND} per level per step);"
                " see the job summary or the JSON/SARIF output."
            )
        )
    return "\n".join(lines) + "\n" if lines else ""
