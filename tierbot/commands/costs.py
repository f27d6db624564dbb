"""`tierbot costs`: what the model calls cost and what all-Opus would have cost, from the ledger."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tierbot.errors import BadInput, TierbotError
from tierbot.records import TIERS

if TYPE_CHECKING:
    from tierbot.review.ledger import CallRow

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(since: str | None, now: float | None = None) -> float | None:
    """`7d`, `12h`, `2w`, `30m`, or a date `YYYY-MM-DD[THH:MM]` (local time) -> unix seconds."""
    if since is None or not since.strip():
        return None
    now = time.time() if now is None else now
    m = _AGE.match(since.lower())
    if m:
        return now - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        when = dt.datetime.fromisoformat(since.strip())
    except ValueError:
        raise BadInput(
            f"--since: expected a date (YYYY-MM-DD) or an age (7d, 12h, 2w), not {since!r}"
        ) from None
    return when.timestamp()  # naive values are local time, as a user typing a date means


def summary(since: float | None) -> dict[str, Any]:
    """The `tierbot.costs/1` object (SPEC §4) over the ledger's calls since `since`."""
    from tierbot.review.ledger import DB_NAME, locate

    calls = cache_hits = 0
    cost = all_opus = 0.0
    by_tier: dict[str, dict[str, Any]] = {}
    where, note = locate()
    if note:
        print(f"tierbot: {note}", file=sys.stderr)
    path = where / DB_NAME
    rows: list[CallRow] = []
    if path.exists():  # reading costs never creates a ledger
        try:
            rows = _rows(path, since)
        except (OSError, sqlite3.Error) as e:
            raise TierbotError(
                f"cannot read the ledger {path}: {e} (the next review moves a corrupt ledger "
                "aside and starts a new one)"
            ) from None
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


def _rows(path: Path, since: float | None) -> list[CallRow]:
    from tierbot.review.ledger import Ledger

    with Ledger(path, readonly=True) as ledger:
        return list(ledger.calls(since))


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


def main(since: str | None, fmt: str) -> int:
    data = summary(parse_since(since))
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(data, since))
    return 0
