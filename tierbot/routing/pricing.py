"""Pricing arithmetic and offline token estimates, shared by the model calls and the estimate.

Kept tiny and import-free so the dry-run path can use it without loading the SDK.
"""

from __future__ import annotations

import math

from tierbot.config import Price

# Offline token estimate for code: the 5.5 tokenizer gives about 1 token per 3.2 characters.
CHARS_PER_TOKEN = 3.2


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


# What a review answer usually costs in output tokens (findings JSON plus adaptive thinking),
# by tier: deeper tiers think and write more.  Used for the offline estimate and budget planning.
EXPECTED_OUTPUT_TOKENS = {"haiku": 700, "sonnet": 1500, "opus": 3000}
