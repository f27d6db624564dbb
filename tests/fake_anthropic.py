"""A loopback fake of the Anthropic Messages API, for driving the real SDK in tests.

    with fake_anthropic() as fake:
        fake.script("claude-haiku-5-5", answer([finding(...)]), error(529, "overloaded_error"))
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        ...
        fake.requests[0].json["output_config"]

It speaks the real wire format: `POST /v1/messages` answers a message object (id, type, role, model,
content blocks, stop_reason, stop_details, usage) or, when the request says `"stream": true`, the
same message as server-sent events (message_start, content_block_start/delta/stop, message_delta
with the stop reason and the final usage, message_stop), or the real error shape
`{"type": "error", "error": {"type", "message", "details"}}` with its status and headers
(`retry-after`, `x-should-retry`).  Replies are scripted per model (a queue; "*" matches any model)
or by a callable; anything unscripted gets an empty review.

Latency is split like the real service's: `ttft` (the prompt is read, the cache entry is written,
the first event goes out) and `delay` (the answer is generated).  A `max_tokens: 0` request stops
after the prompt is read: it only writes the prompt cache.

Usage is simulated: tokens are chars/3.2 (the offline estimate of the 5.5 tokenizer), the schema
of structured output is billed as prompt, and output tokens are the answer's plus its thinking
tokens (`output_tokens_details.thinking_tokens`, by effort).  Prompt caching follows the real
rules: every block marked `cache_control` ends a cacheable prefix (model, output format and every
block before it); the longest prefix already cached is read, the prefix up to the last breakpoint
is written, each only from `min_cache_tokens` up, and an entry exists once the response that
wrote it has begun.

The Message Batches API is there too, in its wire format (the SDK's `messages.batches.*` types):
`POST /v1/messages/batches` checks the batch (custom_id 1-64 of `[a-zA-Z0-9_-]`, unique; no
`stream`; `max_tokens` >= 1; at most `batch_max_requests` requests and `batch_max_bytes` bytes)
and answers a `message_batch` that is `in_progress` for `batch_polls` retrieves, then `ended`
with its `request_counts` and `results_url`; the results are JSON lines in an order of their own
(succeeded with a message, errored with an error response, expired, canceled).  Each request is
answered as `POST /v1/messages` would be (the same scripts, usage and prompt cache), unless
`batch_responder(custom_id, params)` says otherwise.  `cancel` ends the unprocessed requests as
canceled; `GET /v1/messages/batches` lists them, newest first.  `batch_hook(event, batch)` runs
at "create" (return True: drop the request, no batch), "created", "retrieve" and "results" (half
of the lines sent): the tests kill a client there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHARS_PER_TOKEN = 3.2
# Thinking tokens an answer spends by effort (the API's own defaults when no effort is sent).
THINKING_TOKENS = {"low": 150, "medium": 600, "high": 1500, "xhigh": 3000, "max": 6000}
API_DEFAULT_EFFORT = {"haiku": "medium", "sonnet": "high", "opus": "medium"}
EFFORTS = ("low", "medium", "high", "xhigh", "max")


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict (sent as JSON) or bytes (sent raw)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # generation time, after the first event
    usage: dict[str, Any] | None = None  # override the simulated usage of a message
    ttft: float | None = None  # before anything is sent (None: the fake's default_ttft)
    thinking_tokens: int | None = None  # None: by the request's effort
    stream_error: dict[str, Any] | None = None  # an `error` event after message_start
    hang_up: bool = False  # close the connection without answering


# The Message Batches API's limits and custom_id rule.
BATCH_MAX_REQUESTS = 100_000
BATCH_MAX_BYTES = 256 * 1024 * 1024
CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_BATCH_PATH = re.compile(r"/v1/messages/batches/([A-Za-z0-9_-]+)(/results|/cancel)?")


@dataclass
class Batch:
    """One Message Batch as the fake holds it."""

    id: str
    requests: list[dict[str, Any]]
    created_at: float  # unix seconds
    polls_left: int  # retrieves still answered in_progress
    status: str = "in_progress"  # in_progress | canceling | ended
    cancel_initiated_at: float | None = None
    ended_at: float | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # custom_id -> result
    retrieves: int = 0


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    raw: bytes
    json: Any
    started: float
    finished: float = 0.0
    first_event: float = 0.0  # when the first byte of the answer went out

    @property
    def model(self) -> str:
        return str(self.json.get("model", "")) if isinstance(self.json, dict) else ""

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")

    @property
    def streamed(self) -> bool:
        return isinstance(self.json, dict) and self.json.get("stream") is True

    @property
    def effort(self) -> str | None:
        config = self.json.get("output_config") if isinstance(self.json, dict) else None
        return config.get("effort") if isinstance(config, dict) else None


def finding(
    path: str,
    line: int | None,
    title: str = "a problem",
    *,
    severity: str = "medium",
    end_line: int | None = None,
    category: str = "bug",
    message: str = "explained",
    suggestion: str | None = None,
    confidence: float = 0.9,
) -> dict[str, Any]:
    return {
        "path": path,
        "line": line,
        "end_line": end_line,
        "severity": severity,
        "category": category,
        "title": title,
        "message": message,
        "suggestion": suggestion,
        "confidence": confidence,
    }


def answer(
    findings: Sequence[dict[str, Any]] = (),
    *,
    escalate: bool = False,
    reason: str | None = None,
    stop_reason: str = "end_turn",
    stop_details: dict[str, Any] | None = None,
    text: str | None = None,
    thinking: bool = True,
    thinking_tokens: int | None = None,
    delay: float = 0.0,
    ttft: float | None = None,
    usage: dict[str, Any] | None = None,
) -> Reply:
    """A 200 message whose text block holds a review answer (or `text` verbatim)."""
    if text is None:
        text = json.dumps(
            {"findings": list(findings), "escalate": escalate, "escalate_reason": reason}
        )
    content: list[dict[str, Any]] = []
    if thinking:  # adaptive thinking puts a block before the text: clients must pick by type
        content.append({"type": "thinking", "thinking": "Let me look.", "signature": "c2ln"})
    content.append({"type": "text", "text": text})
    body = {"content": content, "stop_reason": stop_reason, "stop_details": stop_details}
    return Reply(
        200,
        body,
        delay=delay,
        usage=usage,
        ttft=ttft,
        thinking_tokens=thinking_tokens,
    )


def refusal(category: str | None = "cyber", explanation: str | None = None) -> Reply:
    """A turn ended by the safety classifiers: no usable text, `stop_details` says why."""
    details = {"type": "refusal", "category": category, "explanation": explanation}
    return answer(text="", thinking=False, stop_reason="refusal", stop_details=details)


def verdicts(*items: dict[str, Any]) -> Reply:
    """A verification answer: one verdict per finding id."""
    return answer(text=json.dumps({"verdicts": list(items)}))


def verdict(
    id: int, kind: str = "confirmed", reason: str = "checked against the code", **changes: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": id,
        "verdict": kind,
        "reason": reason,
        "severity": None,
        "line": None,
        "end_line": None,
        "title": None,
        "message": None,
    }
    item.update(changes)
    return item


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error(
    status: int,
    type_: str | None = None,
    message: str = "scripted error",
    delay: float = 0.0,
    *,
    retry_after: str | None = None,
    error_code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """An error in the API's shape.  Without `retry_after`, `retry-after-ms: 1` keeps retries
    instant in tests; with it, exactly the `retry-after` header the service would send."""
    inner: dict[str, Any] = {
        "type": type_ or _ERROR_TYPES.get(status, "api_error"),
        "message": message,
    }
    if error_code is not None:
        inner["details"] = {"error_code": error_code}
    body = {"type": "error", "error": inner, "request_id": f"req_{uuid.uuid4().hex[:20]}"}
    head = {"retry-after": retry_after} if retry_after is not None else {"retry-after-ms": "1"}
    head.update(headers or {})
    return Reply(status, body, headers=head, delay=delay)


def not_json(delay: float = 0.0) -> Reply:
    return Reply(
        200,
        b"<html><body>502 Bad Gateway</body></html>",
        headers={"content-type": "text/html"},
        delay=delay,
    )


VERIFY = "(verification)"


def is_verification(req: Recorded) -> bool:
    """A request that asks for verdicts on findings (tierbot's Opus verification)."""
    config = req.json.get("output_config") if isinstance(req.json, dict) else None
    schema = ((config or {}).get("format") or {}).get("schema") or {}
    return "verdicts" in (schema.get("properties") or {})


def tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _block_texts(content: Any) -> list[tuple[str, bool]]:
    if isinstance(content, str):
        return [(content, False)]
    out = []
    for block in content or []:
        if isinstance(block, dict):
            text = block.get("text") or block.get("thinking") or ""
            out.append((str(text), "cache_control" in block))
    return out


def _has_surrogates(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_has_surrogates(k) or _has_surrogates(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogates(v) for v in value)
    return False


def _tier_of(model: str) -> str:
    return next((t for t in ("haiku", "sonnet", "opus") if t in model), "sonnet")


class FakeAnthropic:
    def __init__(self, min_cache_tokens: int = 512) -> None:
        self.min_cache_tokens = min_cache_tokens
        self.requests: list[Recorded] = []
        self.queues: dict[str, deque[Reply]] = {}
        self.responder: Callable[[Recorded], Reply | None] | None = None
        self.default_delay = 0.0  # generation time of unscripted answers
        self.default_ttft = 0.0
        self.cache_ttl = 300.0
        self._cached: dict[str, float] = {}  # prefix key -> expiry
        self._lock = threading.Lock()
        self.url = ""
        self.batches: dict[str, Batch] = {}
        self.batch_polls = 1
        self.batch_max_requests = BATCH_MAX_REQUESTS
        self.batch_max_bytes = BATCH_MAX_BYTES
        # Counts move while a batch runs (False: only when it ends, as the SDK's types document).
        self.batch_live_counts = False
        self.batch_responder: Callable[[str, dict[str, Any]], Reply | str | None] | None = None
        self.batch_hook: Callable[[str, Batch | None], bool | None] | None = None
        self.batch_processed: list[Recorded] = []  # the batches' requests, as they were answered

    def script(self, model: str, *replies: Reply) -> None:
        """Queue replies for `model` ("*": any model), answered in order."""
        with self._lock:
            self.queues.setdefault(model, deque()).extend(replies)

    def script_verdicts(self, *replies: Reply) -> None:
        """Queue replies for verification requests (those asking for `verdicts`), in order."""
        self.script(VERIFY, *replies)

    def by_model(self, model: str) -> list[Recorded]:
        return [r for r in self.requests if r.model == model]

    def bodies(self) -> str:
        return "\n".join(r.text for r in self.requests)

    def generating(self) -> list[Recorded]:
        """Requests that asked for an answer (not cache priming with max_tokens 0)."""
        return [r for r in self.requests if r.json.get("max_tokens") != 0]

    def _next(self, req: Recorded) -> Reply:
        if self.responder is not None:
            reply = self.responder(req)
            if reply is not None:
                return reply
        keys = (VERIFY,) if is_verification(req) else (req.model, "*")
        with self._lock:
            for key in keys:
                q = self.queues.get(key)
                if q:
                    return q.popleft()
        return answer(delay=self.default_delay)

    # ------------------------------------------------------------------ usage and caching

    def _prefix_usage(self, body: dict[str, Any]) -> tuple[int, int, int, list[str]]:
        """(total prompt tokens, cache read, cache write, keys to store once the answer begins)."""
        fmt = (body.get("output_config") or {}).get("format")
        schema = json.dumps(fmt, sort_keys=True) if fmt else ""
        blocks: list[tuple[str, bool]] = [(schema, False)] if schema else []
        system = body.get("system")
        blocks.extend(_block_texts(system) if system is not None else [])
        for msg in body.get("messages", []):
            blocks.extend(_block_texts(msg.get("content")))
        total = sum(tokens(t) for t, _ in blocks) + 8
        h = hashlib.sha256(str(body.get("model")).encode())
        running = 0
        points: list[tuple[str, int]] = []  # (key, prefix tokens) at each breakpoint
        for text, marked in blocks:
            h.update(text.encode("utf-8", "surrogatepass"))
            h.update(b"\0")
            running += tokens(text)
            if marked:
                points.append((h.copy().hexdigest(), running))
        now = time.monotonic()
        with self._lock:
            hit = max(
                (n for k, n in points if self._cached.get(k, 0) > now),
                default=0,
            )
        store = [k for k, n in points if n >= self.min_cache_tokens]
        last = points[-1][1] if points else 0
        write = last - hit if last >= self.min_cache_tokens and last > hit else 0
        return total, hit, write, store

    def _store(self, keys: list[str]) -> None:
        expiry = time.monotonic() + self.cache_ttl
        with self._lock:
            for k in keys:
                self._cached[k] = expiry

    def _usage(
        self, body: dict[str, Any], reply: Reply, text: str, prompt: tuple[int, int, int]
    ) -> dict[str, Any]:
        if reply.usage is not None:
            return dict(reply.usage)
        total, read, write = prompt
        if body.get("max_tokens") == 0:
            thinking = output = 0
        else:
            effort = (body.get("output_config") or {}).get("effort") or API_DEFAULT_EFFORT[
                _tier_of(str(body.get("model")))
            ]
            thinking = (
                reply.thinking_tokens
                if reply.thinking_tokens is not None
                else THINKING_TOKENS.get(effort, 600)
            )
            output = tokens(text) + 20 + thinking
        return {
            "input_tokens": total - write - read,
            "output_tokens": output,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "output_tokens_details": {"thinking_tokens": thinking},
        }

    # ------------------------------------------------------------------ the request

    def _reject(self, data: Any) -> Reply | None:
        """What the real API refuses with 400 before any work."""
        if not isinstance(data, dict):
            return error(400, message="the request body is not a JSON object")
        if _has_surrogates(data):
            return error(400, message="the request body is not valid UTF-8")
        max_tokens = data.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
            return error(400, message="max_tokens: must be an integer >= 0")
        for key in ("temperature", "top_p", "top_k"):
            if key in data:
                return error(400, message=f"{key}: not supported by this API version")
        msgs = data.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return error(400, message="messages: at least one message is required")
        if msgs[-1].get("role") == "assistant":
            return error(400, message="assistant prefill is not supported")
        effort = (data.get("output_config") or {}).get("effort")
        if effort is not None and effort not in EFFORTS:
            return error(400, message=f"output_config.effort: unknown value {effort!r}")
        marks = sum(c for t in [data.get("system")] for _, c in _block_texts(t or [])) + sum(
            c for m in msgs for _, c in _block_texts(m.get("content"))
        )
        if marks > 4:
            return error(400, message="A maximum of 4 blocks with cache_control may be provided")
        return None

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length)
        try:
            data = json.loads(raw.decode("utf-8"))  # strict: the API takes UTF-8 only
        except ValueError:
            data = None
        req = Recorded(
            handler.path,
            {k.lower(): v for k, v in handler.headers.items()},
            raw,
            data,
            time.monotonic(),
        )
        with self._lock:
            self.requests.append(req)
        path = handler.path.split("?")[0]
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if path.startswith("/v1/messages/batches"):
                self._batches_post(handler, req, path)
                req.finished = time.monotonic()
                return
        if path != "/v1/messages":
            reply = error(404, "not_found_error", f"no route {handler.path}")
        else:
            reply = self._reject(data) or self._next(req)
        # The client may give up (its timeout): then there is nothing to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(handler, req, reply)
        req.finished = time.monotonic()

    def handle_get(self, handler: BaseHTTPRequestHandler) -> None:
        req = Recorded(
            handler.path,
            {k.lower(): v for k, v in handler.headers.items()},
            b"",
            None,
            time.monotonic(),
        )
        with self._lock:
            self.requests.append(req)
        path, _, query = handler.path.partition("?")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if path == "/v1/messages/batches":
                self._list_batches(handler, query)
            elif (m := _BATCH_PATH.fullmatch(path)) and m.group(2) != "/cancel":
                batch = self.batches.get(m.group(1))
                if batch is None:
                    self._send_plain(handler, error(404, message=f"no batch {m.group(1)}"))
                elif m.group(2) == "/results":
                    self._send_results(handler, batch)
                else:
                    self._retrieve(handler, batch)
            else:
                self._send_plain(handler, error(404, message=f"no route {handler.path}"))
        req.finished = time.monotonic()

    # ------------------------------------------------------------------ message batches

    def end_batches(self) -> None:
        """Let every running batch end at its next retrieve."""
        with self._lock:
            for b in self.batches.values():
                b.polls_left = 0

    def batch_requests(self) -> list[dict[str, Any]]:
        """Every request of every batch created, in order."""
        return [r for b in self.batches.values() for r in b.requests]

    def _batches_post(self, handler: BaseHTTPRequestHandler, req: Recorded, path: str) -> None:
        if path == "/v1/messages/batches":
            self._create_batch(handler, req)
            return
        m = _BATCH_PATH.fullmatch(path)
        batch = self.batches.get(m.group(1)) if m and m.group(2) == "/cancel" else None
        if batch is None:
            self._send_plain(handler, error(404, message=f"no route {path}"))
            return
        with self._lock:
            if batch.status == "in_progress":
                batch.status = "canceling"
                batch.cancel_initiated_at = time.time()
        self._send_plain(handler, Reply(200, self._batch_object(batch)))

    def _create_batch(self, handler: BaseHTTPRequestHandler, req: Recorded) -> None:
        problem = self._batch_problem(req)
        if problem is not None:
            self._send_plain(handler, problem)
            return
        if self.batch_hook is not None and self.batch_hook("create", None):
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        batch = Batch(
            f"msgbatch_{uuid.uuid4().hex[:24]}",
            list(req.json["requests"]),
            time.time(),
            self.batch_polls,
        )
        with self._lock:
            self.batches[batch.id] = batch
        if self.batch_hook is not None:
            self.batch_hook("created", batch)
        self._send_plain(handler, Reply(200, self._batch_object(batch)))

    def _batch_problem(self, req: Recorded) -> Reply | None:
        """What the API refuses when a batch is created (before any request is processed)."""
        if len(req.raw) > self.batch_max_bytes:
            limit = self.batch_max_bytes
            return error(413, "request_too_large", f"the batch is over {limit} bytes")
        data = req.json
        if not isinstance(data, dict) or not isinstance(data.get("requests"), list):
            return error(400, message="requests: Field required")
        items = data["requests"]
        if not items:
            return error(400, message="requests: List should have at least 1 item")
        if len(items) > self.batch_max_requests:
            return error(400, message=f"requests: at most {self.batch_max_requests} requests")
        seen: set[str] = set()
        for i, item in enumerate(items):
            cid = item.get("custom_id") if isinstance(item, dict) else None
            if not isinstance(cid, str) or not CUSTOM_ID.fullmatch(cid):
                return error(400, message=f"requests.{i}.custom_id: {cid!r} does not match")
            if cid in seen:
                return error(400, message=f"requests.{i}.custom_id: {cid} is not unique")
            seen.add(cid)
            params = item.get("params")
            if not isinstance(params, dict) or not params.get("model"):
                return error(400, message=f"requests.{i}.params: Field required")
            if "stream" in params:
                return error(400, message=f"requests.{i}.params.stream: not supported in batches")
            mt = params.get("max_tokens")
            if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
                return error(400, message=f"requests.{i}.params.max_tokens: must be at least 1")
        return None

    def _retrieve(self, handler: BaseHTTPRequestHandler, batch: Batch) -> None:
        if self.batch_hook is not None:
            self.batch_hook("retrieve", batch)
        with self._lock:
            batch.retrieves += 1
            ending = batch.status == "canceling" or batch.polls_left <= 0
            batch.polls_left -= 1
        if batch.status != "ended":
            todo = [r for r in batch.requests if r["custom_id"] not in batch.results]
            if batch.status == "canceling":
                for r in todo:
                    batch.results[r["custom_id"]] = {"type": "canceled"}
            elif ending:
                self._process(batch, todo)
            elif self.batch_live_counts:
                share = math.ceil(len(batch.requests) / (batch.polls_left + 2))
                self._process(batch, todo[:share])
            if ending:
                batch.status, batch.ended_at = "ended", time.time()
        self._send_plain(handler, Reply(200, self._batch_object(batch)))

    def _process(self, batch: Batch, todo: list[dict[str, Any]]) -> None:
        for r in todo:
            batch.results[r["custom_id"]] = self._batch_result(r["custom_id"], r["params"])

    def _batch_result(self, custom_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """One request of a batch answered as `POST /v1/messages` would answer it."""
        reply: Reply | str | None = None
        if self.batch_responder is not None:
            reply = self.batch_responder(custom_id, params)
        if reply in ("expired", "canceled"):
            return {"type": reply}
        if isinstance(reply, str):
            reply = error(500, "api_error", f"the request {reply}")
        raw = json.dumps(params).encode()
        inner = Recorded("/v1/messages", {}, raw, params, time.monotonic())
        self.batch_processed.append(inner)
        if reply is None:
            reply = self._reject(params) or self._next(inner)
        inner.finished = time.monotonic()
        if reply.status != 200 or not isinstance(reply.body, dict) or "content" not in reply.body:
            body = reply.body if isinstance(reply.body, dict) else error(500).body
            return {"type": "errored", "error": body}
        prompt = self._prefix_usage(params)
        self._store(prompt[3])
        return {"type": "succeeded", "message": self._message(params, reply, prompt[:3])}

    def _counts(self, batch: Batch) -> dict[str, int]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        ended = batch.status == "ended"
        for r in batch.requests:
            result = batch.results.get(r["custom_id"])
            if result is None or not (ended or self.batch_live_counts):
                counts["processing"] += 1
            else:
                counts[result["type"]] += 1
        return counts

    def _batch_object(self, batch: Batch) -> dict[str, Any]:
        def stamp(t: float | None) -> str | None:
            if t is None:
                return None
            return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")

        ended = batch.status == "ended"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": self._counts(batch),
            "ended_at": stamp(batch.ended_at),
            "created_at": stamp(batch.created_at),
            "expires_at": stamp(batch.created_at + 86400),
            "archived_at": None,
            "cancel_initiated_at": stamp(batch.cancel_initiated_at),
            "results_url": f"{self.url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    def _send_results(self, handler: BaseHTTPRequestHandler, batch: Batch) -> None:
        if batch.status != "ended":
            self._send_plain(handler, error(404, message="results are available once it ends"))
            return
        # Not in request order: the API promises none (custom_id is the only link).
        lines = [
            json.dumps({"custom_id": r["custom_id"], "result": batch.results[r["custom_id"]]})
            + "\n"
            for r in reversed(batch.requests)
        ]
        payload = "".join(lines).encode()
        handler.send_response(200)
        handler.send_header("content-type", "application/binary")
        handler.send_header("content-length", str(len(payload)))
        handler.end_headers()
        half = sum(len(x.encode()) for x in lines[: len(lines) // 2])
        handler.wfile.write(payload[:half])
        handler.wfile.flush()
        if self.batch_hook is not None:
            self.batch_hook("results", batch)
        handler.wfile.write(payload[half:])
        handler.wfile.flush()

    def _list_batches(self, handler: BaseHTTPRequestHandler, query: str) -> None:
        from urllib.parse import parse_qs

        params = {k: v[0] for k, v in parse_qs(query).items()}
        limit = max(1, min(1000, int(params.get("limit", 20))))
        newest = sorted(self.batches.values(), key=lambda b: b.created_at, reverse=True)
        ids = [b.id for b in newest]
        start = ids.index(params["after_id"]) + 1 if params.get("after_id") in ids else 0
        page = newest[start : start + limit]
        body = {
            "data": [self._batch_object(b) for b in page],
            "has_more": start + limit < len(newest),
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
        }
        self._send_plain(handler, Reply(200, body))

    def _answer(self, handler: BaseHTTPRequestHandler, req: Recorded, reply: Reply) -> None:
        data = req.json if isinstance(req.json, dict) else {}
        ttft = self.default_ttft if reply.ttft is None else reply.ttft
        message = reply.status == 200 and isinstance(reply.body, dict) and "content" in reply.body
        prompt = self._prefix_usage(data) if message else (0, 0, 0, [])
        if ttft:
            time.sleep(ttft)
        if reply.hang_up:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if message:
            self._store(prompt[3])  # the entry exists once the answer has begun
        req.first_event = time.monotonic()
        if not message:
            if reply.delay:
                time.sleep(reply.delay)
            self._send_plain(handler, reply)
            return
        msg = self._message(data, reply, prompt[:3])
        generate = reply.delay if data.get("max_tokens") != 0 else 0.0
        if req.streamed:
            self._send_stream(handler, msg, generate, reply.stream_error)
        else:
            if generate:
                time.sleep(generate)
            self._send_plain(handler, Reply(200, msg, headers=reply.headers))

    def _message(
        self, data: dict[str, Any], reply: Reply, prompt: tuple[int, int, int]
    ) -> dict[str, Any]:
        """The message object a scripted 200 reply stands for, with its simulated usage."""
        body = dict(reply.body)
        content = list(body["content"])
        stop = body.get("stop_reason", "end_turn")
        if data.get("max_tokens") == 0:
            content, stop = [], "max_tokens"
        text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": data.get("model"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "stop_details": body.get("stop_details"),
            "usage": self._usage(data, reply, text, prompt),
        }

    def _send_plain(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        headers = {"request-id": f"req_{uuid.uuid4().hex[:20]}", **reply.headers}
        if isinstance(reply.body, bytes):
            payload = reply.body
            headers.setdefault("content-type", "application/octet-stream")
        else:
            payload = json.dumps(reply.body or {}).encode()
            headers.setdefault("content-type", "application/json")
        handler.send_response(reply.status)
        for k, v in headers.items():
            handler.send_header(k, v)
        handler.send_header("content-length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
        handler.wfile.flush()

    def _send_stream(
        self,
        handler: BaseHTTPRequestHandler,
        msg: dict[str, Any],
        generate: float,
        stream_error: dict[str, Any] | None,
    ) -> None:
        handler.send_response(200)
        handler.send_header("request-id", f"req_{uuid.uuid4().hex[:20]}")
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()

        def event(name: str, payload: dict[str, Any]) -> None:
            data = f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()
            handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            handler.wfile.flush()

        usage = msg["usage"]
        start = {**msg, "content": [], "stop_reason": None, "stop_details": None}
        start["usage"] = {**usage, "output_tokens": 1, "output_tokens_details": None}
        event("message_start", {"type": "message_start", "message": start})
        event("ping", {"type": "ping"})
        if stream_error is not None:
            event("error", {"type": "error", "error": stream_error})
            handler.wfile.write(b"0\r\n\r\n")
            return
        if generate:
            time.sleep(generate)
        for i, block in enumerate(msg["content"]):
            if block.get("type") == "thinking":
                event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                    },
                )
                delta = {"type": "thinking_delta", "thinking": block.get("thinking", "")}
                event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": i, "delta": delta},
                )
                sig = {"type": "signature_delta", "signature": block.get("signature", "")}
                event(
                    "content_block_delta", {"type": "content_block_delta", "index": i, "delta": sig}
                )
            else:
                event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
                text = block.get("text", "")
                for at in range(0, len(text), 200):
                    delta = {"type": "text_delta", "text": text[at : at + 200]}
                    event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": i, "delta": delta},
                    )
            event("content_block_stop", {"type": "content_block_stop", "index": i})
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": msg["stop_reason"],
                    "stop_sequence": None,
                    "stop_details": msg["stop_details"],
                },
                "usage": {
                    "input_tokens": usage.get("input_tokens"),
                    "cache_creation_input_tokens": usage.get("cache_creation_input_tokens"),
                    "cache_read_input_tokens": usage.get("cache_read_input_tokens"),
                    "output_tokens": usage.get("output_tokens", 0),
                    "output_tokens_details": usage.get("output_tokens_details"),
                },
            },
        )
        event("message_stop", {"type": "message_stop"})
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeAnthropic

    def setup(self) -> None:
        super().setup()
        # Without this, Nagle's algorithm holds each small write back ~40 ms: the bench would time
        # the fake, not tierbot.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        self.server.fake.handle(self)  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self.server.fake.handle_get(self)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the listen backlog: many units may connect at once
    fake: FakeAnthropic


@contextmanager
def fake_anthropic(min_cache_tokens: int = 512) -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic(min_cache_tokens)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
