"""`--format markdown`: the pull-request summary and `--format markdown`.

Model-provided text is data: it is escaped so that it cannot open HTML, break a table row or start
markdown structure.  The result stays under a size limit (GitHub comments hold 65,536 characters);
whatever does not fit is counted in a note, never dropped silently.
"""

from __future__ import annotations

import re

from tierbot.paths import printable
from tierbot.records import SEVERITIES, Finding, ReviewResult, Severity
from tierbot.reporters import (
    by_severity,
    cost_summary,
    money,
    shown_notes,
    unit_files,
    unit_reason,
    verify_line,
)
from tierbot.words import plural

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
# A user or team mention as GitHub autolinks it: '@' not preceded by a word character.  Model text
# must never ping people, wherever the markdown ends up (a comment, a step summary, a file).
MENTION = re.compile(r"(?<![\w@`/])@([A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:/[A-Za-z0-9_.-]+)?)")


def defuse_mentions(text: str) -> str:
    """`@name` as a code span, which GitHub never turns into a notification."""
    return MENTION.sub(lambda m: f"`@{m.group(1)}`", text)


_TRUNCATION_RESERVE = 400  # room for the "n more … not shown" notes


def escape(text: str) -> str:
    """Escape text for one markdown line: HTML, emphasis, links, code and table pipes."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = defuse_mentions(_MD_SPECIAL.sub(r"\\\1", text))
    # Line-start markdown (headings, lists, rules) cannot trigger inside one line; keep it so.
    lines = [" ".join(line.split()) for line in text.replace("\r", "\n").split("\n")]
    return "<br>".join(line for line in lines if line)


def code(text: str, *, table: bool = False) -> str:
    """A code span that survives any backticks in `text` (and pipes, inside a table cell)."""
    text = text.replace("\r", " ").replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    if table:
        # GFM splits cells before parsing code spans; only a backslash keeps the pipe.
        text = text.replace("|", "\\|")
    return f"{fence}{pad}{text}{pad}{fence}"


def _fenced(text: str, indent: str) -> list[str]:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = [indent + line for line in text.replace("\r\n", "\n").split("\n")]
    return [indent + fence, *body, indent + fence]


def _range_label(result: ReviewResult) -> str:
    spec = result.range.spec
    what = {"": "uncommitted changes", "--staged": "staged changes"}.get(spec)
    label = escape(what) if what else code(spec)
    if result.range.head:
        label += f" at {code(result.range.head[:12])}"
    return label


def finding_block(
    f: Finding, verbose: bool = False, *, place: str | None = None, suggestion: bool = True
) -> str:
    """One finding as a list item; `place` (tierbot's own text, not escaped) says where else it
    shows, in a pull request's summary."""
    path = printable(f.path)
    where = path if f.line is None else f"{path}:{f.line}"
    if f.line is not None and f.end_line is not None and f.end_line > f.line:
        where += f"-{f.end_line}"
    title = escape(f.title) or escape(f.category) or "finding"
    meta = f"{escape(f.category)}, {escape(f.source)}"
    if verbose:
        meta += f", confidence {f.confidence:.2f}"
    lines = [f"- **{title}** ({meta}) at {code(where)}"]
    message = escape(f.message)
    if message:
        lines[0] += f": {message}"
    if place:  # tierbot's own words, e.g. "inline" or "here only: over max_comments"
        lines[0] += f" <sub>({place})</sub>"
    if f.suggestion and suggestion:
        lines.append("")
        lines.append("  Suggested change:")
        lines.append("")
        lines.extend(_fenced(f.suggestion, "  "))
    return "\n".join(lines)


ROUTING_HEAD = ("| Files | Tier | Risk | Reason |", "| --- | --- | ---: | --- |")


def routing_rows(result: ReviewResult) -> list[str]:
    """One table row per review unit: its files, tier, risk score and reason."""
    return [
        f"| {code(printable(unit_files(u)), table=True)} | {u.tier} | {u.risk_score:.2f}"
        f" | {escape(unit_reason(u))} |"
        for u in result.route.units
    ]


def render_markdown(
    result: ReviewResult,
    *,
    max_chars: int = 65000,
    heading: str = "tierbot review",
    verbose: bool = False,
) -> str:
    a = result.analysis
    head: list[str] = [f"## {escape(heading)}", ""]
    status = {
        "complete": "review complete",
        "dry-run": "dry run: no model was called",
        "offline": "model review skipped; local rules only",
        "partial": "review incomplete: some units were not reviewed",
        "failed": "review failed",
    }[result.status]
    head.append(
        f"**{status}** · {_range_label(result)}"
        f" · {plural(len(a.files), 'file')}"
        f", +{a.lines_added} -{a.lines_removed} · risk {a.risk_score:.2f}"
        f" · highest tier **{result.route.tier}**"
    )

    rows = routing_rows(result)
    table_head = ["", "### Routing", "", *ROUTING_HEAD]

    groups: list[tuple[Severity, list[str]]] = []
    ordered = by_severity(result.findings)
    for sev in reversed(SEVERITIES):
        blocks = [finding_block(f, verbose) for f in ordered if f.severity == sev]
        if blocks:
            groups.append((sev, blocks))

    c = cost_summary(result)
    kind = "spent" if c.spent else "estimated"
    cost = f"**Cost:** {money(c.cost_usd)} {kind}"
    if c.spent:
        n = result.usage.calls
        cost += f" on {plural(n, 'model call')}" if n else " (no model calls)"
    if c.all_opus_usd > 0 and c.saved_pct is not None:
        cost += f" · all-Opus {money(c.all_opus_usd)} · **{c.saved_pct}% saved**"
    tail = ["", cost]
    verified = verify_line(result)
    if verified:
        tail += ["", verified[0].upper() + verified[1:] + "."]
    notes = [f"- {escape(n)}" for n in shown_notes(result, verbose)]

    def size(lines: list[str]) -> int:
        return sum(len(x) + 1 for x in lines)

    # Budget: heading and cost always; then the table, notes and findings share what is left,
    # the table and notes at most a third each so that findings keep room.
    budget = max_chars - size(head) - size(tail) - _TRUNCATION_RESERVE
    dropped_rows = _fit(rows, max(budget // 3, 0))
    if rows:
        budget -= size(table_head) + size(rows[: len(rows) - dropped_rows])
    dropped_notes = _fit(notes, max(budget // 3, 0))
    budget -= size(notes[: len(notes) - dropped_notes]) + 20
    findings_lines: list[str] = []
    shown = 0
    total = len(result.findings)
    for sev, blocks in groups:
        header = ["", f"#### {sev.capitalize()} ({len(blocks)})", ""]
        if size(header) + len(blocks[0]) + 1 > budget:
            break
        findings_lines += header
        budget -= size(header)
        for block in blocks:
            if len(block) + 1 > budget:
                break
            findings_lines.append(block)
            budget -= len(block) + 1
            shown += 1
        else:
            continue
        break

    out = list(head)
    if rows:
        out += table_head + rows[: len(rows) - dropped_rows]
        if dropped_rows:
            out.append(f"\n{plural(dropped_rows, 'more review unit')} not shown.")
    out += ["", f"### Findings ({total})"]
    if not result.findings:
        out += ["", "No findings." if result.status == "complete" else "No findings so far."]
    out += findings_lines
    out += tail
    extra: list[str] = []
    if shown < total:
        extra.append(
            f"- {total - shown} of {plural(total, 'finding')} not shown here (size limit);"
            " see the JSON or SARIF output."
        )
    if dropped_notes:
        extra.append(f"- {plural(dropped_notes, 'more note')} not shown.")
    kept_notes = notes[: len(notes) - dropped_notes]
    if kept_notes or extra:
        out += ["", "### Notes", "", *kept_notes, *extra]
    text = "\n".join(out) + "\n"
    if len(text) > max_chars:
        # Last resort for tiny limits: cut at a line boundary and say so.
        marker = "\n\n(truncated)\n"
        cut = text[: max(max_chars - len(marker), 0)]
        text = (cut[: cut.rfind("\n")] if "\n" in cut else cut) + marker
        text = text[:max_chars]
    return text


def _fit(items: list[str], budget: int) -> int:
    """How many items from the end must go so that the rest fits in `budget` characters."""
    used = 0
    for i, item in enumerate(items):
        used += len(item) + 1
        if used > budget:
            return len(items) - i
    return 0
