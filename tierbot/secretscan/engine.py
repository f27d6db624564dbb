"""The secret engine: every detector over a text, overlapping hits merged, and redaction.

One engine serves both jobs: `rules.py` turns matches into findings (severity by
`context.severity`) and the prompt builder replaces them before anything is sent.  Redaction
keeps line breaks (and a line's diff prefix and indentation), so a multi-line key leaves the
patch's line numbering intact.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from tierbot.secretscan import assignments, keys, providers, tokens
from tierbot.secretscan.kinds import SecretMatch, exact


class DeadlineExceeded(Exception):
    """The caller's deadline passed between two detectors (the hook's `timeout_s`)."""


Detector = Callable[[str], Iterable[SecretMatch]]
DETECTORS: tuple[tuple[str, Detector], ...] = (
    ("providers", providers.find),
    ("keys", keys.find),
    ("assignments", assignments.find),
    ("tokens", tokens.find),
)
# The prompt's numbered diff lines start with a 6-wide new-line number (or blanks), a space, the
# diff marker and a space (`prompt.annotate`).  Detectors read such text with those prefixes
# blanked out (same length, so offsets stay valid): a key body or a line-start assignment looks
# as it does in the file.
_NUMBERED = re.compile(r"\n[ \d]{6} [+ -] ")
_NUMBERED_FIRST = re.compile(r"[ \d]{6} [+ -] ")
# A continuation line keeps its prefix (numbered-diff prefix or diff marker) and indentation;
# `-----END ...` is content, not a removed line (which would read `------END ...`).
_LINE_PREFIX = re.compile(r"(?!-----[A-Z])(?:[ \d]{6} [+ -] |[+ -])?[ \t]*")


def _unnumbered(text: str) -> str:
    """`text` with numbered-diff prefixes replaced by blanks of the same length."""
    view = _NUMBERED.sub(lambda m: "\n" + " " * (len(m.group()) - 1), text)
    first = _NUMBERED_FIRST.match(view)
    return " " * first.end() + view[first.end() :] if first else view


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


def _custom(text: str, patterns: Sequence[str]) -> Iterator[SecretMatch]:
    for pattern in _compile_extra(tuple(patterns)):
        for m in pattern.finditer(text):
            if m.end() > m.start():
                yield SecretMatch("custom", m.start(), m.end())


def find_secrets(
    text: str, extra_patterns: Sequence[str] = (), *, deadline: float | None = None
) -> list[SecretMatch]:
    """Every secret in `text`, sorted by position; overlapping hits become one, of the strongest
    kind.  Raises DeadlineExceeded when `deadline` (time.monotonic()) passes between detectors."""
    found: list[SecretMatch] = []
    view = _unnumbered(text)
    for _, detector in DETECTORS:
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExceeded
        found.extend(detector(view))
    if extra_patterns:
        found.extend(_custom(text, extra_patterns))
    return merge(found)


def _strength(m: SecretMatch) -> tuple[bool, bool, int]:
    return (not m.weak, exact(m.kind), m.end - m.start)


def merge(found: list[SecretMatch]) -> list[SecretMatch]:
    """One match per group of overlapping hits: the union of their spans, the kind and weakness
    of the strongest (a real token is never hidden behind a weak heuristic on the same text)."""
    found.sort(key=lambda s: (s.start, -s.end))
    out: list[SecretMatch] = []
    best: SecretMatch | None = None
    for m in found:
        if out and m.start < out[-1].end:
            assert best is not None
            if _strength(m) > _strength(best):
                best = m
            out[-1] = SecretMatch(best.kind, out[-1].start, max(out[-1].end, m.end), best.weak)
            continue
        best = m
        out.append(m)
    return out


def redact(text: str, extra_patterns: Sequence[str] = ()) -> tuple[str, int]:
    """`text` with every secret replaced by "[REDACTED:<kind>]", and how many were replaced.
    A secret spanning lines leaves each further line as its prefix alone (diff marker and
    indentation), so line counts and numbering do not change."""
    found = find_secrets(text, extra_patterns)
    if not found:
        return text, 0
    parts: list[str] = []
    pos = 0
    for m in found:
        parts.append(text[pos : m.start])
        lines = text[m.start : m.end].split("\n")
        kept = [f"[REDACTED:{m.kind}]"]
        for line in lines[1:]:
            prefix = _LINE_PREFIX.match(line)
            kept.append(prefix.group(0) if prefix else "")
        parts.append("\n".join(kept))
        pos = m.end
    parts.append(text[pos:])
    return "".join(parts), len(found)
