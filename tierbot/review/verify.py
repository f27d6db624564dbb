"""The staff engineer's check: Opus verifies what a cheaper tier says would block.

Every Haiku or Sonnet finding that would block (at or above the fail level) -- or, with
`verify: high`, that would be posted as high or critical -- goes to Opus in ONE call per review,
each with its hunk and the cheaper model's reasoning.  Opus confirms it, changes it (severity,
lines, text) or rejects it (it moves to the notes with the reason).  A finding that could not be
checked (time limit, budget, an API failure) is kept but marked unverified, and never blocks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tierbot.findings import anchor
from tierbot.paths import printable
from tierbot.records import SEVERITIES, Finding, severity_rank
from tierbot.review import prompt as P
from tierbot.review.answer import InvalidAnswer, parse_verdicts
from tierbot.review.cascade import Context, Job, Tally, cache_put, record
from tierbot.review.claude import CallResult, one_line
from tierbot.words import plural, verb

# One call checks at most this many findings (the most severe first); the rest stay unverified.
MAX_FINDINGS = 25
# Lines of the hunk shown around each finding.
HUNK_CONTEXT = 25


def subject(f: Finding, fail_on: str, mode: str) -> bool:
    """Whether `f` needs Opus's word before it counts."""
    if mode == "off" or f.source not in ("haiku", "sonnet") or f.severity not in SEVERITIES:
        return False
    rank = severity_rank(f.severity)
    blocks = fail_on in SEVERITIES and rank >= severity_rank(fail_on)
    return blocks or (mode == "high" and rank >= severity_rank("high"))


def plan(ctx: Context, st: Tally) -> Job | None:
    """The verification job for this review's findings, or None when nothing needs it."""
    mode = ctx.config.verify
    chosen: list[tuple[str, Finding]] = []
    for uid, found in st.findings.items():
        for f in found:
            if not subject(f, ctx.fail_on, mode) or f.verification is not None:
                continue
            # Only findings that will land on a line count: the rest go to the summary anyway.
            kept, _, _ = anchor([f], ctx.change.files, ctx.config.filter)
            if kept:
                chosen.append((uid, f))
    if not chosen:
        return None
    chosen.sort(key=lambda item: -severity_rank(item[1].severity))
    st.to_verify = chosen[:MAX_FINDINGS]
    if len(chosen) > MAX_FINDINGS:
        _mark(st, chosen[MAX_FINDINGS:], "unverified")
        st.notes.append(
            f"model: {plural(len(chosen) - MAX_FINDINGS, 'finding')} beyond the {MAX_FINDINGS}"
            " one verification call checks were not verified (they do not block)"
        )
    text = _text(ctx, st.to_verify)
    up = P.UnitPrompt("verify", text, (), (), 0, len(text))
    return Job(
        "verify",
        "opus",
        ctx.model("opus"),
        "verify",
        prompt=up,
        effort=ctx.config.effort_for("opus"),
    )


def _text(ctx: Context, chosen: list[tuple[str, Finding]]) -> str:
    by_path = {fd.path: fd for fd in ctx.change.files}
    parts = []
    for i, (_, f) in enumerate(chosen, 1):
        where = f"{printable(f.path)}:{f.line}" + (f"-{f.end_line}" if f.end_line else "")
        item = [
            f"## Finding {i}: {where} [{f.severity}, {f.category}, from {f.source}, "
            f"confidence {f.confidence:.2f}]",
            f"Title: {f.title}",
            f"Reasoning: {' '.join(f.message.split())[:2000]}",
        ]
        if f.suggestion is not None:
            item.append("Suggested replacement:\n" + f.suggestion[:2000])
        fd = by_path.get(f.path)
        if fd is not None and f.line is not None:
            numbered, _ = P.redact_text(P.annotate(fd), ctx.config)
            item.append("Hunk:\n" + _hunk(numbered, f.line, f.end_line))
        parts.append("\n".join(item))
    body = "\n\n".join(parts)
    text = (
        f"# Findings to check ({len(chosen)})\n{P.FENCE_RULE}\n{P.fenced(body)}\n\n"
        "Answer with one verdict for every finding id, as described in the system prompt.\n"
    )
    text, _ = P.redact_text(text, ctx.config)
    return text


def _hunk(annotated: str, line: int, end_line: int | None) -> str:
    """The numbered hunk holding `line`, cut to HUNK_CONTEXT lines around the finding."""
    hunks: list[list[str]] = []
    for row in annotated.splitlines():
        if row.startswith("@@"):
            hunks.append([row])
        elif hunks:
            hunks[-1].append(row)
    last = end_line or line
    for h in hunks:
        numbers = [_number(r) for r in h]
        shown = [n for n in numbers if n is not None]
        if not shown or not shown[0] <= line <= shown[-1]:
            continue
        rows = [i for i, n in enumerate(numbers) if n is not None and line <= n <= last] or [1]
        lo = max(1, rows[0] - HUNK_CONTEXT)
        hi = min(len(h), rows[-1] + HUNK_CONTEXT + 1)
        cut = [h[0], *h[lo:hi]]
        return "\n".join(cut)
    return "(the hunk is not available)"


def _number(row: str) -> int | None:
    head = row[:6].strip()
    return int(head) if head.isdigit() else None


def answered(ctx: Context, st: Tally, job: Job, res: CallResult) -> None:
    """Opus's verdicts came back: apply them, or keep the findings unverified."""
    if apply(ctx, st, res.text or ""):
        record(ctx, st, job, res, "verified")
        cache_put(ctx, st, job, res.text or "")
        return
    record(ctx, st, job, res, "invalid")
    not_checked(st, "Opus's answer did not match the verdict schema", incomplete=True)


def apply(ctx: Context, st: Tally, text: str) -> bool:
    """Apply a verdicts answer to the findings waiting for it; False: the answer is unusable."""
    verdicts = _parse(text)
    if verdicts is None:
        return False
    chosen = st.to_verify
    by_id = {v["id"]: v for v in verdicts if isinstance(v.get("id"), int)}
    changed: dict[int, Finding | None] = {}
    for i, (_, f) in enumerate(chosen, 1):
        v = by_id.get(i)
        where = f"{f.path}:{f.line} [{f.severity}] {one_line(f.title, 100)} ({f.source})"
        reason = one_line(str(v.get("reason") or "no reason given"), 300) if v else ""
        kind = v.get("verdict") if v else None
        if kind == "confirmed":
            changed[id(f)] = dataclasses.replace(f, verification="confirmed")
        elif kind == "changed":
            new = _changed(f, v or {})
            changed[id(f)] = new
            st.notes.append(
                f"model: Opus changed {where} to {new.severity} at line {new.line}: {reason}"
            )
        elif kind == "rejected":
            changed[id(f)] = None
            st.notes.append(f"model: Opus rejected {where}: {reason}")
        else:
            changed[id(f)] = dataclasses.replace(f, verification="unverified")
            st.notes.append(f"model: Opus gave no verdict on {where}: it does not block")
    for uid, found in list(st.findings.items()):
        kept = []
        for f in found:
            if id(f) not in changed:
                kept.append(f)
            elif (replaced := changed[id(f)]) is not None:
                kept.append(replaced)
        st.findings[uid] = tuple(kept)
    st.to_verify = []
    return True


def _parse(text: str) -> list[dict[str, Any]] | None:
    try:
        return parse_verdicts(text)
    except InvalidAnswer:
        return None


def _changed(f: Finding, v: dict[str, Any]) -> Finding:
    updates: dict[str, Any] = {"verification": "changed"}
    if v.get("severity") in SEVERITIES:
        updates["severity"] = v["severity"]
    line = v.get("line")
    if isinstance(line, int) and not isinstance(line, bool) and line >= 1:
        updates["line"] = line
        end = v.get("end_line")
        updates["end_line"] = end if isinstance(end, int) and not isinstance(end, bool) else None
    for key in ("title", "message"):
        value = v.get(key)
        if isinstance(value, str) and value.strip():
            updates[key] = value.strip()
    return dataclasses.replace(f, **updates)


def not_checked(st: Tally, reason: str, *, incomplete: bool) -> None:
    """The verification did not happen: its findings are kept, marked unverified (no blocking)."""
    if not st.to_verify:
        return
    n = len(st.to_verify)
    _mark(st, st.to_verify, "unverified")
    st.to_verify = []
    st.notes.append(
        f"model: {plural(n, 'finding')} could not be verified by Opus ({reason}): "
        f"{verb(n, 'it is', 'they are')} reported but {verb(n, 'does', 'do')} not block"
    )
    if incomplete:
        st.verify_problem = f"{plural(n, 'finding')} not verified: {reason}"


def _mark(st: Tally, items: list[tuple[str, Finding]], verification: str) -> None:
    targets = {id(f) for _, f in items}
    for uid, found in list(st.findings.items()):
        st.findings[uid] = tuple(
            dataclasses.replace(f, verification=verification) if id(f) in targets else f
            for f in found
        )
