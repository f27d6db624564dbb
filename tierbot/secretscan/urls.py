"""Credentials in URLs that tierbot itself prints or posts (`ANTHROPIC_BASE_URL`, proxies, remotes).

`http://user:pass@proxy:8080` becomes `http://***@proxy:8080`: the whole user-info part goes, since
a token is often the user name (`https://ghp_...@github.com`).
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,20}://)[^\s/?#@\"'<>`]{1,512}@(?=[^\s@])")


def mask_url_credentials(text: str) -> str:
    if "@" not in text or "://" not in text:
        return text
    return _USERINFO.sub(r"\1***@", text)
