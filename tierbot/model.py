"""Claude reviews of routed units: calls, structured output, cascade, budget, cache and ledger.

One request per review unit, run in a bounded thread pool (the SDK's sync client is thread-safe and
the work is all waiting on HTTP).  The orchestration stays on the calling thread: it decides what
starts (cache, budget, deadline), and turns each answer into findings, a repair attempt or an
escalation.  `anthropic` and `pydantic` are imported only when a review really runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from tierbot.config import Config, Price
from tierbot.pricing import (
    EXPECTED_OUTPUT_TOKENS,
    band,
    call_cost,
    conservative_tokens,
    estimate_tokens,
)
from tierbot.records import (
    SEVERITIES,
    TIERS,
    Analysis,
    Change,
    Finding,
    Route,
    Severity,
    Tier,
    Unit,
    Usage,
    tier_rank,
)

if TYPE_CHECKING:
    from tierbot.ledger import Ledger
    from tierbot.prompt import UnitPrompt

# Output ceilings per tier (adaptive thinking counts as output); the budget guard may lower them.
MAX_TOKENS: dict[str, int] = {"haiku": 8192, "sonnet": 16384, "opus": 32768}
# Below this a review cannot be trusted to finish, so a budget that leaves less skips the call.
MIN_OUTPUT_TOKENS = 1024
# Run one unit of a model alone first (the rest then read its cached prefix) when that saves
# at least this much.
PRIME_MIN_SAVING_USD = 0.01
# Per request; the SDK's own default is ten minutes.  TIERBOT_API_TIMEOUT overrides.
REQUEST_TIMEOUT_S = 300.0
# The SDK retries 408/409/429/5xx with backoff, honouring retry-after.
# TIERBOT_API_RETRIES overrides.
MAX_RETRIES = 2

CallStatus = Literal["complete", "partial", "failed"]

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "line": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    "end_line": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    "severity": {"type": "string", "enum": list(SEVERITIES)},
                    "category": {"type": "string"},
                    "title": {"type": "string"},
                    "message": {"type": "string"},
                    "suggestion": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    "confidence": {"type": "number"},
                },
                "required": [
                    "path", "line", "end_line", "severity", "category", "title", "message",
                    "suggestion", "confidence",
                ],
                "additionalProperties": False,
            },
        },
        "escalate": {"type": "boolean"},
        "escalate_reason": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["findings", "escalate", "escalate_reason"],
    "additionalProperties": False,
}


_SCHEMA_TEXT = json.dumps(ANSWER_SCHEMA)


def has_credentials() -> bool:
    """Whether the environment holds a key the SDK would use (checked without importing it)."""
    return bool(os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN"))


class ModelOutcome(NamedTuple):
    findings: tuple[Finding, ...]  # raw model findings, source = tier; anchoring comes later
    usage: Usage
    units: tuple[Unit, ...]  # the route's units with the tier actually used
    status: CallStatus
    notes: tuple[str, ...]
    error: str | None


# ---------------------------------------------------------------------------- answers


class Answer(NamedTuple):
    findings: tuple[Finding, ...]
    escalate: bool
    escalate_reason: str | None
    raw: str  # canonical JSON, for the review cache


class InvalidAnswer(Exception):
    """The model's text is not JSON matching the schema; the message goes into the repair call."""


@functools.lru_cache(maxsize=1)
def _answer_model() -> Any:
    from pydantic import BaseModel, ConfigDict

    class ModelFinding(BaseModel):
        model_config = ConfigDict(extra="ignore")
        path: str
        line: int | None
        end_line: int | None
        severity: str
        category: str
        title: str
        message: str
        suggestion: str | None
        confidence: float

    class ReviewAnswer(BaseModel):
        model_config = ConfigDict(extra="ignore")
        findings: list[ModelFinding]
        escalate: bool
        escalate_reason: str | None = None

    return ReviewAnswer


_SEVERITY_ALIASES: dict[str, Severity] = {
    "error": "high", "major": "high", "warning": "medium", "warn": "medium", "minor": "low",
    "note": "info", "notice": "info", "blocker": "critical", "moderate": "medium",
}
_FENCED = re.compile(r"^\s*```(?:json)?\s*\n(.*)\n\s*```\s*$", re.DOTALL)


def parse_answer(text: str, tier: str) -> Answer:
    """Validate a model answer; raises InvalidAnswer with a short, model-readable reason."""
    from pydantic import ValidationError

    m = _FENCED.match(text)
    body = m.group(1) if m else text.strip()
    if not body:
        raise InvalidAnswer("the answer was empty")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as e:
        raise InvalidAnswer(f"the answer is not valid JSON ({e.msg} at line {e.lineno})") from None
    try:
        parsed = _answer_model().model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'answer'}: {err['msg']}"
            for err in e.errors()[:5]
        )
        raise InvalidAnswer(f"the answer does not match the schema ({problems})") from None
    findings = []
    for f in parsed.findings:
        sev = f.severity.strip().lower()
        severity: Severity = _SEVERITY_ALIASES.get(sev, "medium")
        for known in SEVERITIES:
            if sev == known:
                severity = known
        confidence = f.confidence if math.isfinite(f.confidence) else 0.5
        findings.append(
            Finding(
                path=f.path.strip(),
                line=f.line,
                end_line=f.end_line,
                severity=severity,
                category=f.category.strip().lower() or "bug",
                title=f.title.strip(),
                message=f.message.strip(),
                source=tier,
                suggestion=f.suggestion,
                confidence=min(1.0, max(0.0, confidence)),
            )
        )
    reason = (parsed.escalate_reason or "").strip() or None
    raw = json.dumps(parsed.model_dump(), sort_keys=True, separators=(",", ":"))
    return Answer(tuple(findings), bool(parsed.escalate), reason, raw)


# ---------------------------------------------------------------------------- calls


@dataclass(frozen=True)
class Failure:
    fatal: bool  # the whole review cannot go on (credentials)
    message: str


@dataclass(frozen=True)
class CallResult:
    text: str | None = None
    stop_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    failure: Failure | None = None
    started: float = 0.0
    finished: float = 0.0

    @property
    def answered(self) -> bool:
        return self.failure is None or self.input_tokens + self.output_tokens > 0


@dataclass
class Job:
    unit_id: str
    tier: Tier
    model: str
    kind: Literal["review", "escalate"]
    prompt: UnitPrompt
    cache_key: str
    repair: bool = False  # a follow-up call after an answer that did not match the schema
    previous: str | None = None  # repair: the rejected answer
    problem: str | None = None  # repair: why it was rejected
    from_tier: Tier | None = None  # escalate: the tier that asked for it
    reason: str | None = None  # escalate: why
    max_tokens: int = 0
    reserved: float = 0.0
    primer: bool = False  # the first call of its model: the others wait for its cache write


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _api_message(err: Any) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return _one_line(str(inner["message"]), 160)
    return _one_line(getattr(err, "message", "") or str(err), 160)


def describe_error(err: BaseException, model: str, base_url: str, timeout: float) -> Failure:
    """An SDK exception -> one line a user can act on; credentials problems stop the review."""
    import anthropic

    retries = f"after {MAX_RETRIES} retries" if MAX_RETRIES else "(no retries)"
    if isinstance(err, anthropic.AuthenticationError):
        return Failure(True, "the API rejected the key (401): check ANTHROPIC_API_KEY")
    if isinstance(err, anthropic.PermissionDeniedError):
        return Failure(
            True,
            f"the API refused access (403) for model {model}: check that ANTHROPIC_API_KEY "
            f"may use it ({_api_message(err)})",
        )
    if isinstance(err, anthropic.NotFoundError):
        return Failure(False, f"the API does not know model {model!r} (404): check `models` in "
                              "the config")
    if isinstance(err, anthropic.RateLimitError):
        return Failure(False, f"the API is rate limiting this key (429) {retries}")
    if isinstance(err, anthropic.OverloadedError):
        return Failure(False, f"the API is overloaded (529) {retries}")
    if isinstance(err, anthropic.InternalServerError):
        return Failure(False, f"the API failed ({err.status_code}) {retries}: {_api_message(err)}")
    if isinstance(err, anthropic.BadRequestError):
        return Failure(False, f"the API rejected the request (400): {_api_message(err)}")
    if isinstance(err, anthropic.APIStatusError):
        return Failure(False, f"the API answered {err.status_code}: {_api_message(err)}")
    if isinstance(err, anthropic.APITimeoutError):
        return Failure(False, f"the API did not answer within {timeout:.0f}s")
    if isinstance(err, anthropic.APIConnectionError):
        cause = err.__cause__ or err.__context__
        detail = f": {_one_line(str(cause), 120)}" if cause else ""
        return Failure(False, f"cannot reach the Anthropic API at {base_url}{detail}")
    if isinstance(err, anthropic.AnthropicError) and "credential" in type(err).__name__.lower():
        return Failure(True, f"no usable Anthropic credentials: set ANTHROPIC_API_KEY ({err})")
    return Failure(False, f"unexpected error from the API client: {type(err).__name__}: "
                          f"{_one_line(str(err), 160)}")


def _call(client: Any, job: Job, system: list[dict[str, Any]], timeout: float,
          base_url: str) -> CallResult:
    messages: list[dict[str, Any]] = [{"role": "user", "content": job.prompt.text}]
    if job.repair:
        from tierbot.prompt import repair_text

        messages.append({"role": "assistant", "content": job.previous or "(empty answer)"})
        messages.append({"role": "user", "content": repair_text(job.problem or "")})
    started = time.monotonic()
    try:
        resp = client.messages.create(
            model=job.model,
            max_tokens=job.max_tokens,
            system=system,
            messages=messages,
            output_config={"format": {"type": "json_schema", "schema": ANSWER_SCHEMA}},
            timeout=timeout,
        )
    except Exception as e:  # every SDK error becomes a Failure; nothing escapes the pool
        return CallResult(failure=describe_error(e, job.model, base_url, timeout),
                          started=started, finished=time.monotonic())
    finished = time.monotonic()
    # A 200 whose body is not JSON comes back as a plain str from the SDK.
    if isinstance(resp, str) or not hasattr(resp, "content"):
        return CallResult(
            failure=Failure(False, "the API answered 200 with a body that is not a message"),
            started=started, finished=finished,
        )
    usage = getattr(resp, "usage", None)
    texts = [
        str(getattr(block, "text", "") or "")
        for block in (resp.content or [])
        if getattr(block, "type", None) == "text"
    ]
    return CallResult(
        text="".join(texts),
        stop_reason=getattr(resp, "stop_reason", None),
        input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
        cache_write_tokens=int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
        cache_read_tokens=int(getattr(usage, "cache_read_input_tokens", 0) or 0),
        started=started,
        finished=finished,
    )


# ---------------------------------------------------------------------------- the review


def cache_key(tier: Tier, model: str, prompt: UnitPrompt, config: Config) -> str:
    """Unit content + model + prompt version + the config that shapes the answer."""
    from tierbot.prompt import prompt_version, system_static

    h = hashlib.sha256()
    for part in (
        prompt_version(), tier, model, system_static(tier), config.instructions, prompt.text,
        json.dumps(ANSWER_SCHEMA, sort_keys=True),
    ):
        h.update(part.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()


def _next_tier(tier: Tier) -> Tier | None:
    i = tier_rank(tier)
    return TIERS[i + 1] if i + 1 < len(TIERS) else None


@dataclass
class _State:
    units: dict[str, Unit]
    notes: list[str] = field(default_factory=list)
    findings: dict[str, tuple[Finding, ...]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # unit id -> reason
    attempted: set[str] = field(default_factory=set)
    fatal: str | None = None
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost: float = 0.0
    all_opus: float = 0.0
    cache_hits: int = 0
    reserved: float = 0.0
    not_started: int = 0


def review(
    change: Change,
    analysis: Analysis,
    route: Route,
    rule_findings: Sequence[Finding],
    config: Config,
    *,
    budget_usd: float | None,
    use_cache: bool,
    max_tier: Tier | None = None,
    deadline: float | None = None,
    repo_label: str = "",
    range_label: str = "",
) -> ModelOutcome:
    """Review every non-skip unit of `route` with its tier's model; never raises for API trouble."""
    from tierbot import prompt as P
    from tierbot.ledger import CallRow, Ledger

    st = _State(units={u.id: u for u in route.units})
    order = [u.id for u in route.units]

    # 1. Tier cap (the hook uses sonnet) and what each unit may send.
    for uid in order:
        u = st.units[uid]
        if u.tier != "skip" and max_tier is not None and tier_rank(u.tier) > tier_rank(max_tier):
            st.units[uid] = _retier(u, max_tier, config, f"capped at {max_tier} (max tier)")
    prefix = P.build_prefix(change, analysis, route, config)
    prompts: dict[str, UnitPrompt] = {}
    redactions = prefix.redactions
    for uid in order:
        u = st.units[uid]
        if u.tier == "skip":
            continue
        up = P.build_unit(change, u, rule_findings, config)
        redactions += up.redactions
        for path in up.withheld:
            st.notes.append(f"model: withheld {path} from the model (may hold secrets: never_send)")
        if up.empty:
            why = "every file matches never_send" if up.withheld else "no text diff to send"
            st.units[uid] = _skip(u, f"not sent: {why}")
            continue
        prompts[uid] = up
    if redactions:
        st.notes.append(f"model: redacted {redactions} secret-like value(s) before sending")

    # 2. Ledger and review cache; a broken cache directory must not stop the review.
    ledger: Ledger | None = None
    try:
        ledger = Ledger.open()
    except Exception as e:
        st.notes.append(f"model: ledger unavailable ({_one_line(str(e), 120)}): costs not "
                        "recorded, review cache off")

    def cached(uid: str, tier: Tier) -> str | None:
        if not use_cache or ledger is None:
            return None
        return ledger.cache_get(cache_key(tier, _model(config, tier), prompts[uid], config))

    opus_model = config.model_for("opus")
    opus_price = config.price_for(opus_model) if opus_model else None

    def system_text(tier: Tier) -> str:
        return P.system_static(tier) + prefix.text

    # 3. Budget plan from offline estimates: downgrade the lowest-risk units, then skip.
    if budget_usd is not None:
        _plan_budget(st, order, prompts, config, budget_usd, system_text, cached)

    jobs: deque[Job] = deque()
    for uid in order:
        u = st.units[uid]
        if uid in prompts and u.tier != "skip":
            model = _model(config, u.tier)
            jobs.append(Job(uid, u.tier, model, "review", prompts[uid],
                            cache_key(u.tier, model, prompts[uid], config)))
    if not jobs:
        _close(ledger)
        return _outcome(st, order)

    def record(job: Job, res: CallResult | None, outcome: str) -> None:
        if ledger is None:
            return
        try:
            if res is None:
                ledger.record(CallRow(repo_label, range_label, job.unit_id, job.tier, job.model,
                                      cache_hit=True, outcome=outcome))
                return
            cost, opus = _costs(config, job.model, res, opus_price)
            ledger.record(CallRow(
                repo_label, range_label, job.unit_id, job.tier, job.model,
                res.input_tokens, res.output_tokens, res.cache_write_tokens,
                res.cache_read_tokens, cost, opus, outcome=outcome,
            ))
        except Exception as e:
            st.notes.append(f"model: could not write the ledger ({_one_line(str(e), 120)})")

    def accept(job: Job, answer: Answer) -> None:
        """A valid answer: keep its findings; maybe queue an escalation one tier up."""
        st.findings[job.unit_id] = answer.findings
        st.failed.pop(job.unit_id, None)
        if job.kind == "escalate" and job.from_tier is not None:
            u = st.units[job.unit_id]
            original = u.escalated_from or job.from_tier
            st.units[job.unit_id] = dataclasses.replace(
                u, tier=job.tier, model=job.model, escalated_from=original,
                reasons=(*u.reasons, f"escalated from {job.from_tier}: {job.reason}"),
            )
            st.notes.append(f"model: unit {job.unit_id} escalated {job.from_tier} -> {job.tier}: "
                            f"{job.reason}")
        if not (answer.escalate and answer.escalate_reason and config.escalation):
            return
        up = _next_tier(job.tier)
        cap = max_tier or "opus"
        if up is None or tier_rank(up) > tier_rank(cap):
            if job.tier != "opus":
                st.notes.append(f"model: unit {job.unit_id} asked to escalate beyond {job.tier} "
                                f"(max tier {cap}): {answer.escalate_reason}")
            return
        model = _model(config, up)
        jobs.appendleft(Job(job.unit_id, up, model, "escalate", job.prompt,
                            cache_key(up, model, job.prompt, config), from_tier=job.tier,
                            reason=_one_line(answer.escalate_reason, 200)))

    def fail(job: Job, reason: str) -> None:
        if job.kind == "escalate":
            # The cheaper review still stands.
            st.notes.append(f"model: unit {job.unit_id} not escalated to {job.tier}: {reason}")
            return
        st.failed[job.unit_id] = reason
        st.notes.append(f"model: unit {job.unit_id} ({job.tier}) failed: {reason}")

    def handle(job: Job, res: CallResult) -> None:
        st.reserved -= job.reserved
        if res.answered:
            cost, opus = _costs(config, job.model, res, opus_price)
            st.calls += 1
            st.input_tokens += res.input_tokens
            st.output_tokens += res.output_tokens
            st.cache_write_tokens += res.cache_write_tokens
            st.cache_read_tokens += res.cache_read_tokens
            st.cost += cost
            st.all_opus += opus
        if res.failure is not None:
            if res.failure.fatal:
                st.fatal = st.fatal or res.failure.message
            fail(job, res.failure.message)
            return
        if res.stop_reason == "refusal":
            record(job, res, "refusal")
            fail(job, "the model declined to review it (stop_reason refusal)")
            return
        if res.stop_reason == "max_tokens":
            record(job, res, "max_tokens")
            fail(job, f"the answer was cut off at max_tokens ({job.max_tokens})")
            return
        if res.stop_reason == "model_context_window_exceeded":
            record(job, res, "context_window")
            fail(job, "the unit does not fit the model's context window")
            return
        try:
            answer = parse_answer(res.text or "", job.tier)
        except InvalidAnswer as e:
            record(job, res, "invalid")
            if job.repair:
                fail(job, f"{e}; dropped after one repair attempt")
                return
            jobs.appendleft(dataclasses.replace(job, repair=True, previous=res.text,
                                                problem=str(e), max_tokens=0, reserved=0.0))
            return
        record(job, res, "repaired" if job.repair else "ok")
        if job.repair:
            st.notes.append(f"model: unit {job.unit_id}: the answer did not match the schema; "
                            "repaired with one follow-up call")
        if ledger is not None:
            try:
                ledger.cache_put(job.cache_key, job.model, P.prompt_version(), answer.raw)
            except Exception as e:
                st.notes.append(f"model: could not write the review cache ({_one_line(str(e))})")
        accept(job, answer)

    def guard(job: Job) -> bool:
        """Fit the call into what is left of the budget: lower max_tokens, or refuse."""
        ceiling = MAX_TOKENS.get(job.tier, 8192)
        if budget_usd is None:
            job.max_tokens = ceiling
            return True
        text = system_text(job.tier) + job.prompt.text + (job.previous or "") + (job.problem or "")
        input_cost, p = worst_input(config.price_for(job.model), text)
        left = budget_usd - st.cost - st.reserved - input_cost
        # Leave room for the units still waiting, so one call cannot starve the others.
        others = sum(
            min_need(config, j.model, system_text(j.tier) + j.prompt.text)
            for j in jobs if j is not job and j.kind == "review"
        )
        affordable = _tokens_for(left - others, p.output, ceiling)
        if affordable < MIN_OUTPUT_TOKENS:
            if running:
                return False  # wait: finished calls release their reservations
            affordable = _tokens_for(left, p.output, ceiling)
            if affordable < MIN_OUTPUT_TOKENS:
                return False
        job.max_tokens = min(ceiling, affordable)
        job.reserved = input_cost + job.max_tokens * p.output / 1e6
        st.reserved += job.reserved
        return True

    client: Any = None
    base_url = os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"
    timeout_default = _env_float("TIERBOT_API_TIMEOUT", REQUEST_TIMEOUT_S)
    workers = max(1, config.concurrency or 1)
    running: dict[Future[CallResult], Job] = {}
    primers = _models_to_prime(jobs, workers, deadline, config, system_text)
    primed: set[str] = set()
    priming: set[str] = set()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tierbot-model")
    interrupted = False
    try:
        while jobs or running:
            while jobs and len(running) < workers and st.fatal is None:
                # The first job whose model is not waiting for its cache-priming call.
                idx = next((i for i, j in enumerate(jobs) if j.repair or j.model not in priming),
                           None)
                if idx is None:
                    break
                job = jobs[idx]
                if not job.repair and use_cache and ledger is not None:
                    hit = ledger.cache_get(job.cache_key)
                    answer = None
                    if hit is not None:
                        with contextlib.suppress(InvalidAnswer):
                            answer = parse_answer(hit, job.tier)
                    if answer is not None:  # (an unreadable entry: ask the model again)
                        del jobs[idx]
                        st.cache_hits += 1
                        st.attempted.add(job.unit_id)
                        record(job, None, "cache_hit")
                        accept(job, answer)
                        continue
                if deadline is not None and time.monotonic() >= deadline:
                    for j in jobs:
                        if j.kind == "review":
                            st.not_started += 1
                            st.failed[j.unit_id] = "not started before the time limit"
                        else:
                            st.notes.append(f"model: unit {j.unit_id}: escalation to {j.tier} not "
                                            "started before the time limit")
                    jobs.clear()
                    break
                if not guard(job):
                    if running:
                        break  # wait: finished calls release their reservations
                    del jobs[idx]
                    _over_budget(st, job, budget_usd or 0.0)
                    continue
                del jobs[idx]
                if client is None:
                    try:
                        client = _client(deadline)
                    except Exception as e:
                        st.fatal = f"cannot set up the Anthropic client: {_one_line(str(e))}"
                        st.reserved -= job.reserved
                        jobs.appendleft(job)
                        break
                timeout = timeout_default
                if deadline is not None:
                    timeout = max(1.0, min(timeout, deadline - time.monotonic()))
                if job.model in primers and job.model not in primed:
                    # Hold this model's other units until this call has written the cache.
                    priming.add(job.model)
                    primed.add(job.model)
                    job.primer = True
                st.attempted.add(job.unit_id)
                system = P.system_blocks(job.tier, prefix)
                running[pool.submit(_call, client, job, system, timeout, base_url)] = job
            if st.fatal is not None and jobs:
                for j in jobs:
                    if j.kind == "review":
                        st.not_started += 1
                        st.failed.setdefault(j.unit_id, "not started: " + st.fatal)
                jobs.clear()
            if not running:
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                job = running.pop(fut)
                if job.primer:
                    priming.discard(job.model)
                handle(job, fut.result())
    except KeyboardInterrupt:
        # Do not wait for calls in flight: closing the client aborts their connections.
        interrupted = True
        raise
    finally:
        if interrupted and client is not None:
            with contextlib.suppress(Exception):
                client.close()
        pool.shutdown(wait=not interrupted, cancel_futures=True)
        if client is not None and not interrupted:
            with contextlib.suppress(Exception):
                client.close()
        _close(ledger)
    if st.cache_hits:
        st.notes.append(f"model: {st.cache_hits} review(s) answered from the review cache "
                        "(--no-cache to bypass)")
    if st.not_started:
        st.notes.append(f"model: {st.not_started} unit(s) not reviewed: "
                        + ("time limit reached" if st.fatal is None else st.fatal))
    return _outcome(st, order)


def _client(deadline: float | None) -> Any:
    import anthropic

    retries = int(_env_float("TIERBOT_API_RETRIES", MAX_RETRIES))
    if deadline is not None:
        retries = 0  # each retry would restart the timeout and overrun the hook's limit
    return anthropic.Anthropic(max_retries=retries)


def _models_to_prime(
    jobs: Sequence[Job], workers: int, deadline: float | None, config: Config,
    system_text: Callable[[Tier], str],
) -> set[str]:
    """Models whose first call should run alone so the others read the prefix from the cache.

    A cache entry exists only once the first response has begun; calls sent together all miss and
    all pay the cache-write price.  Priming costs one extra round trip, so it is done only when it
    saves real money (never under a hook's time limit).
    """
    if deadline is not None:
        return set()
    groups: dict[str, list[Job]] = {}
    for j in jobs:
        groups.setdefault(j.model, []).append(j)
    out = set()
    for model, group in groups.items():
        first_wave = min(len(group), workers)
        if len(group) < 2 or first_wave < 2:
            continue
        p = config.price_for(model)
        shared = estimate_tokens(system_text(group[0].tier))
        saving = (first_wave - 1) * shared * (p.cache_write - p.cache_read) / 1e6
        if saving >= PRIME_MIN_SAVING_USD:
            out.add(model)
    return out


def worst_input(price: Price, text: str) -> tuple[float, Price]:
    """The most a prompt of `text` can cost, and the price band it falls in.

    Every prompt token is billed at the dearer of input and cache write, counted with the
    conservative estimate; the schema is billed as prompt too (structured outputs add it).
    """
    tokens = conservative_tokens(text + _SCHEMA_TEXT) + 200
    p = band(price, tokens)
    return tokens * max(p.input, p.cache_write) / 1e6, p


def min_need(config: Config, model: str, text: str) -> float:
    """The least budget a call must have to start: its worst-case prompt and a minimal answer."""
    input_cost, p = worst_input(config.price_for(model), text)
    return input_cost + MIN_OUTPUT_TOKENS * p.output / 1e6


def _tokens_for(usd: float, output_price: float, ceiling: int) -> int:
    if output_price <= 0:
        return ceiling
    return max(0, math.floor(usd * 1e6 / output_price))


def _close(ledger: Ledger | None) -> None:
    if ledger is not None:
        with contextlib.suppress(Exception):
            ledger.close()


def _model(config: Config, tier: Tier) -> str:
    model = config.model_for(tier)
    if model is None:
        from tierbot.errors import BadInput

        raise BadInput(f"config: models: no model for tier {tier}")
    return model


def _costs(config: Config, model: str, res: CallResult, opus_price: Price | None) -> tuple[
    float, float
]:
    args = (res.input_tokens, res.output_tokens, res.cache_write_tokens, res.cache_read_tokens)
    cost = call_cost(config.price_for(model), *args)
    opus = call_cost(opus_price, *args) if opus_price is not None else cost
    return cost, opus


def _retier(u: Unit, tier: Tier, config: Config, reason: str) -> Unit:
    return dataclasses.replace(u, tier=tier, model=config.model_for(tier),
                               reasons=(*u.reasons, reason))


def _skip(u: Unit, reason: str) -> Unit:
    return dataclasses.replace(u, tier="skip", model=None, reasons=(*u.reasons, reason))


def _over_budget(st: _State, job: Job, budget: float) -> None:
    left = max(0.0, budget - st.cost)
    if job.repair:
        if job.kind == "review":
            st.failed[job.unit_id] = "no budget left for the repair call"
        st.notes.append(f"model: unit {job.unit_id}: invalid answer dropped; no budget left to "
                        "repair it")
    elif job.kind == "review":
        st.units[job.unit_id] = _skip(st.units[job.unit_id],
                                      f"skipped: the budget (${budget:.2f}) was spent")
        st.notes.append(f"model: unit {job.unit_id} skipped: ${left:.4f} left of the ${budget:.2f} "
                        "budget cannot cover the call")
    else:
        st.notes.append(f"model: unit {job.unit_id} not escalated to {job.tier}: ${left:.4f} left "
                        f"of the ${budget:.2f} budget")


def _plan_budget(
    st: _State,
    order: list[str],
    prompts: dict[str, UnitPrompt],
    config: Config,
    budget: float,
    system_text: Callable[[Tier], str],
    cached: Callable[[str, Tier], str | None],
) -> None:
    """Fit the expected cost of the review into `budget` before anything is sent."""

    def expected(uid: str) -> float:
        u = st.units[uid]
        if u.tier == "skip" or cached(uid, u.tier) is not None:
            return 0.0
        model = _model(config, u.tier)
        text = system_text(u.tier) + prompts[uid].text
        fair = call_cost(config.price_for(model), estimate_tokens(text),
                         EXPECTED_OUTPUT_TOKENS.get(u.tier, 1000))
        # A unit is only worth planning if the guard will let it start.
        return max(fair, min_need(config, model, text))

    live = [uid for uid in order if uid in prompts]
    costs = {uid: expected(uid) for uid in live}
    while sum(costs.values()) > budget:
        # Lowest risk first: downgrade one step if it can go lower, else skip it.
        candidates = [uid for uid in live if st.units[uid].tier in ("sonnet", "opus")]
        if candidates:
            uid = min(candidates, key=lambda i: (st.units[i].risk_score, order.index(i)))
            u = st.units[uid]
            lower: Tier = "sonnet" if u.tier == "opus" else "haiku"
            st.units[uid] = _retier(u, lower, config,
                                    f"downgraded from {u.tier} to fit the budget (${budget:.2f})")
            st.notes.append(f"model: unit {uid} downgraded {u.tier} -> {lower} to fit the "
                            f"${budget:.2f} budget")
        else:
            remaining = [uid for uid in live if st.units[uid].tier != "skip" and costs[uid] > 0]
            if not remaining:
                break
            uid = min(remaining, key=lambda i: (st.units[i].risk_score, order.index(i)))
            st.units[uid] = _skip(st.units[uid], f"skipped: over the budget (${budget:.2f})")
            st.notes.append(f"model: unit {uid} skipped to fit the ${budget:.2f} budget")
        costs[uid] = expected(uid)


def _outcome(st: _State, order: list[str]) -> ModelOutcome:
    findings = tuple(f for uid in order for f in st.findings.get(uid, ()))
    units = []
    for uid in order:
        u = st.units[uid]
        if uid in st.failed and uid not in st.findings:
            u = dataclasses.replace(u, reasons=(*u.reasons, f"review failed: {st.failed[uid]}"))
        units.append(u)
    usage = Usage(
        calls=st.calls,
        input_tokens=st.input_tokens,
        output_tokens=st.output_tokens,
        cache_read_tokens=st.cache_read_tokens,
        cache_write_tokens=st.cache_write_tokens,
        cost_usd=st.cost,
        all_opus_cost_usd=st.all_opus,
    )
    failed = [uid for uid in order if uid in st.failed and uid not in st.findings]
    reviewed = [uid for uid in order if uid in st.findings]
    status: CallStatus
    error: str | None = None
    if st.fatal is not None:
        status, error = "failed", st.fatal
    elif failed and not reviewed:
        status = "failed"
        error = st.failed[failed[0]]
    elif failed:
        status = "partial"
        error = f"{len(failed)} of {len(failed) + len(reviewed)} unit(s) not reviewed: " \
                f"{st.failed[failed[0]]}"
    else:
        status = "complete"
    return ModelOutcome(findings, usage, tuple(units), status, tuple(st.notes), error)
