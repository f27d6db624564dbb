"""The environment variables tierbot reads of its own, in one table, with one way to read them.

The Anthropic SDK, git and the GitHub runner read theirs (ANTHROPIC_API_KEY, GIT_INDEX_FILE,
GITHUB_TOKEN, ...); these are tierbot's knobs.  README.md lists every one (a test checks), and no
module reads a `TIERBOT_*` variable except through `text` or `number`.
"""

from __future__ import annotations

import math
import os

VARIABLES: dict[str, str] = {
    "TIERBOT_HOME": "where the ledger, the review cache and crash logs live "
    "(default: the user cache directory)",
    "TIERBOT_RISK_MODEL": "a risk model file to use instead of the shipped one "
    "(fitted with bench/routing/fit.py)",
    "TIERBOT_API_TIMEOUT": "seconds one unit's model calls may take, instead of the bound sized "
    "to max_tokens",
    "TIERBOT_API_RETRIES": "retries of a model call that failed with 429/5xx/529 (default 2)",
    "TIERBOT_GITHUB_THROTTLE": "seconds between GitHub writes (default PyGithub's 1 s; 0 for "
    "servers without secondary rate limits)",
    "TIERBOT_BATCH_POLL_S": "the first wait between polls of a running Message Batch (default 2)",
    "TIERBOT_BATCH_MAX_REQUESTS": "requests per Message Batch, at most the API's limit",
    "TIERBOT_BATCH_MAX_BYTES": "bytes per Message Batch, at most the API's limit",
}


def text(name: str) -> str | None:
    """The variable's value, None when unset."""
    if name not in VARIABLES:
        raise KeyError(f"{name} is not a documented tierbot variable")
    return os.environ.get(name)


def number(name: str, default: float, *, low: float = 0.0, high: float = math.inf) -> float:
    """The variable as a number within [low, high]; `default` when unset, not a number or out
    of range (a knob set wrong must not break a review)."""
    value = text(name)
    try:
        parsed = float(value) if value not in (None, "") else default
    except ValueError:
        return default
    return parsed if math.isfinite(parsed) and low <= parsed <= high else default
