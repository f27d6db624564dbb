"""What tierbot prints stays data: no workflow command it did not mean, no credential in a URL."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from gitrepo import commit

from tierbot.cli import main
from tierbot.github import sanitize
from tierbot.output import guard
from tierbot.secretscan import mask_url_credentials


def test_lines_never_start_with_a_workflow_command() -> None:
    text = "ok\n::set-output name=blocking::false\n   ::stop-commands::x\nlast::fine"
    assert guard(text).split("\n") == [
        "ok",
        "\\::set-output name=blocking::false",
        "\\   ::stop-commands::x",
        "last::fine",
    ]
    # The github format's own annotations stay commands; anything else does not.
    own = "::error file=a.py,line=1::boom\n::warning file=b.py::careful\n::add-mask::x"
    assert guard(own, "github").split("\n") == [
        "::error file=a.py,line=1::boom",
        "::warning file=b.py::careful",
        "\\::add-mask::x",
    ]
    assert guard(own, "markdown").startswith("\\::error")


def test_the_old_command_form_is_defused_anywhere_in_a_line() -> None:
    name = "src/##[set-output name=blocking;]false.py"
    assert "##[" not in guard(f"{name}:1: high: x")
    # In JSON the escape decodes to the very same string.
    doc = json.dumps({"path": name})
    guarded = guard(doc, "json")
    assert "##[" not in guarded and json.loads(guarded) == {"path": name}


def test_a_lone_carriage_return_cannot_start_a_line() -> None:
    # The runner splits its log at a lone CR as well as at LF.
    out = guard("a.py:1: info: x\r::set-output name=blocking::false\r\nnext")
    assert out == "a.py:1: info: x\\r::set-output name=blocking::false\nnext"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("cannot reach http://user:pass@proxy:8080/v1", "cannot reach http://***@proxy:8080/v1"),
        ("https://ghp_abc123@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("socks5h://u:p@h and http://x:y@z", "socks5h://***@h and http://***@z"),
        ("mail me: someone@example.com", "mail me: someone@example.com"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("http://host/path?q=a@b", "http://host/path?q=a@b"),
    ],
)
def test_credentials_in_urls_are_masked(text: str, masked: str) -> None:
    assert mask_url_credentials(text) == masked
    assert guard(text) == masked


def test_pr_and_step_summaries_mask_url_credentials() -> None:
    note = "model: cannot reach the Anthropic API at http://corp:hunter2@proxy.internal:3128"
    posted = sanitize.text(note)
    assert "hunter2" not in posted and "corp:" not in posted and "http://***" in posted


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_base_url_credentials_never_reach_stderr_or_the_report(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The failure line quotes the API address; with ANTHROPIC_BASE_URL carrying a proxy's
    user and password, neither may be printed (stderr, text and JSON reports)."""
    commit(repo, {"app.py": "x = 1\n"}, "root")
    commit(repo, {"app.py": "def f(x):\n    return eval(x)\n"}, "change")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://corp:hunter2pw@127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("TIERBOT_API_RETRIES", "0")
    for fmt in ("text", "json"):
        main(["review", "HEAD~1..HEAD", "--tier", "haiku", "--format", fmt])
        out, err = capsys.readouterr()
        assert "cannot reach the Anthropic API at http://***@127.0.0.1:" in out + err
        assert "hunter2pw" not in out + err and "corp:" not in out + err
