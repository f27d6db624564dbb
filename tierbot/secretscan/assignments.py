"""Secrets found by what surrounds them: a secret-announcing name assigned a value (code, YAML,
TOML, `.env`, shell), credential headers, connection strings and passwords in URLs.

These are heuristics, so every value is judged (`values.looks_random`, `looks_like_password`) and
placeholders, templates and lookups are left alone.  Linear: every regex starts at a cheap first
character (an operator, a header or keyword letter, `://`) rather than a look-behind, its
quantifiers are bounded, and value character classes exclude what starts the next attempt, so
attempts do not rescan each other's text; the name before an assignment is read backwards over a
bounded window.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

from tierbot.secretscan import values
from tierbot.secretscan.kinds import SecretMatch

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
MAX_NAME = 80
# Names that hold something about a secret, not the secret: a URL, a file, a regex, a length ...
_NOT_A_SECRET_SUFFIXES = tuple(
    word + plural
    for word in (
        "url",
        "uri",
        "endpoint",
        "path",
        "file",
        "filename",
        "dir",
        "name",
        "type",
        "prefix",
        "suffix",
        "header",
        "field",
        "label",
        "regex",
        "pattern",
        "format",
        "key_id",
        "length",
        "len",
        "count",
        "env",
        "var",
        "policy",
        "rule",
        "hint",
        "placeholder",
        "param",
        "id",
        "ttl",
        "expiry",
        "expires",
        "expiration",
        "timeout",
        "mode",
        "method",
        "scope",
        "kind",
        "message",
        "prompt",
        "error",
        "text",
        "help",
    )
    for plural in ("", "s")
)
# Word-final components: `DB_PASS`, `dbPass`, `api_key`, `SIGNING_KEY`, `apiKey`.
_COMPONENT_END = re.compile(
    r"(?:(?:^|[_.-])(?:[Pp]ass|PASS|[Kk]ey|KEY)|(?<=[a-z0-9])(?:Pass|PASS|Key|KEY))$"
)
# Assignments are found from the operator on: (= | := | => | :) and a quoted value, or `=` / `: `
# and an unquoted value that runs to the end of the line.  Starting at an operator (a cheap first
# character) keeps the scan linear; the name before it is read backwards in code (`_name_before`).
_QUOTED_VALUE = re.compile(
    r"(?:=>?|:=?)[ \t]{0,10}[rbufRBUF]{0,2}(?P<q>[\"'`])(?P<value>[^\"'`\n\\]{8,256})(?P=q)"
)
# The value holds no `=` but trailing padding: scans that start at consecutive operators never
# overlap, so a line of `a=a=a=...` costs one pass.
_BARE_VALUE = re.compile(r"(?:=|:[ \t]{1,10})(?P<value>[^\s\"'`#=]{8,256}={0,2})[ \t]*(?=\r?\n|\Z)")
# Read on the REVERSED text before an operator: blanks, an optional closing quote and the name;
# or blanks, a type annotation (`api_key: str =`) and the name.
_NAME_BEFORE = (
    re.compile(r"[ \t]{0,10}[\"']?(?P<name>[A-Za-z0-9_.-]{1,80})"),
    re.compile(
        r"[ \t]{0,10}[\w\[\], .|]{0,40}?[A-Za-z_][ \t]{0,10}:[ \t]{0,10}"
        r"(?P<name>[A-Za-z0-9_.-]{1,80})"
    ),
)
# What may stand before a bare NAME=value on its line: a diff prefix, indentation, `export`,
# Dockerfile `ENV`, a YAML list dash, `set`.
_BARE_PREFIX = re.compile(r"[+ -]?[ \t]{0,40}(?:export[ \t]{1,5}|ENV[ \t]{1,5}|- |set )?")
_SECRET_WORDS = ("secret", "token", "pass", "pwd", "credential", "key")
_AUTHORIZATION = re.compile(
    r"(?i)authorization[\"']?[ \t]{0,5}[:=,][ \t]{0,5}[\"']?"
    r"[ \t]{0,5}(?P<scheme>bearer|basic|token|bot|digest|apikey|sso-key)[ \t]{1,5}"
    r"(?P<value>[A-Za-z0-9._~+/:=-]{8,4000})"
)
_BEARER = re.compile(r"[Bb]earer[ \t]{1,5}(?P<value>[A-Za-z0-9._~+/-]{16,4000}=*)")
_KEY_HEADER = re.compile(
    r"(?i)(?:x-[a-z0-9-]{0,30}?(?:api-?key|token|secret)|api-key"
    r"|private-token|ocp-apim-subscription-key)[\"']?\]?[ \t]{0,5}[:=,][ \t]{0,5}[\"']?"
    r"(?P<value>[A-Za-z0-9._~+/=-]{8,512})"
)
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
# `Password=...;` in ADO.NET/ODBC/JDBC strings and `password=...&` in query strings.
_CONNECTION = re.compile(
    r"(?i)(?:password|passwd|pwd)[ \t]{0,3}="
    r"[ \t]{0,3}(?P<value>[^;&\s\"'<>{}()\[\]=]{3,128}={0,2})(?P<after>[;&]?)"
)
# From `://` on; the scheme before it is checked in code.
_URL_PASSWORD = re.compile(
    r"://[^\s/:@\"'`]{1,64}:(?P<value>[^\s/:@\"'`]{3,128})@(?P<host>[A-Za-z0-9.-]{1,253})"
)
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{1,20}$")
# Sample credentials everyone knows (Oracle's scott/tiger, database images' defaults), alone or
# with a suffix: in a URL or a connection string they configure a throwaway test database.
SAMPLE_PASSWORDS = (
    "tiger",
    "password",
    "secret",
    "admin",
    "guest",
    "postgres",
    "root",
    "qwerty",
    "changeme",
)
# Domains reserved for documentation (RFC 2606, RFC 6761).
_EXAMPLE_HOST = re.compile(r"(?i)(?:^|\.)(?:example(?:\.(?:com|org|net))?|test|invalid)$")
_AWS_SECRET = re.compile(
    r"(?i)secret_?access_?key[\"']?[ \t]{0,5}(?:=|:=|=>|:|,)[ \t]{0,5}[\"']?"
    r"(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
)
_KUBE_KEY = re.compile(
    r"client-key-data[\"']?[ \t]{0,5}:[ \t]{0,5}[\"']?(?P<value>[A-Za-z0-9+/=]{20,})"
)
_DOCKER_AUTH = re.compile(
    r"\"(?:auth|identitytoken)\"[ \t]{0,5}:[ \t]{0,5}\"(?P<value>[A-Za-z0-9+/=_.-]{12,2048})\""
)


def find(text: str) -> Iterator[SecretMatch]:
    lowered = text.lower()
    yield from _named(text)
    if "authorization" in lowered or "earer" in text:
        yield from _headers(text)
    if (
        "x-" in lowered
        or "api-key" in lowered
        or "-token" in lowered
        or "subscription-key" in lowered
    ):
        for m in _KEY_HEADER.finditer(text):
            value = m.group("value")
            if not _after_word(text, m) and values.looks_random(value):
                yield SecretMatch(
                    "auth_header", m.start("value"), m.end("value"), values.is_weak(value)
                )
    if "=" in text and ("pass" in lowered or "pwd" in lowered):
        yield from _connections(text)
    if "://" in text and "@" in text:
        yield from _url_passwords(text)
    if "secret" in lowered and "access" in lowered:
        for m in _AWS_SECRET.finditer(text):
            value = m.group("value")
            yield SecretMatch(
                "aws_secret_access_key", m.start("value"), m.end("value"), values.is_weak(value)
            )
    if "client-key-data" in text:
        for m in _KUBE_KEY.finditer(text):
            yield SecretMatch("kubeconfig_key", m.start("value"), m.end("value"), False)
    if '"auth"' in text or '"identitytoken"' in text:
        for m in _DOCKER_AUTH.finditer(text):
            decoded = decode_base64(m.group("value"))
            if decoded is not None and ":" in decoded.strip(":"):
                yield SecretMatch(
                    "docker_auth", m.start("value"), m.end("value"), values.is_weak(decoded)
                )


_LAYOUT = str.maketrans("\r\n\t", "   ")


def decode_base64(value: str) -> str | None:
    """`value` decoded as (url-safe) base64 when that gives printable text, else None."""
    raw = value.rstrip("=")
    if len(raw) < 8:
        return None
    padded = raw + "=" * (-len(raw) % 4)
    try:
        data = (
            base64.urlsafe_b64decode(padded)
            if "-" in raw or "_" in raw
            else base64.b64decode(padded, validate=True)
        )
        text = data.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    # Text, not bytes: every character printable once line breaks and tabs are set aside.
    return text if text and text.translate(_LAYOUT).isprintable() else None


# ------------------------------------------------------------------------------- named values


def _strength(name: str) -> str | None:
    """ "password" for names of passwords and secrets (any literal counts), "key" for names of
    keys and tokens (the value must look random), None for names that are not about a secret."""
    lowered = name.lower().strip("._-")
    if lowered.endswith(_NOT_A_SECRET_SUFFIXES):
        return None
    if any(w in lowered for w in ("passw", "passph", "pwd")) or (
        lowered.endswith("pass") and _COMPONENT_END.search(name)
    ):
        return "password"
    if "secret" in lowered:
        return "password" if not lowered.endswith(("key", "token")) else "key"
    if "token" in lowered or "credential" in lowered:
        return "key" if not lowered.endswith(("tokens", "tokenizer")) else None
    if _COMPONENT_END.search(name) or lowered.endswith(("apikey", "api_key", "accesskey")):
        return "key"
    return None


def _secret_value(strength: str | None, value: str, *, bare: bool) -> bool:
    if strength is None:
        return False
    return values.looks_random(value, bare=bare) or (
        strength == "password" and values.looks_like_password(value)
    )


def _name_before(text: str, op: int) -> tuple[int, str] | None:
    """(start, name) of the secret-named identifier assigned at `op`, or None."""
    window = text[max(0, op - 140) : op][::-1]
    for pattern in _NAME_BEFORE:
        m = pattern.match(window)
        if m is None or (m.end() < len(window) and window[m.end()] in _NAME_CHARS):
            continue  # no name, or one longer than any real name
        name = m.group("name")[::-1]
        lowered = name.lower()
        if any(w in lowered for w in _SECRET_WORDS):
            return op - m.end(), name
    return None


def _named(text: str) -> Iterator[SecretMatch]:
    for pattern, bare in ((_QUOTED_VALUE, False), (_BARE_VALUE, True)):
        for m in pattern.finditer(text):
            op = m.start()
            if op and text[op - 1] in "=!<>":
                continue  # a comparison (`==`, `!=`, `<=`), not an assignment
            found = _name_before(text, op)
            if found is None:
                continue
            start, name = found
            if bare:
                line_start = text.rfind("\n", max(0, start - 60), start) + 1
                if (not line_start and start > 60) or not _BARE_PREFIX.fullmatch(
                    text, line_start, start
                ):
                    continue
            value = m.group("value")
            if _secret_value(_strength(name), value, bare=bare):
                yield SecretMatch(
                    "generic_secret", m.start("value"), m.end("value"), values.is_weak(value)
                )


# ------------------------------------------------------------------- headers, URLs, connections


def _after_word(text: str, m: re.Match[str]) -> bool:
    """Whether a match starts inside a longer word (what a leading look-behind would check;
    done here because a look-behind first makes the regex engine try every position)."""
    return m.start() > 0 and text[m.start() - 1] in _WORD_CHARS


def _headers(text: str) -> Iterator[SecretMatch]:
    seen: set[int] = set()
    for m in _AUTHORIZATION.finditer(text):
        if _after_word(text, m):
            continue
        value, scheme = m.group("value"), m.group("scheme").lower()
        seen.add(m.start("value"))
        if scheme == "basic":
            decoded = decode_base64(value)
            ok = (decoded is not None and ":" in decoded) or values.looks_random(value)
        else:
            ok = values.looks_random(value)
        if ok and not values.is_template(value):
            yield SecretMatch(
                "auth_header", m.start("value"), m.end("value"), values.is_weak(value)
            )
    for m in _BEARER.finditer(text):
        if _after_word(text, m) or m.start("value") in seen:
            continue
        if values.looks_random(m.group("value")):
            yield SecretMatch(
                "auth_header", m.start("value"), m.end("value"), values.is_weak(m.group("value"))
            )


def _connections(text: str) -> Iterator[SecretMatch]:
    for m in _CONNECTION.finditer(text):
        value = m.group("value")
        before = text[m.start() - 1] if m.start() else ""
        # Keyword arguments (`password=pw`) are code; only a value closed by `;`/`&` or after a
        # separator is part of a connection or query string.
        if before in _NAME_CHARS or not (before in (";", "?", "&") or m.group("after")):
            continue
        if (
            values.is_template(value)
            or value.startswith(("$", "%", "{"))
            or not any(c.isalnum() for c in value)
        ):
            continue
        lowered = value.lower()
        weak = values.is_weak(value) or lowered.startswith(SAMPLE_PASSWORDS)
        yield SecretMatch("connection_password", m.start("value"), m.end("value"), weak)


def _url_passwords(text: str) -> Iterator[SecretMatch]:
    for m in _URL_PASSWORD.finditer(text):
        if not _SCHEME.search(text, max(0, m.start() - 21), m.start()):
            continue
        value = m.group("value")
        if values.is_template(value) or value.startswith(("$", "{", "%(")):
            continue
        lowered = value.lower()
        weak = (
            values.is_weak(value)
            or _EXAMPLE_HOST.search(m.group("host").rstrip(".")) is not None
            # `socks5://user:pass@host:port` in docs: a short plain word is a placeholder.
            or (value.isalpha() and len(value) <= 8)
            or len(value) < 6
            or lowered.startswith(SAMPLE_PASSWORDS)
        )
        yield SecretMatch("url_password", m.start("value"), m.end("value"), weak)
