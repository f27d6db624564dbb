"""The Message Batches API through the official SDK: create, retrieve, results, cancel, list.

`anthropic` is imported only here and only when a batch is really sent.  Every call is bounded
(a short connect timeout, a read timeout, and reads retried at most `READ_RETRIES` times on the
statuses the SDK would retry, waiting at most `claude.RETRY_AFTER_CAP_S`).  `create` is never
retried: an answer lost on the way back may mean the batch exists, and a second one would be
paid for twice; the caller reconciles through `created_since` instead.  Every SDK error becomes
a `BatchError` with one line a user can act on.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any, NamedTuple

from tierbot import environment
from tierbot.review import claude

# The API's limits per batch (requests, bytes of the create request); the environment may set
# lower ones (a gateway with a smaller body limit, tests).
MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
# custom_id: 1 to 64 characters of letters, digits, '_' and '-', unique within its batch.
CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
READ_RETRIES = 3
READ_TIMEOUT_S = 60.0
# Creating a batch of 256 MB takes a while to upload.
CREATE_TIMEOUT_S = 600.0


class BatchError(Exception):
    """A batch call failed.  `fatal`: every other call would fail the same way (credentials,
    billing); `maybe_created`: the create request may have reached the API before it failed."""

    def __init__(self, message: str, *, fatal: bool = False, maybe_created: bool = False):
        super().__init__(message)
        self.fatal = fatal
        self.maybe_created = maybe_created


class Status(NamedTuple):
    id: str
    processing_status: str  # in_progress | canceling | ended
    counts: dict[str, int]  # processing, succeeded, errored, expired, canceled
    created_at: float  # unix seconds

    @property
    def ended(self) -> bool:
        return self.processing_status == "ended"

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def limits() -> tuple[int, int]:
    """(requests, bytes) one batch may hold."""
    return (
        int(
            environment.number("TIERBOT_BATCH_MAX_REQUESTS", MAX_REQUESTS, low=1, high=MAX_REQUESTS)
        ),
        int(environment.number("TIERBOT_BATCH_MAX_BYTES", MAX_BYTES, low=1, high=MAX_BYTES)),
    )


def create(client: Any, requests: Sequence[dict[str, Any]]) -> Status:
    """Send one batch; raises BatchError (see its `maybe_created`)."""
    try:
        batch = client.messages.batches.create(
            requests=list(requests), timeout=_timeout(CREATE_TIMEOUT_S)
        )
    except Exception as e:
        raise _error(e, "create the batch", created=True) from None
    return _status(batch)


def retrieve(client: Any, batch_id: str) -> Status:
    return _status(_read(lambda t: client.messages.batches.retrieve(batch_id, timeout=t), batch_id))


def cancel(client: Any, batch_id: str) -> Status:
    """Ask the API to stop the batch (idempotent: retried like a read)."""
    return _status(_read(lambda t: client.messages.batches.cancel(batch_id, timeout=t), batch_id))


def results(client: Any, batch_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(custom_id, result object as the API sent it) for every request of an ended batch, in
    the API's order (which is not the requests' order)."""
    lines = _read(lambda t: client.messages.batches.results(batch_id, timeout=t), batch_id)
    try:
        for item in lines:
            result = item.result.to_dict(mode="json", warnings=False)
            yield str(item.custom_id), result
    except Exception as e:
        raise _error(e, f"read the results of {batch_id}") from None


def created_since(client: Any, since: float) -> list[Status]:
    """The workspace's batches created at or after `since` (newest first; pages stop there)."""
    out: list[Status] = []
    page = _read(lambda t: client.messages.batches.list(limit=100, timeout=t), "the batch list")
    for _ in range(1000):  # a bound on pages, far beyond any real need
        older = False
        for batch in page.data:
            status = _status(batch)
            if status.created_at < since:
                older = True
                break
            out.append(status)
        if older or not page.has_next_page():
            return out
        page = _read(lambda t, p=page: p.get_next_page(), "the batch list")
    return out


def _status(batch: Any) -> Status:
    counts = getattr(batch, "request_counts", None)
    created = getattr(batch, "created_at", None)
    return Status(
        id=str(getattr(batch, "id", "")),
        processing_status=str(getattr(batch, "processing_status", "")),
        counts={
            k: int(getattr(counts, k, 0) or 0)
            for k in ("processing", "succeeded", "errored", "expired", "canceled")
        },
        created_at=created.timestamp() if isinstance(created, dt.datetime) else 0.0,
    )


def _timeout(read: float) -> Any:
    import httpx2

    return httpx2.Timeout(read, connect=claude.CONNECT_TIMEOUT_S)


def _read(call: Any, what: str) -> Any:
    """An idempotent call, retried within bounds on what may pass (429, 5xx, a lost connection)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return call(_timeout(READ_TIMEOUT_S))
        except Exception as e:
            wait = _retry_wait(e, attempt)
            if wait is None:
                raise _error(e, f"read {what}") from None
            time.sleep(wait)


def _retry_wait(err: BaseException, attempt: int) -> float | None:
    import anthropic

    if attempt > READ_RETRIES:
        return None
    if isinstance(err, anthropic.APIStatusError):
        if err.status_code not in claude.RETRY_STATUSES:
            return None
        asked = claude.retry_after(err.response.headers)
    elif isinstance(err, (anthropic.APIConnectionError, anthropic.APITimeoutError)):
        asked = None
    else:
        return None
    if asked is None:
        low, high = claude.BACKOFF_S
        asked = min(high, low * 2 ** (attempt - 1)) * (1 - 0.25 * random.random())
    return min(asked, claude.RETRY_AFTER_CAP_S)


def _error(err: BaseException, doing: str, created: bool = False) -> BatchError:
    """An SDK error as one line; `created`: whether the request may have been acted on."""
    import anthropic

    if isinstance(err, anthropic.NotFoundError):
        return BatchError(f"cannot {doing}: the API does not know it (404)")
    failure = claude.describe_error(err, "", claude.base_url(), READ_TIMEOUT_S)
    # A definite refusal (a 4xx answer) created nothing; anything else may have.
    definite = isinstance(err, anthropic.APIStatusError) and 400 <= err.status_code < 500
    return BatchError(
        f"cannot {doing}: {failure.message}",
        fatal=failure.fatal,
        maybe_created=created and not definite,
    )


# --- result objects ---------------------------------------------------------------------------

# Errors that say the account or the request itself is wrong: sending it again cannot help.
FATAL_ERRORS = frozenset({"authentication_error", "permission_error", "billing_error"})
PERMANENT_ERRORS = frozenset({"invalid_request_error", "not_found_error", "request_too_large"})


def call_result(result: dict[str, Any]) -> claude.CallResult:
    """A batch result object as the CallResult a streamed call would have given."""
    if result.get("type") == "succeeded":
        return claude.message_result(_attrs(result.get("message") or {}))
    fatal = _error_type(result) in FATAL_ERRORS
    return claude.CallResult(failure=claude.Failure(fatal, failure_text(result)))


def retryable(result: dict[str, Any]) -> bool:
    """Whether a result is worth sending again: it expired, was canceled, or failed in passing."""
    kind = result.get("type")
    if kind in ("expired", "canceled"):
        return True
    if kind != "errored":
        return False
    etype = _error_type(result)
    return etype not in FATAL_ERRORS and etype not in PERMANENT_ERRORS


def failure_text(result: dict[str, Any]) -> str:
    kind = result.get("type")
    if kind in ("expired", "canceled"):
        return f"the request {kind} before the API processed it"
    err = result.get("error")
    inner = err.get("error") if isinstance(err, dict) else None
    message = inner.get("message") if isinstance(inner, dict) else None
    return f"the request failed ({_error_type(result)}: {claude.one_line(str(message or ''), 160)})"


def _error_type(result: dict[str, Any]) -> str:
    err = result.get("error")
    inner = err.get("error") if isinstance(err, dict) else None
    return str(inner.get("type") or "api_error") if isinstance(inner, dict) else "api_error"


def _attrs(value: Any) -> Any:
    """JSON as attributes (what `claude.message_result` reads from an SDK message)."""
    if isinstance(value, dict):
        return SimpleNamespace(**{str(k): _attrs(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_attrs(v) for v in value]
    return value
