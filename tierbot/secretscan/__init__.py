"""The secret engine, shared by the local rules (findings) and the prompt builder (redaction).

- `find_secrets` / `redact`: provider token formats, private-key blocks, secret-named assignments,
  credential headers, URL and connection-string passwords, split and base64-encoded tokens and
  unnamed random literals (`engine`, one module per detector family).
- `severity`: how severe a match is where it was found (`context`).
- `never_send`: files never sent to a model (`never_send`).
- `mask_url_credentials`: user-info in URLs that tierbot prints or posts (`urls`).
It knows no pipeline stage: it imports only `tierbot.paths`, `tierbot.records` and
`tierbot.errors`.
"""

from __future__ import annotations

from tierbot.secretscan.context import illustrative, severity
from tierbot.secretscan.engine import DeadlineExceeded, find_secrets, redact
from tierbot.secretscan.kinds import KINDS, SecretMatch, exact, label
from tierbot.secretscan.never_send import never_send
from tierbot.secretscan.urls import mask_url_credentials
from tierbot.secretscan.values import entropy

__all__ = [
    "KINDS",
    "DeadlineExceeded",
    "SecretMatch",
    "entropy",
    "exact",
    "find_secrets",
    "illustrative",
    "label",
    "mask_url_credentials",
    "never_send",
    "redact",
    "severity",
]
