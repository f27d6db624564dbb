"""The planted-secret corpus, end to end: a real repository whose change plants 78 credential
values in added, context and removed lines, file names, `.env` variants, split and encoded
forms; the whole pipeline runs with the real SDK against the loopback model.  Not one value may
appear in any request body, and every provider-format value that the change adds must be a
blocking (critical) local finding on its line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic
from gitrepo import commit
from model_helpers import config, make_change, review, route_for
from planted import Plant, Rand, config_plants, exact_plants, heuristic_plants, pem

from tierbot.cli import main
from tierbot.pipeline import Options, run_review
from tierbot.review.prompt import redact_text


def _file(header: str, plants: list[Plant], footer: str = "") -> str:
    lines = [header]
    for p in plants:
        lines.extend(p.lines)
    return "\n".join(lines) + "\n" + footer


def _fragments(value: str) -> list[str]:
    """The value and the pieces of it that alone would leak it: each line of a multi-line value,
    and the random tail of a token (a partial redaction would leave it)."""
    parts = [v for v in value.split("\n") if len(v) >= 8] if "\n" in value else [value]
    parts += [p.replace("\\n", "") for p in value.split("\\n") if len(p) >= 16]
    return [*parts, *(p[-16:] for p in parts if len(p) >= 24)]


def test_no_planted_secret_reaches_the_model_and_each_provider_format_blocks(
    repo: Path, fake: FakeAnthropic
) -> None:
    r = Rand()
    exact = exact_plants(r)
    heuristic = heuristic_plants(r)
    configs = config_plants(r)
    # Unchanged lines next to the change (diff context and surrounding code) ...
    context = [
        Plant("ctx_bearer", v := r(40), (f'LEGACY = {{"Authorization": "Bearer {v}"}}',), False),
        Plant(
            "ctx_aws",
            v := "AKIA" + r(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
            (f'OLD_ID = "{v}"',),
            True,
        ),
        Plant(
            "ctx_slack", v := "xoxp-" + r(12, "0123456789") + "-" + r(30), (f'SLACK = "{v}"',), True
        ),
    ]
    # ... and lines the change removes.
    removed = [
        Plant("rm_github", v := "ghp_" + r(36), (f'OLD_GH = "{v}"',), True),
        Plant("rm_stripe", v := "sk_live_" + r(30), (f'OLD_STRIPE = "{v}"',), True),
        Plant("rm_password", v := r(16), (f'old_password = "{v}"',), False),
    ]
    block = pem(r, "RSA PRIVATE KEY", 5)
    removed.append(Plant("rm_key", "\n".join(block[1:-1]), ('OLD_KEY = """', *block, '"""'), True))
    # Files never sent whatever their content, by normalised name.
    env_values = {
        name: r(32) for name in (".env ", ".ENV", ".env.production", "config/.env.local", ".envrc")
    }
    # Secrets in file names.
    named_files = {
        f"keys/ghp_{r(36)}.txt": "x = 1\n",
        f"creds/AKIA{r(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}.json": "{}\n",
    }

    header = "import os\n\nDEBUG = False"
    before = {
        "app/settings.py": _file(header, context + removed, "\nTIMEOUT = 30\n"),
        "README.md": "# demo\n",
    }
    after: dict[str, str | bytes] = {
        "app/settings.py": _file(header, context + exact + heuristic, "\nTIMEOUT = 30\n"),
        **{path: text for path, (text, _) in configs.items()},
        **{name: f"APP_SECRET={value}\n" for name, value in env_values.items()},
        **named_files,
    }
    change = make_change(repo, after, before=before)
    result = run_review(change, config(), Options(tier="haiku"))
    assert result.status == "complete", result.notes
    assert fake.requests, "the model was called"

    planted = [
        *exact,
        *heuristic,
        *context,
        *removed,
        *(p for _, plants in configs.values() for p in plants),
        *(Plant(f"env:{n}", v, (), False) for n, v in env_values.items()),
        *(Plant(f"name:{n}", n.split("/")[1].split(".")[0], (), True) for n in named_files),
    ]
    assert len(planted) == 78
    bodies = "\n".join(req.text for req in fake.requests)
    leaked = [p.id for p in planted for frag in _fragments(p.value) if frag in bodies]
    assert leaked == [], f"reached the model: {leaked}"
    # What was sent is still a review: the code around the secrets is there.
    assert "DEBUG = False" in bodies and "TIMEOUT = 30" in bodies
    assert "[REDACTED:github_token]" in bodies and "[REDACTED:private_key]" in bodies

    # Every provider-format value the change adds is a blocking finding on its own line.
    text = after["app/settings.py"]
    assert isinstance(text, str)
    lines = text.splitlines()
    critical = {
        f.line
        for f in result.findings
        if f.path == "app/settings.py" and f.category == "secret" and f.severity == "critical"
    }
    missed = []
    for p in exact:
        # A key's finding sits on its first added line: the BEGIN line, or the first body line
        # when git pairs an unchanged BEGIN line with the removed key's.
        first = p.lines[0] if len(p.lines) == 1 else p.lines[1]
        number = lines.index(first) + 1
        if not critical.intersection(range(number, number + len(p.lines))):
            missed.append(p.id)
    assert missed == [], f"not blocking: {missed}"
    # The named heuristics in application code block too; an unnamed random string is medium.
    by_line = {f.line: f.severity for f in result.findings if f.path == "app/settings.py"}
    for p in heuristic:
        expected = "medium" if p.id == "unnamed_random" else "critical"
        assert by_line.get(lines.index(p.lines[0]) + 1) == expected, p.id
    for path in configs:
        assert any(f.path == path and f.severity == "critical" for f in result.findings), path


def test_secrets_in_commit_subjects_and_pull_request_text_never_reach_the_model(
    repo: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The author's stated intent (commit subjects; a pull request's title and body) joins the
    fenced manifest: credentials pasted into it are redacted like code."""
    r = Rand(seed=3)
    token, password, stripe = "ghp_" + r(36), r(18), "sk_live_" + r(24)
    commit(repo, {"app/core.py": "def f(x):\n    return x\n"}, "base")
    subject = f"Rotate the deploy token {token}, db is postgres://svc:{password}@db.prod:5432/app"
    commit(repo, {"app/core.py": "def f(x):\n    return x + 1\n"}, subject)
    monkeypatch.chdir(repo)
    main(["review", "HEAD~1", "--format", "json"])
    change = make_change(repo, {"app/core.py": "def f(x):\n    return x + 2\n"})
    title_and_body = f"Pull request title: Use the new key\n\nIt is {stripe}, please merge."
    out = review(change, route_for([("u1", "haiku", ["app/core.py"], 0.1)]), intent=title_and_body)
    assert out.status == "complete"
    bodies = "\n".join(req.text for req in fake.requests)
    assert "Rotate the deploy token [REDACTED:github_token]" in bodies  # the intent was sent ...
    assert "Use the new key" in bodies
    for value in (token, password, stripe):  # ... without its secrets
        assert value not in bodies and value[-16:] not in bodies


def test_commit_messages_and_titles_are_redacted_before_they_are_sent() -> None:
    """The same at the function every piece of contributor text goes through."""
    r = Rand(seed=3)
    token, password = "ghp_" + r(36), r(18)
    message = (
        f"Rotate the deploy token {token}\n\n"
        f"The old one leaked; DB is now postgres://svc:{password}@db.prod:5432/app"
    )
    redacted, count = redact_text(message, config())
    assert count == 2
    assert token not in redacted and password not in redacted
    assert redacted.startswith("Rotate the deploy token [REDACTED:github_token]")
