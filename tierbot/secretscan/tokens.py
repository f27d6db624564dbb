"""The tokenizer: string literals (joined across concatenation), base64 tokens (decoded and
scanned again) and random-looking literals that no name announces.

- `"ghp_abc" + "def..."`, `("ghp_abc"\\n "def...")`: adjacent literals joined by `+`, `.`, `..`,
  `&`, implicit concatenation or a line break are scanned as one value.
- A base64 token that decodes to text is scanned again (twice at most), so a token or a private
  key inside `Z2hwX...` or a kubeconfig `client-key-data` is found.
- A quoted literal of base64/base62 characters whose letters, digits and case change as often as
  random text does is a `high_entropy_string`, a heuristic (see `context.severity`).
Linear: literals, chains and tokens are found by single regex passes with bounded quantifiers
that start at a quote or at the start of a base64 run; each distinct value is judged once; a
decoded text is shorter than its token and is scanned at most twice over.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from tierbot.secretscan import keys, providers, values
from tierbot.secretscan.assignments import decode_base64
from tierbot.secretscan.kinds import SecretMatch

_LIT = r"[\"'`][^\"'`\n\\]{1,256}[\"'`]"
# What may sit between two literals of one value: an operator, a line break (with a diff prefix
# and indentation), or nothing (implicit concatenation).
_GLUE = (
    r"[ \t]{0,40}(?:\+|\.\.?|&|\|\|)?[ \t]{0,40}"
    r"(?:\\?\r?\n[+ -]?[ \t]{0,80}(?:\+|\.\.?|&)?[ \t]{0,40})?"
)
# Two to eight literals glued into one value.
_CHAIN = re.compile(_LIT + r"(?:" + _GLUE + _LIT + r"){1,7}")
_PART = re.compile(r"[\"'`]([^\"'`\n\\]{1,256})[\"'`]")
# A single literal that may be a random key (the rest of the judgement is `unnamed_random`).
_CANDIDATE = re.compile(r"[\"'`]([A-Za-z0-9+/=_-]{20,200})[\"'`]")
# Starts only where a run starts (no quadratic rescans of short runs); of a longer run, only the
# first 16 KiB is decoded.
_BASE64_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_-]{24,16384}={0,2}")
_ENTROPY_CHARS = re.compile(r"[A-Za-z0-9+/=_-]{20,200}")
_HEX = re.compile(r"[0-9a-fA-F_-]+")
_DIGEST_PREFIXES = ("sha1-", "sha256-", "sha384-", "sha512-", "md5-", "h1:", "base64,")
MAX_DEPTH = 2


def find(text: str) -> Iterator[SecretMatch]:
    if '"' in text or "'" in text or "`" in text:
        yield from _chains(text)
        # Distinct values are judged first (one pass in C to collect them); positions are
        # walked only when one of them is a hit, so ordinary code costs two regex scans.
        hits = {v for v in set(_CANDIDATE.findall(text)) if unnamed_random(v)}
        if hits:
            for m in _CANDIDATE.finditer(text):
                if m.group(1) in hits:
                    yield SecretMatch("high_entropy_string", m.start(1), m.end(1), False)
    yield from _encoded(text, 1, {})


def _chains(text: str) -> Iterator[SecretMatch]:
    """Literals glued into one value: provider formats split over the parts, and random values
    that no single part shows.  A joined value found clean is not judged again."""
    clean: set[str] = set()
    for chain in _CHAIN.finditer(text):
        bodies = _PART.findall(chain.group(0))
        joined = "".join(bodies)
        if joined in clean:
            continue
        found = False
        if providers.mentioned(joined):
            parts = [(m.start(1), m.group(1)) for m in _PART.finditer(text, *chain.span())]
            for hit in providers.find(joined):
                (first, start), (last, end) = _locate(parts, hit.start), _locate(parts, hit.end - 1)
                if first != last:  # split over literals: each part alone was not recognisable
                    found = True
                    yield SecretMatch(hit.kind, start, end + 1, hit.weak)
        if (
            max(map(len, bodies)) < 20
            and _ENTROPY_CHARS.fullmatch(joined)
            and unnamed_random(joined)
        ):
            found = True
            yield SecretMatch("high_entropy_string", chain.start() + 1, chain.end() - 1, False)
        if not found:
            clean.add(joined)


def _locate(parts: list[tuple[int, str]], offset: int) -> tuple[int, int]:
    """An offset in the joined value -> (which part, the offset in the text)."""
    pos = 0
    for index, (where, body) in enumerate(parts):
        if offset < pos + len(body):
            return index, where + offset - pos
        pos += len(body)
    return len(parts) - 1, parts[-1][0] + len(parts[-1][1])


def unnamed_random(value: str) -> bool:
    """A literal that looks like a key with no name to say so: base64/base62 characters, not a
    digest or hex, letters and digits and case changing as often as in random text."""
    if not _ENTROPY_CHARS.fullmatch(value) or _HEX.fullmatch(value):
        return False
    if value.startswith(_DIGEST_PREFIXES) or values.is_weak(value):
        return False
    classes = value.translate(values.CLASSES)
    if classes.count("U") < 2 or classes.count("L") < 2 or classes.count("D") < 2:
        return False
    # Identifiers change character class once or twice per word; random text about every
    # other character.
    if len(values.CLASS_RUNS.findall(classes)) < 0.45 * len(value):
        return False
    return values.entropy(value) >= 0.8 * min(6.0, math.log2(len(value)))


def _encoded(text: str, depth: int, memo: dict[str, SecretMatch | None]) -> Iterator[SecretMatch]:
    """Base64 tokens whose decoded text holds a provider token or a private key."""
    if len(text) < 24:
        return
    for token in set(_BASE64_TOKEN.findall(text)):
        if token not in memo:
            memo[token] = _decoded_secret(token, depth, memo)
    if not any(memo.values()):
        return
    for m in _BASE64_TOKEN.finditer(text):
        inner = memo.get(m.group(0))
        if inner is not None:
            yield SecretMatch(inner.kind, m.start(), m.end(), inner.weak)


def _decoded_secret(
    token: str, depth: int, memo: dict[str, SecretMatch | None]
) -> SecretMatch | None:
    decoded = decode_base64(token)
    if decoded is None or len(decoded) < 16:
        return None
    inner = [*providers.find(decoded), *keys.find(decoded)]
    if depth < MAX_DEPTH:
        inner.extend(_encoded(decoded, depth + 1, memo))
    return min(inner, key=lambda s: s.weak) if inner else None
