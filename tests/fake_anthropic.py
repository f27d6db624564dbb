"""A loopback fake of the Anthropic Messages API, for driving the real SDK in tests.

    with fake_anthropic() as fake:
        fake.script("claude-haiku-5-5", answer([finding(...)]), error(529, "overloaded_error"))
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        ...
        fake.requests[0].json["output_config"]

It speaks the real wire format: `POST /v1/messages` answers a message object (id, type, role, model,
content blocks, stop_reason, usage) or the real error shape `{"type": "error", "error": {...}}`.
Replies are scripted per model (a queue; "*" matches any model) or by a callable; anything
unscripted gets an empty review.  Prompt caching is simulated: the prompt up to the last block
marked `cache_control` is a cache write the first time a model sees it and a cache read afterwards
(only when it reaches `min_cache_tokens`, like the real minimum).  Tokens are counted as chars/4.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict (sent as JSON) or bytes (sent raw)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    usage: dict[str, int] | None = None  # override the simulated usage of a message


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    raw: bytes
    json: Any
    started: float
    finished: float = 0.0

    @property
    def model(self) -> str:
        return str(self.json.get("model", "")) if isinstance(self.json, dict) else ""

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")


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
    text: str | None = None,
    thinking: bool = True,
    delay: float = 0.0,
    usage: dict[str, int] | None = None,
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
    return Reply(200, {"content": content, "stop_reason": stop_reason}, delay=delay, usage=usage)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error(
    status: int, type_: str | None = None, message: str = "scripted error", delay: float = 0.0
) -> Reply:
    body = {
        "type": "error",
        "error": {"type": type_ or _ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": f"req_{uuid.uuid4().hex[:20]}",
    }
    # retry-after-ms keeps the SDK's retries instant in tests.
    return Reply(status, body, headers={"retry-after-ms": "1"}, delay=delay)


def not_json(delay: float = 0.0) -> Reply:
    return Reply(
        200,
        b"<html><body>502 Bad Gateway</body></html>",
        headers={"content-type": "text/html"},
        delay=delay,
    )


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _block_texts(content: Any) -> list[tuple[str, bool]]:
    if isinstance(content, str):
        return [(content, False)]
    out = []
    for block in content or []:
        if isinstance(block, dict):
            text = block.get("text") or block.get("thinking") or ""
            out.append((str(text), "cache_control" in block))
    return out


class FakeAnthropic:
    def __init__(self, min_cache_tokens: int = 512) -> None:
        self.min_cache_tokens = min_cache_tokens
        self.requests: list[Recorded] = []
        self.queues: dict[str, deque[Reply]] = {}
        self.responder: Callable[[Recorded], Reply | None] | None = None
        self.default_delay = 0.0
        self._cached: set[str] = set()
        self._lock = threading.Lock()
        self.url = ""

    def script(self, model: str, *replies: Reply) -> None:
        """Queue replies for `model` ("*": any model), answered in order."""
        with self._lock:
            self.queues.setdefault(model, deque()).extend(replies)

    def by_model(self, model: str) -> list[Recorded]:
        return [r for r in self.requests if r.model == model]

    def bodies(self) -> str:
        return "\n".join(r.text for r in self.requests)

    def _next(self, req: Recorded) -> Reply:
        if self.responder is not None:
            reply = self.responder(req)
            if reply is not None:
                return reply
        with self._lock:
            for key in (req.model, "*"):
                q = self.queues.get(key)
                if q:
                    return q.popleft()
        return answer(delay=self.default_delay)

    def _usage(self, body: dict[str, Any], output_text: str) -> dict[str, int]:
        blocks: list[tuple[str, bool]] = []
        system = body.get("system")
        blocks.extend(_block_texts(system) if system is not None else [])
        for msg in body.get("messages", []):
            blocks.extend(_block_texts(msg.get("content")))
        total = sum(_tokens(t) for t, _ in blocks) + 8
        marked = [i for i, (_, c) in enumerate(blocks) if c]
        write = read = 0
        if marked:
            prefix_blocks = blocks[: marked[-1] + 1]
            prefix = sum(_tokens(t) for t, _ in prefix_blocks)
            if prefix >= self.min_cache_tokens:
                h = hashlib.sha256(str(body.get("model")).encode())
                for t, _ in prefix_blocks:
                    h.update(t.encode())
                    h.update(b"\0")
                key = h.hexdigest()
                with self._lock:
                    hit = key in self._cached
                    self._cached.add(key)
                if hit:
                    read = prefix
                else:
                    write = prefix
        return {
            "input_tokens": total - write - read,
            "output_tokens": _tokens(output_text) + 20,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
        }

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length)
        try:
            data = json.loads(raw)
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
        if handler.path.split("?")[0] != "/v1/messages" or not isinstance(data, dict):
            reply = error(404, "not_found_error", f"no route {handler.path}")
        else:
            reply = self._next(req)
        if reply.delay:
            time.sleep(reply.delay)
        headers = {"request-id": f"req_{uuid.uuid4().hex[:20]}", **reply.headers}
        if isinstance(reply.body, bytes):
            payload = reply.body
            headers.setdefault("content-type", "application/octet-stream")
        else:
            body = dict(reply.body or {})
            if reply.status == 200 and isinstance(data, dict) and "content" in body:
                text = "".join(
                    b.get("text", "") for b in body["content"] if b.get("type") == "text"
                )
                body = {
                    "id": f"msg_{uuid.uuid4().hex[:24]}",
                    "type": "message",
                    "role": "assistant",
                    "model": data.get("model"),
                    "content": body["content"],
                    "stop_reason": body.get("stop_reason", "end_turn"),
                    "stop_sequence": None,
                    "usage": reply.usage or self._usage(data, text),
                }
            payload = json.dumps(body).encode()
            headers.setdefault("content-type", "application/json")
        try:
            handler.send_response(reply.status)
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.send_header("content-length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nothing to answer
        req.finished = time.monotonic()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeAnthropic

    def do_POST(self) -> None:
        self.server.fake.handle(self)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
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
