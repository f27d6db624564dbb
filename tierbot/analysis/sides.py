"""The old and new text of the files a change touches, read once for everything that needs them
(complexity and the line classification), within a bound on how much is read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

from tierbot.git import repository
from tierbot.records import FileDiff, Range

# Reading is cheap (one persistent cat-file process) but not free: a change of thousands of files
# reads the largest changes first and stops at these bounds; the rest are judged by their hunks.
MAX_FILES = 600
MAX_BYTES = 8_000_000
MAX_FILE_BYTES = 1_000_000


class Sides(NamedTuple):
    old: str | None  # None: the file is new, or its text could not be read
    new: str | None


def new_side_object(rng: Range, path: str) -> str | None:
    """The cat-file name of `path` on the new side, or None when it lives in the work tree."""
    if rng.head is not None:
        return f"{rng.head}:{path}"
    if rng.spec == "--staged":
        return f":{path}"
    return None


def read(root: str, rng: Range, files: Sequence[FileDiff]) -> dict[str, Sides]:
    """Both sides of `files` (modified or added files with hunks), largest change first."""
    wanted = sorted(
        (f for f in files if f.hunks and f.status != "deleted"), key=lambda f: -f.lines_added
    )[:MAX_FILES]
    objects: list[str] = []
    for f in wanted:
        if f.status != "added":
            objects.append(f"{rng.base}:{f.old_path or f.path}")
        obj = new_side_object(rng, f.path)
        if obj is not None:
            objects.append(obj)
    blobs = iter(repository.at(root).blobs(objects))
    out: dict[str, Sides] = {}
    budget = MAX_BYTES
    for f in wanted:
        old_b = next(blobs) if f.status != "added" else None
        new_b = next(blobs) if new_side_object(rng, f.path) is not None else _work_tree(root, f)
        size = len(old_b or b"") + len(new_b or b"")
        if new_b is None or size > min(budget, 2 * MAX_FILE_BYTES):
            continue
        budget -= size
        out[f.path] = Sides(_text(old_b), _text(new_b))
    return out


def _work_tree(root: str, f: FileDiff) -> bytes | None:
    try:
        with open(os.path.join(root, f.path), "rb") as fh:
            return fh.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None


def _text(data: bytes | None) -> str | None:
    return data.decode("utf-8", "replace") if data is not None else None
