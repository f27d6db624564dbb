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
    BATCH_PRICE_FACTOR,
    DEFAULT_CALIBRATION,
    DEFAULT_VERIFY_RATE,
    EXPECTED_OUTPUT_TOKENS,
    Calibration,
    estimate_tokens,
)

WINDOW_S = 30 * 86400  # history older than this says little about today's models and prompts
MIN_CALLS = 5
LAST_CALLS = 200  # per tier: the most recent ones
_NOT_REVIEWS = ("verify", "prime")
_BILLED = ("ok", "repaired", "invalid", "max_tokens", "refusal", "failed")


def calibration(config: Config) -> Calibration:
    """The calibration for `config`'s models from the ledger, or the defaults without one."""
    extra = prompt_extra()
    path = home() / DB_NAME
    if not path.exists():
        return DEFAULT_CALIBRATION._replace(prompt_extra=extra)
    try:
        with Ledger(path, readonly=True) as ledger:
            rows = list(ledger.calls(since=time.time() - WINDOW_S))
    except Exception:  # a broken ledger only costs the calibration
        return DEFAULT_CALIBRATION._replace(prompt_extra=extra)
    return from_rows(rows, config)._replace(prompt_extra=extra)


def prompt_extra() -> int:
    """Tokens every prompt sends beyond the router's fixed overhead: the tier prompt (the
    largest), the answer schema and the request framing, as the prompt files are today."""
    from tierbot.review import prompt
    from tierbot.review.answer import SCHEMA_CHARS
    from tierbot.routing.estimate import PROMPT_OVERHEAD_TOKENS

    static = max(len(prompt.system_static(t)) for t in ("haiku", "sonnet", "opus"))
    sent = estimate_tokens("x" * (static + SCHEMA_CHARS)) + FRAMING_TOKENS
    return max(0, sent - PROMPT_OVERHEAD_TOKENS)


# Headings, the fence rule and the unit's file list around the diff in every unit prompt.
FRAMING_TOKENS = 200


def from_rows(rows: Iterable[CallRow], config: Config) -> Calibration:
    outputs = dict(EXPECTED_OUTPUT_TOKENS)
    calibrated: list[str] = []
    by_tier: dict[str, list[tuple[int, int]]] = {}  # (prompt tokens, output tokens)
    verify_costs: list[float] = []
    cheap_calls = 0
    for r in rows:
        if r.cache_hit or r.outcome not in (*_BILLED, "verified"):
            continue
        if r.unit == "verify":
            # A verification sent in a Message Batch was billed at half price: count it at the
            # price an interactive review pays, which is what this calibrates.
            verify_costs.append(r.cost_usd / BATCH_PRICE_FACTOR if r.batch else r.cost_usd)
            continue
        if r.unit in _NOT_REVIEWS or r.model != config.model_for(r.tier):  # type: ignore[arg-type]
            continue
        prompt = r.input_tokens + r.cache_read_tokens + r.cache_write_tokens
        by_tier.setdefault(r.tier, []).append((prompt, r.output_tokens))
        cheap_calls += r.tier in ("haiku", "sonnet")
    fits: dict[str, tuple[float, float, float]] = {}
    for tier, points in by_tier.items():
        recent = points[-LAST_CALLS:]
        if len(recent) >= MIN_CALLS:
            fits[tier] = _fit(recent)
            outputs[tier] = round(fits[tier][1])
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
    return Calibration(outputs, rate, each, tuple(calibrated), fits)


def _fit(points: list[tuple[int, int]]) -> tuple[float, float, float]:
    """Least squares of output on prompt size: (mean prompt, mean output, slope >= 0).

    The slope is what makes a 40-file unit cost more thinking than a one-liner; it is kept
    non-negative and small enough that a prompt twice the history's mean at most doubles the
    expected output, so a few odd calls cannot swing estimates wildly.
    """
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var <= 0 or mean_x <= 0:
        return mean_x, mean_y, 0.0
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / var
    return mean_x, mean_y, min(max(slope, 0.0), mean_y / mean_x)
