"""Keeping a review inside `--budget`: a plan before anything is sent, and a guard on every call.

The plan uses fair offline estimates and gives up the least risky work first (one tier down, then
not at all).  The guard prices each call at its worst case, so the budget is never exceeded even
when the estimates are wrong.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

from tierbot.config import Config, Price
from tierbot.records import Tier, Unit
from tierbot.review.answer import SCHEMA_TEXT
from tierbot.routing.pricing import band, conservative_tokens

# Output ceilings per tier (adaptive thinking counts as output); the guard may lower them.
MAX_TOKENS: dict[str, int] = {"haiku": 8192, "sonnet": 16384, "opus": 32768}
# Below this a review cannot be trusted to finish, so a budget that leaves less skips the call.
MIN_OUTPUT_TOKENS = 1024


def ceiling(tier: Tier) -> int:
    return MAX_TOKENS.get(tier, 8192)


def worst_input(price: Price, text: str) -> tuple[float, Price]:
    """The most a prompt of `text` can cost, and the price band it falls in.

    Every prompt token is billed at the dearer of input and cache write, counted with the
    conservative estimate; the schema is billed as prompt too (structured outputs add it).
    """
    tokens = conservative_tokens(text + SCHEMA_TEXT) + 200
    p = band(price, tokens)
    return tokens * max(p.input, p.cache_write) / 1e6, p


def min_need(config: Config, model: str, text: str) -> float:
    """The least budget a call must have to start: its worst-case prompt and a minimal answer."""
    input_cost, p = worst_input(config.price_for(model), text)
    return input_cost + MIN_OUTPUT_TOKENS * p.output / 1e6


def fit_call(
    price: Price, tier: Tier, text: str, left: float, others: float, can_wait: bool
) -> tuple[int, float] | None:
    """`max_tokens` and the money to reserve for a call sending `text`, or None: it cannot start.

    `left` is the budget neither spent nor reserved; `others` is the least the units still waiting
    need, kept back so one call cannot starve them.  When nothing else is running (`can_wait` is
    false) no money will be freed, so the call may use it all.
    """
    top = ceiling(tier)
    input_cost, p = worst_input(price, text)
    left -= input_cost
    affordable = _tokens_for(left - others, p.output, top)
    if affordable < MIN_OUTPUT_TOKENS:
        if can_wait:
            return None  # finished calls release their reservations
        affordable = _tokens_for(left, p.output, top)
        if affordable < MIN_OUTPUT_TOKENS:
            return None
    max_tokens = min(top, affordable)
    return max_tokens, input_cost + max_tokens * p.output / 1e6


def plan(
    units: Mapping[str, Unit],
    live: Sequence[str],
    expected: Callable[[Unit], float],
    budget: float,
    config: Config,
) -> tuple[dict[str, Unit], list[str]]:
    """Fit the expected cost of the `live` units (in route order) into `budget`.

    Returns the units re-tiered and a note for every unit downgraded or skipped.
    """
    units, notes = dict(units), []
    costs = {uid: expected(units[uid]) for uid in live}
    while sum(costs.values()) > budget:
        uid = _least_risky(units, live, costs)
        if uid is None:
            break
        u = units[uid]
        if u.tier in ("sonnet", "opus"):
            lower: Tier = "sonnet" if u.tier == "opus" else "haiku"
            units[uid] = retier(
                u, lower, config, f"downgraded from {u.tier} to fit the budget (${budget:.2f})"
            )
            notes.append(
                f"model: unit {uid} downgraded {u.tier} -> {lower} to fit the ${budget:.2f} budget"
            )
        else:
            units[uid] = skip(u, f"skipped: over the budget (${budget:.2f})")
            notes.append(f"model: unit {uid} skipped to fit the ${budget:.2f} budget")
        costs[uid] = expected(units[uid])
    return units, notes


def _least_risky(
    units: Mapping[str, Unit], live: Sequence[str], costs: Mapping[str, float]
) -> str | None:
    """The unit to give up next: one that can go a tier down if any, else one that still costs."""

    def rank(uid: str) -> tuple[float, int]:
        return units[uid].risk_score, live.index(uid)

    lowerable = [uid for uid in live if units[uid].tier in ("sonnet", "opus")]
    if lowerable:
        return min(lowerable, key=rank)
    remaining = [uid for uid in live if units[uid].tier != "skip" and costs[uid] > 0]
    return min(remaining, key=rank) if remaining else None


def retier(u: Unit, tier: Tier, config: Config, reason: str) -> Unit:
    return dataclasses.replace(
        u, tier=tier, model=config.model_for(tier), reasons=(*u.reasons, reason)
    )


def skip(u: Unit, reason: str) -> Unit:
    return dataclasses.replace(u, tier="skip", model=None, reasons=(*u.reasons, reason))


def _tokens_for(usd: float, output_price: float, top: int) -> int:
    if output_price <= 0:
        return top
    return max(0, math.floor(usd * 1e6 / output_price))
