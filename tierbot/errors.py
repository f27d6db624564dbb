"""One user-facing error type; the CLI turns it into a one-line message and an exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3
EXIT_INTERRUPTED = 130


class TierbotError(Exception):
    """An error the user can act on. `str(err)` is the whole message: one line."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class BadInput(TierbotError):
    """Usage, config, revision or repository errors: exit 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_BAD_INPUT)
