"""Offline cost estimate of a route, with the all-Opus counterfactual."""

from __future__ import annotations

import math
from collections.abc import Sequence

from tierbot.config import Config
from tierbot.records import Change, Estimate, FileDiff, Route
from tierbot.routing.pricing import (
    CHARS_PER_TOKEN,
    DEFAULT_CALIBRATION,
    VERIFY_INPUT_TOKENS,
    Calibration,
    call_cost,
)

# System prompt, instructions and answer format: what every call pays before any diff.
PROMPT_OVERHEAD_TOKENS = 1500
MANIFEST_TOKENS_PER_FILE = 12
# Surrounding context sent with each hunk, as a share of the patch itself.
CONTEXT_FACTOR = 1.25
OUTPUT_TOKENS = 600


def unit_tokens(files: Sequence[FileDiff], manifest_files: int) -> tuple[int, int]:
    """Estimated (input, output) tokens of one review call over `files`."""
    # Unparsed files (lockfiles, huge generated files) have no patch text: ~12 tokens a line.
    patch = sum(
        math.ceil(f.patch_chars / CHARS_PER_TOKEN)
        if f.patch is not None
        else 12 * (f.lines_added + f.lines_removed)
        for f in files
    )
    return (
        PROMPT_OVERHEAD_TOKENS
        + MANIFEST_TOKENS_PER_FILE * manifest_files
        + int(patch * CONTEXT_FACTOR),
        OUTPUT_TOKENS,
    )


def estimate(
    change: Change,
    route: Route,
    config: Config,
    calibration: Calibration = DEFAULT_CALIBRATION,
    verifies: bool = False,
) -> Estimate:
    """The offline cost of reviewing `route`: each unit's prompt and its tier's expected output
    (from the ledger's history when there is one), plus the expected cost of Opus verification
    when cheaper tiers' findings would be verified (`verifies`)."""
    opus_model = config.model_for("opus") or ""
    opus = config.price_for(opus_model)
    tin = tout = 0
    cost = 0.0
    cheap = 0
    for unit in route.units:
        if unit.tier == "skip" or unit.model is None:
            continue
        prompt = unit.input_tokens + calibration.prompt_extra
        out = calibration.output_for(unit.tier, prompt)
        tin += prompt
        tout += out
        cost += call_cost(config.price_for(unit.model), prompt, out)
        cheap += unit.tier in ("haiku", "sonnet")
    verify = 0.0
    if verifies and cheap:
        each = calibration.verify_cost_usd
        if each is None:
            each = call_cost(opus, VERIFY_INPUT_TOKENS, calibration.outputs.get("opus", 0))
        verify = min(1.0, cheap * calibration.verify_rate) * each
    # The counterfactual a team without routing pays: the whole change, skipped files too, in one
    # Opus call (answered like any Opus review call).
    if change.files:
        all_in, all_out = unit_tokens(change.files, len(change.files))
        all_in += calibration.prompt_extra
        all_opus = call_cost(opus, all_in, calibration.output_for("opus", all_in) or all_out)
    else:
        all_opus = 0.0
    return Estimate(tin, tout, round(cost + verify, 6), round(all_opus, 6), round(verify, 6))
