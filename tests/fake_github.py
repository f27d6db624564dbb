"""A loopback fake of the GitHub REST API, as much of it as `tierbot pr` uses through PyGithub.

It speaks the real JSON shapes (absolute `url` fields, `Link` pagination, GitHub's error bodies),
validates reviews the way GitHub does (a comment off the diff, or a `start_line` not strictly below
`line` in the same hunk, makes the whole review 422), and records every request for assertions.
Serve it under a path prefix (`/api/v3`) to stand in for GitHub Enterprise.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BOT = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}
CONTRIBUTOR_USER = {"login": "contributor", "id": 7, "type": "User"}
OTHER_BOT = {"login": "dependabot[bot]", "id": 49699333, "type": "Bot"}
MEMBER_USER = {"login": "maintainer", "id": 8, "type": "User"}
APP_BOT = {"login": "tierbot-app[bot]", "id": 990001, "type": "Bot"}
SECONDARY_LIMIT = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)
PRIMARY_LIMIT = "API rate limit exceeded for installation ID 4242."
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
DOCS = "https://docs.github.com/rest"


@dataclass
class Request:
    method: str
    path: str  # without the API prefix and query
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class PullFile:
    filename: str
    status: str  # added|removed|modified|renamed
    patch: str | None  # hunks only, from the first '@@' (what the files API returns)
    previous_filename: str | None = None

    def lines(self) -> dict[tuple[str, int], int]:
        """(side, line) -> hunk index, for every line a review comment may sit on."""
        out: dict[tuple[str, int], int] = {}
        if not self.patch:
            return out
        hunk = -1
        old = new = 0
        for raw in self.patch.split("\n"):
            m = HUNK.match(raw)
            if m:
                hunk += 1
                old, new = int(m.group(1)), int(m.group(3))
                continue
            if hunk < 0 or raw.startswith("\\"):
                continue
            tag = raw[:1]
            if tag == "+":
                out[("RIGHT", new)] = hunk
                new += 1
            elif tag == "-":
                out[("LEFT", old)] = hunk
                old += 1
            else:
                out[("RIGHT", new)] = hunk
                out[("LEFT", old)] = hunk
                old += 1
                new += 1
        return out


@dataclass
class Pull:
    number: int
    base_sha: str
    head_sha: str
    base_ref: str = "main"
    head_ref: str = "feature"
    draft: bool = False
    state: str = "open"
    title: str = "A change"
    body: str = ""
    files: list[PullFile] = field(default_factory=list)
    diff: str = ""


class FakeGitHub:
    """`with FakeGitHub() as gh:` ... `gh.url` is the API base URL to give PyGithub."""

    def __init__(self, owner: str = "octo", repo: str = "demo", prefix: str = "/api/v3") -> None:
        self.owner, self.repo, self.prefix = owner, repo, prefix
        self.full_name = f"{owner}/{repo}"
        self.pulls: dict[int, Pull] = {}
        self.contents: dict[tuple[str, str], bytes] = {}  # (ref, path) -> bytes
        self.issue_comments: list[dict[str, Any]] = []
        self.review_comments: list[dict[str, Any]] = []
        self.reviews: list[dict[str, Any]] = []
        self.requests: list[Request] = []
        self.read_only = False  # every write answers 403, like a fork's token
        self.reject_reviews = 0  # answer the next N review posts with 422 regardless
        self.fail_writes = 0  # when set, every write answers this status (e.g. 502)
        # Misbehaviour on cue (see the helpers below): the author of what the token writes,
        # writes that are stored and then answered with an error or late, rate limits.
        self.actor: dict[str, Any] = BOT
        self.token_users: dict[str, dict[str, Any]] = {}  # token -> GET /user answer
        self.store_then_fail = 0  # the next N writes are stored, then answered with...
        self.stored_status = 502  # ...this status
        self.answer_delay = 0.0  # seconds a stored write waits before answering
        self.limits: list[tuple[str, frozenset[str], float]] = []  # (kind, methods, retry_after)
        self.resolved: set[int] = set()  # review comment ids whose thread is resolved
        self._next_id = 1000
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}{self.prefix}"

    # -- helpers for tests -------------------------------------------------------------------
    def new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def writes(self, method: str | None = None, path_part: str = "") -> list[Request]:
        return [
            r
            for r in self.requests
            if r.method in (("POST", "PATCH", "PUT", "DELETE") if method is None else (method,))
            and path_part in r.path
        ]

    def add_comment(
        self,
        number: int,
        body: str,
        user: dict[str, Any] | None = None,
        association: str = "NONE",
    ) -> dict[str, Any]:
        """Plant an issue comment, e.g. one a contributor wrote (user=CONTRIBUTOR_USER)."""
        c = self._issue_comment(self.new_id(), number, body, user or BOT, association)
        self.issue_comments.append(c)
        return c

    def add_review_comment(
        self,
        number: int,
        body: str,
        path: str,
        line: int,
        user: dict[str, Any] | None = None,
        association: str = "NONE",
    ) -> dict[str, Any]:
        """Plant an inline review comment, e.g. one carrying a copied fingerprint marker."""
        cid = self.new_id()
        c = {
            "id": cid,
            "node_id": f"PRRC_{cid}",
            "url": self.api(f"/repos/{self.full_name}/pulls/comments/{cid}"),
            "pull_request_review_id": None,
            "path": path,
            "line": line,
            "side": "RIGHT",
            "body": body,
            "user": user or BOT,
            "author_association": association,
            "created_at": "2026-11-01T00:00:00Z",
            "updated_at": "2026-11-01T00:00:00Z",
            "_number": number,
        }
        self.review_comments.append(c)
        return c

    def rate_limit(
        self,
        kind: str = "secondary",
        *,
        count: int = 1,
        methods: tuple[str, ...] = ("GET", "POST", "PATCH"),
        retry_after: float = 3600,
    ) -> None:
        """Answer the next `count` requests of `methods` with a rate limit, as GitHub does:
        `secondary` (403 + Retry-After), `secondary429` (429 + Retry-After) or `primary`
        (403, remaining 0, reset `retry_after` seconds from now)."""
        self.limits += [(kind, frozenset(methods), retry_after)] * count

    def graphql_path(self) -> str:
        """Where PyGithub sends GraphQL for this base URL (/api/v3 -> /api/graphql)."""
        return "/api/graphql" if self.prefix.endswith("/v3") else "/graphql"

    # -- JSON shapes -------------------------------------------------------------------------
    def api(self, path: str) -> str:
        return f"{self.url}{path}"

    def repo_json(self) -> dict[str, Any]:
        return {
            "id": 4242,
            "node_id": "R_4242",
            "name": self.repo,
            "full_name": self.full_name,
            "private": False,
            "owner": {"login": self.owner, "id": 1, "type": "Organization"},
            "html_url": f"https://github.example/{self.full_name}",
            "url": self.api(f"/repos/{self.full_name}"),
            "default_branch": "main",
        }

    def pull_json(self, pr: Pull) -> dict[str, Any]:
        base = f"/repos/{self.full_name}/pulls/{pr.number}"
        return {
            "id": 90000 + pr.number,
            "number": pr.number,
            "state": pr.state,
            "draft": pr.draft,
            "title": pr.title,
            "body": pr.body,
            "user": {"login": "contributor", "id": 7, "type": "User"},
            "url": self.api(base),
            "html_url": f"https://github.example/{self.full_name}/pull/{pr.number}",
            "issue_url": self.api(f"/repos/{self.full_name}/issues/{pr.number}"),
            "comments_url": self.api(f"/repos/{self.full_name}/issues/{pr.number}/comments"),
            "review_comments_url": self.api(f"{base}/comments"),
            "head": {
                "label": f"{self.owner}:{pr.head_ref}",
                "ref": pr.head_ref,
                "sha": pr.head_sha,
                "repo": self.repo_json(),
            },
            "base": {
                "label": f"{self.owner}:{pr.base_ref}",
                "ref": pr.base_ref,
                "sha": pr.base_sha,
                "repo": self.repo_json(),
            },
        }

    def _issue_comment(
        self, cid: int, number: int, body: str, user: dict[str, Any], association: str = "NONE"
    ) -> dict[str, Any]:
        return {
            "id": cid,
            "node_id": f"IC_{cid}",
            "url": self.api(f"/repos/{self.full_name}/issues/comments/{cid}"),
            "html_url": f"https://github.example/{self.full_name}/pull/{number}#c{cid}",
            "issue_url": self.api(f"/repos/{self.full_name}/issues/{number}"),
            "body": body,
            "user": user,
            "author_association": association,
            "created_at": "2026-11-01T00:00:00Z",
            "updated_at": "2026-11-01T00:00:00Z",
            "_number": number,
        }

    # -- review validation like GitHub's -----------------------------------------------------
    def review_errors(self, pr: Pull, comments: list[dict[str, Any]]) -> list[str]:
        files = {f.filename: f for f in pr.files}
        errors: list[str] = []
        for c in comments:
            f = files.get(str(c.get("path")))
            if f is None:
                errors.append(f"Path {c.get('path')!r} is not part of the pull request")
                continue
            lines = f.lines()
            side = c.get("side", "RIGHT")
            line = c.get("line")
            if not isinstance(line, int) or (side, line) not in lines:
                errors.append("Line could not be resolved")
                continue
            start = c.get("start_line")
            if start is not None:
                start_side = c.get("start_side", side)
                if not isinstance(start, int) or start >= line:
                    errors.append("start_line must precede line")
                elif lines.get((start_side, start)) != lines[(side, line)]:
                    errors.append(
                        "Pull request review thread start line must be part of the same hunk"
                        " as the line."
                    )
        return errors


def _handler(gh: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PATCH(self) -> None:
            self._dispatch("PATCH")

        # -- plumbing ------------------------------------------------------------------------
        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            if isinstance(payload, (bytes, str)):
                data = payload.encode() if isinstance(payload, str) else payload
                ctype = "text/plain; charset=utf-8"
            else:
                data = json.dumps(payload).encode()
                ctype = "application/json; charset=utf-8"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, errors: list[str] | None = None) -> None:
            body: dict[str, Any] = {"message": message, "documentation_url": DOCS}
            if errors is not None:
                body["errors"] = errors
            body["status"] = str(status)
            self._send(status, body)

        def _page(self, items: list[dict[str, Any]], query: dict[str, str]) -> None:
            per_page = int(query.get("per_page", "30"))
            page = int(query.get("page", "1"))
            chunk = items[(page - 1) * per_page : page * per_page]
            headers = {}
            if page * per_page < len(items):
                q = dict(query, page=str(page + 1), per_page=str(per_page))
                nxt = f"{gh.url}{self._path}?{urllib.parse.urlencode(q)}"
                headers["Link"] = f'<{nxt}>; rel="next"'
            self._send(200, [_public(i) for i in chunk], headers)

        def _dispatch(self, method: str) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            path = parsed.path
            graphql = path == gh.graphql_path()
            if not path.startswith(gh.prefix) and not graphql:
                self._error(404, "Not Found")
                return
            path = "/graphql" if graphql else path[len(gh.prefix) :] or "/"
            self._path = path
            query = dict(urllib.parse.parse_qsl(parsed.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            gh.requests.append(Request(method, path, query, headers, body))
            auth = headers.get("authorization", "")
            if not auth.startswith(("token ", "Bearer ")):
                self._error(401, "Requires authentication")
                return
            limit = next((x for x in gh.limits if method in x[1]), None)
            if limit is not None:
                gh.limits.remove(limit)
                self._rate_limited(*limit)
                return
            if path == "/user" and method == "GET":
                user = gh.token_users.get(auth.split(" ", 1)[1])
                if user is None:  # an installation token (the workflow's GITHUB_TOKEN)
                    self._error(403, "Resource not accessible by integration")
                else:
                    self._send(200, user)
                return
            if graphql and method == "POST":
                self._graphql(body)
                return
            if method != "GET" and gh.read_only:
                self._error(403, "Resource not accessible by integration")
                return
            if method != "GET" and gh.fail_writes:
                self._error(gh.fail_writes, "Server Error")
                return
            try:
                self._route(method, path, query, headers, body)
            except Exception as e:  # a bug in the fake must show up in the test, not hang it
                self._error(500, f"fake GitHub crashed: {e!r}")
                raise

        def _stored(self, status: int, payload: Any) -> None:
            """Answer a write that has been stored: normally, or late, or with an error."""
            if gh.answer_delay:
                time.sleep(gh.answer_delay)
            if gh.store_then_fail > 0:
                gh.store_then_fail -= 1
                self._send(gh.stored_status, "<html><body>Bad Gateway</body></html>")
                return
            self._send(status, payload)

        def _rate_limited(self, kind: str, methods: frozenset[str], retry_after: float) -> None:
            reset = int(time.time() + retry_after)
            common = {
                "x-ratelimit-limit": "5000",
                "x-ratelimit-resource": "core",
                "x-ratelimit-reset": str(reset),
            }
            body = {"documentation_url": DOCS, "status": "403"}
            if kind == "primary":
                headers = {**common, "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000"}
                self._send(403, {"message": PRIMARY_LIMIT, **body}, headers)
                return
            headers = {**common, "x-ratelimit-remaining": "4000", "retry-after": f"{retry_after:g}"}
            status = 429 if kind == "secondary429" else 403
            self._send(status, {"message": SECONDARY_LIMIT, **body, "status": str(status)}, headers)

        def _graphql(self, body: Any) -> None:
            """reviewThreads of a pull request: one thread per top-level review comment."""
            number = int((body or {}).get("variables", {}).get("number", 0))
            nodes = []
            for c in gh.review_comments:
                if c["_number"] != number:
                    continue
                login = str(c["user"]["login"])
                nodes.append(
                    {
                        "isResolved": c["id"] in gh.resolved,
                        "comments": {
                            "nodes": [
                                {
                                    "body": c["body"],
                                    # GraphQL names apps without the "[bot]" REST adds
                                    "author": {"login": login.removesuffix("[bot]")},
                                }
                            ]
                        },
                    }
                )
            threads = {
                "pageInfo": {"hasNextPage": False, "endCursor": None},
                "nodes": nodes,
            }
            self._send(
                200,
                {"data": {"repository": {"pullRequest": {"reviewThreads": threads}}}},
            )

        def _route(
            self,
            method: str,
            path: str,
            query: dict[str, str],
            headers: dict[str, str],
            body: Any,
        ) -> None:
            repo_prefix = f"/repos/{gh.full_name}"
            if not path.startswith(repo_prefix):
                self._error(404, "Not Found")
                return
            rest = path[len(repo_prefix) :]
            if rest == "" and method == "GET":
                self._send(200, gh.repo_json())
                return
            m = re.fullmatch(r"/contents/(.+)", rest)
            if m and method == "GET":
                name = urllib.parse.unquote(m.group(1))
                ref = query.get("ref", "main")
                data = gh.contents.get((ref, name))
                if data is None:
                    self._error(404, "Not Found")
                    return
                self._send(
                    200,
                    {
                        "type": "file",
                        "encoding": "base64",
                        "size": len(data),
                        "name": name.rsplit("/", 1)[-1],
                        "path": name,
                        "sha": "0" * 40,
                        "content": base64.b64encode(data).decode(),
                        "url": gh.api(f"{repo_prefix}/contents/{name}?ref={ref}"),
                    },
                )
                return
            m = re.fullmatch(r"/commits/([0-9a-f]{40})", rest)
            if m and method == "GET":
                known = {p.head_sha for p in gh.pulls.values()} | {
                    p.base_sha for p in gh.pulls.values()
                }
                if m.group(1) not in known:
                    self._error(422, f"No commit found for SHA: {m.group(1)}")
                    return
                self._send(
                    200,
                    {
                        "sha": m.group(1),
                        "node_id": f"C_{m.group(1)[:8]}",
                        "url": gh.api(f"{repo_prefix}/commits/{m.group(1)}"),
                        "html_url": f"https://github.example/{gh.full_name}/commit/{m.group(1)}",
                        "commit": {"message": "change", "tree": {"sha": "2" * 40}},
                        "parents": [],
                    },
                )
                return
            m = re.fullmatch(r"/pulls/(\d+)(/.*)?", rest)
            if m:
                pr = gh.pulls.get(int(m.group(1)))
                if pr is None:
                    self._error(404, "Not Found")
                    return
                self._pull(method, pr, m.group(2) or "", query, headers, body)
                return
            m = re.fullmatch(r"/issues/(\d+)/comments", rest)
            if m:
                number = int(m.group(1))
                if method == "GET":
                    mine = [c for c in gh.issue_comments if c["_number"] == number]
                    self._page(mine, query)
                    return
                if method == "POST":
                    if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                        self._error(422, "Validation Failed", ["body is missing"])
                        return
                    if len(body["body"]) > 65536:
                        self._error(422, "Validation Failed", ["body is too long"])
                        return
                    c = gh._issue_comment(gh.new_id(), number, body["body"], gh.actor)
                    gh.issue_comments.append(c)
                    self._stored(201, _public(c))
                    return
            m = re.fullmatch(r"/issues/comments/(\d+)", rest)
            if m:
                found = [c for c in gh.issue_comments if c["id"] == int(m.group(1))]
                if not found:
                    self._error(404, "Not Found")
                    return
                c = found[0]
                if method == "GET":
                    self._send(200, _public(c))
                    return
                if method == "PATCH":
                    if len(body.get("body", "")) > 65536:
                        self._error(422, "Validation Failed", ["body is too long"])
                        return
                    c["body"] = body["body"]
                    c["updated_at"] = "2026-11-02T00:00:00Z"
                    self._stored(200, _public(c))
                    return
            self._error(404, "Not Found")

        def _pull(
            self,
            method: str,
            pr: Pull,
            sub: str,
            query: dict[str, str],
            headers: dict[str, str],
            body: Any,
        ) -> None:
            base = f"/repos/{gh.full_name}/pulls/{pr.number}"
            if sub == "" and method == "GET":
                if "diff" in headers.get("accept", ""):
                    self._send(200, pr.diff)
                else:
                    self._send(200, gh.pull_json(pr))
                return
            if sub == "/files" and method == "GET":
                files = [
                    {
                        "sha": "1" * 40,
                        "filename": f.filename,
                        "status": f.status,
                        "additions": sum(
                            1 for x in (f.patch or "").split("\n") if x.startswith("+")
                        ),
                        "deletions": sum(
                            1 for x in (f.patch or "").split("\n") if x.startswith("-")
                        ),
                        "changes": 0,
                        **({"patch": f.patch} if f.patch is not None else {}),
                        **(
                            {"previous_filename": f.previous_filename}
                            if f.previous_filename
                            else {}
                        ),
                    }
                    for f in pr.files
                ]
                self._page(files, query)
                return
            if sub == "/comments" and method == "GET":
                mine = [c for c in gh.review_comments if c["_number"] == pr.number]
                self._page(mine, query)
                return
            if sub == "/reviews" and method == "GET":
                mine = [r for r in gh.reviews if r["_number"] == pr.number]
                self._page(mine, query)
                return
            if sub == "/reviews" and method == "POST":
                if not isinstance(body, dict):
                    self._error(400, "Problems parsing JSON")
                    return
                event = body.get("event", "PENDING")
                if event not in ("COMMENT", "APPROVE", "REQUEST_CHANGES", "PENDING"):
                    self._error(422, "Validation Failed", [f"event {event!r} is not valid"])
                    return
                comments = body.get("comments") or []
                if gh.reject_reviews > 0:
                    gh.reject_reviews -= 1
                    self._error(422, "Unprocessable Entity", ["Line could not be resolved"])
                    return
                errors = gh.review_errors(pr, comments)
                if errors:
                    self._error(422, "Unprocessable Entity", errors)
                    return
                if event == "COMMENT" and not body.get("body") and not comments:
                    self._error(422, "Unprocessable Entity", ["Review body is required"])
                    return
                rid = gh.new_id()
                commit_id = body.get("commit_id", pr.head_sha)
                review = {
                    "id": rid,
                    "node_id": f"PRR_{rid}",
                    "user": gh.actor,
                    "body": body.get("body", ""),
                    "state": {"COMMENT": "COMMENTED", "APPROVE": "APPROVED"}.get(
                        event, "CHANGES_REQUESTED" if event == "REQUEST_CHANGES" else "PENDING"
                    ),
                    "commit_id": commit_id,
                    "html_url": f"https://github.example/{gh.full_name}/pull/{pr.number}",
                    "pull_request_url": gh.api(base),
                    "submitted_at": "2026-11-01T00:00:00Z",
                    "_number": pr.number,
                    "_comments": comments,
                }
                gh.reviews.append(review)
                for c in comments:
                    cid = gh.new_id()
                    gh.review_comments.append(
                        {
                            "id": cid,
                            "node_id": f"PRRC_{cid}",
                            "url": gh.api(f"/repos/{gh.full_name}/pulls/comments/{cid}"),
                            "pull_request_review_id": rid,
                            "path": c["path"],
                            "line": c["line"],
                            "side": c.get("side", "RIGHT"),
                            "start_line": c.get("start_line"),
                            "start_side": c.get("start_side"),
                            "commit_id": commit_id,
                            "original_commit_id": commit_id,
                            "body": c["body"],
                            "user": gh.actor,
                            "author_association": "NONE",
                            "created_at": "2026-11-01T00:00:00Z",
                            "updated_at": "2026-11-01T00:00:00Z",
                            "pull_request_url": gh.api(base),
                            "_number": pr.number,
                        }
                    )
                self._stored(200, _public(review))
                return
            self._error(404, "Not Found")

    return Handler


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if not k.startswith("_")}
