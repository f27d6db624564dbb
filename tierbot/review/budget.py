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
from tierbot.review.answer import schema_text
from tierbot.routing.pricing import CHARS_PER_TOKEN, band, conservative_tokens

# Thinking is billed as output and counts toward max_tokens: below these a model at that effort
# often spends the whole cap thinking and stops before it answers (paid for, and nothing to show).
# So the guard never offers less; a budget that cannot cover the floor skips the call instead.
FLOORS: dict[str, int] = {"low": 2048, "medium": 4096, "high": 8192, "xhigh": 16384, "max": 32768}
# Structured outputs bill the schema as prompt; the guard adds it and this margin to every prompt.
_PROMPT_MARGIN = 200


def floor(effort: str | None, top: int) -> int:
    """The least `max_tokens` a call at `effort` may get (never above the tier's own cap)."""
    return min(top, FLOORS.get(effort or "medium", FLOORS["medium"]))


def worst_input(price: Price, text: str) -> tuple[float, Price]:
    """The most a prompt of `text` can cost, and the price band it falls in.

    Every prompt token is billed at the dearer of input and cache write, counted with the
    conservative estimate; the schema is billed as prompt too (structured outputs add it).
    """
    return worst_input_tokens(price, conservative_tokens(text + schema_text()) + _PROMPT_MARGIN)


def worst_input_tokens(price: Price, tokens: int) -> tuple[float, Price]:
    p = band(price, tokens)
    return tokens * max(p.input, p.cache_write) / 1e6, p


def conservative_from_estimate(fair_tokens: int) -> int:
    """A prompt not built yet, from its fair estimate (chars/3.2) to the guard's bound
    (chars/2), with the schema and the margin."""
    return (
        math.ceil(fair_tokens * CHARS_PER_TOKEN / 2)
        + conservative_tokens(schema_text())
        + (_PROMPT_MARGIN)
    )


def min_need(config: Config, model: str, text: str, floor_tokens: int) -> float:
    """The least budget a call must have to start: its worst-case prompt and a minimal answer."""
    input_cost, p = worst_input(config.price_for(model), text)
    return input_cost + floor_tokens * p.output / 1e6


def min_need_estimated(config: Config, model: str, fair_tokens: int, floor_tokens: int) -> float:
    """min_need for a prompt that is not built yet, from its offline estimate."""
    tokens = conservative_from_estimate(fair_tokens)
    input_cost, p = worst_input_tokens(config.price_for(model), tokens)
    return input_cost + floor_tokens * p.output / 1e6


def fit_call(
    price: Price,
    top: int,
    floor_tokens: int,
    text: str,
    left: float,
    others: float,
    can_wait: bool,
) -> tuple[int, float] | None:
    """`max_tokens` and the money to reserve for a call sending `text`, or None: it cannot start.

    `top` is the most the call may ask for, `floor_tokens` the least it may get.  `left` is the
    budget neither spent nor reserved; `others` is the least the units still waiting need, kept
    back so one call cannot starve them.  When nothing else is running (`can_wait` is false) no
    money will be freed, so the call may use it all.
    """
    input_cost, p = worst_input(price, text)
    left -= input_cost
    affordable = _tokens_for(left - others, p.output, top)
    if affordable < floor_tokens:
        if can_wait:
            return None  # finished calls release their reservations
        affordable = _tokens_for(left, p.output, top)
        if affordable < floor_tokens:
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
