"""What a path is: its language, whether it is worth a model's attention at all, and whether it
matches a glob setting (every glob setting uses `matches`: gitignore rules, `!` negation)."""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Sequence
from typing import Any

_EXT = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".scala": "scala",
    ".rb": "ruby",
    ".php": "php",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".cs": "csharp",
    ".swift": "swift",
    ".m": "objective-c",
    ".mm": "objective-c",
    ".lua": "lua",
    ".pl": "perl",
    ".pm": "perl",
    ".sh": "shell",
    ".bash": "shell",
    ".zsh": "shell",
    ".sql": "sql",
    ".r": "r",
    ".dart": "dart",
    ".ex": "elixir",
    ".exs": "elixir",
    ".erl": "erlang",
    ".hs": "haskell",
    ".ml": "ocaml",
    ".clj": "clojure",
    ".vue": "vue",
    ".svelte": "svelte",
    ".tf": "terraform",
    ".hcl": "terraform",
    ".proto": "protobuf",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".json": "json",
    ".toml": "toml",
    ".xml": "xml",
    ".html": "html",
    ".htm": "html",
    ".css": "css",
    ".scss": "css",
    ".md": "markdown",
    ".rst": "rst",
    ".txt": "text",
    ".adoc": "asciidoc",
    ".ini": "ini",
    ".cfg": "ini",
    ".gradle": "gradle",
    ".sol": "solidity",
    ".zig": "zig",
    ".nim": "nim",
}
_NAMES = {
    "dockerfile": "dockerfile",
    "makefile": "make",
    "gnumakefile": "make",
    "jenkinsfile": "groovy",
    "rakefile": "ruby",
    "gemfile": "ruby",
    "vagrantfile": "ruby",
}

# lizard falls back to its C reader for unknown files; only trust it for these.
_LIZARD_LANGUAGES = frozenset(
    {
        "python",
        "javascript",
        "typescript",
        "go",
        "rust",
        "java",
        "kotlin",
        "scala",
        "ruby",
        "php",
        "c",
        "cpp",
        "csharp",
        "swift",
        "objective-c",
        "lua",
        "erlang",
        "solidity",
        "zig",
        "vue",
    }
)

_LOCKFILES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lockb",
        "poetry.lock",
        "pipfile.lock",
        "uv.lock",
        "pdm.lock",
        "cargo.lock",
        "gemfile.lock",
        "composer.lock",
        "go.sum",
        "podfile.lock",
        "packages.lock.json",
        "mix.lock",
        "flake.lock",
        "pubspec.lock",
        "gradle.lockfile",
        "package.resolved",
        "deno.lock",
    }
)
_VENDORED = re.compile(
    r"(^|/)(vendor|vendored|third_party|thirdparty|node_modules|bower_components"
    r"|external|\.yarn)/"
)
_GENERATED = re.compile(
    r"(\.min\.(js|css)$|\.bundle\.js$|[._]pb2(_grpc)?\.pyi?$|\.pb\.go$|\.pb\.(cc|h)$|_generated\."
    r"|\.generated\.|(^|/)(dist|build|gen|generated|__generated__)/|\.snap$|\.map$)"
)
# Source files: a name like a prose file's (`security.py`, `history.kt`) does not make them docs.
CODE_EXTENSIONS = frozenset(
    {
        ".py",
        ".pyx",
        ".pxd",
        ".js",
        ".mjs",
        ".cjs",
        ".jsx",
        ".ts",
        ".mts",
        ".cts",
        ".tsx",
        ".vue",
        ".svelte",
        ".go",
        ".rs",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".cxx",
        ".hpp",
        ".hh",
        ".hxx",
        ".m",
        ".mm",
        ".java",
        ".kt",
        ".kts",
        ".scala",
        ".groovy",
        ".clj",
        ".cljs",
        ".rb",
        ".php",
        ".cs",
        ".fs",
        ".swift",
        ".dart",
        ".lua",
        ".pl",
        ".pm",
        ".r",
        ".jl",
        ".ex",
        ".exs",
        ".erl",
        ".hrl",
        ".hs",
        ".ml",
        ".mli",
        ".elm",
        ".zig",
        ".nim",
        ".sol",
        ".sh",
        ".bash",
        ".zsh",
        ".ps1",
        ".sql",
        ".tf",
        ".hcl",
    }
)
_DOCS = re.compile(
    r"(\.(md|markdown|rst|adoc|txt)$|(^|/)docs?/|(^|/)(readme|changes|changelog|history|news"
    r"|authors|contributors|license|licence|copying|notice)([.-][^/]*)?$|(^|/)\.readthedocs\.ya?ml$"
    r"|(^|/)mkdocs\.ya?ml$)",
    re.IGNORECASE,
)
# Text files that are dependency pins or build input, not prose: a model reviews them.
NOT_DOCS = re.compile(
    r"(requirements|constraints)(/[^/]*|[^/]*)\.(txt|in)$|(^|/)cmakelists\.txt$", re.IGNORECASE
)
# CI definitions are never documentation, whatever their name (`contributors.yml`).
_CI = re.compile(r"^\.github/(workflows|actions)/")
_GENERATED_MARKERS = (
    b"@generated",
    b"Code generated",
    b"DO NOT EDIT",
    b"autogenerated",
    b"auto-generated",
)


@functools.lru_cache(maxsize=4096)
def language_for(path: str) -> str | None:
    name = posixpath.basename(path).lower()
    if name in _NAMES or name.startswith("dockerfile"):
        return _NAMES.get(name, "dockerfile")
    return _EXT.get(posixpath.splitext(name)[1])


def lizard_reads(path: str) -> bool:
    return language_for(path) in _LIZARD_LANGUAGES


def skip_reason_for_path(path: str) -> str | None:
    """Why a path needs no model review, judged by its name alone."""
    name = posixpath.basename(path).lower()
    if name in _LOCKFILES or name.endswith(".lock"):
        return "lockfile"
    if _VENDORED.search(path):
        return "vendored"
    if _GENERATED.search(path):
        return "minified" if ".min." in name else "generated"
    if (
        _DOCS.search(path)
        and posixpath.splitext(name)[1] not in CODE_EXTENSIONS
        and not NOT_DOCS.search(path)
        and not _CI.search(path)
    ):
        return "docs"
    return None


def looks_generated(head: bytes) -> bool:
    """A generated-file banner in the first lines, or a minified (very long) first line."""
    first = head[:2048]
    if any(marker in first for marker in _GENERATED_MARKERS):
        return True
    line = first.split(b"\n", 1)[0]
    return len(line) >= 2000


@functools.lru_cache(maxsize=64)
def _glob_spec(globs: tuple[str, ...]) -> Any:
    import pathspec  # lazy: only configs with glob settings need it

    return pathspec.GitIgnoreSpec.from_lines(globs)


def matches(path: str, globs: Sequence[str]) -> bool:
    """Whether `path` (repo-relative, `/`-separated) matches `globs` as a .gitignore would: a glob
    without a slash matches at any depth, a trailing `/` means a directory and everything in it,
    `**` spans directories, `!glob` re-includes, and the last matching glob wins."""
    return bool(globs) and bool(_glob_spec(tuple(globs)).match_file(path))


def glob_error(glob: str) -> str | None:
    """Why `glob` is not a valid gitignore-style pattern, or None when it is."""
    try:
        _glob_spec((glob,))
    except Exception as e:  # pathspec raises re.error, ValueError or its own error types
        return str(e).split("\n", 1)[0] or type(e).__name__
    return None


# Line breaks, control characters, bidirectional overrides and lone surrogates (undecodable bytes):
# in a file name they could forge lines of output or of a prompt, so they are shown as escapes.
_UNPRINTABLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def printable(text: str) -> str:
    """`text` on one line with nothing that a terminal, a prompt or a log would act on."""
    if not _UNPRINTABLE.search(text):
        return text
    return _UNPRINTABLE.sub(
        lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii"), text
    )
