"""The shared secret detectors: every kind found, no secret survives redaction, normal code is
left alone, and never_send paths."""

from __future__ import annotations

import string
import subprocess
import sys
import time
from base64 import b64encode

import pytest
from planted import B64, Rand, pem
from rules_helpers import fake_secrets, private_key_lines

from tierbot.errors import BadInput
from tierbot.secretscan import (
    KINDS,
    DeadlineExceeded,
    entropy,
    find_secrets,
    never_send,
    redact,
    severity,
)

S = fake_secrets()

# (line as it would appear in real code/config, the secret planted in it, expected kind)
POSITIVE = [
    (
        f'aws_access_key_id = "{S["aws_access_key_id"]}"',
        S["aws_access_key_id"],
        "aws_access_key_id",
    ),
    (
        f'AWS_SECRET_ACCESS_KEY="{S["aws_secret_access_key"]}"',
        S["aws_secret_access_key"],
        "aws_secret_access_key",
    ),
    (
        f"  aws_secret_access_key: {S['aws_secret_access_key']}",
        S["aws_secret_access_key"],
        "aws_secret_access_key",
    ),
    (
        f'const octokit = new Octokit({{ auth: "{S["github_token"]}" }});',
        S["github_token"],
        "github_token",
    ),
    (f"GH_TOKEN={S['github_pat']}", S["github_pat"], "github_token"),
    (
        f'client = anthropic.Anthropic(api_key="{S["anthropic_api_key"]}")',
        S["anthropic_api_key"],
        "anthropic_api_key",
    ),
    (f"OPENAI_API_KEY = '{S['openai_api_key']}'", S["openai_api_key"], "openai_api_key"),
    (f'slack = WebClient(token="{S["slack_token"]}")', S["slack_token"], "slack_token"),
    (f'stripe.api_key = "{S["stripe_key"]}"', S["stripe_key"], "stripe_key"),
    (
        f'<meta name="maps-key" content="{S["google_api_key"]}">',
        S["google_api_key"],
        "google_api_key",
    ),
    (f"//registry.npmjs.org/:_authToken={S['npm_token']}", S["npm_token"], "npm_token"),
    (f'headers = {{"Authorization": "Bearer {S["jwt"]}"}}', S["jwt"], "jwt"),
    (f'client_secret = "{S["generic_secret"]}"', S["generic_secret"], "generic_secret"),
    (f'    "db_password": "{S["generic_secret"]}",', S["generic_secret"], "generic_secret"),
    (f'const apiKey: string = "{S["generic_secret"]}";', S["generic_secret"], "generic_secret"),
    (f'SESSION_SECRET := "{S["generic_secret"]}"', S["generic_secret"], "generic_secret"),
    (f"DB_PASSWORD={S['generic_secret']}", S["generic_secret"], "generic_secret"),
    (f"export SIGNING_KEY={S['generic_secret']}", S["generic_secret"], "generic_secret"),
    (f"  password: {S['generic_secret']}", S["generic_secret"], "generic_secret"),
    (
        f'DATABASE_URL = "postgres://app:{S["url_password"]}@db.internal:5432/app"',
        S["url_password"],
        "url_password",
    ),
]

# Ordinary code that mentions tokens, keys and passwords without containing one.
NEGATIVE = [
    'password = os.environ["DB_PASSWORD"]',
    "token = request.headers.get('Authorization')",
    'api_key = "${API_KEY}"',
    "secret = 'changeme'",
    'password_field = "user_password_confirmation"',
    'token_url = "https://oauth2.googleapis.com/token"',
    'API_KEY = "<your-api-key-here>"',
    'OPENAI_API_KEY = "sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"',
    'tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")',
    'if token == "abcdef1234567890abcd":',
    "const passwordRegex = /^(?=.*[A-Z])(?=.*\\d).{8,}$/;",
    "pip install scikit-learn  # sk-learn compatible estimators-for-everyone",
    'password_hint: str = "Use at least 12 characters"',
    "secret_key = settings.SECRET_KEY_V2",
    'url = "https://user:${PASSWORD}@host/"',
    "token: TokenProvider2Factory",
    "max_tokens = 1024",
    'SECRET_KEY_NAME = "DJANGO_SECRET_KEY_2"',
    'csrf_token = "{{ csrf_token }}"',
    "password = hashlib.sha256(salt + pw).hexdigest()",
    "auth_token = generate_token(user_id=42)",
    'git_sha = "3f2a9c1b7d8e4f5a6b7c8d9e0f1a2b3c4d5e6f7a"',
    'TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"',
    "import { tokenize } from './tokenizer-v2-implementation';",
    'access_key_id_env = "AWS_ACCESS_KEY_ID"',
    'secret_path = "/var/run/secrets/kubernetes.io/serviceaccount/token"',
    "let token = await getAccessToken(client, scopes);",
    'password_reset_template = "emails/password_reset_v2.html"',
    'self.api_key = api_key or os.getenv("SERVICE_API_KEY")',
    "    api_key: Optional[str] = None",
    'TOKEN_PATTERN = r"(?u)\\b\\w\\w+\\b"',
    "key = f'{prefix}:{user_id}:{timestamp}'",
    'private_key_path = "~/.ssh/id_ed25519"',
    "uuid = '123e4567-e89b-12d3-a456-426614174000'",
    'image: "ghcr.io/org/app:sha-4f2a9c1"',
    "- name: Set up Python 3.11",
    "    secretName: app-tls-cert-2024",
    "password: ${{ secrets.DB_PASSWORD }}",
]


@pytest.mark.parametrize(("line", "secret", "kind"), POSITIVE)
def test_each_detector_finds_its_secret(line: str, secret: str, kind: str) -> None:
    matches = find_secrets(line)
    assert [m.kind for m in matches] == [kind]
    m = matches[0]
    assert secret in line[m.start : m.end]
    assert kind in KINDS
    redacted, count = redact(line)
    assert count == 1
    assert secret not in redacted
    assert f"[REDACTED:{kind}]" in redacted


@pytest.mark.parametrize("line", NEGATIVE)
def test_normal_code_is_not_a_secret(line: str) -> None:
    assert find_secrets(line) == []
    assert redact(line) == (line, 0)


def test_no_secret_survives_redacting_a_realistic_patch() -> None:
    key = private_key_lines("OPENSSH", 6)
    lines = [line for line, _, _ in POSITIVE]
    patch = (
        "\n".join(
            [
                "diff --git a/settings.py b/settings.py",
                "@@ -1,3 +1,40 @@",
                " import os",
                *("+" + line for line in lines),
                "+KEY = '''",
                *("+" + line for line in key),
                "+'''",
                " DEBUG = False",
            ]
        )
        + "\n"
    )
    redacted, count = redact(patch)
    for _, secret, _ in POSITIVE:
        assert secret not in redacted
    for body in key[1:-1]:
        assert body not in redacted
    assert "BEGIN OPENSSH PRIVATE KEY" not in redacted
    assert count == len(POSITIVE) + 1
    assert redacted.count("[REDACTED:private_key]") == 1
    # Everything that is not a secret is still there for the reviewer.
    assert " import os" in redacted and " DEBUG = False" in redacted and "+KEY = '''" in redacted
    assert redacted.splitlines()[-1] == " DEBUG = False"


def test_private_key_without_end_marker_stops_at_first_code_line() -> None:
    key = private_key_lines("EC", 3)[:-1]  # the END line is outside the diff
    text = "\n".join([*key, "def load():", "    return 1"])
    redacted, count = redact(text)
    assert count == 1
    # Line breaks stay, so the numbering of a patch's later lines does not move.
    assert redacted == "[REDACTED:private_key]\n\n\n\ndef load():\n    return 1"


def test_private_key_on_one_line_in_a_string() -> None:
    key = private_key_lines("RSA", 2)
    line = 'PEM = "' + "\\n".join(key) + '"  # test fixture'
    redacted, count = redact(line)
    assert count == 1
    assert redacted == 'PEM = "[REDACTED:private_key]"  # test fixture'


def test_pgp_and_encrypted_key_blocks() -> None:
    headers = ("-----BEGIN PGP PRIVATE KEY BLOCK-----", "-----BEGIN ENCRYPTED PRIVATE KEY-----")
    for header in headers:
        text = header + "\nProc-Type: 4,ENCRYPTED\n\nabcdEFGH1234+/==\n-----END PRIVATE KEY-----\nx"
        assert redact(text) == ("[REDACTED:private_key]\n\n\n\n\nx", 1)


def test_a_public_key_or_certificate_is_not_secret() -> None:
    text = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----"
    assert find_secrets(text) == []
    assert find_secrets("-----BEGIN CERTIFICATE-----") == []


def test_several_secrets_on_one_line_and_overlaps() -> None:
    line = f'creds = {{"a": "{S["github_token"]}", "b": "{S["stripe_key"]}"}}'
    redacted, count = redact(line)
    assert count == 2
    assert redacted == 'creds = {"a": "[REDACTED:github_token]", "b": "[REDACTED:stripe_key]"}'
    # A known format inside a secret-named assignment is reported once, as the specific kind.
    line = f'github_token = "{S["github_token"]}"'
    assert [m.kind for m in find_secrets(line)] == ["github_token"]


def test_extra_patterns_from_config() -> None:
    line = "INTERNAL=corp-" + "9f8e7d6c5b4a"
    assert find_secrets(line) == []
    redacted, count = redact(line, [r"corp-[0-9a-f]{12}"])
    assert (redacted, count) == ("INTERNAL=[REDACTED:custom]", 1)
    # Empty matches never loop or insert markers.
    assert redact("abc", [r"x*"]) == ("abc", 0)
    with pytest.raises(BadInput, match=r"redact\.patterns"):
        find_secrets("anything", ["(unclosed"])


def test_entropy() -> None:
    assert entropy("") == 0.0
    assert entropy("aaaa") == 0.0
    assert entropy("abcd") == pytest.approx(2.0)
    assert entropy(S["generic_secret"]) > 3.0


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "config/.env",
        ".env.production",
        "deploy/.env.local",
        "prod.env",
        "certs/server.pem",
        "tls/server.key",
        "home/.ssh/id_rsa",
        "id_rsa.pub",
        "keys/id_ed25519",
        "id_ecdsa",
        "id_dsa",
        "store.p12",
        "cert.PFX",
        "android/release.keystore",
        "app.jks",
        ".netrc",
        ".aws/credentials",
        "ops/.aws/credentials",
        ".git-credentials",
        ".npmrc",
        ".pypirc",
        "credentials.json",
        "gcp/service-account-prod.json",
        "infra/terraform.tfstate",
        "prod.tfvars",
        ".htpasswd",
        ".docker/config.json",
        "config/secrets.yml",
        "AuthKey_ABC123.p8",
    ],
)
def test_never_send_paths(path: str) -> None:
    assert never_send(path)
    assert never_send("./" + path)


@pytest.mark.parametrize(
    "path",
    [
        "app.py",
        ".env.example",
        "config/.env.sample",
        ".env.template",
        "src/credentials/views.py",
        "docs/secrets.md",
        "keyboard.py",
        "src/env.py",
        "environment.yml",
        "monkey.js",
        "tests/test_tokens.py",
        "src/auth/keys.py",
        "docker/config.yaml",
        "package.json",
    ],
)
def test_normal_paths_are_sent(path: str) -> None:
    assert not never_send(path)


def test_never_send_extra_globs_use_gitignore_rules() -> None:
    assert never_send("conf/local.yml", ["conf/*.yml"])
    assert not never_send("other/conf/local.yml", ["/conf/*.yml"])
    assert never_send("deep/private/notes.txt", ["private/"])
    assert never_send("a/b/c.secret.json", ["*.secret.json"])
    assert not never_send("a/b/c.json", ["*.secret.json"])


def test_import_is_cheap() -> None:
    """The dry-run path imports redact; it must not pull in pathspec until extra globs exist."""
    code = (
        "import sys, tierbot.secretscan as r; r.never_send('.env'); r.redact('x = 1');"
        "print('pathspec' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "line",
    [
        'URL = "http://user:password123@example.org/"',
        'URL = "https://a%20secret:x9Fk2mQ7zL@example.com/path"',
        'URL = "https://bob:Zq81LmX0pW4r@api.example"',
    ],
)
def test_example_domain_credentials_are_weak(line: str) -> None:
    # Redacted all the same, but reported at low: documentation hosts hold illustrations.
    (m,) = find_secrets(line)
    assert m.kind == "url_password" and m.weak


def test_placeholder_url_credentials_in_docs_are_weak() -> None:
    (m,) = find_secrets("httpx.Client(proxy='socks5://user:pass@host:port')")
    assert m.weak
    (m,) = find_secrets("proxy = 'http://admin:Tr0ub4dor3x@proxy.corp.net:3128'")
    assert not m.weak


# ------------------------------------------------------------------ the engine's newer detectors

R = Rand(seed=5)


def _kinds(text: str) -> list[tuple[str, bool]]:
    return [(m.kind, m.weak) for m in find_secrets(text)]


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (f'headers = {{"Authorization": "Bearer {R(40)}"}}', "auth_header"),
        (f"curl -H 'Authorization: token {R(36)}' https://api", "auth_header"),
        (
            'auth = {"Authorization": "Basic ' + b64encode(f"svc:{R(12)}".encode()).decode() + '"}',
            "auth_header",
        ),
        (f'session.headers["X-Api-Key"] = "{R(32)}"', "auth_header"),
        (f'DSN = "Server=db;Database=app;User Id=sa;Password={R(14)};"', "connection_password"),
        (f'url = "jdbc:sqlserver://db;user=sa;password={R(14)}&ssl=true"', "connection_password"),
        (f'passphrase = "{R.words(4)}"', "generic_secret"),
        (f'DB_PASS = "{R(10)}!{R(4)}"', "generic_secret"),
        (f"    api_token: {R(30)}", "generic_secret"),
        (f'const value = "{R(40)}";', "high_entropy_string"),
        ('TOKEN = "' + b64encode(("ghp_" + R(36)).encode()).decode() + '"', "github_token"),
        (f'T = "ghp_{R(12)}" + "{R(24)}"', "github_token"),
        (
            "client-key-data: " + b64encode("\n".join(pem(R, "RSA PRIVATE KEY")).encode()).decode(),
            "kubeconfig_key",
        ),
        (
            '{"auths": {"r.io": {"auth": "' + b64encode(f"ci:{R(20)}".encode()).decode() + '"}}}',
            "docker_auth",
        ),
        (f"AccountKey={R(86, B64)}==;EndpointSuffix=core.windows.net", "azure_storage_key"),
        (f'HF = "hf_{R(34, string.ascii_letters)}"', "huggingface_token"),
        (f'DOCKER = "dckr_pat_{R(27)}"', "docker_token"),
        (f"password=pypi-AgEIcHlwaS5vcmc{R(60)}", "pypi_token"),
    ],
)
def test_newer_detectors(line: str, kind: str) -> None:
    assert _kinds(line) == [(kind, False)]
    redacted, count = redact(line)
    assert count == 1 and f"[REDACTED:{kind}]" in redacted


def test_a_token_split_over_lines_is_one_secret_and_keeps_the_lines() -> None:
    token = "ghp_" + R(36)
    text = f'TOKEN = (\n    "{token[:20]}"\n    "{token[20:]}"\n)\nx = 1'
    (m,) = find_secrets(text)
    assert m.kind == "github_token" and text[m.start : m.end].count("\n") == 1
    redacted, _ = redact(text)
    assert token[:20] not in redacted and token[20:] not in redacted
    assert redacted.count("\n") == text.count("\n") and redacted.endswith(")\nx = 1")


# What the issue lists as false alarms: still found (and redacted), but weak, so reported low.
WEAK = [
    'assert u.href == "http://%C3%BCser:p%C3%A4ssword@host/p%C3%A5th"',
    'URL = "protocol://admin:123@service:8080"',
    'PEM = "-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEA...\\n-----END RSA PRIVATE KEY-----"',
    'api_key = "test_api_key_1234567890abcdef"',
    "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
    'T = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9l'
    'IiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"',
    "mssql = mssql+pyodbc://scott:tiger^5HHH@mssql2022:1433/test",
    'proxy = "socks5://user:pass@host:1080"',
]


@pytest.mark.parametrize("line", WEAK)
def test_placeholders_samples_and_encoded_values_are_weak(line: str) -> None:
    found = find_secrets(line)
    assert found and all(m.weak for m in found)
    assert all(severity(m, "src/app.py") == "low" for m in found)


# More ordinary code that must stay silent (and unredacted).
MORE_NEGATIVE = [
    'SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"',
    'integrity="sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC"',
    'ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"',
    'cls = "AbstractSingletonProxyFactoryBean2"',
    'password_label = "Please enter your password"',
    "db.connect(host=host, password=pw)",
    'headers = {"Authorization": f"Bearer {token}"}',
    'run("curl -H \\"Authorization: Bearer ${TOKEN}\\" $URL")',
    'id = "550e8400-e29b-41d4-a716-446655440000"',
    'icon = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"',
    "if line.startswith('-----BEGIN RSA PRIVATE KEY-----'):",
    'secret_name = "prod/db/password"',
    "token_count = 4096",
]


@pytest.mark.parametrize("line", MORE_NEGATIVE)
def test_more_ordinary_code_is_not_a_secret(line: str) -> None:
    assert find_secrets(line) == []


def test_severity_depends_on_where_a_hit_is() -> None:
    token = find_secrets(f'T = "ghp_{R(36)}"')[0]
    named = find_secrets(f'password = "{R(10)}!{R(3)}"')[0]
    unnamed = find_secrets(f'V = "{R(40)}"')[0]
    for path in ("src/app.py", "tests/test_app.py", "docs/setup.md", "examples/run.py"):
        assert severity(token, path) == "critical"  # a provider format blocks anywhere
    assert severity(named, "src/app.py") == "critical"
    assert severity(unnamed, "src/app.py") == "medium"
    for path in ("tests/test_app.py", "fixtures/users.json", "docs/setup.md", "examples/run.py"):
        assert severity(named, path) == "low" and severity(unnamed, path) == "low"


def test_redaction_keeps_the_numbered_diff_prefixes() -> None:
    key = private_key_lines("EC", 3)
    numbered = [f"{10 + i:>6} + {line}" for i, line in enumerate(key)] + ["    15   x = 1"]
    redacted, count = redact("\n".join(numbered))
    assert count == 1
    assert redacted.split("\n") == [
        "    10 + [REDACTED:private_key]",
        "    11 + ",
        "    12 + ",
        "    13 + ",
        "    14 + ",
        "    15   x = 1",
    ]


def test_the_deadline_stops_the_engine_between_detectors() -> None:
    with pytest.raises(DeadlineExceeded):
        find_secrets("x = 1", deadline=time.monotonic() - 1)
    assert find_secrets("x = 1", deadline=time.monotonic() + 60) == []


@pytest.mark.parametrize(
    "path",
    [
        ".env ",
        " .env",
        ".ENV",
        ".env.",
        ".e\u200bnv",
        "deploy/.Env.Production",
        ".envrc",
        "sub/.npmrc",
        ".PYPIRC",
        "home/.netrc",
        "certs/client.P12",
        "store.pfx ",
        "credentials-prod.json",
        "gcp/Credentials.json",
        "kubeconfig",
        "clusters/prod.kubeconfig",
        "home/.kube/config",
        "keys/id_github",
        "keys/id_ed25519.pub",
        "home/.ssh/known_hosts",
    ],
)
def test_never_send_matches_normalised_names(path: str) -> None:
    assert never_send(path)


@pytest.mark.parametrize(
    "path",
    ["src/id_utils.py", "docs/kubeconfig.md", ".env.example ", "envoy.yaml", "credentials.py"],
)
def test_never_send_normalisation_does_not_overreach(path: str) -> None:
    assert not never_send(path)


def test_never_send_config_globs_match_the_normalised_name_too() -> None:
    assert never_send("conf/Prod.Secrets.YML ", ["*.secrets.yml"])
    assert not never_send("conf/prod.yml", ["*.secrets.yml"])


def test_lizard_cannot_put_tierbot_first_on_sys_path() -> None:
    """lizard inserts the directory of sys.argv[0] at sys.path[0] when it is imported; under
    `python -m tierbot` that is tierbot/, where `secrets` (stdlib) or `github` (PyGithub) would
    then be found as our own modules (the refused-connection hook crashed on prompt's
    `secrets.token_hex` that way)."""
    code = (
        "import os, sys, tierbot\n"
        "sys.argv[0] = os.path.join(os.path.dirname(tierbot.__file__), '__main__.py')\n"
        "before = list(sys.path)\n"
        "from tierbot.analysis import complexity\n"
        "complexity._functions('a.py', 'def f(x):\\n    return x\\n')\n"
        "assert sys.path == before, sys.path[:2]\n"
        "import secrets\n"
        "assert secrets.token_hex(4)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
