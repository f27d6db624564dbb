"""The risk model: features of a change -> risk_score in 0..1, with every contribution explained.

A logistic model over a handful of just-in-time defect-prediction features:

    logit = base + sum(weight[id] * value[id])        risk_score = 1 / (1 + exp(-logit))

Each feature is reported as a `Signal` whose `weight` is its contribution to the logit (weight x
value), so the signals of an analysis add up to the logit of its risk score.  The weights ship in
`data/risk_model.yml` (fitted on real commit history, see docs/routing.md), calibrated so that the
default thresholds (0.35 Sonnet, 0.6 Opus) are the fitted cutpoints; any weight can be overridden
by id in `.tierbot.yml` under `routing.weights`, and $TIERBOT_RISK_MODEL can name a whole model
file in the same format.

Files are sorted into roles by path: `code` (production source), `test`, `docs`, `example` and
`other` (configuration, build and data files); a code file whose change touches only comments,
docstrings or blank lines gets the role `comments`.  Size and history features count code files
only, because that is where the defects that reviews exist to catch live; a change without code
files gets the `kind.no_code` contribution instead.  Per-file scores (for per-unit routing) are the
change's logit plus a role offset, so every code file of a change shares its tier and tests,
examples and configuration can go to a cheaper model (sensitive files get no discount).

The change's own commit or pull-request message is never read here: the author controls it, and it
must never be able to lower the review tier.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from tierbot import environment
from tierbot.analysis import sensitive
from tierbot.config import Config, read_data
from tierbot.errors import BadInput
from tierbot.git.history import FileHistory
from tierbot.records import FileDiff, FileStat, Signal
from tierbot.words import plural, verb

MODEL_PATH = Path(__file__).parents[1] / "data" / "risk_model.yml"

# --------------------------------------------------------------------------------------------
# File roles
# --------------------------------------------------------------------------------------------
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
TEST_RE = re.compile(
    r"(?:^|/)(?:tests?|testing|__tests__|__mocks__|specs?|testdata|test[_-]?data|fixtures?"
    r"|test[_-]?utils?|e2e|integration[_-]tests?)/"
    r"|(?:^|/)test_[^/]*$|(?:^|/)[^/]*_tests?\.[a-z]+$|(?:^|/)conftest\.py$"
    r"|\.(?:test|spec)\.[cm]?[jt]sx?$|(?:^|/)[^/]*Tests?\.(?:java|kt|cs|swift|scala)$",
)
DOCS_RE = re.compile(
    r"(?:^|/)(?:docs|documentation)/"
    r"|\.(?:md|markdown|rst|txt|adoc|asciidoc|rdoc|textile|pod|[1-9])$"
    r"|(?:^|/)(?:readme|license|licence|copying|authors|contributors|contributing|changes"
    r"|changelog|history|news|notice|code_of_conduct|security|support|funding|maintainers"
    r"|credits|thanks)(?:[._-][^/]*)?$"
    r"|(?:^|/)(?:\.readthedocs\.ya?ml|mkdocs\.ya?ml)$",
    re.I,
)
DOC_DIR_RE = re.compile(r"(?:^|/)(?:doc|man)/")
NOT_DOCS_RE = re.compile(r"(?:^|/)(?:requirements[^/]*|CMakeLists|constraints[^/]*)\.txt$", re.I)
EXAMPLE_RE = re.compile(r"(?:^|/)(?:examples?|samples?|demos?|benchmarks?|bench)/")

ROLES = ("code", "test", "docs", "example", "other")
FIX_RATE_PRIOR = 0.1  # share of commits that fix bugs in a typical project
FIX_RATE_PSEUDO = 50  # smoothing: pseudo-commits at the prior rate

# Comment syntax by extension family.  `#` is a comment only where it is one (in C it starts a
# preprocessor line, which is code).
HASH_COMMENT = frozenset(
    {
        ".py",
        ".pyx",
        ".pxd",
        ".rb",
        ".sh",
        ".bash",
        ".zsh",
        ".pl",
        ".pm",
        ".r",
        ".jl",
        ".ex",
        ".exs",
        ".tf",
        ".hcl",
        ".ps1",
        ".nim",
        ".php",
    }
)
DASH_COMMENT = frozenset({".sql", ".lua", ".hs", ".elm"})
DOCSTRING = frozenset({".py", ".pyx", ".pxd"})
_PUNCTUATION = " \t{}()[];,.:"  # a line of only these says nothing


# Assertion lines of tests in the common frameworks: Python assert/self.assert*/pytest.raises,
# JS expect()/should/assert., Go t.Error/t.Fatal/require./assert., JUnit/NUnit Assert*, RSpec.
# A test change that removes more of these than it adds checks less than before.
ASSERTION_RE = re.compile(
    r"\bassert|\bexpect\s*[(.]|\.should\b|\bshould\.|\bt\.(?:Error|Fatal|Fail)"
    r"|\brequire\.|\bpytest\.raises\b",
    re.I,
)


def file_role(path: str) -> str:
    """code | test | docs | example | other, from the path alone."""
    ext = os.path.splitext(path)[1].lower()
    if TEST_RE.search(path):
        return "test"
    if DOCS_RE.search(path) and not NOT_DOCS_RE.search(path):
        return "docs"
    if DOC_DIR_RE.search(path) and ext not in CODE_EXTENSIONS:
        return "docs"  # `doc/` is a code package in some languages (Go)
    if EXAMPLE_RE.search(path):
        return "example"
    if ext == ".pyi":
        return "other"  # type stubs change no behaviour
    if ext in CODE_EXTENSIONS:
        return "code"
    return "other"


def substantive_lines(f: FileDiff) -> tuple[int, int]:
    """Lines added and removed that are code: not blank, punctuation-only or comment lines.

    Comments and docstrings change no behaviour (and SZZ, which labels the benchmark, never blames
    them), so a change that only rewords them is not a risky change.  Python docstrings are
    followed through the hunk's context lines; a hunk that starts inside a docstring we cannot
    see counts its lines as code, which errs toward more review.
    """
    if f.patch is None:
        return f.lines_added, f.lines_removed
    ext = os.path.splitext(f.path)[1].lower()
    prefixes: tuple[str, ...] = ("//", "/*", "*/")
    if ext in HASH_COMMENT:
        prefixes += ("#",)
    if ext in DASH_COMMENT:
        prefixes += ("--",)
    docs = ext in DOCSTRING
    added = removed = 0
    for hunk in f.hunks:
        inside_new = inside_old = False  # in a docstring, on the new and the old side
        for line in hunk:
            kind = line.line_type
            if kind not in ("+", "-", " ") or (kind == " " and not docs):
                continue
            text = line.value.strip()
            comment = (
                not text.strip(_PUNCTUATION)
                or text.startswith(prefixes)
                or (text[:1] == "*" and text[1:2] in ("", " ", "\t"))
            )
            if docs:
                quotes = (
                    text.count('"""') + text.count("'''") if "''" in text or '""' in text else 0
                )
                was_inside = inside_old if kind == "-" else inside_new
                # A line inside a docstring, or one that opens or closes it, is documentation;
                # so is a one-line docstring (a statement that is only a string literal).
                if was_inside or quotes % 2 or (quotes and text[:3] in ('"""', "'''")):
                    comment = True
                if quotes % 2:
                    if kind != "-":
                        inside_new = not inside_new
                    if kind != "+":
                        inside_old = not inside_old
            if comment or kind == " ":
                continue
            if kind == "+":
                added += 1
            else:
                removed += 1
    return added, removed


def assertion_lines(f: FileDiff) -> tuple[int, int]:
    """Assertion lines added and removed by a file's patch (comment lines do not count)."""
    added = removed = 0
    for hunk in f.hunks:
        for line in hunk:
            kind = line.line_type
            if kind not in ("+", "-"):
                continue
            text = line.value.lstrip()
            if text.startswith(("#", "//", "/*", "*")) or not ASSERTION_RE.search(text):
                continue
            if kind == "+":
                added += 1
            else:
                removed += 1
    return added, removed


def weakened_tests(
    files: Sequence[FileDiff], stats: Sequence[FileStat]
) -> tuple[list[str], list[tuple[str, int, int]]]:
    """Test files the change deletes, and reviewed test files whose change removes more assertion
    lines than it adds (path, assertions removed, added).  Files the user ignores count for
    nothing; a deleted file is skipped from review but still a test that no longer runs."""
    by_path = {f.path: f for f in files}
    deleted: list[str] = []
    weakened: list[tuple[str, int, int]] = []
    for s in stats:
        if file_role(s.path) != "test":
            continue
        if s.status == "deleted" and s.skip_reason in (None, "deleted"):
            deleted.append(s.path)
            continue
        f = by_path.get(s.path)
        if s.skip_reason is not None or f is None or f.patch is None:
            continue
        added, removed = assertion_lines(f)
        if removed > added:
            weakened.append((s.path, removed, added))
    return deleted, weakened


# --------------------------------------------------------------------------------------------
# The shipped model
# --------------------------------------------------------------------------------------------
class Model(NamedTuple):
    base: float
    weights: dict[str, float]  # feature id -> weight; role offsets are `role.<role>`
    thresholds: dict[str, float]  # the thresholds the weights were calibrated for


def shipped_model() -> Model:
    """The model in data/risk_model.yml, or in the file $TIERBOT_RISK_MODEL names (a model
    fitted on your own history with bench/routing/fit.py, same format)."""
    return _load_model(environment.text("TIERBOT_RISK_MODEL") or str(MODEL_PATH))


@functools.lru_cache(maxsize=4)
def _load_model(path: str) -> Model:
    import yaml

    try:
        data: dict[str, Any] = read_data(path)
        return Model(
            base=float(data["base"]),
            weights={str(k): float(v) for k, v in data["weights"].items()},
            thresholds={str(k): float(v) for k, v in data.get("thresholds", {}).items()},
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise BadInput(f"risk model {path}: cannot read it ({type(e).__name__}: {e})") from None


def effective_model(config: Config) -> Model:
    """The shipped model with `routing.weights` overrides applied (`base` is the intercept)."""
    model = shipped_model()
    overrides = dict(config.routing.weights)
    if not overrides:
        return model
    valid = ["base", *model.weights]
    for key in overrides:
        if key not in valid:
            match = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
            hint = f" (did you mean '{match[0]}'?)" if match else ""
            raise BadInput(f"config: unknown key 'routing.weights.{key}'{hint}")
    base = overrides.pop("base", model.base)
    return Model(base, {**model.weights, **overrides}, model.thresholds)


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------
class Feature(NamedTuple):
    id: str
    value: float
    detail: str
    paths: tuple[str, ...]


class Assessment(NamedTuple):
    score: float
    signals: tuple[Signal, ...]
    file_scores: dict[str, float]  # path -> 0..1, for per-unit routing
    features: tuple[Feature, ...] = ()  # raw values, for fitting and debugging


def _lookup(history: Mapping[str, FileHistory], f: FileDiff | None, path: str) -> FileHistory:
    h = history.get(path)
    if (h is None or h.changes == 0) and f is not None and f.old_path:
        h = history.get(f.old_path, h)  # a renamed file keeps its past
    return h if h is not None else FileHistory(0, 0, 0, None, None)


def _entropy(sizes: Sequence[int]) -> float:
    total = sum(sizes)
    if total <= 0:
        return 0.0
    return -sum(s / total * math.log2(s / total) for s in sizes if s > 0)


def _dir(path: str) -> str:
    return os.path.dirname(path)


class Kind(NamedTuple):
    role: str  # file_role, or "comments" for a code file whose change is only comments/blanks
    added: int  # substantive lines (code files) or all lines (other roles)
    removed: int


def classify(files: Sequence[FileDiff], stats: Sequence[FileStat]) -> dict[str, Kind]:
    """Role and substantive size of every reviewed (not skipped) file."""
    by_path = {f.path: f for f in files}
    out: dict[str, Kind] = {}
    for s in stats:
        if s.skip_reason is not None:
            continue
        role = file_role(s.path)
        f = by_path.get(s.path)
        if role != "code" or f is None:
            out[s.path] = Kind(role, s.lines_added, s.lines_removed)
            continue
        added, removed = substantive_lines(f)
        out[s.path] = Kind("code" if added or removed else "comments", added, removed)
    return out


def features(
    files: Sequence[FileDiff],
    stats: Sequence[FileStat],
    history: Mapping[str, FileHistory],
    extra_sensitive: Sequence[str] = (),
    kinds: Mapping[str, Kind] | None = None,
) -> tuple[Feature, ...]:
    """The raw feature values of a change (before weights).  Skipped files count for nothing."""
    by_path = {f.path: f for f in files}
    reviewed = [s for s in stats if s.skip_reason is None]
    if kinds is None:
        kinds = classify(files, stats)
    code = [s for s in reviewed if kinds[s.path].role == "code"]
    code_paths = tuple(s.path for s in code)
    out: list[Feature] = []

    # Size counts lines of code, not comments or blank lines (see substantive_lines).
    counts = {s.path: (kinds[s.path].added, kinds[s.path].removed) for s in code}
    la = sum(a for a, _ in counts.values())
    ld = sum(r for _, r in counts.values())
    out.append(
        Feature(
            "size.lines_added", math.log1p(la), f"{plural(la, 'line')} of code added", code_paths
        )
    )
    out.append(
        Feature(
            "size.lines_removed",
            math.log1p(ld),
            f"{plural(ld, 'line')} of code removed",
            code_paths,
        )
    )
    dirs = {_dir(s.path) for s in code}
    out.append(
        Feature(
            "spread.files",
            math.log1p(len(code)),
            f"{plural(len(code), 'code file')} changed",
            code_paths,
        )
    )
    out.append(
        Feature(
            "spread.directories",
            math.log1p(len(dirs)),
            f"code in {plural(len(dirs), 'directory')}",
            code_paths,
        )
    )
    ent = max(0.0, _entropy([a + r for a, r in counts.values()]))
    out.append(
        Feature(
            "spread.entropy",
            ent,
            f"changed lines spread over code files: {ent:.2f} bits",
            code_paths,
        )
    )
    cd = sum(max(0, s.complexity_delta) for s in code)
    cd_paths = tuple(s.path for s in code if s.complexity_delta > 0)
    out.append(
        Feature(
            "complexity.delta",
            math.log1p(cd),
            f"cyclomatic complexity +{cd} in changed functions",
            cd_paths,
        )
    )

    # History (code files only): Kamei's NUC, NFIX, NDEV and AGE.
    hist = [(s.path, _lookup(history, by_path.get(s.path), s.path)) for s in code]
    seen = [(p, h) for p, h in hist if h.changes > 0]
    if seen:
        changes = sum(h.changes for _, h in seen) / len(seen)
        fixes = sum(h.fixes for _, h in seen)
        authors = max(h.authors for _, h in seen)
        last = sum(h.last_days or 0.0 for _, h in seen) / len(seen)
    else:
        changes = fixes = authors = 0
        last = 0.0
    seen_paths = tuple(p for p, _ in seen)
    out.append(
        Feature(
            "history.changes",
            math.log1p(changes),
            f"{changes:.1f} prior changes per touched code file",
            seen_paths,
        )
    )
    fix_paths = tuple(p for p, h in seen if h.fixes)
    out.append(
        Feature(
            "history.fixes",
            math.log1p(fixes),
            f"{plural(int(fixes), 'prior bug-fix commit')} touched these files",
            fix_paths,
        )
    )
    out.append(
        Feature(
            "history.authors",
            math.log1p(authors),
            f"up to {plural(int(authors), 'author')} per touched code file",
            seen_paths,
        )
    )
    out.append(
        Feature(
            "history.last_change",
            math.log1p(last),
            f"code files last changed {last:.0f} days before, on average",
            seen_paths,
        )
    )
    new = [s.path for s in code if s.status == "added"]
    unseen = [
        s.path
        for s, (_, h) in zip(code, hist, strict=True)
        if h.changes == 0 and s.status != "added"
    ]
    out.append(
        Feature(
            "history.new_files",
            len(new) / len(code) if code else 0.0,
            f"{len(new)} of {plural(len(code), 'code file')} {verb(len(new), 'is', 'are')} new",
            tuple(new),
        )
    )
    out.append(
        Feature(
            "history.unseen",
            len(unseen) / len(code) if code else 0.0,
            f"{plural(len(unseen), 'code file')} {verb(len(unseen), 'has', 'have')} no history"
            " in the window",
            tuple(unseen),
        )
    )

    # Sensitivity (every reviewed file, any role).
    cats: dict[str, list[str]] = {}
    for s in reviewed:
        for cat in sensitive.path_categories(s.path, extra_sensitive):
            cats.setdefault(cat, []).append(s.path)
    manifest = cats.pop("dependencies", [])
    out.append(
        Feature(
            "sensitive.paths",
            float(min(len(cats), 3)),
            "sensitive paths: " + ", ".join(sorted(cats)) if cats else "no sensitive paths",
            tuple(sorted({p for ps in cats.values() for p in ps})),
        )
    )
    out.append(
        Feature(
            "sensitive.manifests",
            float(bool(manifest)),
            "dependency manifest changed",
            tuple(manifest),
        )
    )
    code_cats: dict[str, list[str]] = {}
    for s in reviewed:
        if kinds[s.path].role not in ("code", "other"):
            continue
        f = by_path.get(s.path)
        if f is None:
            continue
        for hit in sensitive.code_hits(f.added_lines):
            paths = code_cats.setdefault(hit.category, [])
            if s.path not in paths:
                paths.append(s.path)
    out.append(
        Feature(
            "sensitive.code",
            float(min(len(code_cats), 3)),
            "added code uses: " + ", ".join(sorted(code_cats))
            if code_cats
            else "no sensitive constructs added",
            tuple(sorted({p for ps in code_cats.values() for p in ps})),
        )
    )

    # The project's recent bug-fix rate: where more commits fix bugs, more changes introduce them.
    # Smoothed toward a typical 10% so that a young repository does not swing the score.
    commits = int(getattr(history, "commits", 0))
    fix_commits = int(getattr(history, "fixes", 0))
    rate = (fix_commits + FIX_RATE_PRIOR * FIX_RATE_PSEUDO) / (commits + FIX_RATE_PSEUDO)
    out.append(
        Feature(
            "project.fix_rate",
            _logit(rate) - _logit(FIX_RATE_PRIOR),
            f"{fix_commits} of the last {plural(commits, 'commit')} "
            f"{verb(fix_commits, 'looks like a bug fix', 'look like bug fixes')} "
            f"({100 * fix_commits / max(1, commits):.0f}%; typical: "
            f"{100 * FIX_RATE_PRIOR:.0f}%)",
            (),
        )
    )

    # Tests deleted or weakened: the safety net shrinks, so the change deserves a closer look.
    deleted, weakened = weakened_tests(files, stats)
    parts = []
    if deleted:
        parts.append(f"{plural(len(deleted), 'test file')} deleted")
    if weakened:
        lost = sum(r - a for _, r, a in weakened)
        parts.append(
            f"{plural(len(weakened), 'test file')} lost "
            f"{plural(lost, 'assertion line')} (removed more than added)"
        )
    out.append(
        Feature(
            "tests.weakened",
            float(bool(parts)),
            "; ".join(parts) if parts else "no test files deleted or weakened",
            tuple(deleted) + tuple(p for p, _, _ in weakened),
        )
    )

    others = tuple(s.path for s in reviewed if kinds[s.path].role != "code")
    out.append(
        Feature(
            "kind.no_code",
            float(not code),
            "no production code changed (only tests, docs, comments, examples or configuration)",
            others,
        )
    )
    return tuple(out)


def role_offset(role: str, categories: Sequence[str], offsets: Mapping[str, float]) -> float:
    """A file's offset from the change's logit: by role, but none for a sensitive path (a CI
    workflow or a Dockerfile in a risky change deserves the same reviewer as its code)."""
    if any(c != "dependencies" for c in categories):
        return max(0.0, offsets.get(role, 0.0))
    return offsets.get(role, 0.0)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _squash(x: float) -> float:
    if x < -60:
        return 0.0
    if x > 60:
        return 1.0
    return 1.0 / (1.0 + math.exp(-x))


def assess(
    files: Sequence[FileDiff],
    stats: Sequence[FileStat],
    history: Mapping[str, FileHistory],
    config: Config,
) -> Assessment:
    """Score a change.  Signals carry logit contributions; file_scores are per reviewed file."""
    model = effective_model(config)
    kinds = classify(files, stats)
    feats = features(files, stats, history, config.routing.sensitive_paths, kinds)
    signals = [Signal("base", round(model.base, 3), "base rate of the model (intercept)")]
    logit = model.base
    for feat in feats:
        contribution = model.weights.get(feat.id, 0.0) * feat.value
        logit += contribution
        if abs(contribution) >= 0.0005:
            signals.append(Signal(feat.id, round(contribution, 3), feat.detail, feat.paths))
    score = _squash(logit)
    file_scores: dict[str, float] = {}
    offsets = {r: model.weights.get(f"role.{r}", 0.0) for r in (*ROLES, "comments")}
    for path, kind in kinds.items():
        cats = sensitive.path_categories(path, config.routing.sensitive_paths)
        file_scores[path] = _squash(logit + role_offset(kind.role, cats, offsets))
    return Assessment(score, tuple(signals), file_scores, feats)
