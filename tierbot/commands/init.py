"""`tierbot init`: write a commented `.tierbot.yml` with every key at its default."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from tierbot.config import CONFIG_NAME, DATA_DIR
from tierbot.errors import BadInput
from tierbot.git import repository


def template() -> str:
    return (DATA_DIR / "default-config.yml").read_text(encoding="utf-8")


def main(cwd: str = ".", force: bool = False) -> int:
    root = repository.toplevel(cwd)
    path = Path(root) / CONFIG_NAME
    if path.is_symlink():
        # Writing through it would change whatever file it points at, maybe outside the repo.
        raise BadInput(
            f"{path} is a symbolic link: tierbot init does not write through it "
            "(remove the link first)"
        )
    if path.exists() and not force:
        raise BadInput(f"{path} already exists (use --force to overwrite it)")
    if path.exists() and not path.is_file():
        raise BadInput(f"{path} exists and is not a regular file")
    # A new file renamed into place: never writes through a link created meanwhile, and a
    # failure leaves the old file whole.
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tierbot.yml.", dir=root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(template())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        raise BadInput(f"cannot write {path}: {e.strerror or e}") from None
    print(f"wrote {os.path.relpath(path)}", file=sys.stderr)
    return 0
