"""`tierbot audit`: many commits through the Message Batches API (the loopback fake, real SDK)."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
from audit_helpers import (
    audit_json,
    batch_calls,
    history,
    ledger_rows,
    ledger_write,
    reviewer,
    run,
    setup,
    spawn,
)
from fake_anthropic import Batch, FakeAnthropic
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

import tierbot
from tierbot import config as config_mod
from tierbot.routing.pricing import call_cost

DATA = Path(tierbot.__file__).parent / "data"


def audit_validator() -> Draft202012Validator:
    review = json.loads((DATA / "review-1.schema.json").read_text())
    audit = json.loads((DATA / "audit-1.schema.json").read_text())
    registry = Registry().with_resource(review["$id"], Resource.from_contents(review))
    Draft202012Validator.check_schema(audit)
    return Draft202012Validator(audit, registry=registry)


def interactive_cost(model: str, usage: tuple[int, int, int, int]) -> float:
    return call_cost(config_mod.default().price_for(model), *usage)


def test_fifty_commits_in_one_batch_at_half_the_price(
    repo: Path,
    fake: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shas = history(repo, 50)
    setup(monkeypatch, fake, repo)
    code, doc, err = audit_json(capsys, "HEAD~50..HEAD")
    assert code == 0, err
    assert [e.message for e in audit_validator().iter_errors(doc)] == []
    assert doc["status"] == "complete"
    # One batch holds every commit's review unit; nothing went through POST /v1/messages.
    [batch] = fake.batches.values()
    assert len(batch.requests) == 50
    assert not [r for r in fake.requests if r.path == "/v1/messages"]
    assert [c["sha"] for c in doc["commits"]] == shas
    parents = [doc["range"]["base"], *shas[:-1]]
    for c, parent in zip(doc["commits"], parents, strict=True):
        [f] = c["review"]["findings"]  # on the commit's own added line, anchored as usual
        assert f["title"] == "divides by a length that may be zero" and f["fingerprint"]
        assert c["review"]["range"] == {"spec": f"{c['sha']}^!", "base": parent, "head": c["sha"]}
    # custom_id = commit + unit (+ the batch's tag), within the API's rule.
    ids = [r["custom_id"] for r in batch.requests]
    assert all(cid.startswith(sha[:20] + "-u") for cid, sha in zip(ids, shas, strict=True))
    # Every request recorded once, at half of the interactive price of its usage.
    rows = batch_calls()
    assert len(rows) == 50 and len({r[0] for r in rows}) == 50
    assert all(r[7] == "audit" for r in rows)
    for _, cost, *usage, model, _ in rows:
        assert cost == pytest.approx(interactive_cost(model, tuple(usage)) / 2)
    assert doc["usage"]["calls"] == 50
    assert doc["usage"]["cost_usd"] == pytest.approx(sum(r[1] for r in rows), abs=1e-6)
    estimate = doc["estimate"]
    assert estimate["cost_usd"] == pytest.approx(estimate["interactive_cost_usd"] / 2, abs=1e-6)
    assert doc["batches"] == [
        {
            "id": batch.id,
            "kind": "review",
            "requests": 50,
            "state": "fetched",
            "request_counts": {
                "processing": 0,
                "succeeded": 50,
                "errored": 0,
                "expired": 0,
                "canceled": 0,
            },
        }
    ]


def test_a_rerun_is_free_and_a_later_review_of_a_unit_hits_the_cache(
    repo: Path,
    fake: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shas = history(repo, 6)
    setup(monkeypatch, fake, repo)
    assert audit_json(capsys, "HEAD~6..HEAD")[0] == 0
    assert len(fake.batches) == 1
    code, doc, _ = audit_json(capsys, "HEAD~6..HEAD")
    assert code == 0 and len(fake.batches) == 1  # nothing sent again
    assert doc["usage"]["cost_usd"] == 0
    assert sum(len(c["review"]["findings"]) for c in doc["commits"]) == 6
    # An interactive review of one of the commits: answered from the review cache.
    code, out, err = run(capsys, "review", f"{shas[2]}^!", "--format", "json")
    assert code == 0, err
    review = json.loads(out)
    assert review["usage"]["calls"] == 0 and len(review["findings"]) == 1
    assert not [r for r in fake.requests if r.path == "/v1/messages"]


# --- killed at any moment: nothing lost, nothing paid twice ---------------------------------


@pytest.mark.parametrize(
    "event,nth",
    [
        ("create", 1),  # recorded, the create never reached the API
        ("created", 1),  # the API made the batch; its answer never came back
        ("retrieve", 2),  # while polling
        ("results", 1),  # half-way through the results
        ("create", 2),  # the reviews recorded, the verification batch not sent
    ],
)
def test_killed_at_each_step_a_rerun_sends_nothing_twice_and_loses_nothing(
    event: str,
    nth: int,
    repo: Path,
    fake: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    history(repo, 8)
    setup(monkeypatch, fake, repo)
    fake.responder = reviewer("high")  # a cheap tier's blocking finding: Opus verifies it
    argv = ("audit", "HEAD~8..HEAD", "--fail-on", "high")
    killed = threading.Event()
    seen: list[str] = []
    proc: list[subprocess.Popen[str]] = []

    def hook(name: str, batch: Batch | None) -> bool:
        if name != event or killed.is_set():
            return False
        seen.append(name)
        if len(seen) < nth:
            return False
        proc[0].kill()
        proc[0].wait()
        killed.set()
        return True  # at "create": the request is dropped, no batch is made

    fake.batch_hook = hook
    if event == "retrieve":
        fake.batch_polls = 10**6  # still running when it is killed
    proc.append(spawn(repo, *argv))
    assert killed.wait(90), proc[0].communicate()
    made = len(fake.batches)
    fake.batch_hook = None
    fake.end_batches()
    fake.batch_polls = 1

    code, doc, err = audit_json(capsys, *argv[1:])
    assert code == 1, err  # the confirmed high findings block
    assert doc["status"] == "complete", doc["notes"]
    # Exactly one review batch and one verification batch were ever made.
    assert len(fake.batches) == 2, (made, doc["notes"])
    assert sorted(len(b.requests) for b in fake.batches.values()) == [8, 8]
    rows = batch_calls()
    assert len(rows) == 16 and len({r[0] for r in rows}) == 16  # each recorded once
    findings = [f for c in doc["commits"] for f in c["review"]["findings"]]
    assert len(findings) == 8 and all(f["severity"] == "high" for f in findings)
    assert ledger_rows("SELECT count(*) FROM batch_requests WHERE state = 'pending'") == [(0,)]


def test_results_stored_but_not_recorded_are_recorded_once_by_a_rerun(
    repo: Path,
    fake: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A kill between storing a batch's results and recording them leaves exactly this state."""
    history(repo, 5)
    setup(monkeypatch, fake, repo)
    assert audit_json(capsys, "HEAD~5..HEAD")[0] == 0
    before = batch_calls()
    ledger_write("DELETE FROM calls")
    ledger_write("DELETE FROM review_cache")
    code, doc, _ = audit_json(capsys, "HEAD~5..HEAD")
    assert code == 0 and len(fake.batches) == 1  # answered from the stored results
    assert batch_calls() == before  # the same rows, once
    assert sum(len(c["review"]["findings"]) for c in doc["commits"]) == 5
    code, doc, _ = audit_json(capsys, "HEAD~5..HEAD")
    assert batch_calls() == before and len(fake.batches) == 1
