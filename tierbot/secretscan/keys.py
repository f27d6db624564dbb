"""Private-key blocks (PEM, OpenSSH, PGP): from the BEGIN line through the END line, or as far as
key-body lines go when the END line is not in the text.

Linear: every BEGIN and END marker is found once, a block never looks past the next BEGIN marker,
and where a block's body stops is found by two regex searches over the body (no per-line loop):
a body line holds only base64 and what code puts around it (diff prefix, indentation, quotes,
`+` concatenation, `\\n` escapes), never a space between two base64 characters.
A block written on one line with `\\n` escapes (JSON credentials, test fixtures) counts too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tierbot.secretscan.kinds import SecretMatch

_BEGIN = re.compile(r"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----")
_END = re.compile(r"-----END[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----")
# A character no key-body line holds, and a space between two base64 characters (words, code).
# (`.` and `…` belong to placeholder bodies such as `MIIEpAIBAAKCAQEA...`.)
_NOT_BODY = re.compile(
    r"[^A-Za-z0-9+/=\s\"'`,;()\[\]{}\\.\u2026-]|(?<=[A-Za-z0-9/=])[ \t]+[A-Za-z0-9+/=]"
)
# RFC 1421 / OpenPGP armour headers right after the BEGIN line.
_HEADERS = re.compile(
    r"(?:[^\S\n]{0,8}\n?[+ -]?[ \t\"']{0,40}(?:Proc-Type|DEK-Info|Comment|Version|Hash|Charset):"
    r"[^\n]{0,200})*"
)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{4,}")
_PLACEHOLDER = re.compile(r"\.\.\.|\u2026|<|>|xxxxx|XXXXX")
MIN_BODY = 64  # base64 characters; fewer is an illustration, not a key


def find(text: str) -> Iterator[SecretMatch]:
    if "PRIVATE KEY" not in text:
        return
    begins = list(_BEGIN.finditer(text))
    ends = [m.span() for m in _END.finditer(text)]
    j = 0
    covered = 0
    for i, begin in enumerate(begins):
        if begin.start() < covered:
            continue
        limit = begins[i + 1].start() if i + 1 < len(begins) else len(text)
        body_start = begin.end()
        if limit - body_start < 4:
            continue  # BEGIN markers back to back (or at the end): nothing between them
        headers = _HEADERS.match(text, body_start, limit)
        body_start = headers.end() if headers else body_start
        while j < len(ends) and ends[j][0] < begin.end():
            j += 1
        stop = _NOT_BODY.search(text, body_start, limit)
        if j < len(ends) and ends[j][1] <= limit and (stop is None or stop.start() >= ends[j][0]):
            body_end, end = ends[j][0], ends[j][1]
        else:
            # No END before the next BEGIN, or code in between: the key goes as far as body
            # lines go, up to the end of the line before the first line that is not one.
            cut = stop.start() if stop is not None else limit
            if stop is not None and text.rfind("\n", body_start, cut) != -1:
                # Up to the end of the last whole body line; on the BEGIN line itself (a key in
                # one string, cut short by a clipped line), up to where the key stops.
                cut = text.rfind("\n", body_start, cut)
            while cut > body_start and text[cut - 1] in " \t\r\n":
                cut -= 1
            body_end = cut
            end = max(cut, begin.end())
        body = text[body_start:body_end]
        chars = sum(len(run) for run in _BASE64_RUN.findall(body))
        if chars == 0:
            continue  # a marker in code ("if line.startswith('-----BEGIN ...')"), not a key
        covered = end
        weak = chars < MIN_BODY or _PLACEHOLDER.search(body) is not None
        yield SecretMatch("private_key", begin.start(), end, weak)
