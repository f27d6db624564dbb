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
- A secret's value never appears in a finding: only its kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace

from tierbot import findings as _findings
from tierbot import redact
from tierbot.config import Config
from tierbot.records import FileDiff, Finding, Severity

OVERSIZED_ADDED_LINES = 1000

_SCRIPT_PATH = re.compile(
    r"(?i)(^|/)(scripts?|bin|cli|tools?|examples?|samples?|demos?|benchmarks?|bench|tests?|spec"
    r"|__tests__|e2e|fixtures?)/|(^|/)(cli|main|__main__|manage|setup|conftest)\.[a-z]+$"
    r"|\.(test|spec|stories)\.[jt]sx?$|_test\.go$|(^|/)[^/]*\.config\.[cm]?[jt]s$"
)
_PROSE = frozenset({"markdown", "rst", "text", "asciidoc"})
_COMMENT_START = re.compile(r"^\s*(?:#|//|/\*|\*|--|;|<!--)")

# ---- conflict markers: exactly 7 characters, then a space and a label or the end of the line.
_CONFLICT_OPEN = re.compile(r"^<{7}(?: |$)")
_CONFLICT_BASE = re.compile(r"^\|{7}(?: |$)")
_CONFLICT_MID = re.compile(r"^={7}\s*$")
_CONFLICT_CLOSE = re.compile(r"^>{7}(?: |$)")

# ---- per language: (prefilter substrings, combined regex with one named group per rule)
_JS = ("javascript", "typescript", "vue", "svelte")

_FOCUSED: dict[str, re.Pattern[str]] = {
    lang: re.compile(
        r"(?<![\w$.])(?:(?P<only>(?:it|describe|test|context|suite|specify)\.only)\s*\("
        r"|(?P<fit>f(?:it|describe|context))\s*\(\s*['\"`])"
    )
    for lang in _JS
}
_FOCUSED["ruby"] = re.compile(
    r"^\s*(?:(?P<fit>f(?:it|describe|context|specify))\b\s*\(?\s*['\"]"
    r"|(?:it|describe|context|specify)\b[^#\n]*(?P<only>,\s*(?::focus\b|focus:\s*true)))"
)

_SKIPPED: dict[str, re.Pattern[str]] = {
    lang: re.compile(
        r"(?<![\w$.])(?:(?:it|describe|test|context|suite|specify)\.skip\s*\("
        r"|x(?:it|describe|test|context)\s*\(\s*['\"`])"
    )
    for lang in _JS
}
_SKIPPED.update({
    "python": re.compile(r"^\s*@(?:pytest\.mark\.skip|unittest\.skip|skip)(?![\w.])"),
    "go": re.compile(r"\bt\.Skip(?:f|Now)?\("),
    "java": re.compile(r"^\s*@(?:Disabled|Ignore)\b"),
    "kotlin": re.compile(r"^\s*@(?:Disabled|Ignore)\b"),
    "rust": re.compile(r"^\s*#\[ignore\b"),
    "csharp": re.compile(r"\[(?:Ignore\b|(?:Fact|Theory)\s*\(\s*Skip\s*=)"),
    "ruby": re.compile(r"^\s*(?:x(?:it|describe|context|specify)\b|skip\b\s*(?:\(|['\"]|$))"),
})

# Debugger statements: flagged wherever they are (outside comments).
_DEBUGGER: dict[str, re.Pattern[str]] = {
    "python": re.compile(
        r"^\s*(?:breakpoint\(\)|import\s+(?:i?pdb|pudb|pdbpp)\b|from\s+(?:i?pdb|pudb)\s+import\b)"
        r"|\b(?:i?pdb|pudb)\.(?:set_trace|post_mortem)\("
    ),
    "ruby": re.compile(r"\bbinding\.(?:pry|irb)\b|^\s*(?:byebug|debugger)\s*$"),
    "rust": re.compile(r"(?<![\w:])dbg!\s*\("),
    "php": re.compile(r"(?<![\w>$:\\])(?:var_dump|dd|xdebug_break)\s*\("),
    "csharp": re.compile(r"\bDebugger\.(?:Break|Launch)\s*\("),
    "go": re.compile(r"\bspew\.(?:Dump|Sdump|Printf)\s*\(|\bruntime\.Breakpoint\(\)"),
    "java": re.compile(r"\.printStackTrace\(\s*\)"),
    **{lang: re.compile(r"(?<![\w$.])debugger\s*;?\s*(?://.*)?$") for lang in _JS},
}
# Print-style leftovers: flagged only outside script/CLI/test paths.
_PRINTS: dict[str, re.Pattern[str]] = {
    **{lang: re.compile(r"(?<![\w$.])console\.(?:log|debug|trace|dir)\s*\(") for lang in _JS},
    "java": re.compile(r"\bSystem\.(?:out|err)\.print(?:ln|f)?\s*\("),
    "go": re.compile(r"(?<![\w.])print(?:ln)?\("),
}
_SKIP_PREFILTER: dict[str, tuple[str, ...]] = {
    "python": ("skip",), "go": ("Skip",), "java": ("@Disabled", "@Ignore"),
    "kotlin": ("@Disabled", "@Ignore"), "rust": ("ignore",), "csharp": ("Ignore", "Skip"),
    "ruby": ("skip",), **{lang: ("skip",) for lang in _JS},
}
_PRINT_PREFILTER = {"go": "print", "java": "System.", **{lang: "console." for lang in _JS}}

_TODO = re.compile(
    r"(?:#|//|/\*|<!--|^\s*\*|^\s*--|^\s*;|\{-|\(\*)[^\n]*?\b(TODO|FIXME|XXX|HACK)\b"
)


def _language(path: str) -> str | None:
    from tierbot.languages import language_for

    return language_for(path)


def _generated(path: str) -> bool:
    from tierbot.languages import skip_reason_for_path

    return skip_reason_for_path(path) in ("lockfile", "vendored", "generated", "minified")


def check(files: Sequence[FileDiff], config: Config) -> list[Finding]:
    """Every local-rule finding on the added lines of `files`, each with its fingerprint."""
    out: list[Finding] = []
    patterns = tuple(config.redact.patterns)
    for fd in files:
        if fd.binary or fd.submodule or fd.symlink or fd.status == "deleted" or not fd.added_lines:
            continue
        out.extend(_check_file(fd, patterns))
    return out


def _finding(
    fd: FileDiff, line: int, text: str | None, severity: Severity, category: str, title: str,
    message: str, *, end_line: int | None = None, confidence: float = 1.0,
) -> Finding:
    f = Finding(
        path=fd.path, line=line, end_line=end_line, severity=severity, category=category,
        title=title, message=message, source="rules", suggestion=None, confidence=confidence,
    )
    return replace(f, fingerprint=_findings.fingerprint(f, text))


def _check_file(fd: FileDiff, patterns: tuple[str, ...]) -> Iterator[Finding]:
    lang = _language(fd.path)
    prose = lang in _PROSE
    script = _SCRIPT_PATH.search(fd.path) is not None
    focused = _FOCUSED.get(lang or "")
    skipped = _SKIPPED.get(lang or "")
    debugger = _DEBUGGER.get(lang or "")
    prints = None if script else _PRINTS.get(lang or "")
    print_hint = _PRINT_PREFILTER.get(lang or "", "")
    skip_hints = _SKIP_PREFILTER.get(lang or "", ())
    lines = fd.added_lines
    numbers = {n: i for i, (n, _) in enumerate(lines)}
    has_conflict = any(
        text.startswith(("<<<<<<<", ">>>>>>>")) and (
            _CONFLICT_OPEN.match(text) or _CONFLICT_CLOSE.match(text))
        for _, text in lines
    )
    if has_conflict:
        yield from _conflicts(fd)
    key_block_end = 0
    for index, (number, text) in enumerate(lines):
        if number <= key_block_end:
            continue  # inside a private key block already reported
        # -- secrets (critical); the value itself never reaches the finding
        for match in redact.find_secrets(text, patterns):
            end_line = None
            if match.kind == "private_key":
                end_line = _key_block_end(lines, index, numbers)
                key_block_end = end_line or number
            label = redact.KIND_LABELS.get(match.kind, "secret")
            heuristic = match.kind in redact.HEURISTIC_KINDS
            yield _finding(
                fd, number, text, "critical", "secret", f"Possible {label} in the change",
                f"This line adds what looks like a {label}. Remove it from the change, rotate "
                "the credential if it was ever real, and load it from the environment or a "
                "secret manager instead.",
                end_line=end_line, confidence=0.7 if heuristic else 1.0,
            )
        stripped = text.lstrip()
        if not stripped:
            continue
        comment = _COMMENT_START.match(text) is not None
        # -- focused tests (high)
        if focused is not None and not comment and (
            stripped[0] == "f" or "only" in text or "focus" in text
        ):
            m = focused.search(text)
            if m is not None:
                kind = "`.only`" if m.group("only") else "`" + (m.group("fit") or "f") + "`"
                yield _finding(
                    fd, number, text, "high", "focused-test", "Focused test committed",
                    f"A focused test ({kind}) makes the runner skip every other test. Remove the "
                    "focus before merging.",
                )
        # -- skipped tests (low)
        if (
            skipped is not None and not comment
            and (stripped[0] == "x" or any(hint in text for hint in skip_hints))
            and skipped.search(text)
        ):
            yield _finding(
                fd, number, text, "low", "skipped-test", "Test skipped",
                "This change skips a test unconditionally. Say why in the skip reason and "
                "link an issue, or fix the test.",
            )
        # -- debugger / print leftovers (medium)
        if debugger is not None and not comment and debugger.search(text):
            yield _finding(
                fd, number, text, "medium", "debug-leftover", "Debugger statement left in",
                "A debugger call or import was added; it stops or slows the program when it "
                "runs. Remove it before merging.",
            )
        elif prints is not None and not comment and print_hint in text and prints.search(text):
            yield _finding(
                fd, number, text, "medium", "debug-leftover", "Debug print left in",
                "Debug output was added outside a script or test. Remove it or use the "
                "project's logger.",
            )
        # -- TODO/FIXME (info); prose files are full of the word "todo" legitimately
        if not prose and ("TODO" in text or "FIXME" in text or "XXX" in text or "HACK" in text):
            m = _TODO.search(text)
            if m is not None:
                yield _finding(
                    fd, number, text, "info", "todo", f"{m.group(1)} comment added",
                    f"A {m.group(1)} comment was added. Track the work in an issue so it is not "
                    "forgotten.",
                )
    # -- oversized new files (low), on the first added line so it anchors in every mode
    if (
        fd.status == "added" and len(lines) > OVERSIZED_ADDED_LINES and not _generated(fd.path)
    ):
        yield _finding(
            fd, lines[0][0], lines[0][1], "low", "oversized-file", "Very large new file",
            f"This new file adds {len(lines)} lines (more than {OVERSIZED_ADDED_LINES}). Large "
            "files are hard to review; split it if it is hand-written, or mark it as generated "
            "(`ignore` in .tierbot.yml) if it is not.",
        )


def _key_block_end(
    lines: tuple[tuple[int, str], ...], index: int, numbers: dict[int, int]
) -> int | None:
    """The line of the matching END marker among consecutive added lines, if any."""
    number, text = lines[index]
    if "-----END" in text[text.find("PRIVATE KEY") + 11:]:
        return None  # the whole key is on one line
    expected = number
    for n, t in lines[index + 1:]:
        expected += 1
        if n != expected:
            return None
        if "-----END" in t and "PRIVATE KEY" in t:
            return n
    return None


def _conflicts(fd: FileDiff) -> Iterator[Finding]:
    """One finding per conflict block (<<<<<<< to >>>>>>>), or per stray marker."""

    def marker(line: int, text: str, end_line: int | None = None) -> Finding:
        return _finding(
            fd, line, text, "high", "conflict-marker", "Merge-conflict marker",
            "A merge-conflict marker was committed; the file will not parse or will behave "
            "wrongly. Resolve the conflict and remove the markers.",
            end_line=end_line,
        )

    open_at: tuple[int, str] | None = None
    for number, text in fd.added_lines:
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
        elif open_at is None and (_CONFLICT_MID.match(text) or _CONFLICT_BASE.match(text)):
            yield marker(number, text)
    if open_at is not None:
        yield marker(*open_at)
