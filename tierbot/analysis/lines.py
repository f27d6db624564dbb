"""What counts as a line of code: the one definition the risk model and the routing use.

A changed line is code when, with its comments (and, in Python, docstrings and other bare string
statements) taken out, something more than punctuation is left.  Within a hunk, a removed line and
an added line whose code is the same are not code either: that edit only touched a comment, a
pragma (`# noqa`, `# type: ignore`, `// eslint-disable-line`, `//nolint`) or white space.  A pair
that differs only in a version (a quoted `1.2.3`, a `v1.2.3`, a CI action's `@ref`, an image tag
or a `rev:`) is routine: a version, pin or tag bump.

Comments are found by a small scanner per comment syntax that knows string literals, over the
whole file when its text is at hand (a hunk that starts inside a docstring or a block comment is
then read right) and over the hunk's own lines otherwise.  Everything here is text matching: a
few milliseconds for a large file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from tierbot.git.diff import INDENT_LANGUAGES, normalise_whitespace
from tierbot.paths import language_for
from tierbot.records import FileDiff

if TYPE_CHECKING:
    from unidiff.patch import Hunk as UnidiffHunk

# Comment syntax by extension (or file name).  `#` is a comment only where it is one (in C it
# starts a preprocessor line, which is code; in JavaScript a private field).
_PYTHON = frozenset({".py", ".pyx", ".pxd", ".pyi"})
_C_LIKE = frozenset(
    {
        ".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx", ".vue", ".svelte",
        ".go", ".rs", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx", ".m", ".mm",
        ".java", ".kt", ".kts", ".scala", ".groovy", ".cs", ".swift", ".dart", ".sol", ".zig",
        ".proto", ".css", ".scss", ".less", ".jsonc", ".json5",
    }
)  # fmt: skip
_HASH = frozenset(
    {
        ".rb", ".sh", ".bash", ".zsh", ".pl", ".pm", ".r", ".jl", ".ex", ".exs", ".tf", ".hcl",
        ".ps1", ".nim", ".yml", ".yaml", ".toml", ".cfg", ".ini", ".conf", ".properties",
        ".cmake", ".mk", ".dockerfile", ".gitignore", ".dockerignore", ".env", ".txt", ".in",
    }
)  # fmt: skip
_HASH_NAMES = frozenset(
    {"dockerfile", "containerfile", "makefile", "gnumakefile", "gemfile", "rakefile", "procfile"}
)
_DASH = frozenset({".sql", ".lua", ".hs", ".elm"})
_CONFIG = frozenset({".yml", ".yaml", ".toml", ".cfg", ".ini", ".conf", ".json", ".txt", ".in"})
_BACKTICK = frozenset({".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx", ".go"})

_STR1 = r""""(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'"""
_SCANNERS = {
    "python": re.compile(
        r"(?P<str>[rRbBuUfF]{0,2}(?:\"\"\"(?:\\.|[^\\])*?(?:\"\"\"|\Z)|'''(?:\\.|[^\\])*?(?:'''|\Z)"
        rf"|{_STR1}))|(?P<line>#[^\n]*)",
        re.S,
    ),
    "c": re.compile(rf"(?P<str>{_STR1})|(?P<line>//[^\n]*)|(?P<block>/\*.*?(?:\*/|\Z))", re.S),
    "c`": re.compile(
        rf"(?P<str>{_STR1}|`(?:\\.|[^`\\])*(?:`|\Z))|(?P<line>//[^\n]*)|(?P<block>/\*.*?(?:\*/|\Z))",
        re.S,
    ),
    "php": re.compile(
        rf"(?P<str>{_STR1})|(?P<line>(?://|#)[^\n]*)|(?P<block>/\*.*?(?:\*/|\Z))", re.S
    ),
    "hash": re.compile(rf"(?P<str>{_STR1})|(?P<line>#[^\n]*)"),
    "dash": re.compile(rf"(?P<str>{_STR1})|(?P<line>--[^\n]*)"),
}
_PUNCTUATION = " \t{}()[];,.:"  # a line of only these says nothing


def family(path: str) -> str | None:
    """The comment syntax of `path`, or None when tierbot knows none (every line is content)."""
    name = os.path.basename(path).lower()
    ext = os.path.splitext(name)[1]
    if ext in _PYTHON:
        return "python"
    if ext == ".php":
        return "php"
    if ext in _C_LIKE:
        return "c`" if ext in _BACKTICK else "c"
    if ext in _HASH or name in _HASH_NAMES or name.startswith(("dockerfile", ".env")):
        return "hash"
    if ext in _DASH:
        return "dash"
    return None


def without_comments(text: str, fam: str | None) -> list[str]:
    """The lines of `text` with every comment (and, in Python, every docstring or other bare
    string statement) taken out, and the prose lines inside multi-line strings (documentation
    passed as an argument, help texts); line numbers are kept."""
    if fam is None:
        return text.split("\n")
    out: list[str] = []
    pos = depth = seen = 0  # seen: where the bracket depth was last brought up to date
    for m in _SCANNERS[fam].finditer(text):
        if m.lastgroup == "str":
            if fam == "python":
                # Brackets outside strings and comments tell a docstring from an argument.
                code = text[seen : m.start()]
                depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
                depth = max(0, depth)
            seen = m.end()
            if not (fam == "python" and depth == 0 and _bare(text, m)):
                if "\n" in m.group():
                    out.append(text[pos : m.start()])
                    out.append(_prose_out(m.group()))
                    pos = m.end()
                continue
        elif fam == "python":
            code = text[seen : m.start()]
            depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
            depth = max(0, depth)
            seen = m.end()
        out.append(text[pos : m.start()])
        out.append("\n" * m.group().count("\n"))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out).split("\n")


# A line of prose inside a multi-line string: words, not code, markup, SQL or a template.
_PROSE = re.compile(r"[\s\w`'\".,:;!?()\-/*#@|\[\]]*")
_WORDS = re.compile(r"[A-Za-z]{2,}")


def _prose_out(string: str) -> str:
    """A multi-line string literal with its inner prose lines blanked (first and last kept)."""
    lines = string.split("\n")
    for i in range(1, len(lines) - 1):
        line = lines[i]
        words = _WORDS.findall(line)
        lower = sum(w.islower() for w in words)
        sentence = len(words) >= 3 or (words and line.rstrip().endswith((".", ":", ",")))
        if sentence and 2 * lower >= len(words) and _PROSE.fullmatch(line):
            lines[i] = ""
    return "\n".join(lines)


def _bare(text: str, m: re.Match[str]) -> bool:
    """A string that is a whole statement (a docstring): alone from its line's start to its end."""
    start = text.rfind("\n", 0, m.start()) + 1
    if text[start : m.start()].strip():
        return False
    end = text.find("\n", m.end())
    rest = text[m.end() : end if end >= 0 else len(text)].strip()
    return not rest or rest.startswith("#")


def is_code(line: str, fam: str | None) -> bool:
    """Whether a line (comments already out) holds code: more than punctuation."""
    text = line.strip()
    if not text.strip(_PUNCTUATION):
        return False
    # Inside a block comment that starts before a hunk we can see: ` * text` and ` */`.
    return not (fam in ("c", "c`", "php") and text[:1] == "*" and text[1:2] in ("", " ", "\t", "/"))


# A version: a dotted number inside quotes, a `v1.2` anywhere, a CI action's `@ref`, an image tag
# (`image:` lines and Dockerfile `FROM`), a pre-commit `rev:`, or a commit sha.
_QUOTED = re.compile(r"""(["'`])((?:(?!\1).)*)\1""")
_DOTTED = re.compile(r"\d+(?:\.\d+)+(?:[-+_.]?[0-9A-Za-z]+)*")
_V_VERSION = re.compile(r"\bv\d+(?:\.\d+)+(?:[-+_.]?[0-9A-Za-z]+)*")
_AT_REF = re.compile(r"([\w.\-]+/[\w.\-/]*)@[\w.\-]+")
_IMAGE = re.compile(r"(?i)^(\s*(?:-\s*)?(?:image\s*:|from\s)\s*\S+?):[\w.\-]+")
_REV = re.compile(r"(?i)^(\s*(?:-\s*)?(?:rev|[\w-]*version|tag|ref)\s*:\s*)[\w.\-+]+\s*$")
_BARE_DOTTED = re.compile(r"(?<![\w.])\d+(?:\.\d+)+(?:[-+_.]?[0-9A-Za-z]+)*")
_ITEM = re.compile(r"""(?<![\w.])(["']?)#\1(?![\w.])|(?<=[\[,\s])\d+(?=\s*[,\]])""")
_ALNUM = re.compile(r"[A-Za-z0-9]")
# What may hold a version (`_versionish`): one test per kind, not one alternation of them all,
# which scanned every position for every kind and was most of the time of counting lines.
_DIGIT_DOT = re.compile(r"\d\.\d")
_V_DIGIT = re.compile(r"\bv\d")
_VERSION_WORD = re.compile(r"(?i:image|from|rev|version|tag|ref)\s*[:=\s]")
_HEX7 = re.compile(r"\b[0-9a-f]{7}")
_VERSION_LIST = re.compile(r"#(?:\s*,\s*#)+")
_SHA = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b")


# One name for another, or a reworded message: an edit a reviewer reads at a glance (up to
# MAX_SMALL_EDITS lines of a file; more is a refactoring, counted as code).  Keywords and
# literals are not names (`True` -> `False`, `and` -> `or` change what code does).
MAX_SMALL_EDITS = 2
_TOKEN = re.compile(r"[A-Za-z_$][\w$]*|\d[\w.]*|\S")
_NAME = re.compile(r"[A-Za-z_$][\w$]*")
_KEYWORDS = frozenset(
    {
        "and", "as", "assert", "async", "await", "break", "case", "catch", "chan", "class",
        "const", "continue", "def", "default", "defer", "del", "delete", "do", "elif", "else",
        "enum", "except", "export", "extends", "false", "final", "finally", "fn", "for", "from",
        "func", "go", "goto", "if", "impl", "import", "in", "instanceof", "interface", "is",
        "lambda", "let", "match", "mod", "mut", "new", "nil", "nonlocal", "not", "null", "or",
        "pass", "private", "protected", "pub", "public", "raise", "range", "return", "select",
        "self", "static", "struct", "super", "switch", "this", "throw", "throws", "trait",
        "true", "try", "type", "typeof", "undefined", "unsafe", "use", "var", "void", "while",
        "with", "yield", "True", "False", "None",
    }
)  # fmt: skip


def small_edit(old: str, new: str, keep_indent: bool = False) -> bool:
    """`new` is `old` with one name changed (a rename) or only the words of a message changed
    (where indentation is syntax, at the same indentation)."""

    def prose_out(text: str) -> str:
        if "'" not in text and '"' not in text and "`" not in text:
            return normalise_whitespace(text, keep_indent)  # no message to reword
        text = _QUOTED.sub(
            lambda m: m.group(1) + ("~" if " " in m.group(2) else m.group(2)) + m.group(1), text
        )
        return normalise_whitespace(text, keep_indent)

    if keep_indent and len(old) - len(old.lstrip()) != len(new) - len(new.lstrip()):
        return False
    if prose_out(old) == prose_out(new):
        return True
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    if len(a) != len(b):
        return False
    changed = {(x, y) for x, y in zip(a, b, strict=True) if x != y}
    return len(changed) == 1 and all(
        _NAME.fullmatch(t) and t not in _KEYWORDS for t in next(iter(changed))
    )


def _versionish(code: str) -> bool:
    """Whether `code` may hold a version, a pin, a tag or a sha: the cheapest tests first."""
    if "@" in code:
        return True
    if "." in code and _DIGIT_DOT.search(code):
        return True
    if "v" in code and _V_DIGIT.search(code):
        return True
    low = code.lower()
    words = "image" in low or "from" in low or "rev" in low or "tag" in low or "ref" in low
    if words and _VERSION_WORD.search(code):  # "version" holds "rev"
        return True
    return _HEX7.search(code) is not None


def version_key(code: str, config: bool = False) -> str:
    """`code` with every version, pin and tag replaced by a placeholder (in a configuration file,
    where a dotted number is a version, unquoted ones too)."""
    if not config and not _versionish(code):
        return code
    text = _IMAGE.sub(r"\1:#", code)
    if config:
        text = _BARE_DOTTED.sub("#", text)
    text = _REV.sub(r"\1#", text)
    text = _AT_REF.sub(r"\1@#", text)
    text = _V_VERSION.sub("#", text)
    text = _QUOTED.sub(lambda m: m.group(1) + _DOTTED.sub("#", m.group(2)) + m.group(1), text)
    text = _SHA.sub("#", text)
    if config:
        # A list of versions (a CI matrix) that gains or loses one is still a list of versions.
        text = _VERSION_LIST.sub("#", _ITEM.sub("#", text))
    return text


class LineCount(NamedTuple):
    added: int  # lines of code added
    removed: int  # lines of code removed
    routine: int  # removed/added pairs that only bump a version, pin or tag
    edits: int = 0  # pairs that only rename one name or reword a message
    added_code: tuple[tuple[int, str], ...] = ()  # (new line number, its code) of the added ones

    @property
    def code(self) -> bool:
        return bool(self.added or self.removed)


def count(f: FileDiff, old_text: str | None = None, new_text: str | None = None) -> LineCount:
    """Lines of code a file's change adds and removes (see the module's docstring).

    `old_text` and `new_text` are the file's two sides when they could be read; without them the
    hunks' own lines are scanned, which misreads a hunk that starts inside a docstring or block
    comment (it then counts those lines as code: more review, never less).
    """
    if f.patch is None:
        return LineCount(f.lines_added, f.lines_removed, 0, 0, f.added_lines)
    fam = family(f.path)
    keep_indent = language_for(f.path) in INDENT_LANGUAGES or fam == "python"
    config = os.path.splitext(f.path)[1].lower() in _CONFIG
    old = without_comments(old_text, fam) if old_text is not None else None
    new = without_comments(new_text, fam) if new_text is not None else None
    removed = routine = 0
    added: list[tuple[int, str]] = []
    edited: list[tuple[int, str]] = []
    refactoring = False
    for hunk in f.hunks:
        # Without a side's whole text, that side of the hunk is scanned on its own.
        own = _hunk_sides(hunk, fam) if old is None or new is None else ({}, {})
        plus: list[tuple[int, str]] = []
        minus: list[tuple[int, str]] = []
        for i, line in enumerate(hunk):
            if line.line_type == "+":
                n = line.target_line_no or 0
                plus.append((n, _at(new, n) if new is not None else own[1].get(i, "")))
            elif line.line_type == "-":
                n = line.source_line_no or 0
                minus.append((n, _at(old, n) if old is not None else own[0].get(i, "")))
        plus = [(n, t) for n, t in plus if is_code(t, fam)]
        minus = [(n, t) for n, t in minus if is_code(t, fam)]
        allowance = MAX_SMALL_EDITS - len(edited) if not refactoring else -1
        kept, r, v, e = _pairs(plus, minus, keep_indent, config, allowance)
        added.extend(kept)
        removed += r
        routine += v
        edited.extend(e)
        if len(edited) > MAX_SMALL_EDITS:
            # Many lines renamed or reworded at once is a refactoring, and refactorings break
            # code: they count as code, and the rest of the file is not searched for more.
            refactoring = True
            added.extend(edited)
            removed += len(edited)
            edited = []
    return LineCount(len(added), removed, routine, len(edited), tuple(sorted(added)))


def _at(lines: Sequence[str], n: int) -> str:
    return lines[n - 1] if 0 < n <= len(lines) else ""


def _hunk_sides(hunk: UnidiffHunk, fam: str | None) -> tuple[dict[int, str], dict[int, str]]:
    """Each side of a hunk scanned on its own, keyed by the line's index in the hunk."""
    sides: list[dict[int, str]] = []
    for kinds in (("-", " "), ("+", " ")):
        idx = [i for i, line in enumerate(hunk) if line.line_type in kinds]
        text = "\n".join(hunk[i].value.rstrip("\r\n") for i in idx)
        sides.append(dict(zip(idx, without_comments(text, fam), strict=False)))
    return sides[0], sides[1]


Line = tuple[int, str]  # (line number, code)


def _pairs(
    plus: list[Line],
    minus: list[Line],
    keep_indent: bool,
    config: bool = False,
    allowance: int = MAX_SMALL_EDITS,
) -> tuple[list[Line], int, int, list[Line]]:
    """The added lines of code left, how many removed ones, how many version bumps and which
    added lines are small edits, once the lines whose code came back unchanged (an edit of a
    comment, a pragma or white space), the version bumps and the small edits (`small_edit`)
    are paired off.  More than `allowance` small edits stop the search (they all count as code
    then, see `count`)."""
    bumps = 0
    if config:
        # A matrix entry (`- "3.12"`) added or dropped on its own line.
        items = {t for t in (*plus, *minus) if not _ALNUM.search(version_key(t[1], True))}
        plus = [t for t in plus if t not in items]
        minus = [t for t in minus if t not in items]
        bumps = len(items)
    if not plus or not minus:
        return plus, len(minus), bumps, []
    spaced: dict[str, str] = {}

    def same(t: str) -> str:
        if t not in spaced:
            spaced[t] = normalise_whitespace(t, keep_indent)
        return spaced[t]

    plus, minus = _unpaired(plus, minus, same)
    if not plus or not minus:
        return plus, len(minus), bumps, []
    left_plus, left_minus = _unpaired(
        plus, minus, lambda t: same(vk) if (vk := version_key(t, config)) != t else same(t)
    )
    bumps += len(plus) - len(left_plus)
    if allowance >= 0 and left_plus and len(left_plus) == len(left_minus):
        # Line for line, in order: a rename or a reworded message.
        edits: list[Line] = []
        for old, new in zip(sorted(left_minus), sorted(left_plus), strict=True):
            if small_edit(old[1], new[1], keep_indent):
                edits.append(new)
                if len(edits) > allowance:
                    break
        taken = set(edits)
        left_plus = [new for new in left_plus if new not in taken]
        return left_plus, len(left_plus), bumps, edits
    return left_plus, len(left_minus), bumps, []


def _unpaired(
    plus: list[Line], minus: list[Line], key: Callable[[str], str]
) -> tuple[list[Line], list[Line]]:
    """The added and removed lines left once every removed line is matched, by `key`, with an
    added one."""
    waiting: dict[str, list[Line]] = {}
    for line in minus:
        waiting.setdefault(key(line[1]), []).append(line)
    left_plus = []
    for line in plus:
        match = waiting.get(key(line[1]))
        if match:
            match.pop()
        else:
            left_plus.append(line)
    return left_plus, [line for lines in waiting.values() for line in lines]
