"""The estimate's calibration from the ledger, and what the estimate does with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_helpers import default_change, route_for

from tierbot import config as config_mod
from tierbot.review import calibrate
from tierbot.review import prompt as P
from tierbot.review.answer import schema_text
from tierbot.review.ledger import DB_NAME, CallRow, Ledger, home
from tierbot.routing.estimate import PROMPT_OVERHEAD_TOKENS, estimate
from tierbot.routing.pricing import (
    DEFAULT_CALIBRATION,
    EXPECTED_OUTPUT_TOKENS,
    call_cost,
    estimate_tokens,
)

HAIKU, OPUS = "claude-haiku-5-5", "claude-opus-5-5"


def row(tier: str, model: str, prompt: int, out: int, **kw: object) -> CallRow:
    args: dict[str, object] = {
        "repo": "r",
        "range": "HEAD~1",
        "unit": "u1",
        "tier": tier,
        "model": model,
        "input_tokens": prompt,
        "output_tokens": out,
    }
    args.update(kw)
    return CallRow(**args)  # type: ignore[arg-type]


def test_without_history_the_documented_defaults_apply() -> None:
    cal = calibrate.from_rows([], config_mod.default())
    assert cal.outputs == EXPECTED_OUTPUT_TOKENS and cal.calibrated == ()
    assert cal.output_for("opus", 50_000) == EXPECTED_OUTPUT_TOKENS["opus"]


def test_output_per_tier_is_learned_by_prompt_size() -> None:
    cfg = config_mod.default()
    # Output grows by 0.2 tokens per prompt token around 1,000 (thinking included).
    rows = [row("haiku", HAIKU, p, 1000 + (p - 3000) // 5) for p in (1000, 2000, 3000, 4000, 5000)]
    rows += [
        row("haiku", "another-model", 3000, 99_999),  # not the configured model
        row("haiku", HAIKU, 3000, 0, cache_hit=True),  # nothing billed
        row("haiku", HAIKU, 3000, 50_000, unit="prime"),  # cache priming, not a review
    ]
    cal = calibrate.from_rows(rows, cfg)
    assert "haiku" in cal.calibrated and "sonnet" not in cal.calibrated
    assert cal.output_for("haiku", 3000) == 1000
    assert cal.output_for("haiku", 8000) == 2000
    assert cal.output_for("sonnet", 8000) == EXPECTED_OUTPUT_TOKENS["sonnet"]
    # Cache reads and writes are prompt too.
    split = [
        row("opus", OPUS, 100, 4000, cache_read_tokens=p - 600, cache_write_tokens=500)
        for p in (2000, 2000, 2000, 2000, 2000)
    ]
    cal = calibrate.from_rows(split, cfg)
    assert cal.fits["opus"][0] == 2000 and cal.output_for("opus", 2000) == 4000


def test_a_few_odd_calls_cannot_swing_the_slope() -> None:
    rows = [row("haiku", HAIKU, p, 500) for p in (1000, 1000, 1000, 1000)]
    rows.append(row("haiku", HAIKU, 1100, 90_000))
    cal = calibrate.from_rows(rows, config_mod.default())
    mean_x, mean_y, slope = cal.fits["haiku"]
    assert slope <= mean_y / mean_x  # twice the usual prompt at most doubles the output
    assert cal.output_for("haiku", 100) >= 0


def test_verification_rate_and_cost_come_from_the_ledger() -> None:
    cfg = config_mod.default()
    rows = [row("haiku", HAIKU, 2000, 500) for _ in range(8)]
    rows += [row("opus", OPUS, 3000, 2000, unit="verify", cost_usd=0.05, outcome="verified")]
    rows += [row("opus", OPUS, 3000, 2000, unit="verify", cost_usd=0.07, outcome="verified")]
    cal = calibrate.from_rows(rows, cfg)
    assert cal.verify_rate == pytest.approx(2 / 8)
    assert cal.verify_cost_usd == pytest.approx(0.06)


def test_the_estimate_uses_the_calibration_and_adds_expected_verification(repo: Path) -> None:
    change = default_change(repo)
    cfg = config_mod.default()
    route = route_for(
        [("u1", "haiku", ["app/util.py"], 0.1), ("u2", "opus", ["app/db.py"], 0.9)], change=change
    )
    cal = DEFAULT_CALIBRATION._replace(verify_rate=0.5, verify_cost_usd=0.08, prompt_extra=900)
    plain = estimate(change, route, cfg, cal, verifies=False)
    checked = estimate(change, route, cfg, cal, verifies=True)
    assert plain.verify_cost_usd == 0
    assert checked.verify_cost_usd == pytest.approx(0.04)  # one cheap unit x 0.5 x $0.08
    assert checked.cost_usd == pytest.approx(plain.cost_usd + 0.04)
    haiku, opus = route.units
    expected = sum(
        call_cost(
            cfg.price_for(u.model or ""),
            u.input_tokens + 900,
            EXPECTED_OUTPUT_TOKENS[u.tier],
        )
        for u in (haiku, opus)
    )
    assert plain.cost_usd == pytest.approx(expected, rel=1e-4)


def test_prompt_extra_covers_the_static_prompt_and_schema() -> None:
    sent = estimate_tokens(P.system_static("opus") + schema_text())
    assert PROMPT_OVERHEAD_TOKENS + calibrate.prompt_extra() >= sent


def test_a_dry_run_never_creates_the_ledger() -> None:
    assert not (home() / DB_NAME).exists()
    assert calibrate.calibration(config_mod.default()).calibrated == ()
    assert not (home() / DB_NAME).exists()
    with Ledger.open() as ledger:
        for _ in range(5):
            ledger.record(row("sonnet", "claude-sonnet-5-5", 4000, 1234))
    assert calibrate.calibration(config_mod.default()).outputs["sonnet"] == 1234


def test_a_verification_sent_in_a_batch_counts_at_the_interactive_price() -> None:
    from tierbot.review.calibrate import from_rows

    cfg = config_mod.default()
    rows = [
        CallRow("r", "", "verify", "opus", "claude-opus-5-5", 4000, 900, cost_usd=0.02),
        CallRow("r", "", "verify", "opus", "claude-opus-5-5", 4000, 900, cost_usd=0.01, batch="b1"),
    ]
    assert from_rows(rows, cfg).verify_cost_usd == pytest.approx(0.02)
