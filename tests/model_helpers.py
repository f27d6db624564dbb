"""Helpers for the model tests: a real repository change, and routes over it built by hand.

The routes are built by hand on purpose: the model tests decide which unit goes to which tier.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from fake_anthropic import FakeAnthropic, Recorded, Reply, is_verification
from gitrepo import commit

from tierbot import config as config_mod
from tierbot.config import Config
from tierbot.git.diff import read_change
from tierbot.records import Analysis, Change, FileStat, Route, Tier, Unit
from tierbot.review.model import ModelOutcome
from tierbot.routing.estimate import unit_tokens


def py_module(name: str, n: int = 40) -> str:
    lines = [f'"""Module {name}."""', "", "import os", ""]
    for i in range(n):
        lines.append(f"def {name}_{i}(x):")
        lines.append(f"    return x + {i}")
        lines.append("")
    return "\n".join(lines) + "\n"


def edit(text: str, marker: str, new: Sequence[str]) -> str:
    """Insert `new` lines after the line containing `marker`."""
    out = []
    for line in text.splitlines():
        out.append(line)
        if marker in line:
            out.extend(new)
    return "\n".join(out) + "\n"


BEFORE = {
    "app/util.py": py_module("util"),
    "app/auth.py": py_module("auth"),
    "app/db.py": py_module("db"),
    "README.md": "# demo\n\nSome words.\n",
}


def make_change(
    repo: Path,
    after: dict[str, str | bytes],
    *,
    before: dict[str, str] | None = None,
    spec: str = "HEAD~1..HEAD",
) -> Change:
    commit(repo, dict(before or BEFORE), "base")
    commit(repo, after, "change")
    return read_change(str(repo), spec)


def default_change(repo: Path) -> Change:
    """Three modified modules, one unit each in the tests."""
    return make_change(
        repo,
        {
            "app/util.py": edit(
                BEFORE["app/util.py"], "def util_3(", ["    y = x * 2  # util change"]
            ),
            "app/auth.py": edit(
                BEFORE["app/auth.py"],
                "def auth_5(",
                ["    if x == None:  # auth change", "        return 0"],
            ),
            "app/db.py": edit(BEFORE["app/db.py"], "def db_7(", ["    os.remove(x)  # db change"]),
        },
    )


def analysis_for(change: Change) -> Analysis:
    files = tuple(
        FileStat(
            f.path,
            f.old_path,
            f.status,
            "Python" if f.path.endswith(".py") else None,
            f.lines_added,
            f.lines_removed,
            len(f.hunks),
            0,
            None,
        )
        for f in change.files
    )
    return Analysis(
        files,
        sum(f.lines_added for f in change.files),
        sum(f.lines_removed for f in change.files),
        sum(len(f.hunks) for f in change.files),
        0,
        0.4,
        (),
    )


def route_for(
    units: Sequence[tuple[str, Tier, Sequence[str], float]],
    config: Config | None = None,
    change: Change | None = None,
) -> Route:
    """Units as given; with `change`, each carries the router's offline token estimate."""
    cfg = config or config_mod.default()
    files = {f.path: f for f in change.files} if change is not None else {}

    def tokens(paths: Sequence[str]) -> tuple[int, int]:
        if change is None:
            return 0, 0
        return unit_tokens([files[p] for p in paths if p in files], len(change.files))

    built = tuple(
        Unit(
            uid,
            tier,
            cfg.model_for(tier),
            tuple(paths),
            risk,
            (f"test routes it to {tier}",),
            *tokens(paths),
        )
        for uid, tier, paths, risk in units
    )
    top = max((u.tier for u in built), key=("skip", "haiku", "sonnet", "opus").index)
    return Route(top, ("test",), built)


def config(**changes: object) -> Config:
    return dataclasses.replace(config_mod.default(), **changes)  # type: ignore[arg-type]


def by_path(replies: dict[str, Reply | list[Reply]]) -> Callable[[Recorded], Reply | None]:
    """A responder answering by which unit file the request is about (first match wins)."""
    queues = {k: (list(v) if isinstance(v, list) else [v]) for k, v in replies.items()}

    def respond(req: Recorded) -> Reply | None:
        text = user_text(req)
        for path, q in queues.items():
            if f"=== {path} (" in text and q:
                return q.pop(0) if len(q) > 1 else q[0]
        return None

    return respond


def user_text(req: Recorded) -> str:
    """The unit's part of the first user turn (the shared manifest block comes before it)."""
    msgs = req.json.get("messages", [])
    first = msgs[0]["content"] if msgs else ""
    return first if isinstance(first, str) else first[-1].get("text", "")


def manifest_text(req: Recorded) -> str:
    """The shared, cached block of the first user turn: the change manifest."""
    first = req.json["messages"][0]["content"]
    assert isinstance(first, list) and len(first) == 2
    return str(first[0]["text"])


def unit_paths(req: Recorded) -> list[str]:
    text = user_text(req)
    line = next(ln for ln in text.splitlines() if ln.startswith("Files of this unit"))
    return line.split(": ", 1)[1].split(", ")


def tier_of(req: Recorded) -> str:
    return next(t for t in ("haiku", "sonnet", "opus") if t in req.model)


def reviews(fake: FakeAnthropic) -> list[Recorded]:
    """The requests that asked for a review (not cache priming, not verification)."""
    return [r for r in fake.requests if r.json.get("max_tokens") != 0 and not is_verification(r)]


def review(change: Change, route: Route, cfg: Config | None = None, **kw: object) -> ModelOutcome:
    """`model.review` of `route` with the test defaults (no budget, the review cache on)."""
    from tierbot.review import model

    args: dict[str, object] = {
        "budget_usd": None,
        "use_cache": True,
        "repo_label": "demo",
        "range_label": change.range.spec,
    }
    args.update(kw)
    return model.review(change, analysis_for(change), route, (), cfg or config(), **args)  # type: ignore[arg-type]
