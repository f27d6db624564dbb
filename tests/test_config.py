"""Hostile and broken `.tierbot.yml` files: exit 2 with one short line, never 3, never a hang."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from gitrepo import commit
from hostile import BOMB
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierbot import config
from tierbot.cli import main
from tierbot.errors import MESSAGE_LIMIT, BadInput


@pytest.fixture
def two_commits(repo: Path) -> Path:
    commit(repo, {"a.py": "x = 1\n"})
    commit(repo, {"a.py": "x = 1\ny = 2\n"})
    return repo


def review_with(
    config_path: str | Path, repo: Path, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch
) -> tuple[int, str]:
    mp.chdir(repo)
    code = main(["review", "HEAD~1", "--dry-run", "--config", str(config_path)])
    return code, capsys.readouterr().err


CASES = [
    pytest.param(BOMB, "expands to more than", id="alias-bomb"),
    pytest.param("a: " + "[" * 40 + "]" * 40 + "\n", "nested deeper than 32", id="deep-flow"),
    pytest.param(
        "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "x\n",
        "nested deeper than 32",
        id="deep-block",
    ),
    pytest.param(
        "routing:\n  weights: {base: .inf}\n",
        "'routing.weights.base' must be a number from -100 to 100, not inf",
        id="inf-weight",
    ),
    pytest.param("routing:\n  weights: {base: -.inf}\n", "not -inf", id="minus-inf-weight"),
    pytest.param(
        "routing:\n  thresholds: {sonnet: .nan}\n",
        "'routing.thresholds.sonnet' must be a number from 0 to 1, not nan",
        id="nan-threshold",
    ),
    pytest.param(
        "budget:\n  max_usd_per_review: .nan\n",
        "'budget.max_usd_per_review' must be a number",
        id="nan-budget",
    ),
    pytest.param(
        "hook:\n  timeout_s: .inf\n", "'hook.timeout_s' must be a number", id="inf-timeout"
    ),
    pytest.param(
        "prices:\n  m: {input: .inf, output: 1, cache_write: 1, cache_read: 1}\n",
        "'prices.m.input' must be a number",
        id="inf-price",
    ),
    pytest.param(
        "fail_on: high\nfail_on: none\n",
        "at line 2: duplicate key 'fail_on' (first given at line 1)",
        id="duplicate-key",
    ),
    pytest.param(
        "routing:\n  thresholds: {sonnet: 0.5, sonnet: 0.1}\n",
        "duplicate key 'sonnet'",
        id="duplicate-flow-key",
    ),
    pytest.param(
        "routing:\n  thresholds: {sonnet: 0.8, opus: 0.5}\n",
        "'routing.thresholds.sonnet' (0.8) is above 'routing.thresholds.opus' (0.5)",
        id="inverted-thresholds",
    ),
    pytest.param(
        "routing:\n  thresholds: {opus: 35}\n", "must be a number from 0 to 1, not 35", id="percent"
    ),
    pytest.param("concurrency: " + "9" * 400 + "\n", "not 999", id="huge-int"),
    pytest.param('ignore: ["[z-a]"]\n', "'ignore[0]' is not a valid glob", id="bad-glob"),
    pytest.param(
        "github:\n  bot_login: ''\n", "'github.bot_login' must be a GitHub login", id="no-login"
    ),
    pytest.param("github:\n  timeout_s: 5\n", "from 10 to 3600, not 5", id="short-timeout"),
    pytest.param("a: b\n---\nc: d\n", "expected a single document", id="two-documents"),
    pytest.param("fail_on: !!python/object:os.system x\n", "could not determine", id="py-tag"),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_hostile_configs_are_one_line_exit_2(
    text: str,
    message: str,
    two_commits: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    code, err = review_with(path, two_commits, capsys, monkeypatch)
    assert code == 2, err
    assert message in err
    assert len(err.splitlines()) == 1 and len(err) <= MESSAGE_LIMIT + 20
    assert "Traceback" not in err


def test_values_in_messages_are_short_and_escaped(
    two_commits: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "c.yml"
    path.write_text('fail_on: "\\e[31mred\\u202e' + "x" * 5000 + '"\n')
    code, err = review_with(path, two_commits, capsys, monkeypatch)
    assert code == 2 and "'fail_on' must be one of" in err
    assert "\x1b" not in err and "\u202e" not in err
    assert "\\x1b[31mred\\u202e" in err
    assert len(err) < 300
    path.write_text('"\\e]52;c;payload\\a' + "k" * 900 + '": 1\n')
    code, err = review_with(path, two_commits, capsys, monkeypatch)
    assert code == 2 and "unknown key '\\x1b]52;c;payload\\x07kkk" in err
    assert "\x1b" not in err and "\x07" not in err and len(err) < 200


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_endless_devices_are_refused_after_a_bounded_read(
    device: str,
    two_commits: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, err = review_with(device, two_commits, capsys, monkeypatch)
    assert code == 2
    assert err.strip() == f"tierbot: config: {device} is larger than 256 KiB: not a config file"


def test_a_50_mb_config_is_refused_without_reading_it(
    two_commits: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = tmp_path / "big.yml"
    with open(big, "w") as f:
        f.write("ignore:\n")
        line = "  - 'src/**/*.generated.py'\n"
        f.write(line * (50 * 1024 * 1024 // len(line)))
    code, err = review_with(big, two_commits, capsys, monkeypatch)
    assert code == 2 and "larger than 256 KiB" in err


def test_an_aliased_value_in_an_error_is_shown_short(
    two_commits: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bomb small enough to pass the expansion bound (9 x 9 x 9 values) gets a short message."""
    path = tmp_path / "b.yml"
    path.write_text(
        "fail_on:\n"
        '  - &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        "  - &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "  - [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    )
    code, err = review_with(path, two_commits, capsys, monkeypatch)
    assert code == 2 and "'fail_on' must be one of" in err and len(err) < 300


def test_merge_keys_and_equal_thresholds_are_still_fine() -> None:
    cfg = config.parse(
        "hook: {<<: {timeout_s: 5, fail_on: low}, timeout_s: 9}\n"
        "routing: {thresholds: {sonnet: 0.5, opus: 0.5}}\n"
    )
    assert cfg.hook.timeout_s == 9 and cfg.hook.fail_on == "low"
    assert cfg.routing.thresholds.sonnet == cfg.routing.thresholds.opus == 0.5


# --- property: whatever the file holds, the answer is a Config or one BadInput line ----------

KEYS = [
    "models", "prices", "routing", "thresholds", "weights", "sonnet", "opus", "base", "ignore",
    "fail_on", "filter", "on_error", "concurrency", "budget", "max_usd_per_review", "hook",
    "timeout_s", "github", "max_comments", "bot_login", "redact", "never_send", "input",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["high", "none", "added", "open", "haiku", "**/*.py", "[z-a]"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), inner, max_size=5),
    ),
    max_leaves=25,
)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=6).map(
    lambda d: yaml.safe_dump(d, allow_unicode=True)
)
# Raw text reaches the YAML parser too: broken syntax, tabs, control characters, anchors.
raw = st.lists(
    st.sampled_from([*"ab:-[]{}&*!|>'\"#\n\t \x00\x1b\\,?%@`", "fail_on: ", "&a ", "*a", "<<"]),
    max_size=60,
).map("".join)


def _check_parse(text: str) -> None:
    try:
        cfg = config.parse(text, "prop.yml")
    except BadInput as e:
        message = str(e)
        assert message and "\n" not in message and len(message) <= MESSAGE_LIMIT
        assert message.isprintable()
        return
    # Accepted: every number in it is finite, so nothing downstream meets inf or nan.
    for number in (cfg.routing.thresholds.sonnet, cfg.routing.thresholds.opus, cfg.hook.timeout_s):
        assert math.isfinite(number)
    assert all(math.isfinite(w) for w in cfg.routing.weights.values())
    assert cfg.routing.thresholds.sonnet <= cfg.routing.thresholds.opus


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_property_any_mapping_is_a_config_or_one_bad_input_line(text: str) -> None:
    _check_parse(text)


@settings(max_examples=300, deadline=None)
@given(raw)
def test_property_any_text_is_a_config_or_one_bad_input_line(text: str) -> None:
    _check_parse(text)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.one_of(documents, raw))
def test_property_the_cli_exits_0_or_2_with_one_line(
    text: str,
    two_commits: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "prop.yml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    code, err = review_with(path, two_commits, capsys, monkeypatch)
    assert code in (0, 1, 2), err
    if code == 2:
        assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "internal error" not in err


def test_unquoted_off_means_off() -> None:
    # YAML 1.1 reads `verify: off` as false; the user wrote the word.
    from tierbot import config as config_mod

    assert config_mod.parse("verify: off\n").verify == "off"
    assert config_mod.parse("verify: 'off'\n").verify == "off"
