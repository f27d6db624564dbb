"""Model text -> markdown that is safe to post on GitHub.

Model output is untrusted: it may carry @mentions that would ping people, raw HTML, copies of
tierbot's own hidden markers (which would hijack which comment we edit, or fake an old head sha),
code fences that never close and swallow the rest of our comment, or simply be too long.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tierbot.reporters.markdown import defuse_mentions
from tierbot.secretscan import mask_url_credentials

# GitHub rejects comment bodies above this many characters.
GITHUB_BODY_LIMIT = 65_536
# GitHub ignores a step summary above 1 MiB.
STEP_SUMMARY_LIMIT = 1024 * 1024


# Any HTML comment opener followed by "tierbot", however spaced or cased, even inside code:
# marker lookups read the raw body, where code fences mean nothing.
_FORGED_MARKER = re.compile(r"<!--\s*tierbot", re.IGNORECASE)
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BACKTICKS = re.compile(r"`+")


def strip_markers(text: str) -> str:
    """Break every tierbot hidden-marker opener so that only tierbot itself can write one."""
    return _FORGED_MARKER.sub("&lt;!-- tierbot", text) if "<" in text else text


def text(value: str) -> str:
    """Sanitise free model text (titles, messages) for a markdown body."""
    value = strip_markers(value.replace("\r\n", "\n").replace("\r", "\n"))
    value = mask_url_credentials(value)  # notes may quote a proxy or base URL
    value = value.replace("\x00", "")
    out: list[str] = []
    fence: str | None = None
    for line in value.split("\n"):
        if fence is not None:
            out.append(line)
            if _closes(line, fence):
                fence = None
            continue
        m = _FENCE_OPEN.match(line)
        if m:
            fence = m.group(1)
            out.append(line)
            continue
        out.append(_prose_line(line))
    if fence is not None:
        # An unclosed fence would swallow everything we append after this text.
        out.append(fence)
    return "\n".join(out)


def _prose_line(line: str) -> str:
    """Outside code: escape HTML, defuse mentions.  Inline code spans are left alone."""
    parts: list[str] = []
    pos = 0
    while pos < len(line):
        m = _BACKTICKS.search(line, pos)
        if m is None:
            parts.append(_prose(line[pos:]))
            break
        ticks = m.group(0)
        close = re.compile(rf"(?<!`){ticks}(?!`)").search(line, m.end())
        if close is None:
            # An unmatched backtick run is literal text in markdown.
            parts.append(_prose(line[pos : m.end()]))
            pos = m.end()
            continue
        parts.append(_prose(line[pos : m.start()]))
        parts.append(line[m.start() : close.end()])
        pos = close.end()
    return "".join(parts)


def _prose(s: str) -> str:
    s = s.replace("<", "&lt;").replace(">", "&gt;")
    return defuse_mentions(s)


def cell(value: str) -> str:
    """Sanitise text for one cell of a markdown table (one line, no bare pipes)."""
    one_line = " ".join(text(value).split())
    return one_line.replace("|", "\\|")


def code_fence(content: str, info: str = "") -> str:
    """A fenced block that `content` cannot break out of (fence longer than any backtick run)."""
    content = strip_markers(content.replace("\r\n", "\n")).rstrip("\n")
    longest = max((len(m.group(0)) for m in _BACKTICKS.finditer(content)), default=0)
    fence = "`" * max(3, longest + 1)
    if not content:  # an empty suggestion deletes the lines; an empty line would replace them
        return f"{fence}{info}\n{fence}"
    return f"{fence}{info}\n{content}\n{fence}"


def cap(body: str, limit: int = GITHUB_BODY_LIMIT) -> str:
    """Keep `body` within `limit` characters, cutting on a line and saying how much was cut."""
    return _cut(body, limit, len, "characters")


def cap_bytes(body: str, limit: int = STEP_SUMMARY_LIMIT) -> str:
    """Like `cap`, counted in UTF-8 bytes (the step summary limit)."""
    return _cut(body, limit, _utf8_len, "bytes")


def _utf8_len(s: str) -> int:
    return len(s.encode("utf-8"))


def _cut(body: str, limit: int, measure: Callable[[str], int], unit: str) -> str:
    total = measure(body)
    if total <= limit:
        return body
    keep_to = max(0, limit - 200)  # room for the closing fence and the note
    kept = body[:keep_to]  # a character is at least one byte: never too short a start
    while measure(kept) > keep_to:
        kept = kept[: len(kept) - max(1, (measure(kept) - keep_to) // 4)]
    nl = kept.rfind("\n")
    if nl > keep_to // 2:
        kept = kept[:nl]
    # Close a code fence the cut left open, so the note renders as text.
    open_fence: str | None = None
    for line in kept.split("\n"):
        m = _FENCE_OPEN.match(line)
        if m is None:
            continue
        if open_fence is None:
            open_fence = m.group(1)
        elif _closes(line, open_fence):
            open_fence = None
    if open_fence is not None:
        kept += "\n" + open_fence
    cut = total - measure(kept)
    return f"{kept}\n\n> **Cut:** {cut:,} {unit} not shown (GitHub's limit is {limit:,} {unit})."


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and not stripped.strip(fence[0])
