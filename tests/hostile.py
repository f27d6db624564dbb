"""Hostile inputs shared by the tests and `bench/bad_input.py`."""

from __future__ import annotations

# A 1 KB YAML alias bomb: nine levels of nine aliases, 9**9 values once expanded.
BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "fail_on: *i\n"
)
