"""Model text -> safe GitHub markdown."""

from __future__ import annotations

import re

import pytest

from tierbot.github import sanitize


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("ask @octocat", "ask `@octocat`"),
        ("ping @my-org/security-team now", "ping `@my-org/security-team` now"),
        ("(@alice)", "(`@alice`)"),
    ],
)
def test_mentions_do_not_ping(raw: str, expected: str) -> None:
    assert sanitize.text(raw) == expected


def test_emails_and_code_are_left_alone() -> None:
    assert sanitize.text("mail a@b.com") == "mail a@b.com"
    assert sanitize.text("use `@property` here") == "use `@property` here"
    fenced = "```python\n@decorator\ndef f(): return '<b>'\n```"
    assert sanitize.text(fenced) == fenced


def test_raw_html_is_escaped_outside_code() -> None:
    out = sanitize.text('<img src=x onerror="alert(1)"> and <details open>')
    assert "<img" not in out and "<details" not in out
    assert "&lt;img" in out and "&lt;details open&gt;" in out


@pytest.mark.parametrize(
    "forged",
    [
        "<!-- tierbot:summary -->",
        "<!--tierbot:head=" + "a" * 40 + "-->",
        "<!--   TierBot:fp=abc -->",
        "```\n<!-- tierbot:summary -->\n```",  # even inside code: markers are read from raw bodies
    ],
)
def test_forged_markers_are_removed_everywhere(forged: str) -> None:
    for out in (sanitize.text(forged), sanitize.code_fence(forged), sanitize.cell(forged)):
        assert re.search(r"<!--\s*tierbot", out, re.IGNORECASE) is None, out


def test_unclosed_fence_is_closed() -> None:
    out = sanitize.text("look:\n```python\nx = 1")
    assert out.endswith("\n```")
    assert out.count("```") == 2


def test_code_fence_cannot_be_broken_out_of() -> None:
    content = "a\n```\n@evil <b>\n````"
    block = sanitize.code_fence(content, "suggestion")
    fence = block.split("\n", 1)[0]
    assert fence == "`````suggestion"
    assert block.endswith("\n`````") and content in block


def test_cell_is_one_line_without_bare_pipes() -> None:
    assert sanitize.cell("a | b\nc") == "a \\| b c"


def test_cap_leaves_short_bodies_alone() -> None:
    body = "x" * sanitize.GITHUB_BODY_LIMIT
    assert sanitize.cap(body) == body


def test_cap_cuts_on_a_line_and_says_so() -> None:
    body = "\n".join(f"line {i} " + "y" * 50 for i in range(3000))
    out = sanitize.cap(body)
    assert len(out) <= sanitize.GITHUB_BODY_LIMIT
    assert "**Cut:**" in out and "not shown" in out
    kept = out.split("\n\n> **Cut:**")[0]
    assert body.startswith(kept) and kept.endswith("y")  # whole lines only


def test_cap_closes_a_fence_it_cut_through() -> None:
    body = "intro\n```\n" + "code\n" * 20000 + "```\n"
    out = sanitize.cap(body, 1000)
    assert len(out) <= 1000
    before_note = out.split("\n\n> **Cut:**")[0]
    assert before_note.count("```") == 2


def test_cap_bytes_counts_utf8() -> None:
    body = "é" * 600_000  # 1.2 MB in UTF-8, 600k characters
    out = sanitize.cap_bytes(body)
    assert len(out.encode()) <= sanitize.STEP_SUMMARY_LIMIT
    assert "bytes not shown" in out
