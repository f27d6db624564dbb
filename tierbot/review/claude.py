"""One Claude request through the official SDK, and SDK errors turned into lines a user can act on.

`anthropic` is imported only when a client is made or an error described: the dry-run path never
loads it.  Nothing here raises for API trouble; a call always comes back as a `CallResult`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

# Per request; the SDK's own default is ten minutes.  TIERBOT_API_TIMEOUT overrides.
REQUEST_TIMEOUT_S = 300.0
# The SDK retries 408/409/429/5xx with backoff, honouring retry-after.
# TIERBOT_API_RETRIES overrides.
MAX_RETRIES = 2


def has_credentials() -> bool:
    """Whether the environment holds a key the SDK would use (checked without importing it)."""
    return bool(os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN"))


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
        """Whether the call was billed (a failure after tokens were counted still costs)."""
        return self.failure is None or self.input_tokens + self.output_tokens > 0


def make_client(deadline: float | None) -> Any:
    import anthropic

    retries = int(_env_float("TIERBOT_API_RETRIES", MAX_RETRIES))
    if deadline is not None:
        retries = 0  # each retry would restart the timeout and overrun the hook's limit
    return anthropic.Anthropic(max_retries=retries)


def base_url() -> str:
    return os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"


def default_timeout() -> float:
    return _env_float("TIERBOT_API_TIMEOUT", REQUEST_TIMEOUT_S)


def call(
    client: Any,
    model: str,
    max_tokens: int,
    system: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    timeout: float,
    url: str,
) -> CallResult:
    """One structured-output request; every SDK error becomes a Failure (nothing escapes a pool)."""
    from tierbot.review import (
        answer,  # kept off import so the offline path can ask has_credentials()
    )

    started = time.monotonic()
    try:
        resp = client.messages.create(
            model=model,
            max_tokens=max_tokens,
            system=system,
            messages=messages,
            output_config={"format": {"type": "json_schema", "schema": answer.ANSWER_SCHEMA}},
            timeout=timeout,
        )
    except Exception as e:
        return CallResult(
            failure=describe_error(e, model, url, timeout),
            started=started,
            finished=time.monotonic(),
        )
    finished = time.monotonic()
    # A 200 whose body is not JSON comes back as a plain str from the SDK.
    if isinstance(resp, str) or not hasattr(resp, "content"):
        return CallResult(
            failure=Failure(False, "the API answered 200 with a body that is not a message"),
            started=started,
            finished=finished,
        )
    return _result(resp, started, finished)


def _result(resp: Any, started: float, finished: float) -> CallResult:
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


def describe_error(err: BaseException, model: str, url: str, timeout: float) -> Failure:
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
        return Failure(
            False, f"the API does not know model {model!r} (404): check `models` in the config"
        )
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
        detail = f": {one_line(str(cause), 120)}" if cause else ""
        return Failure(False, f"cannot reach the Anthropic API at {url}{detail}")
    if isinstance(err, anthropic.AnthropicError) and "credential" in type(err).__name__.lower():
        return Failure(True, f"no usable Anthropic credentials: set ANTHROPIC_API_KEY ({err})")
    return Failure(
        False,
        f"unexpected error from the API client: {type(err).__name__}: {one_line(str(err), 160)}",
    )


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


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default
