"""The layout's promises that import-linter cannot check: only the git layer starts git."""

from __future__ import annotations

import ast
from pathlib import Path

import tierbot

PACKAGE = Path(tierbot.__file__).parent


def _imports(path: Path) -> set[str]:
    """Top-level names a module imports at run time (type-checking-only imports excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_git_layer_starts_processes_or_imports_gitpython() -> None:
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("git/"):
            continue
        bad = _imports(path) & {"subprocess", "git", "gitdb", "unidiff"}
        if bad:
            offenders[rel] = sorted(bad)
    assert offenders == {}
    # ... and the git layer really is where they are used.
    used = set().union(*(_imports(p) for p in (PACKAGE / "git").glob("*.py")))
    assert {"git", "unidiff"} <= used


def test_the_pre_commit_files_are_valid() -> None:
    import subprocess
    import sys

    root = PACKAGE.parent
    for cmd in (
        ("validate-config", ".pre-commit-config.yaml"),
        ("validate-manifest", ".pre-commit-hooks.yaml"),
    ):
        proc = subprocess.run(
            (sys.executable, "-m", "pre_commit", *cmd), cwd=root, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_tierbot_variable_is_in_the_one_table_and_the_readme() -> None:
    import re

    from tierbot.environment import VARIABLES

    used = {
        name
        for path in PACKAGE.rglob("*.py")
        for name in re.findall(r"\bTIERBOT_[A-Z_]+\b", path.read_text(encoding="utf-8"))
    }
    assert used <= set(VARIABLES), used - set(VARIABLES)
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in VARIABLES)
    # ... and only tierbot/environment.py reads them from os.environ.
    direct = re.compile(r"environ(?:\.get)?\(\s*\"TIERBOT_|environ\[\"TIERBOT_")
    assert [p.name for p in PACKAGE.rglob("*.py") if direct.search(p.read_text())] == []


def test_architecture_names_every_module() -> None:
    """ARCHITECTURE.md is how a newcomer finds a stage: a module it does not name is lost."""
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    unnamed = [
        str(p.relative_to(PACKAGE))
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.name not in ("__init__.py", "__main__.py") and f"`{p.name}`" not in text
    ]
    assert unnamed == []
