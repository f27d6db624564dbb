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
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from tierbot.errors import BadInput, shown
from tierbot.paths import glob_error
from tierbot.records import Filter, Severity, Tier

CONFIG_NAME = ".tierbot.yml"
DATA_DIR = Path(__file__).parent / "data"
# A .tierbot.yml is a few KiB.  These bounds are checked before anything is built, so a hostile
# file (an alias bomb, `[[[[...`, /dev/zero, 50 MB) costs a moment and a one-line refusal.
MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_VALUES = 20_000  # scalars and collections, with every alias counted at its expanded size
MAX_WHOLE = 10**9  # any count or size setting
MAX_NUMBER = 1e9  # any price, budget or duration

FailOn = Literal["none", "info", "low", "medium", "high", "critical"]
OnError = Literal["open", "closed"]
ReviewTier = Literal["haiku", "sonnet", "opus"]
# How hard a model thinks (the API's `output_config.effort`); thinking is billed as output.
Effort = Literal["low", "medium", "high", "xhigh", "max"]
EFFORTS: tuple[Effort, ...] = ("low", "medium", "high", "xhigh", "max")
VerifyMode = Literal["blocking", "high", "off"]
# A risk-model weight: a logit contribution, so it may be negative (unlike prices and sizes).
Weight = typing.NewType("Weight", float)
WEIGHT_LIMIT = 100.0  # |weight|: far past any fitted value, and keeps every score finite


_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?")


def _within(low: float, high: float) -> dict[str, tuple[float, float]]:
    """Field metadata: the inclusive range a number setting must fall in."""
    return {"range": (low, high)}


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

    sonnet: float = field(default=0.35, metadata=_within(0, 1))
    opus: float = field(default=0.6, metadata=_within(0, 1))


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
    # A unit changing fewer lines of code goes to Opus only with sensitive code or paths or a
    # strong history of fixes (0: no floor).
    opus_min_lines: int = 10


# Money in USD: a number >= 0, or `none` (also YAML null) for no limit.
Usd = typing.NewType("Usd", float)
COMMANDS = ("review", "hook", "pr")


@dataclass(frozen=True)
class PerCommand:
    """The most one review may spend, by command; a single number in the file sets all three."""

    review: Usd | None = Usd(1.0)
    hook: Usd | None = Usd(0.25)
    pr: Usd | None = Usd(2.0)


@dataclass(frozen=True)
class Budget:
    max_usd_per_review: PerCommand = field(default_factory=PerCommand)

    def for_command(self, command: str) -> float | None:
        """The limit for `review`, `hook` or `pr` (None: no limit)."""
        limit: float | None = getattr(self.max_usd_per_review, command)
        return limit


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
    timeout_s: float = field(default=60.0, metadata=_within(0, 3600))
    fail_on: FailOn = "high"
    on_error: OnError = "open"


@dataclass(frozen=True)
class GitHub:
    max_comments: int = 20
    review_event: Literal["COMMENT", "REQUEST_CHANGES", "APPROVE"] = "COMMENT"
    review_drafts: bool = False
    # Findings below this severity are listed in the summary comment, not posted inline.
    inline_min_severity: Severity = "medium"
    # The login tierbot posts as; only its comments may carry tierbot's markers.  None: the
    # workflow token's github-actions[bot] (set it for a GitHub App: "my-app[bot]").
    bot_login: str | None = None
    # Most seconds one `tierbot pr` run spends talking to GitHub, rate-limit waits included.
    timeout_s: float = field(default=300.0, metadata=_within(10, 3600))


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
    return parse(read(path), str(path))


def read(path: str | os.PathLike[str]) -> str:
    """A config file's text, reading at most MAX_BYTES + 1 bytes of it (devices never end)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise BadInput(f"config: cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_BYTES:
        raise BadInput(f"config: {path} is larger than {MAX_BYTES // 1024} KiB: not a config file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"config: {path} is not UTF-8 text") from None


def parse(text: str, name: str = CONFIG_NAME) -> Config:
    data = document(text, name)
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
                f"config: 'models.{tier}' is {shown(settings.model)}, which has no entry in "
                "'prices'"
            )
        low, high = MAX_TOKENS_RANGE
        if settings.max_tokens is not None and not low <= settings.max_tokens <= high:
            raise BadInput(
                f"config: 'models.{tier}.max_tokens' must be from {low} to {high}, "
                f"not {settings.max_tokens}"
            )
    if cfg.min_confidence > 1:
        raise BadInput(f"config: 'min_confidence' must be from 0 to 1, not {cfg.min_confidence}")
    thresholds = cfg.routing.thresholds
    if thresholds.sonnet > thresholds.opus:
        raise BadInput(
            f"config: 'routing.thresholds.sonnet' ({thresholds.sonnet:g}) is above "
            f"'routing.thresholds.opus' ({thresholds.opus:g}): Sonnet's bar must be the lower one"
        )
    login = cfg.github.bot_login
    if login is not None and not _LOGIN.fullmatch(login):
        raise BadInput(
            f"config: 'github.bot_login' must be a GitHub login such as my-app[bot], "
            f"not {shown(login)}"
        )
    _check_globs(cfg)
    merged: Config = dataclasses.replace(cfg, models=tier_models, prices=merged_prices)
    return merged


def document(text: str, name: str = CONFIG_NAME) -> Any:
    """The YAML document of a config file: bounded, one document, no duplicate keys."""
    import yaml

    if len(text) > MAX_BYTES:
        raise BadInput(f"config: {name} is larger than {MAX_BYTES // 1024} KiB: not a config file")
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_shape(yaml.parse(text, Loader=loader_class), name)
        loader = loader_class(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_keys(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        where = _at(getattr(e, "problem_mark", None))
        said = (getattr(e, "context", None), getattr(e, "problem", None))
        problem = " ".join(str(part) for part in said if part) or "invalid YAML"
        raise BadInput(f"config: {name}{where}: {problem}") from None


def _check_shape(events: typing.Iterable[Any], name: str) -> None:
    """Refuse deep nesting and alias expansion past the bounds, from the event stream alone."""
    import yaml

    sizes: dict[str, int] = {}  # anchor -> values it expands to
    open_: list[list[Any]] = []  # [anchor, values so far] per open collection
    total = 0
    for event in events:
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            open_.append([event.anchor, 1])
            if len(open_) > MAX_DEPTH:
                raise BadInput(
                    f"config: {name}{_at(event.start_mark)}: nested deeper than {MAX_DEPTH} levels"
                )
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, n = open_.pop()
        elif isinstance(event, yaml.ScalarEvent):
            anchor, n = event.anchor, 1
        elif isinstance(event, yaml.AliasEvent):
            anchor, n = None, sizes.get(event.anchor or "", 1)
        else:
            continue
        if anchor is not None:
            sizes[anchor] = n
        if open_:
            open_[-1][1] += n
            n = open_[-1][1]
        else:
            total += n
            n = total
        if n > MAX_VALUES:
            raise BadInput(
                f"config: {name}{_at(event.start_mark)}: expands to more than {MAX_VALUES} values "
                "(YAML aliases?)"
            )


def _at(mark: Any) -> str:
    return f" at line {mark.line + 1}" if mark is not None else ""


def _check_keys(root: Any) -> None:
    """A key given twice in one mapping is an error (YAML would silently keep the last)."""
    import yaml

    seen_nodes: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                todo += [key, value]
                if not isinstance(key, yaml.ScalarNode) or key.tag.endswith(":merge"):
                    continue
                k = (key.tag, key.value)
                if k in first:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {shown(key.value)} (first given at line {first[k]})",
                        key.start_mark,
                    )
                first[k] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value


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
            raise BadInput(f"config: '{key}' is not a valid glob ({problem}): {shown(glob)}")


def _closest(key: str, valid: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _where(path: str) -> str:
    return path or "the top level"


def _key(key: object) -> str:
    """A key as a config path shows it (a hostile key must not make a long message)."""
    text = str(key)
    return text if len(text) <= 60 else text[:59] + "…"


def _build(cls: type[Any], data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise BadInput(f"config: '{_where(path)}' must be a mapping, not {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        key_path = f"{path}.{_key(key)}" if path else _key(key)
        if key not in fields:
            raise BadInput(f"config: unknown key '{key_path}'{_closest(_key(key), fields)}")
        values[key] = _coerce(hints[key], value, key_path, fields[key].metadata.get("range"))
    for f in fields.values():
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.name not in values and no_default:
            raise BadInput(f"config: '{path}.{f.name}' is required")
    return cls(**values)


def usd(value: Any, what: str) -> Usd | None:
    """A money setting: a number of USD from 0 to MAX_NUMBER, or `none`/null for no limit; else a
    BadInput naming it."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not 0 <= value <= MAX_NUMBER:  # nan fails every comparison
        raise BadInput(
            f"{what} must be a number of USD from 0 to {MAX_NUMBER:g} or none, not {shown(value)}"
        )
    return Usd(float(value))


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _coerce(tp: Any, value: Any, path: str, bounds: tuple[float, float] | None = None) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if isinstance(value, dict):  # `str | TierModel`: a mapping is the long form
            inner = [a for a in inner if dataclasses.is_dataclass(a)] or inner
        return _coerce(inner[0], value, path, bounds)
    if origin is Literal:
        if isinstance(value, bool) and ("off" if value is False else "on") in args:
            # YAML 1.1 reads an unquoted `off`/`on` as a boolean; the user meant the word.
            return "off" if value is False else "on"
        if isinstance(value, (dict, list)) or value not in args:
            choices = "|".join(str(a) for a in args)
            raise BadInput(f"config: '{path}' must be one of {choices}, not {shown(value)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise BadInput(f"config: '{path}' must be a list, not {_kind(value)}")
        return [_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise BadInput(f"config: '{path}' must be a mapping, not {_kind(value)}")
        return {str(k): _coerce(args[1], v, f"{path}.{_key(k)}") for k, v in value.items()}
    if tp is Usd:
        return usd(value, f"config: '{path}'")
    if tp is PerCommand and not isinstance(value, dict):
        limit = usd(value, f"config: '{path}'")
        return PerCommand(limit, limit, limit)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)  # type: ignore[arg-type]
    if tp is bool:
        if not isinstance(value, bool):
            raise BadInput(f"config: '{path}' must be true or false, not {shown(value)}")
        return value
    if tp is int:
        low, high = bounds or (0, MAX_WHOLE)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise BadInput(
                f"config: '{path}' must be a whole number from {low:g} to {high:g}, "
                f"not {shown(value)}"
            )
        return value
    if tp in (float, Weight):
        low, high = bounds or ((-WEIGHT_LIMIT, WEIGHT_LIMIT) if tp is Weight else (0, MAX_NUMBER))
        # YAML reads .inf and .nan as numbers: the range check refuses both (nan compares false).
        number = not isinstance(value, bool) and isinstance(value, (int, float))
        if not number or not low <= value <= high:
            raise BadInput(
                f"config: '{path}' must be a number from {low:g} to {high:g}, not {shown(value)}"
            )
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise BadInput(f"config: '{path}' must be text, not {_kind(value)}")
        return value
    raise AssertionError(f"unhandled config type {tp!r} at {path}")
