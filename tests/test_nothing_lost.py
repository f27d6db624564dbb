"""Nothing lost: --output checked before money is spent, init never writes through a link, the
ledger survives garbage, newer schemas and impossible usage, and never lands in `/`."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic, answer, finding
from gitrepo import commit

from tierbot.cli import main
from tierbot.review import ledger
from tierbot.review.ledger import DB_NAME, SCHEMA_VERSION, CallRow, Ledger

CODE = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(30))


@pytest.fixture
def change(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    commit(repo, {"app/core.py": CODE})
    commit(repo, {"app/core.py": CODE + "def g(items):\n    return items[0]\n"})
    monkeypatch.chdir(repo)
    return repo


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- --output ------------------------------------------------------------------------------


def unwritable_files(tmp_path: Path) -> list[Path]:
    found = []
    if os.geteuid() != 0:  # root writes through file modes
        locked = tmp_path / "locked.json"
        locked.write_text("{}")
        locked.chmod(0o444)
        found.append(locked)
    if Path("/proc/version").exists():  # refuses writes even to root
        found.append(Path("/proc/version"))
    return found


def test_an_unwritable_output_fails_before_any_model_call(
    change: Path, fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = unwritable_files(tmp_path)
    assert targets, "no unwritable file to try on this platform"
    for target in targets:
        code, out, err = cli(capsys, "review", "HEAD~1", "--format", "json", "-o", str(target))
        assert code == 2 and err.startswith(f"tierbot: cannot write {target}: "), err
        assert len(err.splitlines()) == 1 and out == ""
    assert fake.requests == []  # nothing paid for, so nothing thrown away


def test_output_is_written_after_the_review_and_left_alone_on_failure(
    change: Path, fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script("*", answer([finding("app/core.py", 92, "IndexError", severity="high")]))
    (change / ".tierbot.yml").write_text('verify: "off"\n')  # the finding blocks on its own word
    report = tmp_path / "report.json"
    report.write_text("an older, longer report " * 100)
    code, _, _ = cli(capsys, "review", "HEAD~1", "--format", "json", "-o", str(report))
    assert code == 1  # the high finding; the JSON is written all the same
    doc = json.loads(report.read_text())
    assert doc["status"] == "complete" and doc["findings"][0]["title"] == "IndexError"
    # A run that fails before it has a report leaves an existing file as it was ...
    code, _, err = cli(capsys, "review", "nope", "-o", str(report))
    assert code == 2 and "bad revision" in err
    assert json.loads(report.read_text()) == doc
    # ... and does not leave behind a file it created.
    fresh = tmp_path / "fresh.json"
    code, _, _ = cli(capsys, "review", "nope", "-o", str(fresh))
    assert code == 2 and not fresh.exists()


# --- init ----------------------------------------------------------------------------------


@pytest.mark.parametrize("force", [False, True])
def test_init_refuses_to_write_through_a_symlink(
    repo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    force: bool,
) -> None:
    monkeypatch.chdir(repo)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (repo / ".tierbot.yml").symlink_to(victim)
    code, _, err = cli(capsys, "init", *(["--force"] if force else []))
    assert code == 2 and "is a symbolic link" in err and len(err.splitlines()) == 1
    assert victim.read_text() == "precious\n"
    assert (repo / ".tierbot.yml").is_symlink()
    dangling = tmp_path / "nowhere" / "x.yml"
    (repo / ".tierbot.yml").unlink()
    (repo / ".tierbot.yml").symlink_to(dangling)
    code, _, err = cli(capsys, "init", "--force")
    assert code == 2 and not dangling.exists()


def test_init_force_replaces_a_regular_file_whole(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    (repo / ".tierbot.yml").write_text("fail_on: low\n")
    code, _, _ = cli(capsys, "init", "--force")
    assert code == 0 and "github:" in (repo / ".tierbot.yml").read_text()
    assert [p.name for p in repo.iterdir() if p.name.startswith(".tierbot.yml")] == [
        ".tierbot.yml"
    ]  # no temp file left behind


# --- the ledger ------------------------------------------------------------------------------


def test_a_newer_ledger_keeps_its_schema_version_and_rows(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript(
        "CREATE TABLE calls (id INTEGER PRIMARY KEY, shape TEXT);"
        "INSERT INTO calls (shape) VALUES ('from the future');"
        f"PRAGMA user_version={SCHEMA_VERSION + 1};"
    )
    db.close()
    with Ledger.open(tmp_path) as lg:
        assert not lg.writable and "newer tierbot" in lg.notes[0]
        lg.record(CallRow("r", "", "u", "haiku", "m", 1, 1))
        lg.cache_put("k", "m", "1", "{}")
        assert lg.cache_get("k") is None
    db = sqlite3.connect(tmp_path / DB_NAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert db.execute("SELECT shape FROM calls").fetchall() == [("from the future",)]
    db.close()


def test_a_corrupt_ledger_is_moved_aside_and_the_review_records_again(
    change: Path, fake: FakeAnthropic, capsys: pytest.CaptureFixture[str]
) -> None:
    home = ledger.home()
    home.mkdir(parents=True, exist_ok=True)
    (home / DB_NAME).write_bytes(b"\x00garbage, not SQLite\x00" * 200)
    code, out, _ = cli(capsys, "review", "HEAD~1", "--format", "json")
    assert code == 0
    notes = json.loads(out)["notes"]
    assert any("was not a readable database" in n and "started a new one" in n for n in notes)
    assert len(list(home.glob(f"{DB_NAME}.corrupt-*"))) == 1
    with Ledger.open(home) as lg:
        assert len(list(lg.calls())) == 1  # this run's call is in the fresh ledger


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # the SDK on "lots" tokens
@pytest.mark.parametrize(
    "usage",
    [
        {"input_tokens": -5_000_000, "output_tokens": -1},
        {"input_tokens": 10**15, "output_tokens": 10**15},
        {"input_tokens": "lots", "output_tokens": 1.5e308},
    ],
    ids=["negative", "absurd", "not-numbers"],
)
def test_impossible_usage_is_bounded_before_the_ledger_and_the_budget(
    change: Path,
    fake: FakeAnthropic,
    capsys: pytest.CaptureFixture[str],
    usage: dict[str, int],
) -> None:
    fake.script("*", answer([], usage=usage))
    code, out, _ = cli(capsys, "review", "HEAD~1", "--format", "json", "--budget", "5")
    assert code == 0
    doc = json.loads(out)
    assert any("impossible usage" in n for n in doc["notes"])
    used = doc["usage"]
    for key in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
        assert 0 <= used[key] <= ledger.MAX_TOKENS
    assert 0 <= used["cost_usd"] <= ledger.MAX_COST_USD
    with Ledger.open(ledger.home()) as lg:
        [row] = lg.calls()
    assert 0 <= row.input_tokens <= ledger.MAX_TOKENS and row.cost_usd >= 0


def test_the_ledger_refuses_rows_with_impossible_numbers(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as lg:
        for bad in (
            CallRow("r", "", "u", "haiku", "m", input_tokens=-1),
            CallRow("r", "", "u", "haiku", "m", cost_usd=float("nan")),
            CallRow("r", "", "u", "haiku", "m", cost_usd=-0.5),
            CallRow("r", "", "u", "haiku", "m", output_tokens=10**12),
        ):
            with pytest.raises(ValueError, match="refused a ledger row"):
                lg.record(bad)
        assert list(lg.calls()) == []


@pytest.mark.parametrize(
    "values",
    [("", "", ""), ("/", "/", "/"), ("", "relative/cache", "relative/home")],
    ids=["empty", "root", "relative"],
)
def test_with_no_usable_home_the_ledger_goes_to_a_private_temp_dir(
    values: tuple[str, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var, value in zip(("TIERBOT_HOME", "XDG_CACHE_HOME", "HOME"), values, strict=True):
        monkeypatch.setenv(var, value)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    where, note = ledger.locate()
    assert where == tmp_path / f"tierbot-{os.getuid()}"
    assert note is not None and "TIERBOT_HOME, XDG_CACHE_HOME, HOME" in note
    assert where.stat().st_mode & 0o777 == 0o700
    with Ledger.open() as lg:
        assert lg.path == where / DB_NAME and lg.notes == [note]


def test_an_unwritable_home_is_skipped_for_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("TIERBOT_HOME", str(blocker / "home"))  # under a file: unusable
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ledger.locate() == (tmp_path / "xdg" / "tierbot", None)


def test_someone_elses_temp_dir_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("HOME", "TIERBOT_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, "")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    planted = tmp_path / f"tierbot-{os.getuid()}"
    planted.symlink_to(tmp_path)  # a link planted in a shared /tmp
    where, _ = ledger.locate()
    assert where != planted and where.parent == tmp_path and not where.is_symlink()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX home directories")
def test_the_crash_log_never_lands_in_the_root(
    change: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("HOME", "TIERBOT_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, "")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert ledger.home() == tmp_path / f"tierbot-{os.getuid()}"
