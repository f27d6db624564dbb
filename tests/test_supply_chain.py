"""What the action installs: exact versions with hashes, consistent with pyproject.toml."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "action.txt"
# Where the action runs: setup-python's 3.12 on a Linux runner.
RUNNER = {"python_version": "3.12", "python_full_version": "3.12.8", "sys_platform": "linux",
          "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
          "platform_python_implementation": "CPython", "platform_machine": "x86_64"}  # fmt: skip


def runtime_requirements() -> list[Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Requirement(r) for r in data["project"]["dependencies"]]


def locked() -> dict[str, tuple[str, Marker | None, list[str]]]:
    """name -> (version, marker, hashes) from the lock file."""
    out: dict[str, tuple[str, Marker | None, list[str]]] = {}
    text = LOCK.read_text()
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2]):
        head = entry.split("\\", 1)[0].strip()
        req = Requirement(head)
        [spec] = list(req.specifier)
        assert spec.operator == "==", f"not an exact pin: {head}"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", entry)
        out[canonicalize_name(req.name)] = (spec.version, req.marker, hashes)
    return out


def test_every_runtime_dependency_has_an_upper_bound() -> None:
    for req in runtime_requirements():
        assert any(s.operator == "<" for s in req.specifier), f"{req} has no upper bound"
        assert any(s.operator == ">=" for s in req.specifier), f"{req} has no lower bound"


def test_the_lock_pins_every_dependency_within_pyproject_with_hashes() -> None:
    pins = locked()
    for req in runtime_requirements():
        name: str = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in {LOCK.name}: regenerate it"
        version = pins[name][0]
        assert req.specifier.contains(version), f"{name}=={version} is outside {req.specifier}"
    assert "setuptools" in pins  # builds tierbot without build isolation
    for name, (_, _, hashes) in pins.items():
        assert hashes, f"{name} has no --hash"


def test_the_lock_holds_what_the_locked_versions_need_on_the_runner() -> None:
    """Each locked package whose metadata is at hand here: its dependencies are locked too."""
    pins = locked()
    checked = 0
    for name, (version, _, _) in pins.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if dist.version != version:
            continue  # another version is installed here: its requirements may differ
        checked += 1
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate({**RUNNER, "extra": ""}):
                continue
            assert canonicalize_name(req.name) in pins, f"{name} needs {req.name}: not locked"
    assert checked >= len(runtime_requirements())


def test_the_action_installs_only_from_the_lock() -> None:
    spec = yaml.safe_load((ROOT / "action.yml").read_text())
    [install] = [s for s in spec["runs"]["steps"] if s.get("name") == "Install tierbot"]
    script = install["run"]
    assert "--require-hashes" in script and "requirements/action.txt" in script
    assert "--only-binary :all:" in script
    # tierbot itself goes in without resolving anything more.
    installs = [line for line in script.replace("\\\n", " ").splitlines() if "pip install" in line]
    assert len(installs) == 2 and all("--no-deps" in line for line in installs)
    assert "--no-build-isolation" in installs[1]
