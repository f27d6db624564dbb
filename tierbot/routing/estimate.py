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
# The change manifest (review/prompt.py) lists every file, up to MAX_MANIFEST_FILES, in every call:
# path, status, size, tier and language, about 60 characters a line.
MANIFEST_TOKENS_PER_FILE = 18
MAX_MANIFEST_FILES = 400
# Surrounding context sent with each hunk, as a share of the patch itself.
CONTEXT_FACTOR = 1.25
# What a unit's prompt adds for each of its files besides the patch: the path in the unit's file
# list and in the file's header, its status and size (measured: 5,000 two-line files cost about
# 40 tokens each).
FILE_TOKENS = 10
OUTPUT_TOKENS = 600


def manifest_tokens(files: int) -> int:
    """The manifest's tokens: paid once per call, whatever the number of files in the unit."""
    return MANIFEST_TOKENS_PER_FILE * min(files, MAX_MANIFEST_FILES)


def diff_tokens(files: Sequence[FileDiff]) -> int:
    """Tokens of the files' diffs, surrounding code and headers in a prompt."""
    # Unparsed files (lockfiles, huge generated files) have no patch text: ~12 tokens a line.
    patch = sum(
        math.ceil(f.patch_chars / CHARS_PER_TOKEN)
        if f.patch is not None
        else 12 * (f.lines_added + f.lines_removed)
        for f in files
    )
    named = sum(FILE_TOKENS + 2 * math.ceil(len(f.path) / CHARS_PER_TOKEN) for f in files)
    return int(patch * CONTEXT_FACTOR) + named


def unit_tokens(files: Sequence[FileDiff], manifest_files: int) -> tuple[int, int]:
    """Estimated (input, output) tokens of one review call over `files`."""
    return (
        PROMPT_OVERHEAD_TOKENS + manifest_tokens(manifest_files) + diff_tokens(files),
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
    when cheaper tiers' findings would be verified (`verifies`).

    The counterfactual of a team without routing is the same review units all at Opus (answered
    like Opus review calls), plus the skipped files as one more Opus unit (SPEC §4): the same
    calls at Opus prices, so routing alone never costs more than it."""
    opus_model = config.model_for("opus") or ""
    opus = config.price_for(opus_model)
    tin = tout = 0
    cost = all_opus = 0.0
    cheap = 0
    skipped: list[FileDiff] = []
    by_path = {f.path: f for f in change.files}
    for unit in route.units:
        if unit.tier == "skip" or unit.model is None:
            skipped.extend(by_path[p] for p in unit.paths if p in by_path)
            continue
        prompt = unit.input_tokens + calibration.prompt_extra
        out = calibration.output_for(unit.tier, prompt)
        tin += prompt
        tout += out
        cost += call_cost(config.price_for(unit.model), prompt, out)
        all_opus += call_cost(opus, prompt, calibration.output_for("opus", prompt) or out)
        cheap += unit.tier in ("haiku", "sonnet")
    verify = 0.0
    if verifies and cheap:
        each = calibration.verify_cost_usd
        if each is None:
            each = call_cost(opus, VERIFY_INPUT_TOKENS, calibration.outputs.get("opus", 0))
        verify = min(1.0, cheap * calibration.verify_rate) * each
    skipped_opus = 0.0
    if skipped:
        prompt, out = unit_tokens(skipped, len(change.files))
        prompt += calibration.prompt_extra
        skipped_opus = call_cost(opus, prompt, calibration.output_for("opus", prompt) or out)
    return Estimate(
        tin,
        tout,
        round(cost + verify, 6),
        round(all_opus + skipped_opus, 6),
        round(verify, 6),
        round(skipped_opus, 6),
    )
