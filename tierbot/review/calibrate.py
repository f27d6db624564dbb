"""What reviews really spend, from the ledger's own history: the estimate's calibration.

Thinking is billed as output and its amount depends on the model, the effort and the code, so no
constant predicts it well.  The ledger records every call's output tokens (thinking included):
the mean of a tier's recent review calls replaces the shipped default once there are MIN_CALLS of
them, and the verification rate and cost come from the verification calls the same way.  Read
only: a dry run never creates the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from tierbot.config import Config
from tierbot.review.ledger import DB_NAME, CallRow, Ledger, home
from tierbot.routing.pricing import (
    DEFAULT_CALIBRATION,
    DEFAULT_VERIFY_RATE,
    EXPECTED_OUTPUT_TOKENS,
    Calibration,
)

WINDOW_S = 30 * 86400  # history older than this says little about today's models and prompts
MIN_CALLS = 5
LAST_CALLS = 200  # per tier: the most recent ones
_NOT_REVIEWS = ("verify", "prime")
_BILLED = ("ok", "repaired", "invalid", "max_tokens", "refusal", "failed")


def calibration(config: Config) -> Calibration:
    """The calibration for `config`'s models from the ledger, or the defaults without one."""
    path = home() / DB_NAME
    if not path.exists():
        return DEFAULT_CALIBRATION
    try:
        with Ledger(path) as ledger:
            rows = list(ledger.calls(since=time.time() - WINDOW_S))
    except Exception:  # a broken ledger only costs the calibration
        return DEFAULT_CALIBRATION
    return from_rows(rows, config)


def from_rows(rows: Iterable[CallRow], config: Config) -> Calibration:
    outputs = dict(EXPECTED_OUTPUT_TOKENS)
    calibrated: list[str] = []
    by_tier: dict[str, list[int]] = {}
    verify_costs: list[float] = []
    cheap_calls = 0
    for r in rows:
        if r.cache_hit or r.outcome not in (*_BILLED, "verified"):
            continue
        if r.unit == "verify":
            verify_costs.append(r.cost_usd)
            continue
        if r.unit in _NOT_REVIEWS or r.model != config.model_for(r.tier):  # type: ignore[arg-type]
            continue
        by_tier.setdefault(r.tier, []).append(r.output_tokens)
        cheap_calls += r.tier in ("haiku", "sonnet")
    for tier, values in by_tier.items():
        recent = values[-LAST_CALLS:]
        if len(recent) >= MIN_CALLS:
            outputs[tier] = round(sum(recent) / len(recent))
            calibrated.append(tier)
    rate = DEFAULT_VERIFY_RATE
    each: float | None = None
    if cheap_calls >= MIN_CALLS:
        rate = len(verify_costs) / cheap_calls
        calibrated.append("verify rate")
    if verify_costs:
        recent_costs = verify_costs[-LAST_CALLS:]
        each = sum(recent_costs) / len(recent_costs)
        calibrated.append("verify cost")
    return Calibration(outputs, rate, each, tuple(calibrated))
