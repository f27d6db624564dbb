"""The one set of secret detectors, used by `rules.py` (findings) and the prompt builder (redact).

Precision matters on both sides: a missed secret may leave the machine, and a noisy detector makes
people ignore `critical` findings.  So well-known token formats are matched exactly, and the
generic "secret-looking name = random-looking string" heuristic demands a real assignment, length,
entropy and a mix of letters and digits, and skips obvious placeholders and environment lookups.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import posixpath
import re
from collections.abc import Sequence
from typing import NamedTuple

from tierbot.paths import matches


class SecretMatch(NamedTuple):
    kind: str  # e.g. "aws_access_key_id"; see KIND_LABELS
    start: int  # span of the secret within the text (the value, not its name)
    end: int


# Human wording for each kind, for finding titles and messages (never the value itself).
KIND_LABELS: dict[str, str] = {
    "aws_access_key_id": "AWS access key id",
    "aws_secret_access_key": "AWS secret access key",
    "github_token": "GitHub token",
    "anthropic_api_key": "Anthropic API key",
    "openai_api_key": "OpenAI-style API key",
    "slack_token": "Slack token",
    "slack_webhook": "Slack webhook URL",
    "stripe_key": "Stripe live key",
    "google_api_key": "Google API key",
    "npm_token": "npm token",
    "private_key": "private key",
    "jwt": "JSON Web Token",
    "url_password": "password in a URL",
    "generic_secret": "hard-coded secret",
    "custom": "secret (custom pattern)",
}

# Kinds found by a heuristic rather than an exact token format (used for finding confidence).
HEURISTIC_KINDS = frozenset({"generic_secret", "url_password"})

# (kind, substrings one of which must occur, pattern): the substring test skips most text cheaply.
_TOKEN_PATTERNS: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    (
        "aws_access_key_id",
        ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "AIPA"),
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])"),
    ),
    (
        "github_token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(
            r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}"
            r"|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])"
        ),
    ),
    ("anthropic_api_key", ("sk-ant-",), re.compile(r"(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{20,}")),
    (
        "openai_api_key",
        ("sk-",),
        re.compile(r"(?<![A-Za-z0-9_-])sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    ),
    ("slack_token", ("xox",), re.compile(r"(?<![A-Za-z0-9])xox[abprse]-[A-Za-z0-9-]{10,}")),
    (
        "slack_webhook",
        ("hooks.slack.com",),
        re.compile(
            r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+"
        ),
    ),
    ("stripe_key", ("k_live_",), re.compile(r"(?<![A-Za-z0-9_])[rs]k_live_[A-Za-z0-9]{16,}")),
    (
        "google_api_key",
        ("AIza",),
        re.compile(r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])"),
    ),
    ("npm_token", ("npm_",), re.compile(r"(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])")),
    (
        "jwt",
        ("eyJ",),
        re.compile(
            r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}"
            r"\.[A-Za-z0-9_-]{10,}"
        ),
    ),
)

_AWS_SECRET = re.compile(
    r"(?i)aws_?secret(?:_?access)?_?key[\"']?\s*(?:=|:=|=>|:)\s*[\"']?"
    r"(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
)
_URL_PASSWORD = re.compile(
    r"\b[a-z][a-z0-9+.-]{1,20}://[^\s/:@\"'`]{1,64}:(?P<value>[^\s/:@\"'`]{3,128})"
    r"@(?P<host>[A-Za-z0-9.-]+)"
)
# Domains reserved for documentation (RFC 2606): credentials there are examples.
_EXAMPLE_HOST = re.compile(r"(?i)(?:^|\.)(?:example(?:\.(?:com|org|net))?|test|invalid)$")
_PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----")
_PRIVATE_KEY_END = re.compile(r"-----END[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----")
# A line inside a key block: base64, an RFC 1421 header ("Proc-Type: ..."), or blank; optionally
# behind a diff marker or the prompt's numbered-diff prefix, indentation or string quoting.
_KEY_BODY_LINE = re.compile(
    r"(?:[ \d]{6} [+ -] |[+ ])?[\s\"'`]*(?:[A-Za-z0-9+/=]+|[A-Za-z-]+: ?[^\n]*)?[\s\"',`\\n]*"
)

# Names that announce a secret; the heuristic only looks at values assigned to these.
_SECRET_NAME = (
    r"[A-Za-z0-9_.-]*(?:secret|token|passw(?:or)?d|passwd|pwd|api[_-]?key|apikey|access[_-]?key"
    r"|private[_-]?key|auth[_-]?key|credential|signing[_-]?key|encryption[_-]?key)[A-Za-z0-9_.-]*"
)
_SECRET_NAME_RE = re.compile(_SECRET_NAME, re.IGNORECASE)
_NAME_CHARSET = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
# After a secret-announcing name: [closing quote] [: type] (= | := | : | =>) "value".  Matched
# only at the end of such a name (found with str.find), never scanned across the whole text.
_ASSIGN_QUOTED = re.compile(
    r"[\"']?(?:\s*:\s*[A-Za-z_][\w\[\], .|]{0,40}?)?"
    r"\s*(?:(?<![=!<>])=(?!=)|:=|=>|:)\s*"
    r"(?:[rbufRBUF]{0,2})(?P<q>[\"'`])(?P<value>[^\"'`\s\\]{16,256})(?P=q)"
)
# NAME=value (shell, .env, Dockerfile ENV) and `name: value` (YAML): an unquoted value that is the
# rest of the line, after a name that starts the line (behind a diff prefix when redacting a patch).
_BARE_PREFIX = re.compile(r"[+ -]?[ \t]*(?:export[ \t]+|ENV[ \t]+|-[ \t]+)?")
_BARE_VALUE = re.compile(r"(?:=|:[ \t]+)(?P<value>[A-Za-z0-9+/=_.~-]{16,256})[ \t]*(?=\r?\n|\Z)")
_PLACEHOLDER_WORDS = (
    "example",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "your_",
    "your-",
    "yourkey",
    "dummy",
    "redacted",
    "replace",
    "xxxx",
    "****",
    "....",
    "sample",
    "fake",
    "mock",
    "notreal",
    "not_a_real",
    "insert",
    "todo",
    "fixme",
    "<",
    ">",
    "${",
    "{{",
    "%(",
    "%s",
    "$(",
    "process.env",
    "os.environ",
    "getenv",
)
_SEPARATORS = re.compile(r"[/_.:,;@-]+")
_DOTTED_IDENT = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$")
_CONST_IDENT = re.compile(r"^[A-Z][A-Z0-9_]*$")
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
    )
    for plural in ("", "s")
)


def shannon_entropy(value: str) -> float:
    """Bits per character; random base64 is near 6, English words nearer 3."""
    if not value:
        return 0.0
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _looks_random(value: str, *, bare: bool) -> bool:
    lowered = value.lower()
    if any(word in lowered for word in _PLACEHOLDER_WORDS):
        return False
    if value.startswith("$") or _DOTTED_IDENT.match(value) or _CONST_IDENT.match(value):
        return False
    if len(set(value)) < 6:
        return False
    digits = sum(ch.isdigit() for ch in value)
    letters = sum(ch.isalpha() for ch in value)
    # Real keys and passwords mix letters and digits; identifiers and prose mostly do not.
    if digits < (2 if bare else 1) or letters < 4:
        return False
    # Paths and names ("emails/password_reset_v2.html") are words between separators; a key
    # has at least one long stretch that mixes letters and digits.
    if not any(
        len(part) >= 8 and any(c.isdigit() for c in part) and any(c.isalpha() for c in part)
        for part in _SEPARATORS.split(value)
    ):
        return False
    return shannon_entropy(value) >= (3.5 if bare else 3.0)


def _secret_names(text: str, lowered: str) -> list[tuple[int, int]]:
    """Spans of identifiers that contain a secret word ("DB_PASSWORD", "apiKey", ...)."""
    spans: set[tuple[int, int]] = set()
    for word in ("secret", "token", "passw", "pwd", "credential", "key"):
        pos = lowered.find(word)
        while pos != -1:
            start, end = pos, pos + len(word)
            while start > 0 and text[start - 1] in _NAME_CHARSET:
                start -= 1
            while end < len(text) and text[end] in _NAME_CHARSET:
                end += 1
            spans.add((start, end))
            pos = lowered.find(word, end)
    return sorted(spans)


def _generic(text: str, lowered: str) -> list[SecretMatch]:
    out: list[SecretMatch] = []
    for start, end in _secret_names(text, lowered):
        name = text[start:end]
        if not _SECRET_NAME_RE.fullmatch(name) or name.lower().endswith(_NOT_A_SECRET_SUFFIXES):
            continue
        m = _ASSIGN_QUOTED.match(text, end)
        if m is not None:
            if _looks_random(m.group("value"), bare=False):
                out.append(SecretMatch("generic_secret", m.start("value"), m.end("value")))
            continue
        m = _BARE_VALUE.match(text, end)
        if m is None:
            continue
        line_start = text.rfind("\n", 0, start) + 1
        if _BARE_PREFIX.fullmatch(text, line_start, start) and _looks_random(
            m.group("value"), bare=True
        ):
            out.append(SecretMatch("generic_secret", m.start("value"), m.end("value")))
    return out


def _private_keys(text: str) -> list[SecretMatch]:
    """A key block from its BEGIN line through its END line (or as far as key body lines go)."""
    out: list[SecretMatch] = []
    pos = 0
    while True:
        m = _PRIVATE_KEY_BEGIN.search(text, pos)
        if m is None:
            return out
        end_marker = _PRIVATE_KEY_END.search(text, m.end())
        line_end = text.find("\n", m.end())
        if line_end == -1:
            line_end = len(text)
        if end_marker is not None and end_marker.end() <= line_end:
            end = end_marker.end()  # the whole key on one line ("...\\n..." in a string)
        else:
            end = line_end
            cursor = line_end + 1
            while cursor < len(text):
                nl = text.find("\n", cursor)
                nl = len(text) if nl == -1 else nl
                line = text[cursor:nl]
                em = _PRIVATE_KEY_END.search(line)
                if em is not None:
                    end = cursor + em.end()
                    break
                if not _KEY_BODY_LINE.fullmatch(line):
                    break
                end = nl
                cursor = nl + 1
        out.append(SecretMatch("private_key", m.start(), end))
        pos = max(end, m.end())


@functools.lru_cache(maxsize=64)
def _compile_extra(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    compiled: list[re.Pattern[str]] = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as e:
            from tierbot.errors import BadInput

            raise BadInput(f"config: redact.patterns: invalid regex {pattern!r}: {e}") from None
    return tuple(compiled)


def find_secrets(text: str, extra_patterns: Sequence[str] = ()) -> list[SecretMatch]:
    """Every secret in `text`, sorted by position, overlapping matches merged into the first."""
    found: list[SecretMatch] = []
    if "PRIVATE KEY" in text:
        found.extend(_private_keys(text))
    for kind, triggers, pattern in _TOKEN_PATTERNS:
        for trigger in triggers:
            if trigger in text:
                break
        else:
            continue
        for m in pattern.finditer(text):
            if kind == "aws_access_key_id" and "EXAMPLE" in m.group(0):
                continue  # the AWS documentation's example key
            if kind == "openai_api_key" and not _looks_like_key(m.group(0)[3:]):
                continue
            found.append(SecretMatch(kind, m.start(), m.end()))
    if "://" in text and "@" in text:
        for m in _URL_PASSWORD.finditer(text):
            value = m.group("value")
            if _EXAMPLE_HOST.search(m.group("host").rstrip(".")):
                continue
            # `socks5://user:pass@host:port` in docs: a short plain word is a placeholder.
            if value.isalpha() and len(value) <= 8:
                continue
            lowered_value = value.lower()
            if not any(word in lowered_value for word in _PLACEHOLDER_WORDS) and not any(
                word in lowered_value for word in ("password", "passwd", "secret", "pwd")
            ):
                found.append(SecretMatch("url_password", m.start("value"), m.end("value")))
    if "=" in text or ":" in text:
        lowered = text.lower()
        if "aws" in lowered and "secret" in lowered:
            for m in _AWS_SECRET.finditer(text):
                if "EXAMPLE" not in m.group("value"):
                    found.append(
                        SecretMatch("aws_secret_access_key", m.start("value"), m.end("value"))
                    )
        found.extend(_generic(text, lowered))
    for pattern in _compile_extra(tuple(extra_patterns)):
        for m in pattern.finditer(text):
            if m.end() > m.start():
                found.append(SecretMatch("custom", m.start(), m.end()))
    return _merge(found)


def _looks_like_key(body: str) -> bool:
    # "sk-" is also a prefix of ordinary kebab-case words ("sk-learn-compatible-estimator").
    return any(ch.isdigit() for ch in body) and shannon_entropy(body) >= 3.5


def _merge(found: list[SecretMatch]) -> list[SecretMatch]:
    # Exact formats win over heuristics for the same span: sort by start, then prefer longer.
    found.sort(key=lambda s: (s.start, -(s.end - s.start), s.kind in HEURISTIC_KINDS))
    out: list[SecretMatch] = []
    for match in found:
        if out and match.start < out[-1].end:
            last = out[-1]
            if match.end > last.end:
                out[-1] = SecretMatch(last.kind, last.start, match.end)
            continue
        out.append(match)
    return out


def redact(text: str, extra_patterns: Sequence[str] = ()) -> tuple[str, int]:
    """`text` with every secret replaced by "[REDACTED:<kind>]", and how many were replaced."""
    matches = find_secrets(text, extra_patterns)
    if not matches:
        return text, 0
    parts: list[str] = []
    pos = 0
    for match in matches:
        parts.append(text[pos : match.start])
        parts.append(f"[REDACTED:{match.kind}]")
        pos = match.end
    parts.append(text[pos:])
    return "".join(parts), len(matches)


# Files whose whole content is credentials: never sent to a model, even redacted.
NEVER_SEND_GLOBS: tuple[str, ...] = (
    ".env",
    ".env.*",
    "*.env",
    "!.env.example",
    "!.env.sample",
    "!.env.template",
    "!.env.dist",
    "!*.env.example",
    "!*.env.sample",
    "!*.env.template",
    "*.pem",
    "*.key",
    "*.p8",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "*.asc.key",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".htpasswd",
    ".dockercfg",
    ".docker/config.json",
    ".aws/credentials",
    ".aws/config",
    "credentials",
    "credentials.json",
    "*.credentials",
    "*credentials*.json",
    "secrets.yml",
    "secrets.yaml",
    "secrets.json",
    "*.tfstate",
    "*.tfstate.backup",
    "*.tfvars",
    "*.secret",
    "*.secrets",
    "service-account*.json",
    "*-sa-key.json",
)


_NEVER_SEND_NAMES = tuple(g for g in NEVER_SEND_GLOBS if "/" not in g and not g.startswith("!"))
_SEND_ANYWAY_NAMES = tuple(g[1:] for g in NEVER_SEND_GLOBS if g.startswith("!"))
_NEVER_SEND_SUFFIXES = tuple("/" + g for g in NEVER_SEND_GLOBS if "/" in g)


def never_send(path: str, extra_globs: Sequence[str] = ()) -> bool:
    """True for files that must never reach a model: the built-in credential-file names (matched
    on the file name, at any depth, so a directory called `credentials/` is not caught) plus
    `extra_globs` with gitignore semantics."""
    clean = posixpath.normpath(path.replace("\\", "/")).lstrip("/")
    name = posixpath.basename(clean).lower()
    if any(fnmatch.fnmatchcase(name, g) for g in _NEVER_SEND_NAMES) and not any(
        fnmatch.fnmatchcase(name, g) for g in _SEND_ANYWAY_NAMES
    ):
        return True
    if ("/" + clean).endswith(_NEVER_SEND_SUFFIXES):
        return True
    return matches(clean, extra_globs)
