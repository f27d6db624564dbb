from __future__ import annotations

import pytest

from tierbot.analysis.sensitive import code_hits, path_categories


@pytest.mark.parametrize(
    ("path", "category"),
    [
        ("src/app/auth/views.py", "auth"),
        ("lib/oauth2.go", "auth"),
        ("app/session.py", "auth"),
        ("pkg/crypto/aes.go", "crypto"),
        ("src/tls_config.rs", "crypto"),
        ("app/security/headers.py", "security"),
        ("billing/invoice.rb", "payments"),
        ("app/permissions.py", "permissions"),
        ("db/migrations/0001_initial.py", "migrations"),
        ("alembic/versions/abc.py", "migrations"),
        ("schema.sql", "migrations"),
        (".github/workflows/ci.yml", "ci"),
        (".gitlab-ci.yml", "ci"),
        ("Dockerfile", "docker"),
        ("deploy/web.Dockerfile", "docker"),
        ("docker-compose.yml", "docker"),
        ("infra/main.tf", "infrastructure"),
        ("charts/app/values.yaml", "infrastructure"),
        ("pyproject.toml", "dependencies"),
        ("requirements-dev.txt", "dependencies"),
        ("go.mod", "dependencies"),
        ("web/package.json", "dependencies"),
    ],
)
def test_sensitive_paths(path: str, category: str) -> None:
    assert category in path_categories(path)


@pytest.mark.parametrize(
    "path",
    [
        "src/author.py",
        "docs/authoring.md",
        "src/tokenizer.py",
        "lib/hashmap.go",
        "README.md",
        "src/click/core.py",
        "go.sum",
        "src/rolesque.py",
        "tests/test_formatting.py",
    ],
)
def test_ordinary_paths_are_not_sensitive(path: str) -> None:
    assert path_categories(path) == ()


def test_configured_globs() -> None:
    globs = ["corp-core/", "*.secret", "/top/*.py", "src/**/keys.py"]
    assert path_categories("corp-core/x/y.go", globs) == ("configured",)
    assert "configured" in path_categories("deep/dir/a.secret", globs)
    assert path_categories("top/a.py", globs) == ("configured",)
    assert path_categories("sub/top/a.py", globs) == ()  # anchored by its slash
    assert path_categories("top/sub/a.py", globs) == ()  # '*' stays in one segment
    assert path_categories("src/keys.py", globs) == ("configured",)
    assert path_categories("src/a/b/keys.py", globs) == ("configured",)
    assert path_categories("src/a/b/keys.py", ["# comment", ""]) == ()


def test_configured_globs_use_gitignore_rules() -> None:
    assert "configured" in path_categories("a/file7.py", ["file[0-9].py"])
    assert "configured" not in path_categories("file7.py", ["file[!0-9].py"])
    assert "configured" in path_categories("fileA.py", ["file?.py"])
    assert "configured" not in path_categories("src/keep.py", ["src/", "!src/keep.py"])
    assert "configured" in path_categories("src/db/x.sql", ["src/", "!src/keep.py"])


@pytest.mark.parametrize(
    ("line", "category"),
    [
        ("    result = eval(expr)", "eval"),
        ("exec(code, namespace)", "eval"),
        ("subprocess.run(cmd, shell=True)", "shell"),
        ("os.system('rm -rf ' + path)", "shell"),
        ('cmd := exec.Command("git", args...)', "shell"),
        ('cur.execute("SELECT * FROM users WHERE id = %s" % uid)', "sql"),
        ('q := "DELETE FROM sessions WHERE token = \'" + t + "\'"', "sql"),
        ("data = pickle.loads(blob)", "deserialization"),
        ("cfg = yaml.load(stream)", "deserialization"),
        ("digest = hashlib.md5(data).hexdigest()", "crypto"),
        ("requests.get(url, verify=False)", "crypto"),
        ("tls.Config{InsecureSkipVerify: true}", "crypto"),
        ("os.chmod(path, 0o777)", "permissions"),
        ("if user.is_superuser:", "permissions"),
        ("lock = threading.Lock()", "concurrency"),
        ("    go func() {", "concurrency"),
        ("    mu sync.Mutex", "concurrency"),
        ("done <- struct{}{}", "concurrency"),
        ("await asyncio.gather(*tasks)", "concurrency"),
    ],
)
def test_sensitive_code(line: str, category: str) -> None:
    assert [h.category for h in code_hits([(7, line)])] == [category]
    assert code_hits([(7, line)])[0].line == 7


@pytest.mark.parametrize(
    "line",
    [
        "x = evaluate(y)",
        "# eval(x) is dangerous",
        "// exec.Command here",
        "name = 'system'",
        "selection = select_items(data)",
        "yaml.load(f, Loader=yaml.SafeLoader)",
        "return a + b",
        "x" * 500 + "eval(x)",
    ],
)
def test_ordinary_code_is_not_sensitive(line: str) -> None:
    assert code_hits([(1, line)]) == ()
