"""Local rule checks on real `git diff` output: every rule fires where it should, stays quiet on
normal code, looks only at added lines, and never echoes a secret."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from rules_helpers import by_path, change_files, fake_secrets, private_key_lines

from tierbot import findings
from tierbot.config import Config, Redact
from tierbot.records import FileDiff, Finding
from tierbot.review import rules

S = fake_secrets()
CONFIG = Config()


def run(
    repo: Path, before: dict[str, str], after: dict[str, str | None], config: Config = CONFIG
) -> list[Finding]:
    return rules.check(change_files(repo, before, after), config).findings


def lines_of(found: list[Finding], category: str) -> list[int | None]:
    return [f.line for f in found if f.category == category]


def assert_no_secret_leaks(found: list[Finding], secrets: list[str]) -> None:
    for f in found:
        blob = " ".join(str(v) for v in (f.title, f.message, f.suggestion, f.fingerprint))
        for secret in secrets:
            assert secret not in blob
            assert secret[:12] not in blob


# ------------------------------------------------------------------------------------ secrets


def test_secret_on_added_line_only(tmp_path: Path) -> None:
    old_key = S["stripe_key"]
    before = {"app/settings.py": f'import os\n\nSTRIPE = "{old_key}"\nDEBUG = False\n'}
    after: dict[str, str | None] = {
        "app/settings.py": (
            f'import os\n\nSTRIPE = "{old_key}"\nDEBUG = False\n'
            f'GITHUB_TOKEN = "{S["github_token"]}"\n'
        ),
    }
    found = run(tmp_path / "r", before, after)
    secrets = [f for f in found if f.category == "secret"]
    assert len(secrets) == 1  # the old, unchanged key is not this change's finding
    f = secrets[0]
    assert (f.path, f.line, f.end_line, f.severity, f.source) == (
        "app/settings.py",
        5,
        None,
        "critical",
        "rules",
    )
    assert "GitHub token" in f.title
    assert f.confidence == 1.0 and f.suggestion is None and len(f.fingerprint) == 16
    assert_no_secret_leaks(found, [S["github_token"], old_key])


def test_removed_secret_is_not_flagged(tmp_path: Path) -> None:
    before = {"cfg.py": f'KEY = "{S["aws_access_key_id"]}"\nx = 1\n'}
    found = run(tmp_path / "r", before, {"cfg.py": 'KEY = os.environ["KEY"]\nx = 1\n'})
    assert found == []


def test_every_secret_kind_is_found_and_never_echoed(tmp_path: Path) -> None:
    body = (
        "\n".join(
            [
                f'AWS_KEY = "{S["aws_access_key_id"]}"',
                f'aws_secret_access_key = "{S["aws_secret_access_key"]}"',
                f'GH = "{S["github_token"]}"',
                f'PAT = "{S["github_pat"]}"',
                f'ANTHROPIC = "{S["anthropic_api_key"]}"',
                f'OPENAI = "{S["openai_api_key"]}"',
                f'SLACK = "{S["slack_token"]}"',
                f'STRIPE = "{S["stripe_key"]}"',
                f'MAPS = "{S["google_api_key"]}"',
                f'NPM = "{S["npm_token"]}"',
                f'AUTH_HEADER = "Bearer {S["jwt"]}"',
                f'client_secret = "{S["generic_secret"]}"',
                f'DB = "mysql://root:{S["url_password"]}@localhost/app"',
            ]
        )
        + "\n"
    )
    found = run(tmp_path / "r", {}, {"service/keys.py": body})
    assert [f.line for f in found] == list(range(1, 14))
    assert {f.severity for f in found} == {"critical"}
    kinds = [f.title for f in found]
    assert "Possible AWS access key id in the change" in kinds
    assert "Possible hard-coded secret in the change" in kinds
    # Heuristic matches are less certain than exact token formats.
    confidence = {f.line: f.confidence for f in found}
    assert confidence[1] == 1.0 and confidence[12] < 1.0 and confidence[13] < 1.0
    assert_no_secret_leaks(found, list(S.values()))


def test_private_key_block_is_one_finding_spanning_the_block(tmp_path: Path) -> None:
    key = private_key_lines("RSA", 6)
    text = "# deploy key\n" + "\n".join(key) + "\n"
    found = run(tmp_path / "r", {}, {"deploy/deploy_key.txt": text})
    assert len(found) == 1
    f = found[0]
    assert (f.line, f.end_line, f.severity, f.category) == (2, 9, "critical", "secret")
    assert "private key" in f.title
    assert_no_secret_leaks(found, key[1:-1])


def test_extra_redact_patterns_become_findings(tmp_path: Path) -> None:
    config = Config(redact=Redact(patterns=[r"corp-[0-9a-f]{12}"]))
    after: dict[str, str | None] = {"a.py": "TOKEN_ID = 'corp-" + "0123456789ab'\n"}
    found = run(tmp_path / "r", {}, after, config)
    assert [(f.category, f.severity, f.line) for f in found] == [("secret", "critical", 1)]
    assert "corp-0123" not in found[0].message


# ---------------------------------------------------------------------------- conflict markers


def test_conflict_block_is_one_high_finding(tmp_path: Path) -> None:
    before = {"lib/calc.py": "def add(a, b):\n    return a + b\n"}
    after: dict[str, str | None] = {
        "lib/calc.py": (
            "def add(a, b):\n"
            "<<<<<<< HEAD\n"
            "    return a + b\n"
            "=======\n"
            "    return sum((a, b))\n"
            ">>>>>>> feature/sum\n"
        )
    }
    found = run(tmp_path / "r", before, after)
    conflicts = [f for f in found if f.category == "conflict-marker"]
    assert [(f.line, f.end_line, f.severity) for f in conflicts] == [(2, 6, "high")]


def test_stray_conflict_markers(tmp_path: Path) -> None:
    after: dict[str, str | None] = {"a.js": "let x = 1;\n>>>>>>> main\n=======\nlet y = 2;\n"}
    found = run(tmp_path / "r", {}, after)
    assert lines_of(found, "conflict-marker") == [2, 3]


def test_rst_heading_and_arrows_are_not_conflicts(tmp_path: Path) -> None:
    after: dict[str, str | None] = {
        "docs/index.rst": "Title\n=======\n\nSome text\n",
        "shift.py": "x = a << 7\ny = '<<<<<<<<<<'\n# >>>>>>>> not a marker\n",
    }
    assert lines_of(run(tmp_path / "r", {}, after), "conflict-marker") == []


# ----------------------------------------------------------------------------- focused tests


def test_focused_tests(tmp_path: Path) -> None:
    after: dict[str, str | None] = {
        "web/cart.test.ts": (
            "describe.only('cart', () => {\n"
            "  it.only('adds items', () => {});\n"
            '  fit("removes items", () => {});\n'
            "  fdescribe(`totals`, () => {});\n"
            "  test.only('rounds', async () => {});\n"
            "  // it.only('commented out', () => {});\n"
            "  it('normal', () => {});\n"
            "});\n"
        ),
        "web/map.ts": "map.fit(bounds);\nconst only = fit(bounds, { padding: 4 });\n",
        "ml/train.py": "model.fit(X_train, y_train)\nfit(model)\n",
        "spec/user_spec.rb": (
            "fit 'saves' do\nend\nit 'loads', focus: true do\nend\nit 'works' do\nend\n"
        ),
    }
    found = run(tmp_path / "r", {}, after)
    focused = {(f.path, f.line) for f in found if f.category == "focused-test"}
    assert focused == {
        ("web/cart.test.ts", 1),
        ("web/cart.test.ts", 2),
        ("web/cart.test.ts", 3),
        ("web/cart.test.ts", 4),
        ("web/cart.test.ts", 5),
        ("spec/user_spec.rb", 1),
        ("spec/user_spec.rb", 3),
    }
    assert {f.severity for f in found if f.category == "focused-test"} == {"high"}


# ------------------------------------------------------------------------ debugger leftovers


def test_debugger_and_print_leftovers(tmp_path: Path) -> None:
    after: dict[str, str | None] = {
        "pkg/core.py": (
            "import logging\n"
            "def f(x):\n"
            "    breakpoint()\n"
            "    import pdb; pdb.set_trace()\n"
            "    print(x)\n"
            "    # breakpoint()\n"
            "    return x\n"
        ),
        "pkg/debug_tools.py": "import ipdb\nfrom pudb import set_trace\n",
        "src/app.js": (
            "function f(x) {\n  debugger;\n  console.log(x);\n  console.error('failed', x);\n"
            '  const mode = "debugger";\n  options.debugger = true;\n  // console.log(x)\n}\n'
        ),
        "scripts/release.js": "console.log('releasing');\n",
        "src/app.test.ts": "console.log(result);\n",
        "cmd/tool/main.go": 'package main\nfunc main() {\n\tfmt.Println("hi")\n}\n',
        "internal/store/store.go": 'package store\nfunc f() {\n\tprintln("here")\n'
        '\tspew.Dump(x)\n\tfmt.Println("ok")\n}\n',
        "app/models/user.rb": "def save\n  binding.pry\n  puts 'saving'\nend\n",
        "src/main/java/App.java": (
            'class App {\n  void f() {\n    System.out.println("x");\n    e.printStackTrace();\n'
            '    LOG.info("fine");\n  }\n}\n'
        ),
        "src/lib.rs": 'fn f(x: u32) -> u32 {\n    dbg!(x);\n    println!("{}", x);\n    x\n}\n',
        "src/Controller.php": "<?php\nvar_dump($user);\ndd($request);\n$this->dd($x);\n",
    }
    found = run(tmp_path / "r", {}, after)
    got = {(f.path, f.line) for f in found if f.category == "debug-leftover"}
    assert got == {
        ("pkg/core.py", 3),
        ("pkg/core.py", 4),
        ("pkg/debug_tools.py", 1),
        ("pkg/debug_tools.py", 2),
        ("src/app.js", 2),
        ("src/app.js", 3),
        ("internal/store/store.go", 3),
        ("internal/store/store.go", 4),
        ("app/models/user.rb", 2),
        ("src/main/java/App.java", 3),
        ("src/main/java/App.java", 4),
        ("src/lib.rs", 2),
        ("src/Controller.php", 2),
        ("src/Controller.php", 3),
    }
    assert {f.severity for f in found if f.category == "debug-leftover"} == {"medium"}


# ------------------------------------------------------------------------------ skipped tests


def test_skipped_tests(tmp_path: Path) -> None:
    after: dict[str, str | None] = {
        "tests/test_api.py": (
            "import pytest\n"
            "@pytest.mark.skip(reason='flaky')\n"
            "def test_a(): ...\n"
            "@pytest.mark.skipif(sys.platform == 'win32', reason='posix only')\n"
            "def test_b(): ...\n"
            "@unittest.skip('later')\n"
            "def test_c(): ...\n"
            "@unittest.skipIf(True, 'x')\n"
            "def test_d(): ...\n"
        ),
        "web/a.spec.js": "it.skip('x', () => {});\nxit('y', () => {});\nexit(1);\n",
        "store_test.go": 'func TestX(t *testing.T) {\n\tt.Skip("slow")\n}\n',
        "src/test/java/AppTest.java": "@Disabled\nvoid a() {}\n@Ignore\nvoid b() {}\n"
        "@JsonIgnore\nint c;\n",
        "src/lib.rs": "#[test]\n#[ignore]\nfn slow() {}\n",
    }
    found = run(tmp_path / "r", {}, after)
    got = {(f.path, f.line) for f in found if f.category == "skipped-test"}
    assert got == {
        ("tests/test_api.py", 2),
        ("tests/test_api.py", 6),
        ("web/a.spec.js", 1),
        ("web/a.spec.js", 2),
        ("store_test.go", 2),
        ("src/test/java/AppTest.java", 1),
        ("src/test/java/AppTest.java", 3),
        ("src/lib.rs", 2),
    }
    assert {f.severity for f in found if f.category == "skipped-test"} == {"low"}


# ------------------------------------------------------------------------------ oversized files


def test_oversized_new_files(tmp_path: Path) -> None:
    big = "".join(f"VALUE_{i} = {i}\n" for i in range(1001))
    exact = "".join(f"VALUE_{i} = {i}\n" for i in range(1000))
    after: dict[str, str | None] = {
        "pkg/big_table.py": big,
        "pkg/exact.py": exact,
        "package-lock.json": "{\n" + "".join(f'  "p{i}": {{}},\n' for i in range(1500)) + "}\n",
        "static/app.min.js": big,
        "pkg/grown.py": big,
    }
    found = run(tmp_path / "r", {"pkg/grown.py": "x = 1\n"}, after)
    oversized = [(f.path, f.line, f.severity) for f in found if f.category == "oversized-file"]
    # A modified file is not "new"; lockfiles and minified files are not hand-written.
    assert oversized == [("pkg/big_table.py", 1, "low")]


# ----------------------------------------------------------------------------------- TODO etc.


def test_todo_comments(tmp_path: Path) -> None:
    after: dict[str, str | None] = {
        "a.py": (
            "# TODO: handle timeouts\n"
            "x = 1  # FIXME later\n"
            "todo_list = []\n"
            "PHONE = 'XXX-XXX-XXXX'\n"
            "HACK_MODE = False\n"
        ),
        "b.go": "// XXX this is racy\nvar hack = 1\n/* HACK: remove */\n",
        "README.md": "# TODO\n- TODO: write docs\n",
    }
    found = run(tmp_path / "r", {}, after)
    got = [(f.path, f.line, f.title) for f in found if f.category == "todo"]
    assert got == [
        ("a.py", 1, "TODO comment added"),
        ("a.py", 2, "FIXME comment added"),
        ("b.go", 1, "XXX comment added"),
        ("b.go", 3, "HACK comment added"),
    ]
    assert {f.severity for f in found if f.category == "todo"} == {"info"}


# ------------------------------------------------------------------------------- file kinds


def test_binary_and_deleted_files_are_skipped(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    before = {"old.py": f'TOKEN = "{S["github_token"]}"\n# TODO old\n'}
    files = change_files(repo, before, {"old.py": None})
    assert by_path(files)["old.py"].status == "deleted"
    assert rules.check(files, CONFIG).findings == []
    binary = FileDiff(
        path="img.png",
        old_path=None,
        status="added",
        binary=True,
        added_lines=((1, f"TOKEN = '{S['github_token']}'"),),
    )
    assert rules.check([binary], CONFIG).findings == []


def test_normal_code_change_has_no_findings(tmp_path: Path) -> None:
    before = {"svc/auth.py": "import os\n\n\ndef token_for(user):\n    return None\n"}
    after: dict[str, str | None] = {
        "svc/auth.py": (
            "import os\nimport secrets\n\n\n"
            "def token_for(user):\n"
            "    secret = os.environ['APP_SECRET']\n"
            "    token = secrets.token_urlsafe(32)\n"
            "    password_hash = hasher.hash(user.password)\n"
            "    print(f'issued token for {user.id}')\n"
            "    return sign(token, secret)\n"
        ),
        "web/login.ts": (
            "export async function login(password: string): Promise<string> {\n"
            "  const token = await api.post('/login', { password });\n"
            "  if (!token) throw new Error('login failed');\n"
            "  return token;\n"
            "}\n"
        ),
    }
    assert run(tmp_path / "r", before, after) == []


def test_rule_findings_all_anchor_on_added_lines(tmp_path: Path) -> None:
    after: dict[str, str | None] = {
        "x.py": (
            f"# TODO\nbreakpoint()\nK = '{S['google_api_key']}'\n<<<<<<< HEAD\n=======\n>>>>>>> b\n"
        )
    }
    files = change_files(tmp_path / "r", {"x.py": "a = 1\n"}, after)
    found = rules.check(files, CONFIG).findings
    assert len(found) == 4
    kept, moved, notes = findings.anchor(found, files, "added")
    assert (len(kept), moved, notes) == (4, [], [])
    assert len({f.fingerprint for f in kept}) == 4
    # rules already set the same fingerprint anchoring computes
    assert {f.fingerprint for f in kept} == {f.fingerprint for f in found}


# ---------------------------------------------------------------------------------- speed

_NORMAL = [
    "def handle_request(request, *, timeout=30):",
    "    user = request.user",
    "    if not user.is_authenticated:",
    "        raise PermissionDenied('login required')",
    "    items = [item for item in user.items.all() if item.visible]",
    "    token = request.headers.get('Authorization', '')",
    "    logger.info('user %s listed %d items', user.id, len(items))",
    "    return JsonResponse({'items': [i.to_dict() for i in items]})",
    "export function total(items: Item[]): number {",
    "  return items.reduce((sum, item) => sum + item.price * item.quantity, 0);",
    "}",
    "const password = form.elements.namedItem('password') as HTMLInputElement;",
    "func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {",
    "\tif err := s.db.QueryRowContext(ctx, query, key).Scan(&value); err != nil {",
    '\t\treturn nil, fmt.Errorf("get %s: %w", key, err)',
    "\t}",
    "",
    "    # compute the checksum over the normalised payload",
    "    digest = hashlib.sha256(payload.encode('utf-8')).hexdigest()",
    "    api_key = settings.PAYMENT_API_KEY",
]


def test_fifty_thousand_added_lines_are_fast() -> None:
    files = []
    per_file = 2000
    for n in range(25):
        ext = (".py", ".ts", ".go", ".js", ".java")[n % 5]
        lines = tuple(
            (i + 1, _NORMAL[(i * 7 + n) % len(_NORMAL)] + ("  # TODO" if i % 997 == 0 else ""))
            for i in range(per_file)
        )
        files.append(
            FileDiff(
                path=f"src/mod{n}{ext}",
                old_path=None,
                status="modified",
                added_lines=lines,
            )
        )
    assert sum(f.lines_added for f in files) == 50_000
    start = time.perf_counter()
    found = rules.check(files, CONFIG).findings
    elapsed = time.perf_counter() - start
    print(f"rules.check on 50,000 added lines: {elapsed:.3f}s, {len(found)} findings")
    assert {f.category for f in found} == {"todo"}
    assert len(found) == 25 * 3
    assert elapsed < 5.0, elapsed


@pytest.mark.parametrize("path", ["a.unknownext", "Makefile", "data.csv"])
def test_unknown_languages_still_get_language_neutral_rules(tmp_path: Path, path: str) -> None:
    after: dict[str, str | None] = {path: f"# TODO x\nKEY={S['github_token']}\n"}
    found = run(tmp_path / "r", {}, after)
    assert {f.category for f in found} >= {"secret"}


def test_new_key_body_under_unchanged_begin_and_end_lines_is_found(tmp_path: Path) -> None:
    # Rotating a key in place: git pairs the old and new BEGIN/END lines as unchanged context and
    # only the body lines are added; the added lines alone hold no BEGIN marker.
    old, new = private_key_lines("RSA", 4), private_key_lines("RSA", 5)
    new = [new[0], *(line[::-1] for line in new[1:-1]), new[-1]]
    before = {"deploy/key.py": 'KEY = """\n' + "\n".join(old) + '\n"""\n'}
    after: dict[str, str | None] = {"deploy/key.py": 'KEY = """\n' + "\n".join(new) + '\n"""\n'}
    files = change_files(tmp_path / "r", before, after)
    assert by_path(files)["deploy/key.py"].new_lines[2].added is False  # the BEGIN line
    found = rules.check(files, CONFIG).findings
    assert [(f.category, f.severity, f.line, f.end_line) for f in found] == [
        ("secret", "critical", 3, 7)
    ]


def test_unchanged_secret_shown_as_context_is_not_this_changes_finding(tmp_path: Path) -> None:
    before = {"app.py": f'TOKEN = "{S["github_token"]}"\nx = 1\n'}
    found = run(tmp_path / "r", before, {"app.py": f'TOKEN = "{S["github_token"]}"\nx = 2\n'})
    assert found == []


# ------------------------------------------------------------------- precision by context


def test_markdown_fences_and_rst_underlines_are_not_conflicts(tmp_path: Path) -> None:
    doc = "# Conflicts\n\nIntro.\n\n```text\n<<<<<<< HEAD\na\n=======\nb\n>>>>>>> topic\n```\n"
    before = {"docs/guide.md": doc, "docs/index.rst": "Title\n=====\n"}
    after: dict[str, str | None] = {
        # A marker block added inside an existing fence: the fence opens on an unchanged line.
        "docs/guide.md": doc.replace("b\n>>>>>>>", "b\nc\n>>>>>>>").replace(
            "```text\n", "```text\n<<<<<<< HEAD\n=======\n>>>>>>> other\n"
        ),
        "docs/index.rst": "Title\n=====\n\nWelcome\n=======\n\nUsage\n-----\n",
        "docs/notes.md": "Setext\n=======\n",
    }
    files = change_files(tmp_path / "r", before, after)
    read = {fd.path: (tmp_path / "r" / fd.path).read_text() for fd in files}
    found = rules.check(files, CONFIG, read=lambda fd: read[fd.path]).findings
    assert [f for f in found if f.category == "conflict-marker"] == []


def test_a_real_conflict_in_markdown_outside_fences_is_found(tmp_path: Path) -> None:
    text = "# Notes\n\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> topic\n"
    found = run(tmp_path / "r", {}, {"docs/notes.md": text})
    assert [(f.category, f.line, f.end_line) for f in found] == [("conflict-marker", 3, 7)]


def test_secret_severity_follows_the_path(tmp_path: Path) -> None:
    value = S["generic_secret"]
    after: dict[str, str | None] = {
        "src/app.py": f'client_secret = "{value}"\n',
        "tests/test_app.py": f'client_secret = "{value}"\n',
        "docs/setup.md": f'client_secret = "{value}"\n',
        "tests/test_keys.py": f'TOKEN = "{S["github_token"]}"\n',
    }
    found = {f.path: f for f in run(tmp_path / "r", {}, after) if f.category == "secret"}
    assert {p: f.severity for p, f in found.items()} == {
        "src/app.py": "critical",
        "tests/test_app.py": "low",
        "docs/setup.md": "low",
        "tests/test_keys.py": "critical",  # a provider format blocks anywhere
    }
    assert "test, fixture, doc or example" in found["tests/test_app.py"].message


def test_the_deadline_bounds_the_local_rules(tmp_path: Path) -> None:
    after: dict[str, str | None] = {f"m{i}.py": f'K = "{S["github_token"]}"\n' for i in range(3)}
    files = change_files(tmp_path / "r", {}, after)
    checked = rules.check(files, CONFIG, deadline=time.monotonic() - 1)
    assert checked.findings == []
    assert checked.notes == [
        "local rules stopped at the time limit: 3 files not checked (first: m0.py)"
    ]
    assert len(rules.check(files, CONFIG, deadline=time.monotonic() + 60).findings) == 3


def test_the_pipeline_passes_its_deadline_to_the_local_rules(repo: Path) -> None:
    from model_helpers import config, make_change

    from tierbot.pipeline import Options, run_review

    change = make_change(repo, {"app/keys.py": f'K = "{S["github_token"]}"\n'})
    result = run_review(change, config(), Options(dry_run=True, deadline=time.monotonic() - 1))
    assert not [f for f in result.findings if f.category == "secret"]
    assert any(n.startswith("local rules stopped at the time limit") for n in result.notes)
    result = run_review(change, config(), Options(dry_run=True))
    assert [f.severity for f in result.findings if f.category == "secret"] == ["critical"]
