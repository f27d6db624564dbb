"""Reporters: text, markdown, SARIF (validated against the OASIS schema) and GitHub annotations."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import reporter_samples as samples
from jsonschema import Draft4Validator

import tierbot
from tierbot.records import Finding, Unit
from tierbot.reporters import FORMATS, render
from tierbot.reporters.annotations import escape_data, escape_property
from tierbot.reporters.markdown import render_markdown
from tierbot.reporters.sarif import artifact_uri

# A copy of the public OASIS schema, so tests do not depend on anything outside the clone.
SARIF_SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8")
)
SARIF = Draft4Validator(SARIF_SCHEMA)


def finding(**kw: Any) -> Finding:
    base: dict[str, Any] = dict(
        path="a.py",
        line=1,
        end_line=1,
        severity="high",
        category="logic",
        title="T",
        message="M",
        source="sonnet",
        suggestion=None,
        confidence=0.9,
        fingerprint="fp",
    )
    base.update(kw)
    return Finding(**base)


# --- dispatch ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(samples.ALL()))
def test_every_format_renders_every_sample(fmt: str, name: str) -> None:
    out = render(fmt, samples.ALL()[name])
    assert isinstance(out, str)
    if fmt != "github" or samples.ALL()[name].findings:
        assert out.endswith("\n")


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        render("xml", samples.complete())


# --- text -------------------------------------------------------------------------------


def test_text_complete() -> None:
    out = render("text", samples.complete())
    lines = out.splitlines()
    assert lines[0].startswith("tierbot: main...feature (1f3a5c7..9e8d7c6): 5 files, +368 -293")
    assert lines[0].endswith("risk 0.81 -> opus")
    table = [ln for ln in lines if ln.startswith(("unit ", "u1 ", "u2 ", "u3 "))]
    assert re.match(r"unit\s+tier\s+files\s+risk\s+reason$", table[0])
    assert re.match(r"u1\s+opus\s+src/auth/ \(2 files\)\s+0\.81\s+security-sensitive", table[1])
    assert re.match(
        r"u3\s+skip\s+my dir/new name\.py \+1 more\s+0\.00\s+pure rename; lockfile", table[3]
    )
    found = [ln for ln in lines if re.match(r"\S.*: (critical|high|medium|low|info): ", ln)]
    # Most severe first, one line each, multi-line messages collapsed.
    assert [ln.split(": ")[1] for ln in found] == ["critical", "high", "medium", "low", "info"]
    assert found[0] == (
        "src/auth/login.py:12: critical: AWS access key: An AWS access key id was added; rotate it."
    )
    assert found[1].startswith("src/auth/login.py:30: high: Token check")
    assert "line 30 always passes" in found[1]
    assert found[3].startswith("docs/guide é.md:2: low: ")
    assert found[4].startswith("my dir/new name.py: info: Rename leftover")  # no line
    assert lines[-1] == "cost: $0.0123 spent on 2 model calls (all-Opus $0.0457, 73% saved)"
    assert sum(ln.startswith("cost:") for ln in lines) == 1
    assert "\x1b" not in out


def test_text_dry_run_and_offline_say_what_was_skipped() -> None:
    dry = render("text", samples.dry_run())
    assert "dry run: no model was called" in dry
    assert dry.splitlines()[-1] == "cost: $0.0648 estimated (all-Opus $0.0672, 4% saved)"
    off = render("text", samples.offline())
    # The pipeline's note says it; the reporter does not repeat it.
    assert off.count("model review skipped") == 1
    assert "note: model review skipped: no ANTHROPIC_API_KEY" in off
    assert off.splitlines()[-1].endswith("estimated (all-Opus $0.0672, 4% saved)")
    bare = render("text", replace(samples.offline(), notes=("2 files skipped: lockfile",)))
    assert bare.count("model review skipped") == 1


def test_text_partial_failed_and_empty() -> None:
    part = render("text", samples.partial())
    assert "review incomplete" in part
    assert "note: 2 model findings dropped: lines outside the diff" in part
    assert (
        part.splitlines()[-1] == "cost: $0.0002 spent on 1 model call (all-Opus $0.0066, 98% saved)"
    )
    failed = render("text", samples.failed())
    assert "review failed" in failed
    assert failed.splitlines()[-1] == "cost: $0.0000 spent (no model calls)"
    empty = render("text", samples.empty())
    assert "no findings" in empty
    assert "unit" not in empty  # no routing table without units


def test_text_colour_only_when_asked() -> None:
    plain = render("text", samples.complete(), color=False)
    coloured = render("text", samples.complete(), color=True)
    assert "\x1b[" not in plain
    assert "\x1b[1;31mcritical\x1b[0m" in coloured
    assert "\x1b[35mopus" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_text_strips_terminal_control_from_model_text() -> None:
    evil = finding(title="x\x1b]0;pwned\x07", message="\x1b[2Jcleared", path="a\x1bb.py")
    out = render("text", replace(samples.complete(), findings=(evil,)), color=False)
    assert "\x1b" not in out and "\x07" not in out
    assert "a\\x1bb.py:1: high:" in out  # names are shown with escapes (paths.printable)


def test_text_verbose_shows_signals() -> None:
    out = render("text", samples.complete(), verbose=True)
    assert "signals:" in out
    assert (
        "+0.35 sensitive_path: touches authentication code (src/auth/login.py, src/auth/tokens.py)"
        in out
    )
    assert "-0.05 tests_touched: tests changed with the code" in out
    assert "[secret, rules, 1.00]" in out
    assert "signals:" not in render("text", samples.complete())


def test_text_clips_long_cells_unless_verbose() -> None:
    long_path = "very/" * 20 + "deep.py"
    unit = Unit("u1", "sonnet", "m", (long_path,), 0.5, ("r" * 200,))
    result = replace(samples.complete(), route=replace(samples.ROUTE, units=(unit,)))
    row = next(ln for ln in render("text", result, width=100).splitlines() if ln[:3] == "u1 ")
    assert "…" in row and "deep.py" in row and len(row) < 100
    assert long_path in render("text", result, width=100, verbose=True)
    # No terminal (a pipe, a file): every reason whole.
    assert "r" * 200 in render("text", result)


# --- markdown ---------------------------------------------------------------------------


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_markdown_layout() -> None:
    out = render("markdown", samples.complete())
    assert out.startswith("## tierbot review\n")
    assert "| Files | Tier | Risk | Reason |" in out
    assert (
        "| `src/auth/ (2 files)` | opus | 0.81 | security-sensitive path src/auth/; complexity +6 |"
        in out
    )
    heads = [out.index(f"#### {s} (1)") for s in ("Critical", "High", "Medium", "Low", "Info")]
    assert heads == sorted(heads)
    assert "**Cost:** $0.0123 spent on 2 model calls · all-Opus $0.0457 · **73% saved**" in out
    assert "at `my dir/new name.py`:" in out
    assert "at `src/auth/login.py:30-34`" in out


def test_markdown_escapes_model_text() -> None:
    out = render_markdown(samples.complete())
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "Token check &lt;bypass&gt; \\| always true" in out
    assert "\\*recieve\\*" in out
    # The multi-line message stays inside its list item.
    item = next(ln for ln in out.splitlines() if "Token check" in ln)
    assert "always passes when \\`token\\` is \\`None\\`.<br>" in item
    # The suggestion is a fenced block indented into the list item.
    assert "  ```\n  if token is None:\n      raise Unauthorized()\n  ```" in out


def test_markdown_table_cells_cannot_break_rows() -> None:
    unit = Unit("u1", "haiku", "m", ("we|rd `x` <b>.py",), 0.2, ("reason | with <i>pipe</i>",))
    result = replace(samples.complete(), route=replace(samples.ROUTE, units=(unit,)))
    out = render_markdown(result)
    row = next(ln for ln in out.splitlines() if ln.startswith("| ``"))
    assert _unescaped_pipes(row) == 5
    assert (
        row == "| ``we\\|rd `x` <b>.py`` | haiku | 0.20 | reason \\| with &lt;i&gt;pipe&lt;/i&gt; |"
    )


def test_markdown_suggestion_with_fences_inside() -> None:
    f = finding(suggestion="```\ncode\n```")
    out = render_markdown(replace(samples.complete(), findings=(f,)))
    assert "  ````\n  ```\n  code\n  ```\n  ````" in out


def test_markdown_states_and_notes() -> None:
    assert "**dry run: no model was called**" in render_markdown(samples.dry_run())
    assert "$0.0648 estimated" in render_markdown(samples.dry_run())
    off = render_markdown(samples.offline())
    assert "model review skipped" in off
    part = render_markdown(samples.partial())
    assert "### Notes" in part and "- u1 (opus) not reviewed: model API unreachable" in part
    empty = render_markdown(samples.empty())
    assert "No findings." in empty and "### Routing" not in empty
    assert render_markdown(samples.dry_run(), heading="tierbot <x>").startswith(
        "## tierbot &lt;x&gt;\n"
    )


@pytest.mark.parametrize("limit", [65000, 20000, 3000])
def test_markdown_truncates_findings_with_a_count(limit: int) -> None:
    result = samples.many_findings(2000)
    out = render_markdown(result, max_chars=limit)
    assert len(out) <= limit
    shown = len(re.findall(r"^- \*\*Issue \d+\*\*", out, flags=re.M))
    assert 0 < shown < 2000
    assert f"- {2000 - shown} of 2000 findings not shown here (size limit)" in out
    assert "**Cost:**" in out  # the cost line always survives


def test_markdown_huge_routing_table_and_notes_are_cut_and_counted() -> None:
    units = tuple(
        Unit(f"u{i}", "haiku", "m", (f"pkg{i}/file.py",), 0.1, ("small",)) for i in range(5000)
    )
    notes = tuple(f"note number {i}" for i in range(5000))
    result = replace(samples.complete(), route=replace(samples.ROUTE, units=units), notes=notes)
    out = render_markdown(result)
    assert len(out) <= 65000
    rows = len(re.findall(r"^\| `pkg", out, flags=re.M))
    assert f"{5000 - rows} more review units not shown." in out
    kept = len(re.findall(r"^- note number", out, flags=re.M))
    assert f"- {5000 - kept} more notes not shown." in out
    assert "#### Critical (1)" in out  # findings still have room


def test_markdown_small_result_is_untouched_by_limit() -> None:
    out = render_markdown(samples.complete())
    assert "not shown" not in out and "(truncated)" not in out


# --- sarif ------------------------------------------------------------------------------


def test_sarif_schema_copy_is_the_oasis_draft4_schema() -> None:
    Draft4Validator.check_schema(SARIF_SCHEMA)
    assert "sarif-schema-2.1.0" in SARIF_SCHEMA["id"]


@pytest.mark.parametrize("name", sorted(samples.ALL()))
def test_sarif_validates_against_oasis_schema(name: str) -> None:
    doc = json.loads(render("sarif", samples.ALL()[name]))
    assert [e.message for e in SARIF.iter_errors(doc)] == []
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 1
    driver = doc["runs"][0]["tool"]["driver"]
    assert driver["name"] == "tierbot" and driver["version"] == tierbot.__version__
    assert driver["informationUri"].startswith("https://")


def test_sarif_results() -> None:
    doc = json.loads(render("sarif", samples.complete()))
    run = doc["runs"][0]
    rules, results = run["tool"]["driver"]["rules"], run["results"]
    assert [r["id"] for r in rules] == ["secret", "logic", "style", "design", "debug-leftover"]
    assert all(r["shortDescription"]["text"] for r in rules)
    for res in results:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
    by_rule = {r["ruleId"]: r for r in results}
    assert [
        by_rule[k]["level"] for k in ("secret", "logic", "debug-leftover", "style", "design")
    ] == ["error", "error", "warning", "note", "note"]
    logic = by_rule["logic"]
    assert logic["partialFingerprints"] == {"tierbot/v1": "fp-logic-2"}
    assert logic["properties"] == {"tierbot-severity": "high", "source": "opus"}
    loc = logic["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "src/auth/login.py", "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 30, "endLine": 34}
    assert logic["message"]["text"].startswith("Token check <bypass> | always true: The `if`")
    # Only secrets carry a security-severity (GitHub reads it from the rule).
    assert by_rule["secret"]["properties"]["security-severity"] == "9.5"
    assert rules[0]["properties"] == {"tags": ["tierbot", "security"], "security-severity": "9.5"}
    assert all("security-severity" not in r["properties"] for r in results[1:])
    # No line: no region.
    design = by_rule["design"]["locations"][0]["physicalLocation"]
    assert "region" not in design
    assert design["artifactLocation"]["uri"] == "my%20dir/new%20name.py"
    style = by_rule["style"]["locations"][0]["physicalLocation"]
    assert style["artifactLocation"]["uri"] == "docs/guide%20%C3%A9.md"
    assert style["region"] == {"startLine": 2, "endLine": 2}


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("src/a.py", "src/a.py"),
        ("my dir/ü.py", "my%20dir/%C3%BC.py"),
        ("a#b?c%d.py", "a%23b%3Fc%25d.py"),
        ("c:d/e.py", "c%3Ad/e.py"),  # would otherwise parse as a URI scheme
        ("caf\udce9.txt", "caf%E9.txt"),  # a non-UTF-8 name: its real bytes
    ],
)
def test_sarif_uris_are_relative_and_encoded(path: str, uri: str) -> None:
    assert artifact_uri(path) == uri
    assert urlsplit(uri).scheme == "" and " " not in uri and uri.isascii()
    if "\udce9" not in path:
        assert unquote(uri) == path


def test_sarif_notes_and_failure() -> None:
    run = json.loads(render("sarif", samples.failed()))["runs"][0]
    inv = run["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert inv["toolExecutionNotifications"][0]["message"]["text"].startswith("review failed")
    assert run["results"] == []


# --- github annotations -----------------------------------------------------------------

_UNESCAPE = {"%25": "%", "%0D": "\r", "%0A": "\n", "%3A": ":", "%2C": ","}


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """Parse one workflow command the way the Actions runner does."""
    m = re.match(r"::(\w+)(?: (.*?))?::(.*)$", line)
    assert m, line
    cmd, props_text, data = m.groups()

    def unescape(text: str) -> str:
        return re.sub(r"%(25|0D|0A|3A|2C)", lambda g: _UNESCAPE[g.group(0)], text)

    props: dict[str, str] = {}
    for part in (props_text or "").split(","):
        if part:
            key, _, value = part.partition("=")
            props[key] = unescape(value)
    return cmd, props, unescape(data)


def test_annotations_complete() -> None:
    lines = render("github", samples.complete()).splitlines()
    parsed = [parse_command(ln) for ln in lines]
    assert [p[0] for p in parsed] == ["error", "error", "warning", "notice", "notice"]
    _, props, data = parsed[1]
    assert props == {
        "file": "src/auth/login.py",
        "line": "30",
        "endLine": "34",
        "title": "tierbot high: Token check <bypass> | always true",
    }
    assert data == (
        "The `if` on line 30\nalways passes when `token` is `None`.\n<script>alert(1)</script>"
    )
    assert parsed[0][1].get("endLine") is None  # one-line finding
    assert parsed[4][1] == {"file": "my dir/new name.py", "title": "tierbot info: Rename leftover"}
    assert parsed[4][2] == "Old name still referenced in docs, 50% of the time."
    assert all("\n" not in ln and "\r" not in ln for ln in lines)


def test_annotation_escaping_round_trips() -> None:
    f = finding(
        path="we,ird:dir/a%b.py",
        title="a: b, c",
        message="50% done\r\n::error::forged",
        line=3,
        end_line=3,
    )
    out = render("github", replace(samples.complete(), findings=(f,)))
    assert out == (
        "::error file=we%2Cird%3Adir/a%25b.py,line=3,title=tierbot high%3A a%3A b%2C c"
        "::50%25 done%0D%0A::error::forged\n"
    )
    _, props, data = parse_command(out.rstrip("\n"))
    assert props["file"] == "we,ird:dir/a%b.py" and props["title"] == "tierbot high: a: b, c"
    assert data == "50% done\r\n::error::forged"
    assert escape_data("%0A") == "%250A" and escape_property("x:y,z") == "x%3Ay%2Cz"


def test_annotations_respect_per_step_limits() -> None:
    base = samples.complete()
    fs = [
        finding(severity=s, line=i + 1, title=f"{s}{i}")
        for s in ("low", "medium", "critical", "info", "high")
        for i in range(12)
    ]
    out = render("github", replace(base, findings=tuple(fs)))
    parsed = [parse_command(ln) for ln in out.splitlines()]
    kinds = [p[0] for p in parsed]
    assert kinds.count("error") == 10 and kinds.count("warning") == 10
    assert kinds.count("notice") == 10  # 9 findings + the closing count
    # Most severe first: the errors are the 12 critical ones before any high.
    assert [p[1]["title"] for p in parsed[:10]] == [
        f"tierbot critical: critical{i}" for i in range(10)
    ]
    last = parsed[-1]
    assert last[0] == "notice" and "file" not in last[1]
    assert last[2].startswith("31 more findings not annotated")  # 60 findings, 29 annotated
    assert kinds == ["error"] * 10 + ["warning"] * 10 + ["notice"] * 10


def test_annotations_under_the_limit_have_no_closing_notice() -> None:
    out = render("github", samples.many_findings(10, "high"))
    assert len(out.splitlines()) == 10 and "not annotated" not in out
    out = render("github", samples.many_findings(11, "high"))
    lines = out.splitlines()
    assert len(lines) == 11 and parse_command(lines[-1])[2].startswith(
        "1 more finding not annotated"
    )


def test_annotations_empty_when_nothing_found() -> None:
    assert render("github", samples.dry_run()) == ""


@pytest.mark.parametrize("make", [samples.dry_run, samples.complete, samples.partial])
def test_one_cost_line_in_the_report_the_hook_and_the_pull_request(make: Any) -> None:
    from tierbot.commands import hook
    from tierbot.github import pull
    from tierbot.reporters import cost_line

    result = make()
    line = cost_line(result)
    assert line in render("text", result)
    assert line in hook.render(result)
    plan = pull.plan_comments(result.findings, {}, (), 10)
    ctx = pull.SummaryContext(result.range.base, result.range.base, "", None, 0)
    assert line in pull.summary_body(result, plan, ctx)
