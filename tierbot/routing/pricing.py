"""Pricing arithmetic and offline token estimates, shared by the model calls and the estimate.

Kept tiny and import-free so the dry-run path can use it without loading the SDK.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

from tierbot.config import Price

# Offline token estimate for code: the 5.5 tokenizer gives about 1 token per 3.2 characters.
CHARS_PER_TOKEN = 3.2
# The Message Batches API bills half of every price (input, output and cache alike).
BATCH_PRICE_FACTOR = 0.5


def estimate_tokens(text: str) -> int:
    """A fair offline estimate of the tokens `text` costs."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def conservative_tokens(text: str) -> int:
    """An upper bound for budget guards: ASCII at 2 chars/token, anything else 1 token each.

    The budget must never be exceeded, so the guard prices prompts well above the fair estimate
    (code averages 3.2 chars/token; even base64 noise stays above 2).
    """
    non_ascii = sum(1 for ch in text if ord(ch) > 127)
    return math.ceil((len(text) - non_ascii) / 2) + non_ascii


def band(price: Price, prompt_tokens: int) -> Price:
    """The price band a request falls in: some models bill the whole request higher above a size."""
    if (
        price.long_context_threshold is not None
        and price.long_context is not None
        and prompt_tokens > price.long_context_threshold
    ):
        return price.long_context
    return price


def call_cost(
    price: Price,
    input_tokens: int,
    output_tokens: int,
    cache_write_tokens: int = 0,
    cache_read_tokens: int = 0,
) -> float:
    """USD cost of one call from its usage (`input_tokens` are the uncached prompt tokens)."""
    p = band(price, input_tokens + cache_write_tokens + cache_read_tokens)
    return (
        input_tokens * p.input
        + output_tokens * p.output
        + cache_write_tokens * p.cache_write
        + cache_read_tokens * p.cache_read
    ) / 1_000_000


# What one review call writes, in output tokens (the findings JSON plus adaptive thinking, which
# is billed as output), by tier at its default effort (haiku low, sonnet medium, opus high).
# These are the documented starting points only: once the ledger holds MIN_CALLS calls of a tier
# (`review/calibrate.py`), the mean of that history replaces them.
EXPECTED_OUTPUT_TOKENS = {"haiku": 900, "sonnet": 2500, "opus": 6000}
# Verification: Opus checks a cheaper tier's blocking findings in one call per review.  Without
# history, one cheap-tier unit in ten is assumed to need it, at a prompt of this many tokens.
DEFAULT_VERIFY_RATE = 0.1
VERIFY_INPUT_TOKENS = 4000


class Calibration(NamedTuple):
    """What the estimate expects a review to spend beyond its prompts."""

    outputs: Mapping[str, int]  # tier -> mean output tokens per review call
    verify_rate: float  # verification calls per cheap-tier (haiku, sonnet) unit
    verify_cost_usd: float | None  # the mean cost of one verification call; None: priced anew
    calibrated: tuple[str, ...] = ()  # what came from the ledger (the rest: the defaults)
    # tier -> (mean prompt tokens, mean output tokens, output tokens per prompt token) of its
    # history: a model thinks and writes more about more code.
    fits: Mapping[str, tuple[float, float, float]] = {}
    # What every call's prompt carries beyond the router's fixed PROMPT_OVERHEAD_TOKENS (the
    # tier prompt and the answer schema as they are now), for pricing; routing packs units
    # without it.
    prompt_extra: int = 0

    def output_for(self, tier: str, prompt_tokens: int) -> int:
        """Expected output tokens of one call at `tier` with a prompt of `prompt_tokens`."""
        fit = self.fits.get(tier)
        if fit is None:
            return self.outputs.get(tier, EXPECTED_OUTPUT_TOKENS.get(tier, 1000))
        mean_x, mean_y, slope = fit
        return max(0, round(mean_y + slope * (prompt_tokens - mean_x)))


DEFAULT_CALIBRATION = Calibration(EXPECTED_OUTPUT_TOKENS, DEFAULT_VERIFY_RATE, None)
