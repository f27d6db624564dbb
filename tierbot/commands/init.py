"""`tierbot init`: write a commented `.tierbot.yml` with every key at its default."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tierbot.config import CONFIG_NAME, DATA_DIR
from tierbot.errors import BadInput
from tierbot.git import repository


def template() -> str:
    return (DATA_DIR / "default-config.yml").read_text(encoding="utf-8")


def main(cwd: str = ".", force: bool = False) -> int:
    root = repository.toplevel(cwd)
    path = Path(root) / CONFIG_NAME
    if path.exists() and not force:
        raise BadInput(f"{path} already exists (use --force to overwrite it)")
    path.write_text(template(), encoding="utf-8")
    print(f"wrote {os.path.relpath(path)}", file=sys.stderr)
    return 0
