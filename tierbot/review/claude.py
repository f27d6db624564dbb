"""One Claude request through the official SDK, and SDK errors turned into lines a user can act on.

`anthropic` is imported only when a client is made or an error described: the dry-run path never
loads it.  Nothing here raises for API trouble; a call always comes back as a `CallResult`.

Every wait is bounded (SPEC §7).  The SDK's own retries are off: it honours any `retry-after`
(up to ~50 days in 2.15) and retries timeouts, so one unit could sleep for an hour or regenerate
for fifteen minutes.  Here a call streams its answer (`messages.stream` + the final message) with
a short connect timeout and a read timeout sized to `max_tokens`, inside a wall bound that a
watchdog enforces by closing the stream; rate limits and overloads are retried at most
`MAX_RETRIES` times, waiting what `retry-after` asks but never more than `RETRY_AFTER_CAP_S` and
never past the wall bound; timeouts and unreachable hosts are not retried.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tierbot import environment
from tierbot.review.ledger import usage_number
from tierbot.secretscan import mask_url_credentials

# Connecting is quick when the API is reachable: a refused or black-holed host fails fast.
CONNECT_TIMEOUT_S = 5.0
# Under a time limit (the hook) a commit must not wait long for an unreachable API.
DEADLINE_CONNECT_TIMEOUT_S = 1.5
# The read bound: the prompt is read, then the answer streams at no less than this rate.
FIRST_TOKEN_S = 60.0
MIN_TOKENS_PER_S = 40.0
# Rate limits and overloads: at most this many retries, each waiting at most this long.
MAX_RETRIES = 2
RETRY_AFTER_CAP_S = 60.0
BACKOFF_S = (0.5, 2.0)
# Statuses worth another attempt (the SDK's list); everything else is final.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# Account-wide stops: every other call would fail the same way.
SPEND_LIMIT_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
        "linked_organization_billing_unavailable",
    }
)


def read_timeout(max_tokens: int) -> float:
    """How long a call may take to answer `max_tokens` tokens (also its per-read bound)."""
    return FIRST_TOKEN_S + max_tokens / MIN_TOKENS_PER_S


def has_credentials() -> bool:
    """Whether the SDK would find credentials (checked without importing it).

    The SDK reads, in order: ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN, the profile named by
    ANTHROPIC_PROFILE, workload identity federation (a rule id, an organization id and an
    identity token or token file) and the active profile on disk.  Any of them is a credential:
    none of them means "offline".
    """
    env = os.environ
    if env.get("ANTHROPIC_API_KEY") or env.get("ANTHROPIC_AUTH_TOKEN"):
        return True
    if env.get("ANTHROPIC_PROFILE"):
        return True
    if (
        env.get("ANTHROPIC_FEDERATION_RULE_ID")
        and env.get("ANTHROPIC_ORGANIZATION_ID")
        and (env.get("ANTHROPIC_IDENTITY_TOKEN") or env.get("ANTHROPIC_IDENTITY_TOKEN_FILE"))
    ):
        return True
    return _active_profile_file() is not None


def _active_profile_file() -> Path | None:
    """`<config dir>/configs/<active profile>.json` when it exists (the SDK's last resort)."""
    explicit = os.environ.get("ANTHROPIC_CONFIG_DIR")
    if explicit:
        root = Path(explicit)
    elif os.name == "nt":
        appdata = os.environ.get("APPDATA")
        root = (Path(appdata) if appdata else Path.home() / "AppData" / "Roaming") / "Anthropic"
    else:
        root = Path.home() / ".config" / "anthropic"
    try:
        name = (root / "active_config").read_text(encoding="utf-8").strip() or "default"
    except OSError:
        name = "default"
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = root / "configs" / f"{name}.json"
    return path if path.is_file() else None


def credentials_hint() -> str:
    return (
        "ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN, ANTHROPIC_PROFILE, workload identity settings)"
    )


@dataclass(frozen=True)
class Failure:
    fatal: bool  # the whole review cannot go on (credentials, billing, an unreachable API)
    message: str


@dataclass(frozen=True)
class Request:
    model: str
    max_tokens: int
    system: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    schema: dict[str, Any] | None = None  # structured output
    effort: str | None = None
    wall_s: float = 600.0  # the whole call, retries included, ends within this
    connect_s: float = CONNECT_TIMEOUT_S


@dataclass(frozen=True)
class CallResult:
    text: str | None = None
    stop_reason: str | None = None
    stop_details: str | None = None  # refusal: "category: explanation"
    input_tokens: int = 0
    output_tokens: int = 0  # thinking included: it is billed as output
    thinking_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    failure: Failure | None = None
    started: float = 0.0
    finished: float = 0.0
    attempts: int = 1
    error: BaseException | None = field(default=None, compare=False, repr=False)  # for retries
    usage_note: str | None = None  # the API's usage numbers were impossible and were bounded

    @property
    def answered(self) -> bool:
        """Whether the call was billed (a failure after tokens were counted still costs)."""
        return self.failure is None or self.input_tokens + self.output_tokens > 0


_IMPORTING: threading.Thread | None = None


def import_sdk_in_background() -> None:
    """Start importing `anthropic` (1.5-4 s of CPU) while the caller prepares its first request."""
    global _IMPORTING
    if _IMPORTING is not None:
        return

    def load() -> None:
        # A broken install is reported by make_client, on the caller's thread.
        with contextlib.suppress(BaseException):
            import anthropic  # noqa: F401

    _IMPORTING = threading.Thread(target=load, name="tierbot-import-sdk", daemon=True)
    _IMPORTING.start()


class Probe:
    """Can anything be reached at the API's host?  A plain TCP connect, started next to the SDK
    import, so an unreachable API is reported without waiting for the import (1.5-4 s) and
    without a request per unit.  Skipped (always "reachable") behind a proxy, which the SDK
    reaches and this probe would not."""

    def __init__(self, url: str, timeout: float) -> None:
        # Imported here, not in the thread: two threads importing at once (the SDK's thread
        # imports these too) is where import deadlocks come from.
        import socket  # noqa: F401
        import urllib.parse  # noqa: F401

        self.url = url
        self._error: str | None = None
        self._thread = threading.Thread(
            target=self._run, args=(timeout,), name="tierbot-probe", daemon=True
        )
        self._thread.start()

    def _run(self, timeout: float) -> None:
        import socket
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(self.url)
            host = parts.hostname
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return  # the SDK will say what is wrong with the URL
        if not host or any(os.environ.get(v) for v in _PROXY_VARS):
            return
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as e:
            self._error = one_line(str(e) or type(e).__name__, 120)

    def unreachable(self, wait: bool = True) -> str | None:
        """None, or the line that says why the API cannot be reached (without `wait`: None
        also while the probe is still connecting)."""
        if wait:
            self._thread.join()
        elif self._thread.is_alive():
            return None
        if self._error is None:
            return None
        return f"cannot reach the Anthropic API at {self.url}: {self._error}"


_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def make_client() -> Any:
    import anthropic

    # Retries are ours (bounded); the SDK's would honour any retry-after and retry timeouts.
    return anthropic.Anthropic(max_retries=0)


def base_url() -> str:
    """The API's address as tierbot shows it (probe, error lines): user-info masked, since
    ANTHROPIC_BASE_URL may carry a proxy's password.  The SDK reads the variable itself."""
    return mask_url_credentials(os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com")


def retries() -> int:
    return int(environment.number("TIERBOT_API_RETRIES", MAX_RETRIES, high=10))


def wall_override() -> float | None:
    """TIERBOT_API_TIMEOUT: seconds one unit's calls may take, instead of the sized bound."""
    value = environment.number("TIERBOT_API_TIMEOUT", 0.0)
    return value if value > 0 else None


def call(client: Any, req: Request, url: str) -> CallResult:
    """One request, retried within bounds; every SDK error becomes a Failure."""
    started = time.monotonic()
    ends = started + req.wall_s
    attempt = 0
    billed = CallResult()  # what failed attempts cost (an error inside a stream may be billed)
    while True:
        attempt += 1
        res = _attempt(client, req, url, ends)
        delay = _retry_delay(res, attempt, ends)
        if delay is None:
            break
        billed = _plus(billed, res)
        time.sleep(delay)
    return _stamp(_plus(res, billed), started, attempt)


def _plus(res: CallResult, more: CallResult) -> CallResult:
    return replace(
        res,
        input_tokens=res.input_tokens + more.input_tokens,
        output_tokens=res.output_tokens + more.output_tokens,
        thinking_tokens=res.thinking_tokens + more.thinking_tokens,
        cache_write_tokens=res.cache_write_tokens + more.cache_write_tokens,
        cache_read_tokens=res.cache_read_tokens + more.cache_read_tokens,
    )


def prime(client: Any, req: Request, url: str) -> CallResult:
    """Write the prompt cache for `req`'s prefix without generating anything (max_tokens 0)."""
    started = time.monotonic()
    try:
        resp = client.messages.create(
            **request_params(req, max_tokens=0), timeout=_timeout(req, started + req.wall_s)
        )
    except Exception as e:
        return _stamp(CallResult(failure=_describe(e, req, url)), started, 1)
    if isinstance(resp, str) or not hasattr(resp, "usage"):
        return _stamp(CallResult(failure=Failure(False, _NOT_A_MESSAGE)), started, 1)
    return _stamp(message_result(resp), started, 1)


_NOT_A_MESSAGE = "the API answered 200 with a body that is not a message"


def _stamp(res: CallResult, started: float, attempts: int) -> CallResult:
    return replace(res, started=started, finished=time.monotonic(), attempts=attempts, error=None)


def request_params(req: Request, max_tokens: int) -> dict[str, Any]:
    """The Messages API parameters of `req` (also a batch request's `params`)."""
    config: dict[str, Any] = {}
    if req.schema is not None:
        config["format"] = {"type": "json_schema", "schema": req.schema}
    if req.effort is not None:
        config["effort"] = req.effort
    from tierbot.review.prompt import sendable

    # Every string goes out as valid UTF-8 (undecodable bytes of a latin-1 file arrive here as
    # surrogate escapes, which the SDK's JSON encoding would refuse).
    body: dict[str, Any] = {
        "model": req.model,
        "max_tokens": max_tokens,
        "system": sendable(req.system),
        "messages": sendable(req.messages),
    }
    if config:
        body["output_config"] = config
    return body


def _timeout(req: Request, ends: float) -> Any:
    import httpx2

    left = max(0.05, ends - time.monotonic())
    read = min(read_timeout(req.max_tokens), left)
    return httpx2.Timeout(read, connect=min(req.connect_s, left), write=min(30.0, left), pool=left)


def _attempt(client: Any, req: Request, url: str, ends: float) -> CallResult:
    """Stream one answer; a watchdog closes the stream when the wall bound passes."""
    stream_ref: list[Any] = []
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        for s in stream_ref:
            with contextlib.suppress(Exception):
                s.close()

    watchdog = threading.Timer(max(0.0, ends - time.monotonic()), expire)
    watchdog.daemon = True
    watchdog.start()
    snapshot: Any = None
    try:
        manager = client.messages.stream(
            **request_params(req, max_tokens=req.max_tokens), timeout=_timeout(req, ends)
        )
        with manager as stream:
            stream_ref.append(stream)
            if expired.is_set():
                stream.close()
            for _event in stream:
                snapshot = stream.current_message_snapshot
                if expired.is_set():
                    break
            if expired.is_set():
                raise _WallExpired()
            if snapshot is None:  # a 200 whose body held no message events (an HTML page...)
                return CallResult(failure=Failure(False, _NOT_A_MESSAGE))
            message = stream.get_final_message()
    except Exception as e:
        partial = message_result(snapshot) if snapshot is not None else CallResult()
        if expired.is_set() or isinstance(e, _WallExpired):
            failure = Failure(False, f"the API did not answer within {seconds(req.wall_s)}")
        else:
            failure = _describe(e, req, url)
        return _with_failure(partial, failure, e)
    finally:
        watchdog.cancel()
    if isinstance(message, str) or not hasattr(message, "content"):
        return CallResult(failure=Failure(False, _NOT_A_MESSAGE))
    return message_result(message)


class _WallExpired(Exception):
    pass


def _with_failure(partial: CallResult, failure: Failure, err: BaseException) -> CallResult:
    return replace(partial, failure=failure, text=None, error=err)


def _retry_delay(res: CallResult, attempt: int, ends: float) -> float | None:
    """Seconds to wait before another attempt, or None: this result is final."""
    err = res.error
    if res.failure is None or err is None or res.failure.fatal or attempt > retries():
        return None
    status = _status_of(err)
    if status is None or status not in RETRY_STATUSES:
        return None
    headers = getattr(getattr(err, "response", None), "headers", None)
    if headers is not None and headers.get("x-should-retry") == "false":
        return None
    asked = retry_after(headers)
    if asked is None:
        low, high = BACKOFF_S
        asked = min(high, low * 2 ** (attempt - 1)) * (1 - 0.25 * random.random())
    wait = min(asked, RETRY_AFTER_CAP_S)
    if time.monotonic() + wait >= ends:
        return None  # the wall bound would pass while waiting: give up now
    return wait


def retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    import email.utils  # only for the rare HTTP-date form; a dry run never needs it

    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, float(email.utils.mktime_tz(parsed) - time.time()))


def _status_of(err: BaseException) -> int | None:
    """The HTTP status an error stands for (an in-stream error event counts as its type's)."""
    import anthropic

    if isinstance(err, anthropic.APIStatusError):
        if err.status_code == 200:  # an `error` event inside a stream
            kind = getattr(err, "type", None)
            return {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500}.get(
                str(kind)
            )
        return int(err.status_code)
    return None


def message_result(resp: Any) -> CallResult:
    """A message (from a stream, a plain answer or a batch result) as a CallResult."""
    usage = getattr(resp, "usage", None)
    details = getattr(usage, "output_tokens_details", None)
    texts = [
        str(getattr(block, "text", "") or "")
        for block in (getattr(resp, "content", None) or [])
        if getattr(block, "type", None) == "text"
    ]
    # Negative or absurd usage must reach neither the ledger nor the budget guard.
    counts: list[int] = []
    odd: list[str] = []
    for source, field_name in (
        (usage, "input_tokens"),
        (usage, "output_tokens"),
        (details, "thinking_tokens"),
        (usage, "cache_creation_input_tokens"),
        (usage, "cache_read_input_tokens"),
    ):
        raw = getattr(source, field_name, None)
        number, changed = usage_number(raw)
        counts.append(number)
        if changed:
            odd.append(f"{field_name}={one_line(repr(raw), 40)}")
    note = f"the API reported impossible usage ({', '.join(odd)}): bounded" if odd else None
    return CallResult(
        text="".join(texts),
        stop_reason=getattr(resp, "stop_reason", None),
        stop_details=_stop_details(getattr(resp, "stop_details", None)),
        input_tokens=counts[0],
        output_tokens=counts[1],
        thinking_tokens=counts[2],
        cache_write_tokens=counts[3],
        cache_read_tokens=counts[4],
        usage_note=note,
    )


def _stop_details(details: Any) -> str | None:
    if details is None:
        return None
    category = getattr(details, "category", None)
    explanation = getattr(details, "explanation", None)
    parts = [str(p) for p in (category, explanation) if p]
    return one_line(": ".join(parts), 200) if parts else None


def _describe(err: BaseException, req: Request, url: str) -> Failure:
    import httpx2

    if isinstance(err, httpx2.TimeoutException):
        return Failure(False, f"the API did not answer within {seconds(req.wall_s)}")
    if isinstance(err, httpx2.TransportError):
        return Failure(False, f"the connection to the API broke: {one_line(str(err), 120)}")
    return describe_error(err, req.model, url, req.wall_s)


def describe_error(err: BaseException, model: str, url: str, timeout: float) -> Failure:
    """An SDK exception -> one line a user can act on; account-wide problems stop the review."""
    import anthropic

    code = getattr(err, "error_code", None)
    if isinstance(err, anthropic.AuthenticationError):
        return Failure(True, f"the API rejected the credentials (401): check {credentials_hint()}")
    if isinstance(err, anthropic.PaymentRequiredError) or code in SPEND_LIMIT_CODES:
        status = getattr(err, "status_code", 402)
        return Failure(
            True,
            f"the API refused to bill this account ({status}: {_api_message(err)}): "
            "the review stopped; check the account's credit and spend limits",
        )
    if isinstance(err, anthropic.PermissionDeniedError):
        return Failure(
            True,
            f"the API refused access (403) for model {model}: check that the credentials "
            f"({credentials_hint()}) may use it ({_api_message(err)})",
        )
    if isinstance(err, anthropic.NotFoundError):
        return Failure(
            False, f"the API does not know model {model!r} (404): check `models` in the config"
        )
    tried = f"after {retries()} retries" if retries() else "(no retries)"
    if isinstance(err, anthropic.RateLimitError):
        return Failure(False, f"the API is rate limiting these credentials (429) {tried}")
    if isinstance(err, anthropic.OverloadedError):
        return Failure(False, f"the API is overloaded (529) {tried}")
    if isinstance(err, anthropic.InternalServerError):
        return Failure(False, f"the API failed ({err.status_code}) {tried}: {_api_message(err)}")
    if isinstance(err, anthropic.BadRequestError):
        return Failure(False, f"the API rejected the request (400): {_api_message(err)}")
    if isinstance(err, anthropic.APIStatusError):
        if err.status_code == 200:
            return Failure(False, f"the API stopped the answer: {_api_message(err)}")
        return Failure(False, f"the API answered {err.status_code}: {_api_message(err)}")
    if isinstance(err, anthropic.APITimeoutError):
        cause = err.__cause__ or err.__context__
        if type(cause).__name__ == "ConnectTimeout":
            return Failure(True, f"cannot reach the Anthropic API at {url}: connection timed out")
        return Failure(False, f"the API did not answer within {seconds(timeout)}")
    if isinstance(err, anthropic.APIConnectionError):
        cause = err.__cause__ or err.__context__
        detail = f": {one_line(str(cause), 120)}" if cause else ""
        # Nothing connected at all: every other unit would wait and fail the same way.
        unreachable = type(cause).__name__ in ("ConnectError", "ConnectTimeout")
        return Failure(unreachable, f"cannot reach the Anthropic API at {url}{detail}")
    if isinstance(err, anthropic.AnthropicError) and "credential" in type(err).__name__.lower():
        return Failure(True, f"no usable Anthropic credentials: set {credentials_hint()} ({err})")
    return Failure(
        False,
        f"unexpected error from the API client: {type(err).__name__}: {one_line(str(err), 160)}",
    )


def seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{round(value, 1):g}s"


def one_line(text: str, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _api_message(err: Any) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return one_line(str(inner["message"]), 160)
    return one_line(getattr(err, "message", "") or str(err), 160)
