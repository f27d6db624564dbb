"""`.tierbot.yml`: strict loading into immutable records.

Every key has a default here; an unknown or mistyped key is a BadInput naming its path and the
closest valid name.  The same dataclasses drive validation, so the schema cannot drift from the
code.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from tierbot.errors import BadInput
from tierbot.paths import glob_error
from tierbot.records import Filter, Severity, Tier

CONFIG_NAME = ".tierbot.yml"
DATA_DIR = Path(__file__).parent / "data"

FailOn = Literal["none", "info", "low", "medium", "high", "critical"]
OnError = Literal["open", "closed"]
ReviewTier = Literal["haiku", "sonnet", "opus"]
# How hard a model thinks (the API's `output_config.effort`); thinking is billed as output.
Effort = Literal["low", "medium", "high", "xhigh", "max"]
EFFORTS: tuple[Effort, ...] = ("low", "medium", "high", "xhigh", "max")
VerifyMode = Literal["blocking", "high", "off"]
# A risk-model weight: a logit contribution, so it may be negative (unlike prices and sizes).
Weight = typing.NewType("Weight", float)


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cache_write: float
    cache_read: float
    long_context_threshold: int | None = None
    long_context: Price | None = None


@dataclass(frozen=True)
class TierModel:
    """`models.<tier>`: a model id alone, or `{model, effort, max_tokens}`."""

    model: str
    effort: Effort | None = None  # None: the tier's default
    max_tokens: int | None = None  # the output cap, thinking included; None: the tier's default


# Set per tier because the API's defaults are inverted for a tiered reviewer (Haiku medium,
# Sonnet high, Opus medium): the cheap tier answers quickly, the staff engineer thinks hardest.
TIER_DEFAULTS: dict[str, tuple[Effort, int]] = {
    "haiku": ("low", 8192),
    "sonnet": ("medium", 16384),
    "opus": ("high", 32768),
}
# The 5.5 models write at most 128k output tokens; below 1,024 no review can finish.
MAX_TOKENS_RANGE = (1024, 128_000)


@dataclass(frozen=True)
class Thresholds:
    """A unit whose risk score reaches `sonnet` goes to Sonnet, `opus` to Opus; below, Haiku."""

    sonnet: float = 0.35
    opus: float = 0.6


@dataclass(frozen=True)
class Routing:
    thresholds: Thresholds = field(default_factory=Thresholds)
    # Overrides of the shipped risk-model weights, by signal id.
    weights: dict[str, Weight] = field(default_factory=dict)
    # Extra gitignore-style globs treated as security-sensitive (added to the built-in list).
    sensitive_paths: list[str] = field(default_factory=list)
    unit_max_tokens: int = 24000
    # How many recent commits `git log` may read for file history; bounds analysis time.
    history_commits: int = 2000


@dataclass(frozen=True)
class Budget:
    max_usd_per_review: float | None = None


@dataclass(frozen=True)
class PathInstruction:
    path: str
    instructions: str


@dataclass(frozen=True)
class Redact:
    patterns: list[str] = field(default_factory=list)
    never_send: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Hook:
    max_tier: ReviewTier | None = None  # None: sonnet for pre-commit, opus for pre-push
    timeout_s: float = 60.0
    fail_on: FailOn = "high"
    on_error: OnError = "open"


@dataclass(frozen=True)
class GitHub:
    max_comments: int = 20
    review_event: Literal["COMMENT", "REQUEST_CHANGES", "APPROVE"] = "COMMENT"
    review_drafts: bool = False
    # Findings below this severity are listed in the summary comment, not posted inline.
    inline_min_severity: Severity = "medium"


@dataclass(frozen=True)
class Config:
    # tier -> model settings (a plain model id in the file becomes TierModel(id) with defaults)
    models: dict[str, str | TierModel] = field(default_factory=dict)
    prices: dict[str, Price] = field(default_factory=dict)  # model id -> price
    routing: Routing = field(default_factory=Routing)
    ignore: list[str] = field(default_factory=list)
    fail_on: FailOn = "high"
    filter: Filter = "added"
    on_error: OnError = "closed"
    concurrency: int = 4
    budget: Budget = field(default_factory=Budget)
    escalation: bool = True
    # Opus checks cheaper tiers' findings before they count: those that would block
    # (blocking), also every high/critical one (high), or none (off).
    verify: VerifyMode = "blocking"
    # Findings less certain than this are listed in the summary, not posted inline.
    min_confidence: float = 0.6
    instructions: str = ""
    path_instructions: list[PathInstruction] = field(default_factory=list)
    redact: Redact = field(default_factory=Redact)
    hook: Hook = field(default_factory=Hook)
    github: GitHub = field(default_factory=GitHub)

    def tier_model(self, tier: Tier) -> TierModel | None:
        value = self.models.get(tier)
        if value is None or isinstance(value, TierModel):
            return value
        return TierModel(value)

    def model_for(self, tier: Tier) -> str | None:
        settings = self.tier_model(tier)
        return settings.model if settings is not None else None

    def effort_for(self, tier: Tier) -> Effort | None:
        settings = self.tier_model(tier)
        default = TIER_DEFAULTS.get(tier)
        if settings is not None and settings.effort is not None:
            return settings.effort
        return default[0] if default else None

    def max_tokens_for(self, tier: Tier) -> int:
        settings = self.tier_model(tier)
        if settings is not None and settings.max_tokens is not None:
            return settings.max_tokens
        return TIER_DEFAULTS.get(tier, ("medium", 8192))[1]

    def price_for(self, model: str) -> Price:
        try:
            return self.prices[model]
        except KeyError:
            raise BadInput(f"config: prices: no price for model {model!r}") from None


def read_data(path: str | os.PathLike[str]) -> Any:
    """A YAML data file of ours (shipped tables, a fitted risk model), read with libyaml's safe
    loader when PyYAML has it: every run reads these, and the C loader is ten times faster."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=loader)


def _shipped() -> dict[str, Any]:
    data: dict[str, Any] = read_data(DATA_DIR / "models.yml")
    return data


@functools.lru_cache(maxsize=1)
def shipped_models() -> tuple[dict[str, str], dict[str, Price], str]:
    data = _shipped()
    prices = {k: _build(Price, v, f"prices.{k}") for k, v in data["prices"].items()}
    return dict(data["models"]), prices, str(data["checked"])


def default() -> Config:
    models, prices, _ = shipped_models()
    return Config(models=_tier_models(models), prices=prices)


def _tier_models(models: typing.Mapping[str, str | TierModel]) -> dict[str, str | TierModel]:
    """Every tier's settings spelled out, so a config that only names a model gets the defaults."""
    out: dict[str, str | TierModel] = {}
    for tier, value in models.items():
        settings = value if isinstance(value, TierModel) else TierModel(value)
        effort, cap = TIER_DEFAULTS.get(tier, (None, None))
        out[tier] = dataclasses.replace(
            settings,
            effort=settings.effort or effort,
            max_tokens=settings.max_tokens if settings.max_tokens is not None else cap,
        )
    return out


def load(path: str | os.PathLike[str] | None, root: str | None) -> Config:
    """Load `path`, else `<root>/.tierbot.yml` if it exists, else the defaults."""
    if path is None and root is not None and os.path.exists(os.path.join(root, CONFIG_NAME)):
        path = os.path.join(root, CONFIG_NAME)
    if path is None:
        return default()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise BadInput(f"config: cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise BadInput(f"config: {path} is not UTF-8 text") from None
    return parse(text, str(path))


def parse(text: str, name: str = CONFIG_NAME) -> Config:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise BadInput(f"config: {name}{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadInput(f"config: {name}: the top level must be a mapping of keys")
    models, prices, _ = shipped_models()
    cfg = _build(Config, data, "")
    # Config entries extend (not replace) the shipped model and price tables.
    merged_models = {**models, **cfg.models}
    unknown_tiers = sorted(set(cfg.models) - {"haiku", "sonnet", "opus"})
    if unknown_tiers:
        hint = _closest(unknown_tiers[0], ["haiku", "sonnet", "opus"])
        raise BadInput(f"config: unknown key 'models.{unknown_tiers[0]}'{hint}")
    merged_prices = {**prices, **cfg.prices}
    tier_models = _tier_models(merged_models)
    for tier, settings in tier_models.items():
        assert isinstance(settings, TierModel)
        if settings.model not in merged_prices:
            raise BadInput(
                f"config: 'models.{tier}' is {settings.model!r}, which has no entry in 'prices'"
            )
        low, high = MAX_TOKENS_RANGE
        if settings.max_tokens is not None and not low <= settings.max_tokens <= high:
            raise BadInput(
                f"config: 'models.{tier}.max_tokens' must be from {low} to {high}, "
                f"not {settings.max_tokens}"
            )
    if cfg.min_confidence > 1:
        raise BadInput(f"config: 'min_confidence' must be from 0 to 1, not {cfg.min_confidence}")
    _check_globs(cfg)
    merged: Config = dataclasses.replace(cfg, models=tier_models, prices=merged_prices)
    return merged


def _check_globs(cfg: Config) -> None:
    """Every glob setting must compile, so a bad one fails here, naming its key, not mid-review."""
    settings: list[tuple[str, str]] = [
        *((f"ignore[{i}]", g) for i, g in enumerate(cfg.ignore)),
        *((f"routing.sensitive_paths[{i}]", g) for i, g in enumerate(cfg.routing.sensitive_paths)),
        *((f"redact.never_send[{i}]", g) for i, g in enumerate(cfg.redact.never_send)),
        *((f"path_instructions[{i}].path", p.path) for i, p in enumerate(cfg.path_instructions)),
    ]
    for key, glob in settings:
        problem = glob_error(glob)
        if problem is not None:
            raise BadInput(f"config: '{key}' is not a valid glob ({problem}): {glob[:100]!r}")


def _closest(key: str, valid: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _where(path: str) -> str:
    return path or "the top level"


def _build(cls: type[Any], data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise BadInput(f"config: '{_where(path)}' must be a mapping, not {_kind(data)}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in names:
            raise BadInput(f"config: unknown key '{key_path}'{_closest(str(key), names)}")
        values[key] = _coerce(hints[key], value, key_path)
    for f in dataclasses.fields(cls):
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.name not in values and no_default:
            raise BadInput(f"config: '{path}.{f.name}' is required")
    return cls(**values)


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if isinstance(value, dict):  # `str | TierModel`: a mapping is the long form
            inner = [a for a in inner if dataclasses.is_dataclass(a)] or inner
        return _coerce(inner[0], value, path)
    if origin is Literal:
        if value not in args:
            choices = "|".join(str(a) for a in args)
            raise BadInput(f"config: '{path}' must be one of {choices}, not {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise BadInput(f"config: '{path}' must be a list, not {_kind(value)}")
        return [_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise BadInput(f"config: '{path}' must be a mapping, not {_kind(value)}")
        return {str(k): _coerce(args[1], v, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)  # type: ignore[arg-type]
    if tp is bool:
        if not isinstance(value, bool):
            raise BadInput(f"config: '{path}' must be true or false, not {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadInput(f"config: '{path}' must be a whole number >= 0, not {value!r}")
        return value
    if tp is Weight:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise BadInput(f"config: '{path}' must be a number, not {value!r}")
        return float(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise BadInput(f"config: '{path}' must be a number >= 0, not {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise BadInput(f"config: '{path}' must be text, not {_kind(value)}")
        return value
    raise AssertionError(f"unhandled config type {tp!r} at {path}")
