"""`tierbot costs`: what the model calls cost and what all-Opus would have cost, from the ledger.

Spending adds up across runners: `--export FILE` writes the ledger's rows of a period as JSON
lines (schema tierbot.cost-row/1, each naming its ledger and row, so a row exported twice is
counted once), and `--merge FILE...` adds many exports up by repository, tier, command and month.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from tierbot.errors import BadInput, TierbotError, printable, shown
from tierbot.records import TIERS
from tierbot.words import plural

if TYPE_CHECKING:
    from tierbot.review.ledger import CallRow

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration_s(text: str) -> float | None:
    """`90s`, `30m`, `12h`, `7d`, `2w` or a number of seconds -> seconds; None: not a duration."""
    m = _AGE.match(text.lower())
    return float(m.group(1)) * _UNIT_S[m.group(2)] if m else None


def parse_since(since: str | None, now: float | None = None) -> float | None:
    """`7d`, `12h`, `2w`, `30m`, a date `YYYY-MM-DD[THH:MM]` (local time), or `@<unix seconds>`
    (a moment to the microsecond, as the action records one) -> unix seconds."""
    if since is None or not since.strip():
        return None
    if since.strip().startswith("@"):
        try:
            moment = float(since.strip()[1:])
        except ValueError:
            moment = math.nan
        if math.isfinite(moment):
            return moment
    now = time.time() if now is None else now
    age = duration_s(since)
    if age is not None and since.strip()[-1:].isalpha():  # a bare number is no age
        return now - age
    try:
        when = dt.datetime.fromisoformat(since.strip())
    except ValueError:
        raise BadInput(
            f"--since: expected a date (YYYY-MM-DD) or an age (7d, 12h, 2w), not {since!r}"
        ) from None
    return when.timestamp()  # naive values are local time, as a user typing a date means


def summary(since: float | None, until: float | None = None) -> dict[str, Any]:
    """The `tierbot.costs/1` object (SPEC §4) over the ledger's calls since `since`."""
    return totals(_ledger_rows(since, until)[1])


def _ledger_rows(since: float | None, until: float | None) -> tuple[str, list[CallRow]]:
    """(the ledger's id, its rows of the period); no ledger: no rows (none is created)."""
    from tierbot.review.ledger import DB_NAME, Ledger, locate

    where, note = locate()
    if note:
        print(f"tierbot: {note}", file=sys.stderr)
    path = where / DB_NAME
    if not path.exists():  # reading costs never creates a ledger
        return "", []
    try:
        with Ledger(path, readonly=True) as ledger:
            return ledger.ledger_id(), list(ledger.calls(since, until))
    except (OSError, sqlite3.Error) as e:
        raise TierbotError(
            f"cannot read the ledger {path}: {e} (the next review moves a corrupt ledger "
            "aside and starts a new one)"
        ) from None


def totals(rows: Iterable[CallRow]) -> dict[str, Any]:
    """The `tierbot.costs/1` sums over `rows`."""
    calls = cache_hits = 0
    cost = all_opus = 0.0
    by_tier: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.cache_hit:
            cache_hits += 1
            continue
        calls += 1
        cost += row.cost_usd
        all_opus += row.all_opus_cost_usd
        tier = row.tier if row.tier in TIERS else "opus"
        t = by_tier.setdefault(tier, {"calls": 0, "cost_usd": 0.0})
        t["calls"] += 1
        t["cost_usd"] += row.cost_usd
    saved = all_opus - cost
    return {
        "schema": "tierbot.costs/1",
        "calls": calls,
        "cost_usd": round(cost, 6),
        "all_opus_cost_usd": round(all_opus, 6),
        "saved_usd": round(saved, 6),
        "saved_pct": round(100 * saved / all_opus, 1) if all_opus > 0 else None,
        "cache_hits": cache_hits,
        "by_tier": {
            t: {"calls": v["calls"], "cost_usd": round(v["cost_usd"], 6)}
            for t, v in sorted(by_tier.items(), key=lambda kv: TIERS.index(kv[0]))
        },
    }


def render_text(data: dict[str, Any], since: str | None) -> str:
    span = f"since {since}" if since else "all time"
    lines = [f"tierbot costs ({span})"]
    hits = data["cache_hits"]
    lines.append(
        f"  model calls   {data['calls']}"
        + (f"  (+{hits} answered from the review cache)" if hits else "")
    )
    lines.append(f"  spent         ${data['cost_usd']:.4f}")
    lines.append(f"  all-Opus      ${data['all_opus_cost_usd']:.4f}")
    pct = data["saved_pct"]
    lines.append(
        f"  saved         ${data['saved_usd']:.4f}" + (f"  ({pct:.1f}%)" if pct is not None else "")
    )
    if data["by_tier"]:
        lines.append("  by tier")
        for tier, t in data["by_tier"].items():
            calls = "call " if t["calls"] == 1 else "calls"
            lines.append(f"    {tier:<7} {t['calls']:>5} {calls}  ${t['cost_usd']:.4f}")
    return "\n".join(lines) + "\n"


def main(since: str | None, fmt: str, until: str | None = None) -> int:
    data = summary(parse_since(since), _until(until))
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(data, since))
    return 0


def _until(until: str | None) -> float | None:
    try:
        return parse_since(until)
    except BadInput:
        raise BadInput(
            f"--until: expected a date (YYYY-MM-DD) or an age (7d, 12h, 2w), not {until!r}"
        ) from None


# --- export and merge: spending across runners -------------------------------------------------

ROW_SCHEMA = "tierbot.cost-row/1"
# A line of an export is a few hundred bytes; a longer one is not ours.
MAX_LINE_BYTES = 64 * 1024
_TEXT_FIELDS = ("repo", "command", "range", "unit", "tier", "model", "outcome", "batch")
_TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")
_USD_FIELDS = ("cost_usd", "all_opus_cost_usd")


def export_row(ledger_id: str, row: CallRow) -> dict[str, Any]:
    """One ledger row as a line of an export."""
    when = dt.datetime.fromtimestamp(row.time, dt.timezone.utc)
    return {
        "schema": ROW_SCHEMA,
        "ledger": ledger_id,
        "row": row.row_id,
        "time": when.isoformat().replace("+00:00", "Z"),
        "repo": row.repo,
        "command": row.command,
        "range": row.range,
        "unit": row.unit,
        "tier": row.tier,
        "model": row.model,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "cache_read_tokens": row.cache_read_tokens,
        "cost_usd": round(row.cost_usd, 9),
        "all_opus_cost_usd": round(row.all_opus_cost_usd, 9),
        "cache_hit": row.cache_hit,
        "outcome": row.outcome,
        "batch": row.batch,
    }


def export_main(target: str, since: str | None, until: str | None) -> int:
    """`--export FILE`: the ledger's rows of the period as JSON lines ('-': stdout)."""
    ledger_id, rows = _ledger_rows(parse_since(since), _until(until))
    lines = "".join(json.dumps(export_row(ledger_id, r), ensure_ascii=True) + "\n" for r in rows)
    if target == "-":
        sys.stdout.write(lines)
    else:
        try:
            with open(target, "w", encoding="ascii") as f:
                f.write(lines)
        except OSError as e:
            raise BadInput(f"cannot write {target}: {e.strerror or e}") from None
    print(f"tierbot: exported {plural(len(rows), 'ledger row')} to {target}", file=sys.stderr)
    return 0


def read_export(path: str) -> Iterator[CallRow]:
    """The rows of an export, each checked (a bad line is exit 2, naming the file and line)."""
    from tierbot.review.ledger import MAX_COST_USD, CallRow, usage_number

    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; a generator holds it
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        for number, raw in enumerate(f, 1):
            where = f"{path}:{number}"
            if len(raw) > MAX_LINE_BYTES:
                raise BadInput(f"{where}: a line of {len(raw)} bytes is not a tierbot cost row")
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except ValueError:
                raise BadInput(f"{where}: not JSON (expected a {ROW_SCHEMA} line)") from None
            if not isinstance(data, dict) or data.get("schema") != ROW_SCHEMA:
                raise BadInput(f"{where}: not a {ROW_SCHEMA} line")
            problem = _row_problem(data, usage_number, MAX_COST_USD)
            if problem:
                raise BadInput(f"{where}: {problem}")
            yield CallRow(
                repo=str(data["repo"]),
                range=str(data["range"]),
                unit=str(data["unit"]),
                tier=str(data["tier"]),
                model=str(data["model"]),
                input_tokens=int(data["input_tokens"]),
                output_tokens=int(data["output_tokens"]),
                cache_write_tokens=int(data["cache_write_tokens"]),
                cache_read_tokens=int(data["cache_read_tokens"]),
                cost_usd=float(data["cost_usd"]),
                all_opus_cost_usd=float(data["all_opus_cost_usd"]),
                cache_hit=bool(data["cache_hit"]),
                outcome=str(data["outcome"]),
                time=_when(data["time"]) or 0.0,
                command=str(data["command"]),
                batch=str(data["batch"]),
                request=f"{data['ledger']}#{data['row']}",
            )


def _row_problem(data: dict[str, Any], usage_number: Any, max_usd: float) -> str | None:
    for key in (*_TEXT_FIELDS, "ledger"):
        if not isinstance(data.get(key), str):
            return f"{key}: expected a string"
    if not isinstance(data.get("row"), int) or isinstance(data.get("row"), bool):
        return "row: expected a whole number"
    for key in _TOKEN_FIELDS:
        value = data.get(key)
        if not isinstance(value, int) or usage_number(value)[1]:
            return f"{key}: expected a whole number of tokens, not {shown(value)}"
    for key in _USD_FIELDS:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{key}: expected a number of USD, not {shown(value)}"
        if not 0 <= value <= max_usd:
            return f"{key}: {shown(value)} is not a possible cost of one call"
    if not isinstance(data.get("cache_hit"), bool):
        return "cache_hit: expected true or false"
    if _when(data.get("time")) is None:
        return f"time: expected an ISO date and time, not {shown(data.get('time'))}"
    return None


def _when(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def merge(paths: Iterable[str], since: float | None, until: float | None) -> dict[str, Any]:
    """The `tierbot.costs/1` sums of many exports, with `groups` by month, repository, command
    and tier; a row found in several exports (same ledger and row) counts once."""
    seen: set[str] = set()
    rows: list[CallRow] = []
    duplicates = files = 0
    for path in paths:
        files += 1
        for row in read_export(path):
            if row.request in seen:
                duplicates += 1
                continue
            seen.add(str(row.request))
            if (since is None or row.time >= since) and (until is None or row.time < until):
                rows.append(row)
    data = totals(rows)
    groups: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for row in rows:
        month = dt.datetime.fromtimestamp(row.time, dt.timezone.utc).strftime("%Y-%m")
        g = groups.setdefault(
            (month, row.repo, row.command or "(unrecorded)", row.tier),
            {"calls": 0, "cache_hits": 0, "cost_usd": 0.0, "all_opus_cost_usd": 0.0},
        )
        if row.cache_hit:
            g["cache_hits"] += 1
            continue
        g["calls"] += 1
        g["cost_usd"] += row.cost_usd
        g["all_opus_cost_usd"] += row.all_opus_cost_usd
    data["exports"] = files
    data["rows"] = len(rows)
    data["duplicates"] = duplicates
    data["groups"] = [
        {
            "month": month,
            "repo": repo,
            "command": command,
            "tier": tier,
            "calls": g["calls"],
            "cache_hits": g["cache_hits"],
            "cost_usd": round(g["cost_usd"], 6),
            "all_opus_cost_usd": round(g["all_opus_cost_usd"], 6),
        }
        for (month, repo, command, tier), g in sorted(groups.items())
    ]
    return data


def merge_main(paths: Sequence[str], fmt: str, since: str | None, until: str | None) -> int:
    data = merge(paths, parse_since(since), _until(until))
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return 0
    head = (
        f"{plural(data['exports'], 'export')}, {plural(data['rows'], 'row')}"
        + (f", {data['duplicates']} found twice (counted once)" if data["duplicates"] else "")
        + (f", since {since}" if since else "")
        + (f", until {until}" if until else "")
    )
    text = render_text(data, None).replace("(all time)", f"({head})", 1)
    lines = [text.rstrip("\n")]
    if data["groups"]:
        lines.append("  by month, repository, command and tier")
        width = min(40, max(len(g["repo"]) for g in data["groups"]))
        for g in data["groups"]:
            repo = g["repo"] if len(g["repo"]) <= width else "…" + g["repo"][-(width - 1) :]
            lines.append(
                f"    {g['month']}  {printable(repo):<{width}}  {g['command']:<8} {g['tier']:<7}"
                f" {g['calls']:>5} {'call ' if g['calls'] == 1 else 'calls'}  ${g['cost_usd']:.4f}"
            )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
