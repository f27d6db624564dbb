"""One user-facing error type; the CLI turns it into a one-line message and an exit code."""

from __future__ import annotations

import reprlib
import unicodedata

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3
EXIT_INTERRUPTED = 130

# A message is read on a terminal or in a CI log: one line, and never a screenful.
MESSAGE_LIMIT = 600
VALUE_LIMIT = 100

_repr = reprlib.Repr()
# Bounded work as well as bounded text: an alias-bomb value must not be walked in full.
_repr.maxlevel, _repr.maxlist, _repr.maxdict = 3, 8, 8
_repr.maxstring, _repr.maxother, _repr.maxlong = VALUE_LIMIT, VALUE_LIMIT, 40


def printable(text: str) -> str:
    """`text` with control, format and line-separator characters escaped (`\\x1b`, `\\n`, ...)."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif unicodedata.category(ch) == "Zs":
            out.append(" ")
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def shown(value: object, limit: int = VALUE_LIMIT) -> str:
    """A value quoted in a message: repr-like, escaped, at most about `limit` characters."""
    text = printable(_repr.repr(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(message: str) -> str:
    """A message as the user sees it: one printable line of at most MESSAGE_LIMIT characters."""
    message = printable(message)
    return message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"


class TierbotError(Exception):
    """An error the user can act on. `str(err)` is the whole message: one line."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(one_line(message))
        self.exit_code = exit_code


class BadInput(TierbotError):
    """Usage, config, revision or repository errors: exit 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_BAD_INPUT)
