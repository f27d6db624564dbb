from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from routing_helpers import commit, init_repo

from tierbot import config as config_mod
from tierbot.analysis.risk import CONTEXT_MAX, assess, features, file_role, shipped_model
from tierbot.config import Weight
from tierbot.errors import BadInput
from tierbot.git.history import FileHistory
from tierbot.records import FileDiff, FileStat, Signal

CFG = config_mod.default()


def change(
    spec: dict[str, tuple[int, int]],
    skip: dict[str, str] | None = None,
    status: str = "modified",
    text: str = "value = compute(a, b)",
) -> tuple[list[FileDiff], list[FileStat]]:
    """Files with (lines added, lines removed); every added line is `text`."""
    files, stats = [], []
    for path, (added, removed) in spec.items():
        lines = tuple((i + 1, text) for i in range(added))
        files.append(
            FileDiff(
                path=path,
                old_path=None,
                status=status,  # type: ignore[arg-type]
                added_lines=lines,
                lines_removed=removed,
            )
        )
        stats.append(
            FileStat(
                path=path,
                old_path=None,
                status=status,  # type: ignore[arg-type]
                language=None,
                lines_added=added,
                lines_removed=removed,
                hunks=1,
                complexity_delta=0,
                skip_reason=(skip or {}).get(path),
            )
        )
    return files, stats


def score(spec: dict[str, tuple[int, int]], **kw: object) -> float:
    files, stats = change(spec, **kw)  # type: ignore[arg-type]
    return assess(files, stats, {}, CFG).score


def logit(p: float) -> float:
    return math.log(p / (1 - p))


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("src/click/core.py", "code"),
        ("tests/test_core.py", "test"),
        ("pkg/x_test.go", "test"),
        ("web/a.spec.ts", "test"),
        ("docs/index.rst", "docs"),
        ("README.md", "docs"),
        ("CHANGES.rst", "docs"),
        ("examples/demo/app.py", "example"),
        ("pyproject.toml", "other"),
        (".github/workflows/ci.yml", "other"),
        ("requirements.txt", "other"),
        ("src/types.pyi", "other"),
        ("logrus.go", "code"),
        ("docs/conf.py", "docs"),
        ("doc/conf.py", "code"),
        ("doc/guide.html", "docs"),
        # Code named like a project's prose files is code (werkzeug's security.py, a history.kt).
        ("src/werkzeug/security.py", "code"),
        ("app/history.kt", "code"),
        ("lib/changes.rb", "code"),
        ("SECURITY.md", "docs"),
        ("HISTORY", "docs"),
    ],
)
def test_file_roles(path: str, role: str) -> None:
    assert file_role(path) == role


def test_score_grows_with_size_and_spread() -> None:
    small = score({"src/a.py": (3, 1)})
    medium = score({"src/a.py": (40, 10)})
    large = score({f"src/m{i}/a.py": (60, 20) for i in range(6)})
    assert 0.0 < small < medium < large < 1.0


def test_signals_explain_the_score_exactly() -> None:
    files, stats = change({"src/a.py": (30, 5), "tests/test_a.py": (20, 0)})
    result = assess(files, stats, {"src/a.py": FileHistory(12, 3, 4, 900.0, 30.0)}, CFG)
    total = sum(s.weight for s in result.signals)
    assert total == pytest.approx(logit(result.score), abs=0.01)
    ids = {s.id for s in result.signals}
    assert "base" in ids
    assert "size.lines_added" in ids
    by_id = {s.id: s for s in result.signals}
    assert by_id["size.lines_added"].paths == ("src/a.py",)
    assert "30 lines of code added" in by_id["size.lines_added"].detail
    assert "3 prior bug-fix commits" in by_id["history.fixes"].detail


def test_skipped_files_count_for_nothing() -> None:
    base = score({"src/a.py": (10, 0)})
    with_lock = score(
        {"src/a.py": (10, 0), "poetry.lock": (5000, 4000)}, skip={"poetry.lock": "lockfile"}
    )
    assert with_lock == pytest.approx(base)
    files, stats = change({"poetry.lock": (5000, 0)}, skip={"poetry.lock": "lockfile"})
    assert "poetry.lock" not in assess(files, stats, {}, CFG).facts


def test_code_outranks_tests_docs_and_config_of_the_same_size() -> None:
    code = score({"src/a.py": (80, 10)})
    assert score({"tests/test_a.py": (80, 10)}) < code
    assert score({"docs/guide.rst": (80, 10)}) < code
    assert score({"setup.cfg": (80, 10)}) < code


def test_a_unit_of_all_the_code_scores_as_the_change_and_the_rest_lower() -> None:
    files, stats = change(
        {"src/a.py": (50, 5), "src/b.py": (2, 0), "tests/test_a.py": (50, 0), "docs/a.md": (10, 0)}
    )
    result = assess(files, stats, {}, CFG)
    code = result.unit(["src/a.py", "src/b.py"])
    assert code.score == pytest.approx(result.score)  # no context: it is the whole change
    assert result.unit(["tests/test_a.py"]).score < code.score
    assert result.unit(["docs/a.md"]).score < code.score
    # One file of the two is scored from its own lines, plus the bounded context of the other.
    small = result.unit(["src/b.py"])
    assert small.score < code.score
    ctx = next(s for s in small.signals if s.id == "context.change")
    assert ctx.detail == "the rest of the change adds 50 lines of code in 1 file"


def test_context_cannot_lift_a_small_unit_of_a_huge_change_to_the_top_tier() -> None:
    spec = {f"src/m{i}/big.py": (400, 50) for i in range(40)}
    spec["src/tiny/one.py"] = (1, 1)
    files, stats = change(spec)
    result = assess(files, stats, {}, CFG)
    assert result.score > 0.99  # the change as a whole saturates
    tiny = result.unit(["src/tiny/one.py"])
    assert tiny.score < CFG.routing.thresholds.opus
    by_id = {s.id: s for s in tiny.signals}
    assert "1 line of code added" in by_id["size.lines_added"].detail  # its own numbers
    bound = shipped_model().weights["context.change"] * CONTEXT_MAX
    assert 0 < by_id["context.change"].weight <= bound + 1e-9 < 0.8


def test_history_of_bug_fixes_raises_risk() -> None:
    files, stats = change({"src/a.py": (20, 5)})
    calm = assess(files, stats, {"src/a.py": FileHistory(3, 0, 1, 400.0, 200.0)}, CFG)
    buggy = assess(files, stats, {"src/a.py": FileHistory(3, 3, 1, 400.0, 200.0)}, CFG)
    assert buggy.score > calm.score


def test_renamed_files_keep_their_history() -> None:
    f = FileDiff(
        path="src/new.py",
        old_path="src/old.py",
        status="renamed",
        added_lines=((1, "x = 1"),),
        lines_removed=1,
    )
    s = FileStat(
        path="src/new.py",
        old_path="src/old.py",
        status="renamed",
        language="Python",
        lines_added=1,
        lines_removed=1,
        hunks=1,
        complexity_delta=0,
        skip_reason=None,
    )
    feats = {x.id: x for x in features([f], [s], {"src/old.py": FileHistory(5, 2, 2, 10.0, 1.0)})}
    assert feats["history.fixes"].value == pytest.approx(math.log1p(2))


def test_sensitive_paths_and_code_raise_risk() -> None:
    plain = score({"src/app/views.py": (20, 0)})
    assert score({"src/app/auth.py": (20, 0)}) > plain
    assert score({"src/app/views.py": (20, 0)}, text="subprocess.run(cmd, shell=True)") > plain
    configured = dataclasses.replace(
        CFG, routing=dataclasses.replace(CFG.routing, sensitive_paths=["src/app/"])
    )
    files, stats = change({"src/app/views.py": (20, 0)})
    result = assess(files, stats, {}, configured)
    assert result.score > plain
    sig = next(s for s in result.signals if s.id == "sensitive.paths")
    assert "configured" in sig.detail and sig.paths == ("src/app/views.py",)


def test_weights_come_from_config_overrides() -> None:
    files, stats = change({"src/a.py": (20, 0)})
    tuned = dataclasses.replace(
        CFG,
        routing=dataclasses.replace(
            CFG.routing, weights={"base": Weight(5.0), "size.lines_added": Weight(0.0)}
        ),
    )
    result = assess(files, stats, {}, tuned)
    assert all(s.id != "size.lines_added" for s in result.signals)
    assert next(s for s in result.signals if s.id == "base").weight == 5.0
    assert result.score > assess(files, stats, {}, CFG).score


def test_unknown_weight_is_bad_input_with_a_hint() -> None:
    files, stats = change({"src/a.py": (20, 0)})
    bad = dataclasses.replace(
        CFG, routing=dataclasses.replace(CFG.routing, weights={"size.lines_add": Weight(1.0)})
    )
    with pytest.raises(BadInput, match=r"routing\.weights\.size\.lines_add.*size\.lines_added"):
        assess(files, stats, {}, bad)


def test_every_feature_has_a_shipped_weight_and_no_weight_is_orphaned() -> None:
    files, stats = change({"src/a.py": (1, 0)})
    ids = {f.id for f in features(files, stats, {})}
    weights = set(shipped_model().weights)
    roles = {w for w in weights if w.startswith("role.")}
    assert ids == weights - roles
    assert roles == {
        "role.code",
        "role.test",
        "role.docs",
        "role.example",
        "role.other",
        "role.comments",
    }


def test_empty_change_scores_low_and_finite() -> None:
    result = assess([], [], {}, CFG)
    assert 0.0 <= result.score < CFG.routing.thresholds.sonnet
    assert result.facts == {}
    assert result.unit([]).score == pytest.approx(result.score)


PY_DIFF = "\n".join(
    [
        "diff --git a/src/m.py b/src/m.py",
        "--- a/src/m.py",
        "+++ b/src/m.py",
        "@@ -1,7 +1,13 @@",
        " def f(x):",
        '-    """Old summary."""',
        '+    """New summary.',
        "+",
        "+    More words that explain.",
        '+    """',
        "     # a comment",
        "-    return x",
        "+    # another comment",
        "+    return x + 1",
        " ",
        " ",
        " def g():",
        "+    return [",
        "+    ]",
        "",
    ]
)

GO_DIFF = "\n".join(
    [
        "diff --git a/entry.go b/entry.go",
        "--- a/entry.go",
        "+++ b/entry.go",
        "@@ -1,4 +1,6 @@",
        "-// Old doc.",
        "+// New doc that explains more.",
        "+// And more.",
        " func (e *Entry) Log() {",
        "+\t*e.count++",
        " \tx := 1",
        " }",
        "",
    ]
)


def test_substantive_lines_ignore_comments_docstrings_and_punctuation() -> None:
    from tierbot.analysis.risk import substantive_lines
    from tierbot.git.diff import parse

    py = parse(PY_DIFF)[0]
    assert (py.lines_added, py.lines_removed) == (8, 2)
    assert substantive_lines(py) == (2, 1)  # `return x + 1`, `return [`; removed `return x`
    go = parse(GO_DIFF)[0]
    assert substantive_lines(go) == (1, 0)  # `*e.count++` is code, `// ...` is not


def test_comment_only_code_changes_are_not_code() -> None:
    from tierbot.git.diff import parse

    f = parse(GO_DIFF.replace("+\t*e.count++\n", "").replace("@@ -1,4 +1,6 @@", "@@ -1,4 +1,5 @@"))[
        0
    ]
    s = FileStat(
        path=f.path,
        old_path=None,
        status="modified",
        language="Go",
        lines_added=f.lines_added,
        lines_removed=f.lines_removed,
        hunks=1,
        complexity_delta=0,
        skip_reason=None,
    )
    result = assess([f], [s], {}, CFG)
    by_id = {x.id: x for x in result.signals}
    assert "kind.no_code" in by_id
    assert result.facts["entry.go"].role == "comments"
    assert result.unit(["entry.go"]).score < result.score  # role "comments" gets its offset
    code_f = parse(GO_DIFF)[0]
    code_s = dataclasses.replace(s, lines_added=code_f.lines_added)
    assert assess([code_f], [code_s], {}, CFG).score > result.score


def test_a_project_that_fixes_more_bugs_scores_higher() -> None:
    from tierbot.git.history import History

    files, stats = change({"src/a.py": (20, 5)})
    h = {"src/a.py": FileHistory(3, 0, 1, 400.0, 200.0)}
    calm = assess(files, stats, History(h, commits=1000, fixes=20), CFG)
    typical = assess(files, stats, History(h, commits=1000, fixes=100), CFG)
    buggy = assess(files, stats, History(h, commits=1000, fixes=300), CFG)
    assert calm.score < typical.score < buggy.score
    sig = next(s for s in buggy.signals if s.id == "project.fix_rate")
    assert "300 of the last 1000 commits" in sig.detail and sig.weight > 0
    # A young project is pulled toward the typical rate instead of swinging the score.
    young = assess(files, stats, History(h, commits=4, fixes=4), CFG)
    assert young.score < buggy.score


def test_a_sensitive_configuration_file_gets_no_role_discount() -> None:
    files, stats = change(
        {"src/a.py": (60, 5), ".github/workflows/release.yml": (5, 1), "setup.cfg": (5, 1)}
    )
    result = assess(files, stats, {}, CFG)
    workflow = result.unit([".github/workflows/release.yml"])
    assert workflow.score > result.unit(["setup.cfg"]).score
    assert all(s.id != "role" for s in workflow.signals)
    assert result.facts[".github/workflows/release.yml"].sensitive == ("ci",)


def test_a_model_file_can_replace_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tierbot.analysis.risk import MODEL_PATH

    files, stats = change({"src/a.py": (20, 0)})
    shipped = assess(files, stats, {}, CFG).score
    text = MODEL_PATH.read_text(encoding="utf-8").replace("\nbase: ", "\nbase: 3.0 #", 1)
    custom = tmp_path / "model.yml"
    custom.write_text(text, encoding="utf-8")
    monkeypatch.setenv("TIERBOT_RISK_MODEL", str(custom))
    assert assess(files, stats, {}, CFG).score > shipped
    monkeypatch.setenv("TIERBOT_RISK_MODEL", str(tmp_path / "missing.yml"))
    with pytest.raises(BadInput, match=r"risk model .*missing\.yml"):
        assess(files, stats, {}, CFG)


# --------------------------------------------------------------------------------------------
# tests.weakened, on real git repositories through the real diff and analysis
# --------------------------------------------------------------------------------------------
APP = "def add(a, b):\n    return a + b\n"
TESTS = (
    "from app import add\n\n\n"
    "def test_add():\n"
    "    assert add(1, 2) == 3\n"
    "    assert add(-1, 1) == 0\n"
    "    assert add(0, 0) == 0\n"
)


def _analyze_head(repo: Path) -> dict[str, Signal]:
    from tierbot.analysis.analyze import analyze
    from tierbot.git.diff import read_change

    change = read_change(str(repo), "HEAD~1..HEAD")
    result, _, _ = analyze(change, CFG)
    return {s.id: s for s in result.signals}


def _repo_with_tests(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "repo")
    commit(repo, {"app.py": APP, "tests/test_app.py": TESTS}, "start")
    return repo


def test_deleting_a_test_file_is_reported_and_raises_risk(tmp_path: Path) -> None:
    repo = _repo_with_tests(tmp_path)
    commit(
        repo,
        {"app.py": APP + "\n\ndef sub(a, b):\n    return a - b\n", "tests/test_app.py": None},
        "add sub",
    )
    signals = _analyze_head(repo)
    sig = signals["tests.weakened"]
    assert sig.paths == ("tests/test_app.py",)
    assert sig.detail == "1 test file deleted"
    assert sig.weight > 0


def test_removing_assertions_is_reported_but_adding_tests_is_not(tmp_path: Path) -> None:
    repo = _repo_with_tests(tmp_path)
    weaker = TESTS.replace(
        "    assert add(-1, 1) == 0\n    assert add(0, 0) == 0\n",
        "    # assert add(-1, 1) == 0\n    add(0, 0)\n",
    )
    commit(repo, {"tests/test_app.py": weaker}, "simplify tests")
    sig = _analyze_head(repo)["tests.weakened"]
    assert sig.paths == ("tests/test_app.py",)
    assert "1 test file lost 2 assertion lines" in sig.detail

    # Adding tests, or rewriting an assertion in place, strengthens or keeps the net: no signal.
    stronger = TESTS + "\n\ndef test_add_floats():\n    assert add(0.5, 0.5) == 1.0\n"
    commit(repo, {"tests/test_app.py": stronger, "tests/test_more.py": TESTS}, "more tests")
    assert "tests.weakened" not in _analyze_head(repo)
    rewritten = stronger.replace("assert add(1, 2) == 3", "assert add(2, 2) == 4")
    commit(repo, {"tests/test_app.py": rewritten}, "reword a test")
    assert "tests.weakened" not in _analyze_head(repo)


def test_deleting_production_code_only_is_not_weakened_tests(tmp_path: Path) -> None:
    repo = _repo_with_tests(tmp_path)
    commit(repo, {"lib.py": "X = 1\nassert X\n"}, "lib")
    commit(repo, {"lib.py": None}, "drop lib")
    assert "tests.weakened" not in _analyze_head(repo)
