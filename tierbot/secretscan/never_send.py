"""Files whose whole content is credentials: never sent to a model, not even redacted.

Names are normalised before they are matched, so `.env ` (trailing space), `.ENV`, `.env.` and
a name with an invisible character still count: surrounding whitespace and dots, zero-width and
other format characters are dropped and case is folded.  The built-in names match at any depth;
`redact.never_send` globs from the config are added with gitignore rules (`paths.matches`).
"""

from __future__ import annotations

import fnmatch
import posixpath
import unicodedata
from collections.abc import Sequence

from tierbot.paths import matches

# Matched against the normalised file name (lowercase).
NAMES: tuple[str, ...] = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p8",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "*.kdbx",
    "*.asc.key",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".htpasswd",
    ".dockercfg",
    "credentials",
    "*.credentials",
    "*credentials*.json",
    "secrets.yml",
    "secrets.yaml",
    "secrets.json",
    "*.tfstate",
    "*.tfstate.backup",
    "*.tfvars",
    "*.secret",
    "*.secrets",
    "service-account*.json",
    "*-sa-key.json",
    "kubeconfig",
    "kubeconfig.y*ml",
    "kubeconfig.json",
    "kubeconfig[-_.]*.y*ml",
    "*.kubeconfig",
)
# Sent after all: templates that document which variables exist.
SEND_ANYWAY: tuple[str, ...] = (
    ".env.example",
    ".env.sample",
    ".env.template",
    ".env.dist",
    "*.env.example",
    "*.env.sample",
    "*.env.template",
)
# Matched against the end of the normalised path.
DIRECTORIES: tuple[str, ...] = (
    ".docker/config.json",
    ".aws/credentials",
    ".aws/config",
    ".kube/config",
)
# Any file under these directories.
PRIVATE_DIRS: tuple[str, ...] = (".ssh/", ".gnupg/")


def normalise(path: str) -> str:
    """The path as a tool that loads credentials would see it: `/`-separated, each part without
    surrounding whitespace or dots and without invisible characters, lowercase."""
    clean = path.replace("\\", "/")
    if not clean.isascii():
        clean = unicodedata.normalize("NFKC", clean)
        clean = "".join(ch for ch in clean if unicodedata.category(ch) != "Cf")
    parts = [p.strip().rstrip(". \t") or p for p in clean.split("/")]
    parts = [p for p in parts if p not in ("", ".")]
    return "/".join(parts).lower()


def _ssh_key_name(name: str) -> bool:
    # id_rsa, id_ed25519, id_github, id_rsa.pub; not id_utils.py
    return name.startswith("id_") and ("." not in name or name.endswith(".pub"))


def never_send(path: str, extra_globs: Sequence[str] = ()) -> bool:
    """True for files that must never reach a model: the built-in credential-file names at any
    depth (a directory called `credentials/` is not one), plus `extra_globs` (gitignore rules)
    matched against the path as given and as normalised."""
    norm = normalise(path)
    name = posixpath.basename(norm)
    if _ssh_key_name(name):
        return True
    if any(fnmatch.fnmatchcase(name, g) for g in NAMES) and not any(
        fnmatch.fnmatchcase(name, g) for g in SEND_ANYWAY
    ):
        return True
    if ("/" + norm).endswith(tuple("/" + d for d in DIRECTORIES)):
        return True
    if any(("/" + norm).find("/" + d) != -1 for d in PRIVATE_DIRS):
        return True
    if not extra_globs:
        return False
    raw = posixpath.normpath(path.replace("\\", "/")).lstrip("/")
    return matches(raw, extra_globs) or matches(norm, extra_globs)
