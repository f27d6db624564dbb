"""What each detector reports: the kind of secret, its wording, and whether its format is exact.

An exact format (a provider's token prefix, a private-key block, a config pattern the owner wrote)
is a secret wherever it appears.  Everything else is a heuristic whose severity depends on where it
is (`context.severity`).
"""

from __future__ import annotations

from typing import NamedTuple


class SecretMatch(NamedTuple):
    kind: str  # a key of KINDS
    start: int  # span of the secret within the text (the value, not its name)
    end: int
    weak: bool = False  # a placeholder, public sample, template or encoded test value


class Kind(NamedTuple):
    label: str  # human wording for titles and messages (never the value itself)
    exact: bool  # a known format: blocks wherever it is (unless weak)


KINDS: dict[str, Kind] = {
    # provider formats
    "aws_access_key_id": Kind("AWS access key id", True),
    "aws_secret_access_key": Kind("AWS secret access key", True),
    "github_token": Kind("GitHub token", True),
    "gitlab_token": Kind("GitLab token", True),
    "anthropic_api_key": Kind("Anthropic API key", True),
    "openai_api_key": Kind("OpenAI-style API key", True),
    "slack_token": Kind("Slack token", True),
    "slack_webhook": Kind("Slack webhook URL", True),
    "discord_webhook": Kind("Discord webhook URL", True),
    "stripe_key": Kind("Stripe secret key", True),
    "google_api_key": Kind("Google API key", True),
    "google_oauth": Kind("Google OAuth secret or token", True),
    "azure_storage_key": Kind("Azure storage account key", True),
    "azure_sas": Kind("Azure shared access signature", True),
    "azure_client_secret": Kind("Azure client secret", True),
    "huggingface_token": Kind("Hugging Face token", True),
    "docker_token": Kind("Docker access token", True),
    "docker_auth": Kind("Docker registry credentials", True),
    "npm_token": Kind("npm token", True),
    "pypi_token": Kind("PyPI token", True),
    "sendgrid_key": Kind("SendGrid API key", True),
    "shopify_token": Kind("Shopify token", True),
    "digitalocean_token": Kind("DigitalOcean token", True),
    "databricks_token": Kind("Databricks token", True),
    "telegram_bot_token": Kind("Telegram bot token", True),
    "vault_token": Kind("HashiCorp Vault token", True),
    "age_secret_key": Kind("age secret key", True),
    "grafana_token": Kind("Grafana token", True),
    "private_key": Kind("private key", True),
    "kubeconfig_key": Kind("kubeconfig client key", True),
    "custom": Kind("secret (custom pattern)", True),
    # heuristics: severity depends on where they are
    "jwt": Kind("JSON Web Token", False),
    "auth_header": Kind("credential in an Authorization or API-key header", False),
    "connection_password": Kind("password in a connection string", False),
    "url_password": Kind("password in a URL", False),
    "generic_secret": Kind("hard-coded secret", False),
    "high_entropy_string": Kind("random-looking string (possible secret)", False),
}


def label(kind: str) -> str:
    k = KINDS.get(kind)
    return k.label if k else "secret"


def exact(kind: str) -> bool:
    k = KINDS.get(kind)
    return bool(k and k.exact)
