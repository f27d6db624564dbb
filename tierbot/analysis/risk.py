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
`other` (configuration, build, data and CI files); a code file whose change holds no line of code
(lines.py: comments, docstrings, pragmas, white space, version bumps, small renames) gets the
role `comments`.  Each file's facts are gathered once (`file_facts`); the same features are then
computed for any group of files: the whole change (`analysis.risk_score`) or one review unit
(`Assessment.unit`), which adds a bounded context term for the rest of its change.  Size and
history features count code files only, because that is where the defects that reviews exist to
catch live; a group without code files gets the `kind.no_code` contribution and its files' role
offset instead (none for a sensitive path).

The change's own commit or pull-request message is never read here: the author controls it, and it
must never be able to lower the review tier.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from tierbot import environment
from tierbot.analysis import lines, sensitive
from tierbot.analysis.sides import Sides
from tierbot.config import Config, read_data
from tierbot.errors import BadInput
from tierbot.git.history import FileHistory
from tierbot.paths import CODE_EXTENSIONS, NOT_DOCS
from tierbot.records import FileDiff, FileStat, Signal
from tierbot.words import plural, verb

MODEL_PATH = Path(__file__).parents[1] / "data" / "risk_model.yml"

# --------------------------------------------------------------------------------------------
# File roles
# --------------------------------------------------------------------------------------------
TEST_RE = re.compile(
    r"(?:^|/)(?:tests?|testing|__tests__|__mocks__|specs?|testdata|test[_-]?data|fixtures?"
    r"|test[_-]?utils?|e2e|integration[_-]tests?)/"
    r"|(?:^|/)test_[^/]*$|(?:^|/)[^/]*_tests?\.[a-z]+$|(?:^|/)conftest\.py$"
    r"|\.(?:test|spec)\.[cm]?[jt]sx?$|(?:^|/)[^/]*Tests?\.(?:java|kt|cs|swift|scala)$",
)
DOCS_DIR_RE = re.compile(r"(?:^|/)(?:docs|documentation)/")
DOCS_RE = re.compile(
    r"\.(?:md|markdown|rst|txt|adoc|asciidoc|rdoc|textile|pod|[1-9])$"
    r"|(?:^|/)(?:readme|license|licence|copying|authors|contributors|contributing|changes"
    r"|changelog|history|news|notice|code_of_conduct|security|support|funding|maintainers"
    r"|credits|thanks)(?:[._-][^/]*)?$"
    r"|(?:^|/)(?:\.readthedocs\.ya?ml|mkdocs\.ya?ml)$",
    re.I,
)
DOC_DIR_RE = re.compile(r"(?:^|/)(?:doc|man)/")
EXAMPLE_RE = re.compile(r"(?:^|/)(?:examples?|samples?|demos?|benchmarks?|bench)/")

ROLES = ("code", "test", "docs", "example", "other")
FIX_RATE_PRIOR = 0.1  # share of commits that fix bugs in a typical project
FIX_RATE_PSEUDO = 50  # smoothing: pseudo-commits at the prior rate

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
    if WORKFLOW_RE.search(path):
        return "other"  # CI definitions, whatever their name says
    if TEST_RE.search(path):
        return "test"
    if DOCS_DIR_RE.search(path) and not NOT_DOCS.search(path):
        return "docs"
    # By name (README, SECURITY, HISTORY, ...) only when not source: `security.py` is code.
    if DOCS_RE.search(path) and ext not in CODE_EXTENSIONS and not NOT_DOCS.search(path):
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


def substantive_lines(
    f: FileDiff, old_text: str | None = None, new_text: str | None = None
) -> tuple[int, int]:
    """Lines of code added and removed (see `lines.py`: comments, docstrings, pragmas, white
    space and version bumps are not code).  Comments and docstrings change no behaviour, and SZZ,
    which labels the benchmark, never blames them."""
    n = lines.count(f, old_text, new_text)
    return n.added, n.removed


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
# Per-file facts
# --------------------------------------------------------------------------------------------
# Path words (auth, crypto, ...) mean security work only in production code: `test_tokens.py`, a
# fixture or an HTML template named `login` is not security code.  File kinds (migrations, CI,
# containers, infrastructure) count for code and configuration, not for tests, docs or examples.
WORD_CATEGORIES = frozenset({"auth", "crypto", "security", "payments", "permissions"})
TEMPLATE_RE = re.compile(r"(?:^|/)(?:_?templates?|skeletons?|scaffold(?:ing)?)/")
# CI definitions run with the repository's secrets: more than a pin bump deserves a real review.
WORKFLOW_RE = re.compile(r"^\.github/workflows/[^/]+\.ya?ml$|(?:^|/)action\.ya?ml$")
# The rest of a change raises a unit's score by at most weight x this (log1p of ~150 lines of
# code elsewhere, +0.5 on the logit with the shipped weight), so a large change cannot lift every
# small unit to a higher tier.
CONTEXT_MAX = 5.0
NO_HISTORY = FileHistory(0, 0, 0, None, None)


class FileFacts(NamedTuple):
    """What the risk model knows about one reviewed file of a change."""

    path: str
    role: str  # file_role, or "comments": a code file whose change holds no line of code
    added: int  # lines of code for code files (see lines.py); every line for the others
    removed: int
    routine: int  # version, pin and tag bumps
    edits: int  # renames of one name and reworded messages
    complexity: int  # cyclomatic complexity added (>= 0)
    status: str
    history: FileHistory
    sensitive: tuple[str, ...]  # sensitive path categories that mean something for this file
    manifest: bool  # a dependency manifest
    constructs: tuple[str, ...]  # sensitive constructs in its added code
    workflow: bool  # a CI workflow or action whose change is more than a pin bump


class ChangeFacts(NamedTuple):
    """What every unit of a change shares: project-wide signals and the change's size."""

    fix_rate: Feature  # project.fix_rate
    weakened: Feature  # tests.weakened (deleted tests belong to no unit)
    code_added: int  # lines of code the whole change adds
    code_files: int
    history_truncated: bool  # a shallow clone cut the window: history features are neutral


def meaningful_paths(
    path: str, role: str, extra: Sequence[str] = ()
) -> tuple[tuple[str, ...], bool]:
    """The sensitive path categories that count for a file of `role`, and whether it is a
    dependency manifest (reported, never weighted: version bumps are routine)."""
    cats = sensitive.path_categories(path, extra)
    keep = []
    for cat in cats:
        if cat == "dependencies":
            continue
        if cat != "configured" and (
            role in ("test", "docs", "example")
            or TEMPLATE_RE.search(path)
            or (cat in WORD_CATEGORIES and role != "code")
        ):
            continue  # the owner's own globs count everywhere
        keep.append(cat)
    return tuple(keep), "dependencies" in cats


def file_facts(
    files: Sequence[FileDiff],
    stats: Sequence[FileStat],
    history: Mapping[str, FileHistory],
    extra_sensitive: Sequence[str] = (),
    sides: Mapping[str, Sides] | None = None,
) -> dict[str, FileFacts]:
    """Facts about every reviewed (not skipped) file."""
    by_path = {f.path: f for f in files}
    truncated = bool(getattr(history, "truncated", False))
    out: dict[str, FileFacts] = {}
    for s in stats:
        if s.skip_reason is not None:
            continue
        f = by_path.get(s.path)
        role = file_role(s.path)
        side = (sides or {}).get(s.path)
        if f is not None:
            n = lines.count(f, side.old if side else None, side.new if side else None)
        else:
            n = lines.LineCount(s.lines_added, s.lines_removed, 0)
        added, removed = s.lines_added, s.lines_removed
        if role == "code":
            added, removed = n.added, n.removed
            if not n.code:
                role = "comments"
        cats, manifest = meaningful_paths(s.path, role, extra_sensitive)
        constructs: tuple[str, ...] = ()
        if role in ("code", "other"):
            constructs = tuple(sorted({h.category for h in sensitive.code_hits(n.added_code)}))
        out[s.path] = FileFacts(
            path=s.path,
            role=role,
            added=added,
            removed=removed,
            routine=n.routine,
            edits=n.edits,
            complexity=max(0, s.complexity_delta),
            status=s.status,
            history=NO_HISTORY if truncated else _lookup(history, f, s.path),
            sensitive=cats,
            manifest=manifest,
            constructs=constructs,
            workflow=bool(WORKFLOW_RE.search(s.path)) and n.code,
        )
    return out


def change_facts(
    files: Sequence[FileDiff],
    stats: Sequence[FileStat],
    history: Mapping[str, FileHistory],
    facts: Mapping[str, FileFacts],
) -> ChangeFacts:
    code = [x for x in facts.values() if x.role == "code"]
    return ChangeFacts(
        fix_rate=_fix_rate(history),
        weakened=_weakened(files, stats),
        code_added=sum(x.added for x in code),
        code_files=len(code),
        history_truncated=bool(getattr(history, "truncated", False)),
    )


def _fix_rate(history: Mapping[str, FileHistory]) -> Feature:
    """The project's recent bug-fix rate: where more commits fix bugs, more changes introduce
    them.  Bots and dependency updates are not counted (history.py), and the rate is shrunk
    toward a typical 10% by FIX_RATE_PSEUDO commits, so a young project does not swing the
    score.  A shallow clone's cut window says nothing about the project: neutral."""
    commits = int(getattr(history, "commits", 0))
    fixes = int(getattr(history, "fixes", 0))
    if getattr(history, "truncated", False):
        return Feature("project.fix_rate", 0.0, "history cut by a shallow clone: neutral", ())
    rate = (fixes + FIX_RATE_PRIOR * FIX_RATE_PSEUDO) / (commits + FIX_RATE_PSEUDO)
    return Feature(
        "project.fix_rate",
        _logit(rate) - _logit(FIX_RATE_PRIOR),
        f"{fixes} of the last {plural(commits, 'commit')} "
        f"{verb(fixes, 'looks like a bug fix', 'look like bug fixes')} "
        f"({100 * fixes / max(1, commits):.0f}%; typical: {100 * FIX_RATE_PRIOR:.0f}%)",
        (),
    )


def _weakened(files: Sequence[FileDiff], stats: Sequence[FileStat]) -> Feature:
    """Tests deleted or weakened: the safety net shrinks, so the change deserves a closer look."""
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
    return Feature(
        "tests.weakened",
        float(bool(parts)),
        "; ".join(parts) if parts else "no test files deleted or weakened",
        tuple(deleted) + tuple(p for p, _, _ in weakened),
    )


# --------------------------------------------------------------------------------------------
# Features of a group of files: the whole change, or one review unit
# --------------------------------------------------------------------------------------------
class Feature(NamedTuple):
    id: str
    value: float
    detail: str
    paths: tuple[str, ...]


def _lookup(history: Mapping[str, FileHistory], f: FileDiff | None, path: str) -> FileHistory:
    h = history.get(path)
    if (h is None or h.changes == 0) and f is not None and f.old_path:
        h = history.get(f.old_path, h)  # a renamed file keeps its past
    return h if h is not None else NO_HISTORY


def _entropy(sizes: Sequence[int]) -> float:
    total = sum(sizes)
    if total <= 0:
        return 0.0
    return -sum(s / total * math.log2(s / total) for s in sizes if s > 0)


def group_features(
    group: Sequence[FileFacts], change: ChangeFacts, *, unit: bool = False
) -> tuple[Feature, ...]:
    """The raw feature values (before weights) of a group of reviewed files.

    For the whole change, `unit` is false; for one review unit it is true and the unit gets
    `context.change`: the code the rest of the change adds, bounded (CONTEXT_MAX).  Size,
    spread, complexity and history count the group's code files only; sensitivity counts every
    file whose role gives its path a meaning."""
    code = [x for x in group if x.role == "code"]
    code_paths = tuple(x.path for x in code)
    out: list[Feature] = []
    la = sum(x.added for x in code)
    ld = sum(x.removed for x in code)
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
    dirs = {os.path.dirname(x.path) for x in code}
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
    ent = max(0.0, _entropy([x.added + x.removed for x in code]))
    out.append(
        Feature(
            "spread.entropy",
            ent,
            f"changed lines spread over code files: {ent:.2f} bits",
            code_paths,
        )
    )
    cd = sum(x.complexity for x in code)
    out.append(
        Feature(
            "complexity.delta",
            math.log1p(cd),
            f"cyclomatic complexity +{cd} in changed functions",
            tuple(x.path for x in code if x.complexity > 0),
        )
    )

    # History (code files only): Kamei's NUC, NFIX, NDEV and AGE.
    seen = [x for x in code if x.history.changes > 0]
    if seen:
        changes = sum(x.history.changes for x in seen) / len(seen)
        fixes = sum(x.history.fixes for x in seen)
        authors = max(x.history.authors for x in seen)
        last = sum(x.history.last_days or 0.0 for x in seen) / len(seen)
    else:
        changes = fixes = authors = 0
        last = 0.0
    seen_paths = tuple(x.path for x in seen)
    out.append(
        Feature(
            "history.changes",
            math.log1p(changes),
            f"{changes:.1f} prior changes per touched code file",
            seen_paths,
        )
    )
    out.append(
        Feature(
            "history.fixes",
            math.log1p(fixes),
            f"{plural(int(fixes), 'prior bug-fix commit')} touched "
            + ("this file" if len(seen) == 1 else "these files"),
            tuple(x.path for x in seen if x.history.fixes),
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
    new = [x.path for x in code if x.status == "added"]
    unseen = [
        x.path
        for x in code
        if x.history.changes == 0 and x.status != "added" and not change.history_truncated
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

    # Sensitivity: every file whose role gives its path a meaning.
    out.append(
        _categories(
            group, lambda x: x.sensitive, "sensitive.paths", "sensitive paths", "no sensitive paths"
        )
    )
    manifests = tuple(x.path for x in group if x.manifest)
    out.append(
        Feature(
            "sensitive.manifests",
            float(bool(manifests)),
            "dependency manifest changed",
            manifests,
        )
    )
    out.append(
        _categories(
            group,
            lambda x: x.constructs,
            "sensitive.code",
            "added code uses",
            "no sensitive constructs added",
        )
    )
    out.append(change.fix_rate)
    weakened = change.weakened
    if unit and weakened.value:
        weakened = weakened._replace(detail=f"in the whole change: {weakened.detail}")
    out.append(weakened)
    others = tuple(x.path for x in group if x.role != "code")
    out.append(
        Feature(
            "kind.no_code",
            float(not code),
            "no production code changed (only tests, docs, comments, examples or configuration)",
            others,
        )
    )
    elsewhere = max(0, change.code_added - la)
    files_elsewhere = change.code_files - len(code)
    out.append(
        Feature(
            "context.change",
            min(CONTEXT_MAX, math.log1p(elsewhere)) if unit else 0.0,
            f"the rest of the change adds {plural(elsewhere, 'line')} of code"
            f" in {plural(files_elsewhere, 'file')}",
            (),
        )
    )
    return tuple(out)


def _categories(
    group: Sequence[FileFacts],
    of: Callable[[FileFacts], Sequence[str]],
    signal: str,
    label: str,
    none: str,
) -> Feature:
    """The categories `of` the files (at most 3 count), with the files that have them."""
    cats: dict[str, list[str]] = {}
    for x in group:
        for cat in of(x):
            cats.setdefault(cat, []).append(x.path)
    return Feature(
        signal,
        float(min(len(cats), 3)),
        f"{label}: " + ", ".join(sorted(cats)) if cats else none,
        tuple(sorted({p for ps in cats.values() for p in ps})),
    )


def features(
    files: Sequence[FileDiff],
    stats: Sequence[FileStat],
    history: Mapping[str, FileHistory],
    extra_sensitive: Sequence[str] = (),
    sides: Mapping[str, Sides] | None = None,
) -> tuple[Feature, ...]:
    """The raw feature values of a whole change (before weights).  Skipped files count for
    nothing."""
    facts = file_facts(files, stats, history, extra_sensitive, sides)
    return group_features(list(facts.values()), change_facts(files, stats, history, facts))


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------
class Scored(NamedTuple):
    score: float  # 0..1
    signals: tuple[Signal, ...]  # logit contributions, base first
    features: tuple[Feature, ...]


class Assessment(NamedTuple):
    """A scored change, and what it takes to score any review unit of it (`unit`)."""

    score: float
    signals: tuple[Signal, ...]
    features: tuple[Feature, ...]
    facts: dict[str, FileFacts]  # path -> facts, reviewed files only
    change: ChangeFacts
    model: Model

    def unit(self, paths: Sequence[str]) -> Scored:
        """The score of a review unit: its own files' features plus the bounded context of the
        rest of the change.  A unit without production code gets its files' role offset (the
        largest: a CI workflow in it gets none)."""
        group = [self.facts[p] for p in paths if p in self.facts]
        feats = group_features(group, self.change, unit=True)
        offsets = {r: self.model.weights.get(f"role.{r}", 0.0) for r in (*ROLES, "comments")}
        return _combine(self.model, feats, unit_offset(group, offsets))


def unit_offset(group: Sequence[FileFacts], offsets: Mapping[str, float]) -> float:
    """0 for a unit with production code; else the largest role offset of its files."""
    if not group or any(x.role == "code" for x in group):
        return 0.0
    return max(role_offset(x.role, x.sensitive, offsets) for x in group)


def role_offset(role: str, categories: Sequence[str], offsets: Mapping[str, float]) -> float:
    """A unit's offset by the role of its files, none for a sensitive path (a CI workflow or a
    Dockerfile deserves the reviewer its content calls for, not the discount of configuration)."""
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


def _combine(model: Model, feats: Sequence[Feature], offset: float = 0.0) -> Scored:
    signals = [Signal("base", round(model.base, 3), "base rate of the model (intercept)")]
    logit = model.base + offset
    for feat in feats:
        contribution = model.weights.get(feat.id, 0.0) * feat.value
        logit += contribution
        if abs(contribution) >= 0.0005:
            signals.append(Signal(feat.id, round(contribution, 3), feat.detail, feat.paths))
    if offset:
        signals.append(Signal("role", round(offset, 3), "role offset of these files"))
    return Scored(_squash(logit), tuple(signals), tuple(feats))


def assess(
    files: Sequence[FileDiff],
    stats: Sequence[FileStat],
    history: Mapping[str, FileHistory],
    config: Config,
    sides: Mapping[str, Sides] | None = None,
) -> Assessment:
    """Score a change.  Signals carry logit contributions; `Assessment.unit` scores a unit."""
    model = effective_model(config)
    facts = file_facts(files, stats, history, config.routing.sensitive_paths, sides)
    change = change_facts(files, stats, history, facts)
    scored = _combine(model, group_features(list(facts.values()), change))
    return Assessment(scored.score, scored.signals, scored.features, facts, change, model)
