"""The report of `tierbot audit`: findings per commit, in `text`, `json` (tierbot.audit/1),
`markdown` or `sarif` (one run).  Each commit's review is rendered by the single-review
reporters' own parts (its JSON object is a whole tierbot.review/1 document), so an audit says
exactly what `tierbot review <sha>^!` would have said about each commit.
"""

from __future__ import annotations

import json
from typing import Any

from tierbot.records import SEVERITIES, AuditResult, CommitReview
from tierbot.reporters import by_severity, money, one_line
from tierbot.words import plural

SCHEMA = "tierbot.audit/1"
FORMATS = ("text", "json", "markdown", "sarif")
_COUNTS = ("processing", "succeeded", "errored", "expired", "canceled")


def render(fmt: str, result: AuditResult, *, verbose: bool = False) -> str:
    if fmt == "text":
        return render_text(result, verbose=verbose)
    if fmt == "json":
        return _dumps(to_dict(result))
    if fmt == "markdown":
        return render_markdown(result, verbose=verbose)
    if fmt == "sarif":
        return _dumps(to_sarif(result))
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _dumps(data: dict[str, Any]) -> str:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # non-UTF-8 file names: keep the output writable
        text = json.dumps(data, indent=2, ensure_ascii=True)
    return text + "\n"


def to_dict(result: AuditResult) -> dict[str, Any]:
    """The tierbot.audit/1 object (tierbot/data/audit-1.schema.json)."""
    from tierbot.reporters.jsonout import to_dict as review_dict
    from tierbot.reporters.jsonout import usage_dict, usd

    e = result.estimate
    return {
        "schema": SCHEMA,
        "status": result.status,
        "range": {
            "spec": result.range.spec,
            "base": result.range.base or None,
            "head": result.range.head,
        },
        "commits": [
            {
                "sha": c.sha,
                "subject": c.subject,
                "parents": c.parents,
                "review": review_dict(c.result),
            }
            for c in result.commits
        ],
        "batches": [
            {
                "id": b.id,
                "kind": b.kind,
                "requests": b.requests,
                "state": b.state,
                "request_counts": {k: dict(b.counts).get(k, 0) for k in _COUNTS},
            }
            for b in result.batches
        ],
        "estimate": {
            "requests": e.requests,
            "cost_usd": usd(e.cost_usd),
            "interactive_cost_usd": usd(e.interactive_cost_usd),
            "all_opus_cost_usd": usd(e.all_opus_cost_usd),
        },
        "budget_usd": None if result.budget_usd is None else usd(result.budget_usd),
        "findings": _severity_counts(result),
        "usage": usage_dict(result.usage),
        "notes": list(result.notes),
    }


def _severity_counts(result: AuditResult) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    for c in result.commits:
        for f in c.result.findings:
            counts[f.severity] = counts.get(f.severity, 0) + 1
    return counts


# --- text -------------------------------------------------------------------------------


def _status_line(result: AuditResult) -> str | None:
    return {
        "dry-run": "dry run: nothing was sent",
        "offline": "model review skipped: no ANTHROPIC_API_KEY (local rule checks only)",
        "partial": "audit incomplete: some reviews did not finish (see notes)",
        "failed": "audit failed (see notes)",
        "running": "batches still running: rerun the same command (or --resume) to collect them",
    }.get(result.status)


def _header(result: AuditResult) -> str:
    n = len(result.commits)
    r = result.range
    sides = f"{r.base[:7] or '(root)'}..{(r.head or '')[:7]}"
    return f"tierbot audit {one_line(r.spec)} ({sides}): {plural(n, 'commit')}"


def _short(c: CommitReview) -> str:
    return f"{c.sha[:7]} {one_line(c.subject)[:72]}"


def render_text(result: AuditResult, *, verbose: bool = False) -> str:
    out = [_header(result)]
    status = _status_line(result)
    if status:
        out.append(status)
    for b in result.batches:
        counts = ", ".join(f"{n} {k}" for k, n in b.counts if n)
        out.append(
            f"batch {b.id or '(not sent)'} ({b.kind}): {plural(b.requests, 'request')},"
            f" {b.state}" + (f": {counts}" if counts else "")
        )
    out.append("")
    quiet = 0
    commit_notes = 0
    for c in result.commits:
        commit_notes += len(c.result.notes)
        if not c.result.findings and not verbose:
            quiet += 1
            continue
        n = len(c.result.findings)
        out.append(f"{_short(c)}  [{c.result.route.tier}, {plural(n, 'finding')}]")
        for f in by_severity(c.result.findings):
            where = one_line(f.path) + (f":{f.line}" if f.line is not None else "")
            title, message = one_line(f.title), one_line(f.message)
            text = f"{title}: {message}" if title and not message.startswith(title) else message
            out.append(f"  {where}: {f.severity}: {text or title}")
        if verbose:
            out.extend(f"  note: {one_line(note)}" for note in c.result.notes)
    if quiet:
        out.append(f"{plural(quiet, 'commit')} without findings")
    for note in result.notes:
        out.append(f"note: {one_line(note)}")
    if commit_notes and not verbose:
        out.append(
            f"note: {plural(commit_notes, 'more note')} on single commits (-v or --format json)"
        )
    out.append(cost_line(result))
    return "\n".join(out) + "\n"


def cost_line(result: AuditResult) -> str:
    e, u = result.estimate, result.usage
    if u.calls or result.status not in ("dry-run", "offline"):
        opus = u.all_opus_cost_usd
        saved = f", {round(100 * (1 - u.cost_usd / opus))}% saved" if opus > 0 else ""
        return (
            f"cost: {money(u.cost_usd)} spent at batch prices on {plural(u.calls, 'model call')}"
            f" (all-Opus {money(opus)}{saved}; "
            f"estimated {money(e.cost_usd)}, one by one {money(e.interactive_cost_usd)})"
        )
    saved = (
        f", {round(100 * (1 - e.cost_usd / e.all_opus_cost_usd))}% saved"
        if e.all_opus_cost_usd > 0
        else ""
    )
    return (
        f"cost: {money(e.cost_usd)} estimated at batch prices for {plural(e.requests, 'request')}"
        f" (one by one {money(e.interactive_cost_usd)}; "
        f"all-Opus {money(e.all_opus_cost_usd)}{saved})"
    )


# --- markdown ---------------------------------------------------------------------------


def render_markdown(result: AuditResult, *, verbose: bool = False) -> str:
    from tierbot.reporters.markdown import code, escape, finding_block

    out = [f"## {escape(_header(result))}", ""]
    status = _status_line(result)
    if status:
        out += [f"**{escape(status)}**", ""]
    out += [
        "| Commit | Subject | Tier | Risk | Findings |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for c in result.commits:
        out.append(
            f"| {code(c.sha[:12], table=True)} | {escape(c.subject)[:200]} |"
            f" {c.result.route.tier} | {c.result.analysis.risk_score:.2f} |"
            f" {len(c.result.findings)} |"
        )
    for c in result.commits:
        if not c.result.findings:
            continue
        out += ["", f"### {code(c.sha[:12])} {escape(c.subject)}", ""]
        out += [finding_block(f, verbose) for f in by_severity(c.result.findings)]
    out += ["", f"**{escape(cost_line(result))}**"]
    notes = list(result.notes)
    for c in result.commits:
        notes += [f"{c.sha[:7]}: {n}" for n in c.result.notes] if verbose else []
    if notes:
        out += ["", "### Notes", "", *(f"- {escape(n)}" for n in notes)]
    return "\n".join(out) + "\n"


# --- sarif ------------------------------------------------------------------------------


def to_sarif(result: AuditResult) -> dict[str, Any]:
    """One run over every commit's findings; each result names its commit (its lines are
    that commit's lines)."""
    from tierbot.reporters.sarif import document, sarif_run

    findings = [
        (f, {"commit": c.sha}) for c in result.commits for f in by_severity(c.result.findings)
    ]
    notes = list(result.notes)
    for c in result.commits:
        notes += [f"{c.sha[:7]}: {n}" for n in c.result.notes]
    status = "partial" if result.status == "running" else result.status
    return document(sarif_run(findings, status, notes))
