"""Free, deterministic checks on the ADDED lines of a change (SPEC §4 severities).

They run on every review, with or without an API key, so they must be cheap: regexes are compiled
once, each rule family is one combined regex per language, and most lines are rejected by a
substring test before any regex runs.

Deliberate choices (precision over recall, since these run unasked on every commit):
- Python `print(`, Go `fmt.Println(`, Ruby `puts` and Kotlin `println(` are never flagged: they are
  how command-line programs talk, and one added line cannot tell a CLI from a library.
- JS/TS `console.log(`, Java `System.out.println(` and Go's builtin `println(` are flagged, except
  in paths that look like scripts, CLIs, examples or tests.  Debugger statements (`breakpoint()`,
  `debugger;`, `binding.pry`, `dbg!(` ...) are flagged everywhere except in commented-out lines.
- Focused and skipped tests are matched only by the test-framework call shapes of each language
  (`fit("...")` needs a string description, so `model.fit(` and `fit(bounds)` never match).
- Skipped tests count decorators and calls that skip unconditionally; `skipif`/`skipIf` do not.
- A secret's value never appears in a finding: only its kind.  Its severity depends on where it
  is (`tierbot.secretscan.severity`): provider formats and private keys block anywhere, heuristic
  hits in tests, fixtures, docs and examples and placeholder-looking values are `low`.
- Conflict markers in Markdown/RST count only outside fenced code, and a bare `=======` (or any
  marker line standing under a heading) in prose is a heading underline, not a conflict.
- A deadline (the hook's `timeout_s`) bounds the checks: files not reached are counted in a note.
"""

from __future__ import annotations

import re
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from itertools import accumulate
from typing import NamedTuple

from tierbot import findings as _findings
from tierbot import secretscan
from tierbot.config import Config
from tierbot.records import FileDiff, Finding, Severity
from tierbot.words import plural, with_article

OVERSIZED_ADDED_LINES = 1000

_SCRIPT_PATH = re.compile(
    r"(?i)(^|/)(scripts?|bin|cli|tools?|examples?|samples?|demos?|benchmarks?|bench|tests?|spec"
    r"|__tests__|e2e|fixtures?)/|(^|/)(cli|main|__main__|manage|setup|conftest)\.[a-z]+$"
    r"|\.(test|spec|stories)\.[jt]sx?$|_test\.go$|(^|/)[^/]*\.config\.[cm]?[jt]s$"
)
_PROSE = frozenset({"markdown", "rst", "text", "asciidoc"})
# A commented-out line (`#[ignore]` and `#!` are Rust/PHP attributes and shebangs, not comments).
_COMMENT_START = re.compile(r"^[ \t]*(?:#(?![\[!])|//|/\*|\*(?:\s|$)|<!--)")

# ---- conflict markers: exactly 7 characters, then a space and a label or the end of the line.
_CONFLICT_OPEN = re.compile(r"^<{7}(?: |$)")
_CONFLICT_BASE = re.compile(r"^\|{7}(?: |$)")
_CONFLICT_MID = re.compile(r"^={7}\s*$")
_CONFLICT_CLOSE = re.compile(r"^>{7}(?: |$)")
# A Markdown code fence (``` or ~~~, up to three spaces in): markers inside one are examples.
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


class _Rule(NamedTuple):
    """A pattern run over a file's added lines joined by newlines (one regex pass per file).

    `hints`: substrings one of which must occur in that text, or the pattern is not run at all.
    Patterns are MULTILINE and use `[ \t]` (never `\\s`) after `^`, so a match starts on the line
    it is about."""

    category: str
    severity: Severity
    title: str
    message: str
    hints: tuple[str, ...]
    pattern: re.Pattern[str]


def _rule(
    category: str,
    severity: Severity,
    title: str,
    message: str,
    hints: tuple[str, ...],
    pattern: str,
) -> _Rule:
    return _Rule(category, severity, title, message, hints, re.compile(pattern, re.MULTILINE))


_JS = ("javascript", "typescript", "vue", "svelte")

_FOCUSED_MSG = (
    "A focused test makes the runner skip every other test. Remove the focus before merging."
)
_SKIPPED_MSG = (
    "This change skips a test unconditionally. Say why in the skip reason and link an "
    "issue, or fix the test."
)
_DEBUGGER_MSG = (
    "A debugger call or import was added; it stops or slows the program when it "
    "runs. Remove it before merging."
)
_PRINT_MSG = (
    "Debug output was added outside a script or test. Remove it or use the project's logger."
)


def _focused(hints: tuple[str, ...], pattern: str) -> _Rule:
    return _rule("focused-test", "high", "Focused test committed", _FOCUSED_MSG, hints, pattern)


def _skipped(hints: tuple[str, ...], pattern: str) -> _Rule:
    return _rule("skipped-test", "low", "Test skipped", _SKIPPED_MSG, hints, pattern)


def _debugger(hints: tuple[str, ...], pattern: str) -> _Rule:
    return _rule(
        "debug-leftover", "medium", "Debugger statement left in", _DEBUGGER_MSG, hints, pattern
    )


def _print(hints: tuple[str, ...], pattern: str) -> _Rule:
    return _rule("debug-leftover", "medium", "Debug print left in", _PRINT_MSG, hints, pattern)


_JS_RULES = (
    _focused(
        ("only", "fit", "fdescribe", "fcontext"),
        r"(?<![\w$.])(?:(?:it|describe|test|context|suite|specify)\.only[ \t]*\("
        r"|f(?:it|describe|context)[ \t]*\([ \t]*['\"`])",
    ),
    _skipped(
        ("skip", "xit", "xdescribe", "xtest", "xcontext"),
        r"(?<![\w$.])(?:(?:it|describe|test|context|suite|specify)\.skip[ \t]*\("
        r"|x(?:it|describe|test|context)[ \t]*\([ \t]*['\"`])",
    ),
    _debugger(("debugger",), r"(?<![\w$.\"'`])debugger[ \t]*;?[ \t]*(?://.*)?$"),
)
_JS_PRINTS = (_print(("console.",), r"(?<![\w$.])console\.(?:log|debug|trace|dir)[ \t]*\("),)

# Always-on rules per language (outside commented-out lines).
_RULES: dict[str, tuple[_Rule, ...]] = {
    **{lang: _JS_RULES for lang in _JS},
    "python": (
        _skipped(("skip",), r"^[ \t]*@(?:pytest\.mark\.skip|unittest\.skip|skip)(?![\w.])"),
        _debugger(
            ("breakpoint", "pdb", "pudb"),
            r"^[ \t]*(?:breakpoint\(\)|import[ \t]+(?:i?pdb|pudb|pdbpp)\b"
            r"|from[ \t]+(?:i?pdb|pudb)[ \t]+import\b)"
            r"|\b(?:i?pdb|pudb)\.(?:set_trace|post_mortem)\(",
        ),
    ),
    "ruby": (
        _focused(
            ("fit", "fdescribe", "fcontext", "fspecify", "focus"),
            r"^[ \t]*(?:f(?:it|describe|context|specify)\b[ \t]*\(?[ \t]*['\"]"
            r"|(?:it|describe|context|specify)\b[^#\n]*,[ \t]*(?::focus\b|focus:[ \t]*true))",
        ),
        _skipped(
            ("xit", "xdescribe", "xcontext", "xspecify", "skip"),
            r"^[ \t]*(?:x(?:it|describe|context|specify)\b|skip\b[ \t]*(?:\(|['\"]|$))",
        ),
        _debugger(
            ("binding.", "byebug", "debugger"),
            r"\bbinding\.(?:pry|irb)\b|^[ \t]*(?:byebug|debugger)[ \t]*$",
        ),
    ),
    "go": (
        _skipped(("Skip",), r"\bt\.Skip(?:f|Now)?\("),
        _debugger(
            ("spew.", "runtime.Breakpoint"),
            r"\bspew\.(?:Dump|Sdump|Printf)[ \t]*\(|\bruntime\.Breakpoint\(\)",
        ),
    ),
    "java": (
        _skipped(("@Disabled", "@Ignore"), r"^[ \t]*@(?:Disabled|Ignore)\b"),
        _debugger(("printStackTrace",), r"\.printStackTrace\([ \t]*\)"),
    ),
    "kotlin": (_skipped(("@Disabled", "@Ignore"), r"^[ \t]*@(?:Disabled|Ignore)\b"),),
    "rust": (
        _skipped(("ignore",), r"^[ \t]*#\[ignore\b"),
        _debugger(("dbg!",), r"(?<![\w:])dbg![ \t]*\("),
    ),
    "csharp": (
        _skipped(("Ignore", "Skip"), r"\[(?:Ignore\b|(?:Fact|Theory)[ \t]*\([ \t]*Skip[ \t]*=)"),
        _debugger(("Debugger.",), r"\bDebugger\.(?:Break|Launch)[ \t]*\("),
    ),
    "php": (
        _debugger(
            ("var_dump", "dd", "xdebug_break"),
            r"(?<![\w>$:\\])(?:var_dump|dd|xdebug_break)[ \t]*\(",
        ),
    ),
}
# Print-style leftovers: only outside script/CLI/example/test paths.
_PRINT_RULES: dict[str, tuple[_Rule, ...]] = {
    **{lang: _JS_PRINTS for lang in _JS},
    "java": (_print(("System.",), r"\bSystem\.(?:out|err)\.print(?:ln|f)?[ \t]*\("),),
    "go": (_print(("print",), r"(?<![\w.])print(?:ln)?\("),),
}
_TODO = re.compile(
    r"(?:#|//|/\*|<!--|^[ \t]*\*|^[ \t]*--|^[ \t]*;|\{-|\(\*)[^\n]*?\b(TODO|FIXME|XXX|HACK)\b",
    re.MULTILINE,
)


def _language(path: str) -> str | None:
    from tierbot.paths import language_for

    return language_for(path)


def _generated(path: str) -> bool:
    from tierbot.paths import skip_reason_for_path

    return skip_reason_for_path(path) in ("lockfile", "vendored", "generated", "minified")


Reader = Callable[[FileDiff], "str | None"]  # a file's new content, for prose fence state


class Checked(NamedTuple):
    findings: list[Finding]
    notes: list[str]  # what the deadline cut short


def check(
    files: Sequence[FileDiff],
    config: Config,
    *,
    deadline: float | None = None,
    read: Reader | None = None,
) -> Checked:
    """Every local-rule finding on the added lines of `files`, each with its fingerprint.
    `deadline` (time.monotonic()) stops the checks between files and secret detectors; `read`
    gives a file's new content so that Markdown fences around a conflict marker are seen."""
    out: list[Finding] = []
    patterns = tuple(config.redact.patterns)
    todo = [
        fd
        for fd in files
        if not (fd.binary or fd.submodule or fd.symlink or fd.status == "deleted")
        and fd.added_lines
    ]
    for done, fd in enumerate(todo):
        try:
            if deadline is not None and time.monotonic() > deadline:
                raise secretscan.DeadlineExceeded
            out.extend(_check_file(fd, patterns, deadline, read))
        except secretscan.DeadlineExceeded:
            left = len(todo) - done
            return Checked(
                out,
                [
                    f"local rules stopped at the time limit: {plural(left, 'file')} not checked"
                    f" (first: {todo[done].path})"
                ],
            )
    return Checked(out, [])


def _finding(
    fd: FileDiff,
    line: int,
    text: str | None,
    severity: Severity,
    category: str,
    title: str,
    message: str,
    *,
    end_line: int | None = None,
    confidence: float = 1.0,
) -> Finding:
    f = Finding(
        path=fd.path,
        line=line,
        end_line=end_line,
        severity=severity,
        category=category,
        title=title,
        message=message,
        source="rules",
        suggestion=None,
        confidence=confidence,
    )
    return replace(f, fingerprint=_findings.fingerprint(f, text))


class _Text:
    """Numbered lines joined by newlines, with offset -> line lookups."""

    def __init__(self, lines: tuple[tuple[int, str], ...]) -> None:
        self.lines = lines
        self.blob = "\n".join(text for _, text in lines)
        self.starts = list(accumulate((len(text) + 1 for _, text in lines[:-1]), initial=0))

    def index(self, offset: int) -> int:
        return bisect_right(self.starts, offset) - 1


def _secrets(fd: FileDiff, patterns: tuple[str, ...], deadline: float | None) -> Iterator[Finding]:
    """Secrets that the change's added lines hold, read together with the unchanged lines the
    diff shows: a key whose BEGIN/END lines are unchanged context while its body is new, or a
    token split between an old and a new line, is still this change's secret."""
    shown = sorted(fd.new_lines.items()) if fd.hunks else []
    numbered = tuple((n, line.text) for n, line in shown) or fd.added_lines
    added = {n for n, line in shown if line.added} or {n for n, _ in fd.added_lines}
    text = _Text(numbered)
    for match in secretscan.find_secrets(text.blob, patterns, deadline=deadline):
        span = range(text.index(match.start), text.index(max(match.start, match.end - 1)) + 1)
        mine = [i for i in span if numbered[i][0] in added]
        if not mine:
            continue  # an unchanged secret is not this change's finding
        number, line = numbered[mine[0]]
        last = mine[0]
        while last + 1 in mine and numbered[last + 1][0] == numbered[last][0] + 1:
            last += 1  # one run of consecutive added lines is one finding
        end_line = numbered[last][0] if last > mine[0] else None
        yield _secret_finding(fd, match, number, line, end_line)


def _check_file(
    fd: FileDiff, patterns: tuple[str, ...], deadline: float | None, read: Reader | None
) -> list[Finding]:
    # A list, not a generator: the deadline must stop this file before any finding is kept.
    return list(_file_findings(fd, patterns, deadline, read))


def _file_findings(
    fd: FileDiff, patterns: tuple[str, ...], deadline: float | None, read: Reader | None
) -> Iterator[Finding]:
    lang = _language(fd.path) or ""
    text = _Text(fd.added_lines)
    blob, lines = text.blob, fd.added_lines

    # -- secrets: one scan of the whole text; the value never reaches the finding
    yield from _secrets(fd, patterns, deadline)

    # -- conflict markers (high)
    if "<<<<<<<" in blob or ">>>>>>>" in blob:
        yield from _conflicts(fd, lang, read)

    # -- focused/skipped tests and debugger leftovers, per language
    rules = _RULES.get(lang, ())
    if _SCRIPT_PATH.search(fd.path) is None:
        rules = rules + _PRINT_RULES.get(lang, ())
    for rule in rules:
        if not any(hint in blob for hint in rule.hints):
            continue
        seen: set[int] = set()
        for m in rule.pattern.finditer(blob):
            index = text.index(m.start())
            if index in seen:
                continue
            seen.add(index)
            number, line = lines[index]
            if _COMMENT_START.match(line):
                continue
            yield _finding(fd, number, line, rule.severity, rule.category, rule.title, rule.message)

    # -- TODO/FIXME (info); prose files use the word legitimately
    if lang not in _PROSE and any(w in blob for w in ("TODO", "FIXME", "XXX", "HACK")):
        seen = set()
        for m in _TODO.finditer(blob):
            index = text.index(m.start(1))
            if index in seen:
                continue
            seen.add(index)
            number, line = lines[index]
            word = m.group(1)
            yield _finding(
                fd,
                number,
                line,
                "info",
                "todo",
                f"{word} comment added",
                f"{with_article(word, capital=True)} comment was added. Track the work in an issue"
                " so it is not forgotten.",
            )

    # -- oversized new files (low), on the first added line so it anchors in every mode
    if fd.status == "added" and len(lines) > OVERSIZED_ADDED_LINES and not _generated(fd.path):
        yield _finding(
            fd,
            lines[0][0],
            lines[0][1],
            "low",
            "oversized-file",
            "Very large new file",
            f"This new file adds {len(lines)} lines (more than {OVERSIZED_ADDED_LINES}). Large "
            "files are hard to review; split it if it is hand-written, or mark it as generated "
            "(`ignore` in .tierbot.yml) if it is not.",
        )


def _secret_finding(
    fd: FileDiff, match: secretscan.SecretMatch, number: int, line: str, end_line: int | None
) -> Finding:
    label = secretscan.label(match.kind)
    severity = secretscan.severity(match, fd.path)
    if severity == "low":
        why = (
            "it looks like a placeholder, a template or a published sample"
            if match.weak
            else "it is in a test, fixture, doc or example"
        )
        message = (
            f"This line adds what looks like {with_article(label)}, reported at low severity"
            f" because {why}. If it is a real credential, remove it and rotate it."
        )
    else:
        message = (
            f"This line adds what looks like {with_article(label)}. Remove it from the change,"
            " rotate the credential if it was ever real, and load it from the environment or a"
            " secret manager instead."
        )
    confidence = 1.0 if secretscan.exact(match.kind) else 0.7
    return _finding(
        fd,
        number,
        line,
        severity,
        "secret",
        f"Possible {label} in the change",
        message,
        end_line=end_line,
        confidence=confidence if not match.weak else 0.3,
    )


def _fenced_lines(fd: FileDiff, read: Reader | None) -> set[int]:
    """New-file line numbers inside Markdown code fences (the whole file when it can be read,
    else the added lines alone, which is the whole file for a new one)."""
    content = read(fd) if read is not None else None
    numbered: list[tuple[int, str]] = (
        list(enumerate(content.splitlines(), start=1))
        if content is not None
        else list(fd.added_lines)
    )
    inside: set[int] = set()
    fence: str | None = None
    for number, text in numbered:
        m = _FENCE.match(text)
        if fence is None:
            if m:
                fence = m.group(1)
            continue
        if (
            m
            and m.group(1)[0] == fence[0]
            and len(m.group(1)) >= len(fence)
            and not text[m.end() :].strip()
        ):
            fence = None
            continue
        inside.add(number)
    return inside


def _underline(fd: FileDiff, index: int) -> bool:
    """A bare marker line (one character repeated) right under a text line no longer than itself:
    a heading underline (RST, Markdown setext), not a conflict."""
    number, text = fd.added_lines[index]
    if len(set(text)) != 1 or index == 0 or fd.added_lines[index - 1][0] != number - 1:
        return False
    above = fd.added_lines[index - 1][1].rstrip()
    return bool(above.strip()) and len(above) <= len(text)


def _conflicts(fd: FileDiff, lang: str, read: Reader | None) -> Iterator[Finding]:
    """One finding per conflict block (<<<<<<< to >>>>>>>), or per stray marker.  In prose, a
    marker inside a code fence or under a heading is text, and a stray `=======` is a rule."""

    def marker(line: int, text: str, end_line: int | None = None) -> Finding:
        return _finding(
            fd,
            line,
            text,
            "high",
            "conflict-marker",
            "Merge-conflict marker",
            "A merge-conflict marker was committed; the file will not parse or will behave "
            "wrongly. Resolve the conflict and remove the markers.",
            end_line=end_line,
        )

    prose = lang in _PROSE
    fenced = _fenced_lines(fd, read) if prose and lang != "text" else set()
    open_at: tuple[int, str] | None = None
    for index, (number, text) in enumerate(fd.added_lines):
        if prose and (number in fenced or _underline(fd, index)):
            continue
        if _CONFLICT_OPEN.match(text):
            if open_at is not None:
                yield marker(*open_at)
            open_at = (number, text)
        elif _CONFLICT_CLOSE.match(text):
            if open_at is not None:
                yield marker(*open_at, end_line=number)
                open_at = None
            else:
                yield marker(number, text)
        elif (
            not prose
            and open_at is None
            and (_CONFLICT_MID.match(text) or _CONFLICT_BASE.match(text))
        ):
            yield marker(number, text)
    if open_at is not None:
        yield marker(*open_at)
