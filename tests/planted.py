"""The planted-secret corpus (issue 10): credential values of every shape the engine must catch,
assembled at run time from seeded random characters so that no token-shaped literal sits in the
test sources (push protection would rightly refuse them).

Each `Plant` is one value, the line(s) of a file it is planted in, and whether its format is exact
(a provider token or a key: it must be a blocking finding wherever it is added).
"""

from __future__ import annotations

import base64
import random
import string
from typing import NamedTuple

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
UPPER_DIGITS = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
BECH32 = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"


class Plant(NamedTuple):
    id: str
    value: str  # what must never reach a request body
    lines: tuple[str, ...]  # the value in context, as lines of a file
    exact: bool  # a provider format or a key: a blocking finding wherever it is added


class Rand:
    """Deterministic random strings that mix letters and digits, as real keys do."""

    def __init__(self, seed: int = 10) -> None:
        self.rng = random.Random(seed)

    def __call__(self, n: int, alphabet: str = ALNUM) -> str:
        mixed = any(c.isdigit() for c in alphabet) and any(c.isalpha() for c in alphabet)
        while True:
            s = "".join(self.rng.choice(alphabet) for _ in range(n))
            if n < 6 or not mixed or (any(c.isdigit() for c in s) and any(c.isalpha() for c in s)):
                return s

    def words(self, n: int) -> str:
        return " ".join(
            "".join(self.rng.choice(string.ascii_lowercase) for _ in range(self.rng.randint(5, 7)))
            for _ in range(n)
        )


def pem(r: Rand, kind: str, lines: int = 8) -> list[str]:
    body = [r(64, B64) for _ in range(lines)]
    return [f"-----BEGIN {kind}-----", *body, f"-----END {kind}-----"]


def exact_plants(r: Rand) -> list[Plant]:
    """Provider formats, keys, and their split and encoded forms (for `app/settings.py`)."""
    out: list[Plant] = []

    def add(pid: str, value: str, line: str | None = None) -> None:
        out.append(Plant(pid, value, (line or f'{pid.upper()} = "{value}"',), True))

    add("aws_key_id", "AKIA" + r(16, UPPER_DIGITS))
    secret = r(40, B64)
    add("aws_secret", secret, f'aws_secret_access_key = "{secret}"')
    for prefix in ("ghp", "gho", "ghs", "ghu", "ghr"):
        add(f"github_{prefix}", f"{prefix}_" + r(36))
    add("github_pat", "github_pat_" + r(22) + "_" + r(59))
    add("gitlab", "glpat-" + r(20))
    add("anthropic", "sk-ant-api03-" + r(93, ALNUM + "-_") + "AA")
    add("openai", "sk-proj-" + r(48))
    add("slack_bot", "xoxb-" + r(11, string.digits) + "-" + r(12, string.digits) + "-" + r(24))
    add(
        "slack_app", "xapp-1-" + r(11, UPPER_DIGITS) + "-" + r(13, string.digits) + "-" + r(64, HEX)
    )
    hook = "https://hooks.slack.com/services/T" + r(8, UPPER_DIGITS) + "/B" + r(8, UPPER_DIGITS)
    add("slack_webhook", hook + "/" + r(24))
    add(
        "discord_webhook",
        "https://discord.com/api/webhooks/" + r(18, string.digits) + "/" + r(68, ALNUM + "-_"),
    )
    add("stripe_live", "sk_live_" + r(24))
    add("stripe_restricted", "rk_live_" + r(24))
    add("google_api", "AIza" + r(35, ALNUM + "-_"))
    add("google_oauth_secret", "GOCSPX-" + r(28))
    key = r(86, B64) + "=="
    add(
        "azure_storage",
        key,
        f'AZURE = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};"',
    )
    add("azure_client_secret", r(3) + "8Q~" + r(34, ALNUM + "_~.-"))
    add("huggingface", "hf_" + r(34, string.ascii_letters))
    add("huggingface_org", "api_org_" + r(34, string.ascii_letters))
    add("docker_pat", "dckr_pat_" + r(27, ALNUM + "-_"))
    add("npm", "npm_" + r(36))
    add("pypi", "pypi-AgEIcHlwaS5vcmc" + r(70, ALNUM + "-_"))
    add("sendgrid", "SG." + r(22) + "." + r(43))
    add("shopify", "shpat_" + r(32, HEX))
    add("digitalocean", "dop_v1_" + r(64, HEX))
    add("databricks", "dapi" + r(32, HEX))
    add("telegram", r(10, string.digits) + ":AA" + r(33))
    add("vault", "hvs." + r(90))
    add("age", "AGE-SECRET-KEY-1" + r(58, BECH32))
    add("grafana", "glsa_" + r(32) + "_" + r(8, HEX))
    # keys, multi-line and one-line
    for kind in (
        "RSA PRIVATE KEY",
        "EC PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
        "PGP PRIVATE KEY BLOCK",
    ):
        block = pem(r, kind)
        lines = ['KEY = """', *block, '"""']
        out.append(
            Plant("key_" + kind.split()[0].lower(), "\n".join(block[1:-1]), tuple(lines), True)
        )
    block = pem(r, "PRIVATE KEY", 6)
    one_line = "\\n".join(block) + "\\n"
    out.append(
        Plant(
            "gcp_service_account",
            "\\n".join(block[1:-1]),
            (f'SERVICE_ACCOUNT = {{"type": "service_account", "private_key": "{one_line}"}}',),
            True,
        )
    )
    kube = base64.b64encode("\n".join(pem(r, "RSA PRIVATE KEY", 6)).encode()).decode()
    out.append(Plant("kubeconfig_key", kube, (f'KUBE = "client-key-data: {kube}"',), True))
    auth = base64.b64encode(f"deploy:{r(20)}".encode()).decode()
    out.append(
        Plant(
            "docker_auth", auth, (f'DOCKER = {{"auths": {{"r.io": {{"auth": "{auth}"}}}}}}',), True
        )
    )
    # encoded and split
    token = "ghp_" + r(36)
    encoded = base64.b64encode(token.encode()).decode()
    out.append(Plant("github_base64", encoded, (f'ENCODED = "{encoded}"',), True))
    token = "ghp_" + r(36)
    out.append(Plant("github_split", token, (f'SPLIT = "{token[:14]}" + "{token[14:]}"',), True))
    token = "ghp_" + r(36)
    out.append(
        Plant(
            "github_split_lines",
            token,
            ("SPLIT_LINES = (", f'    "{token[:20]}"', f'    "{token[20:]}"', ")"),
            True,
        )
    )
    token = "ghp_" + r(36)
    out.append(
        Plant("github_url_user", token, (f'REMOTE = "https://{token}@github.com/o/r.git"',), True)
    )
    # A token across the prompt's 400-character line limit: its head must not be sent alone.
    token = "ghp_" + r(36)
    out.append(Plant("github_at_clip", token, (f'PADDED = ["{"x" * 370}", "{token}"]',), True))
    return out


def heuristic_plants(r: Rand) -> list[Plant]:
    """Headers, assignments, connection strings, URLs, JWTs and unnamed random strings."""
    out: list[Plant] = []

    def add(pid: str, value: str, *lines: str) -> None:
        out.append(Plant(pid, value, lines, False))

    v = r(40, ALNUM + "._-")
    add("bearer", v, f'HEADERS = {{"Authorization": "Bearer {v}"}}')
    v = base64.b64encode(f"svc:{r(16)}".encode()).decode()
    add("basic", v, f'BASIC = {{"Authorization": "Basic {v}"}}')
    v = r(32)
    add("x_api_key", v, f'requests.get(URL, headers={{"X-Api-Key": "{v}"}})')
    v = r(14)
    add("connection_password", v, f'DSN = "Server=db1;Database=app;User Id=app;Password={v};"')
    v = r(14)
    add("url_password", v, f'DATABASE_URL = "postgres://app:{v}@db.internal:5432/app"')
    v = r(32, HEX)
    add("client_secret", v, f'client_secret = "{v}"')
    v = r(24)
    add("signing_key", v, f'SIGNING_KEY = "{v}"')
    v = r(20)
    add("db_pass", v, f'DB_PASS = "{v}"')
    v = r(8, string.ascii_lowercase) + r(4, string.digits) + "!"
    add("password_symbol", v, f'password = "{v}"')
    v = r.words(4)
    add("passphrase", v, f'passphrase = "{v}"')
    v = r(40)
    add("unnamed_random", v, f'CHECK = "{v}"')
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    v = f"{header}.eyJ{r(60, ALNUM + '-_')}.{r(43, ALNUM + '-_')}"
    add("jwt", v, f'TOKEN = "{v}"')
    return out


def config_plants(r: Rand) -> dict[str, tuple[str, list[Plant]]]:
    """Named values in YAML, TOML and shell files: path -> (file text, plants)."""
    yaml_v, kube_v, toml_v, shell_v, conf_v = r(24), r(40), r(28), r(32), r(18)
    files = {
        "deploy/values.yaml": (
            f"app:\n  replicas: 2\n  db_password: {yaml_v}\nusers:\n- name: ci\n  user:\n"
            f"    token: {kube_v}\n",
            [
                Plant("yaml_password", yaml_v, (), False),
                Plant("kubeconfig_token", kube_v, (), False),
            ],
        ),
        "config/app.toml": (
            f'[service]\nname = "app"\napi_token = "{toml_v}"\n',
            [Plant("toml_token", toml_v, (), False)],
        ),
        "bin/bootstrap.sh": (
            f"#!/bin/sh\nexport SERVICE_TOKEN={shell_v}\nexec app\n",
            [Plant("shell_token", shell_v, (), False)],
        ),
        "docker/app.conf": (
            f"SMTP_HOST=mail.internal\nSMTP_PASS={conf_v}\n",
            [Plant("env_style_pass", conf_v, (), False)],
        ),
    }
    return files
