"""Provider token formats: a prefix the provider chose so that scanners can recognise its tokens.

Every pattern starts with its literal prefix (so the regex engine jumps from one occurrence to
the next) and has a bounded body; the character before a match is checked in code rather than by
a leading look-behind, which would make the engine try every position.  One combined scan for the
prefixes decides which patterns run at all.  Coverage follows the public rule sets of gitleaks,
trufflehog and detect-secrets for the providers a code review meets most; the patterns are ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from tierbot.secretscan import values
from tierbot.secretscan.kinds import SecretMatch

_WORD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


class _Format(NamedTuple):
    kind: str
    triggers: tuple[str, ...]  # literal prefixes; the pattern runs only when one occurs
    pattern: re.Pattern[str]  # the secret is group "v" when there is one, else the whole match
    body_from: int  # where the random part starts in the secret (judged without its prefix)
    not_after: str  # characters that may not precede a match (it would be inside a word)


def _f(
    kind: str, triggers: tuple[str, ...], pattern: str, body_from: int = 0, not_after: str = _WORD
) -> _Format:
    return _Format(kind, triggers, re.compile(pattern), body_from, not_after)


_E = r"(?![A-Za-z0-9_-])"
_AWS = ("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "ANPA", "AIPA", "ANVA", "APKA")

FORMATS: tuple[_Format, ...] = (
    _f("aws_access_key_id", _AWS, r"A[A-Z]{3}[A-Z0-9]{16}(?![A-Z0-9])", 4, _WORD),
    _f(
        "github_token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        r"gh[pousr]_[A-Za-z0-9]{36,251}(?![A-Za-z0-9_])",
        4,
    ),
    _f("github_token", ("github_pat_",), r"github_pat_[A-Za-z0-9_]{22,244}(?![A-Za-z0-9_])", 11),
    _f("gitlab_token", ("glpat-",), r"glpat-[A-Za-z0-9_-]{20,60}" + _E, 6),
    _f("anthropic_api_key", ("sk-ant-",), r"sk-ant-[A-Za-z0-9_-]{20,300}", 7),
    _f(
        "openai_api_key",
        ("sk-",),
        r"sk-(?!ant-)(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,200}" + _E,
        3,
    ),
    _f("slack_token", ("xox",), r"xox[abposre]-[A-Za-z0-9-]{10,250}", 5),
    _f("slack_token", ("xapp-",), r"xapp-\d-[A-Za-z0-9-]{10,250}", 5),
    _f(
        "slack_webhook",
        ("hooks.slack.com",),
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/]{20,120}",
        30,
        "",
    ),
    _f(
        "discord_webhook",
        ("/api/webhooks/",),
        r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d{5,30}/[A-Za-z0-9_-]{30,90}",
        40,
        "",
    ),
    _f("stripe_key", ("k_live_", "k_test_"), r"[rs]k_(?:live|test)_[A-Za-z0-9]{20,250}", 8),
    _f("google_api_key", ("AIza",), r"AIza[0-9A-Za-z_-]{35}" + _E, 4),
    _f("google_oauth", ("GOCSPX-",), r"GOCSPX-[A-Za-z0-9_-]{28}" + _E, 7),
    _f("google_oauth", ("ya29.",), r"ya29\.[A-Za-z0-9_-]{50,2000}", 5),
    _f("azure_storage_key", ("AccountKey=",), r"AccountKey=(?P<v>[A-Za-z0-9+/]{86}==)", 0, ""),
    _f("azure_sas", ("sig=",), r"[?&;]sig=(?P<v>[A-Za-z0-9%+/]{40,120}(?:%3[Dd]|=)?)", 0, ""),
    _f(
        "azure_client_secret",
        ("Q~",),
        r"[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])",
        6,
        _WORD + "~.",
    ),
    _f("huggingface_token", ("hf_",), r"hf_[A-Za-z]{34}(?![A-Za-z0-9_])", 3),
    _f("huggingface_token", ("api_org_",), r"api_org_[A-Za-z]{34}(?![A-Za-z0-9_])", 8),
    _f(
        "docker_token", ("dckr_pat_", "dckr_oat_"), r"dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,40}" + _E, 9
    ),
    _f("npm_token", ("npm_",), r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])", 4),
    _f("pypi_token", ("pypi-AgE",), r"pypi-AgE[A-Za-z0-9_-]{50,400}", 24),
    _f("sendgrid_key", ("SG.",), r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}" + _E, 3),
    _f(
        "shopify_token",
        ("shpat_", "shpca_", "shppa_", "shpss_"),
        r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}" + _E,
        6,
    ),
    _f("digitalocean_token", ("dop_v1_", "doo_v1_", "dor_v1_"), r"do[por]_v1_[a-f0-9]{64}" + _E, 7),
    _f("databricks_token", ("dapi",), r"dapi[a-f0-9]{32}(?:-\d)?(?![A-Za-z0-9_])", 4),
    _f("telegram_bot_token", (":AA",), r"\d{8,10}:AA[A-Za-z0-9_-]{33}" + _E, 13, _WORD + ":"),
    _f("vault_token", ("hvs.", "hvb."), r"hv[sb]\.[A-Za-z0-9_-]{24,400}", 4),
    _f(
        "age_secret_key",
        ("AGE-SECRET-KEY-1",),
        r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
        16,
    ),
    _f(
        "grafana_token",
        ("glsa_", "glc_"),
        r"gl(?:sa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|c_[A-Za-z0-9+/]{32,400}={0,2})",
        5,
    ),
    _f(
        "jwt",
        ("eyJ",),
        r"eyJ[A-Za-z0-9_-]{10,4000}\.eyJ[A-Za-z0-9_-]{10,8000}\.[A-Za-z0-9_-]{10,1000}" + _E,
    ),
)
# Substring tests (a fast search in C) decide which patterns run; one combined regex would try
# every position.
_TRIGGERS = tuple(dict.fromkeys(t for f in FORMATS for t in f.triggers))


def mentioned(text: str) -> bool:
    """Whether any provider prefix occurs in `text`."""
    return any(t in text for t in _TRIGGERS)


def find(text: str) -> Iterator[SecretMatch]:
    present = {t for t in _TRIGGERS if t in text}
    if not present:
        return
    verdicts: dict[tuple[str, str], bool | None] = {}
    for fmt in FORMATS:
        if present.isdisjoint(fmt.triggers):
            continue
        for m in fmt.pattern.finditer(text):
            start, end = m.span("v") if "v" in fmt.pattern.groupindex else m.span()
            if start and text[start - 1] in fmt.not_after:
                continue
            if fmt.kind == "aws_access_key_id" and m.group(0)[:4] not in _AWS:
                continue
            token = text[start:end]
            key = (fmt.kind, token)
            if key not in verdicts:
                verdicts[key] = judge(fmt.kind, token, fmt.body_from)
            verdict = verdicts[key]
            if verdict is not None:
                yield SecretMatch(fmt.kind, start, end, verdict)


def judge(kind: str, token: str, body_from: int = 0) -> bool | None:
    """None: not a token after all (filler, a word); else whether it is weak (a sample)."""
    body = token[body_from:]
    if len(set(body)) < 8 and kind != "azure_sas":
        return None  # `ghp_xxxxxxxx...`: a mask, not a token
    if kind == "openai_api_key" and not (
        any(c.isdigit() for c in body) and values.entropy(body) >= 3.5
    ):
        return None  # "sk-" also starts kebab-case words ("sk-learn-compatible-estimator")
    if kind == "jwt":
        return values.is_public_sample(token)  # its segments are base64 JSON, not random
    return values.is_public_sample(token) or values.is_weak(body)
