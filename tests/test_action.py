"""The action's own steps, run the way a runner runs them, against loopback GitHub and Claude.

`action.yml` is parsed and each `run:` script is executed with bash and the environment a runner
gives (GITHUB_EVENT_PATH, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_API_URL, the step's `env:` with
its `${{ inputs.* }}` filled in), so the action cannot drift from the CLI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitrepo import git
from pr_helpers import SECRET, PrWorld, read_outputs, world

__all__ = ["world"]

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
WORKFLOW = ROOT / ".github" / "workflows" / "tierbot.yml"
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
# Installing would pip-install this checkout into the interpreter running the tests (and needs
# PyPI); the package under test is already installed in it, which is what that step provides.
SKIPPED_STEPS = {"Install tierbot"}


def action() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return data


def evaluate(template: str, inputs: dict[str, str], token: str) -> str:
    """The only expressions the action may use in `env:`: inputs and the workflow token."""

    def one(m: re.Match[str]) -> str:
        expr = m.group(1)
        if expr.startswith("inputs."):
            return inputs[expr[len("inputs.") :]]
        if expr == "github.token":
            return token
        raise AssertionError(f"action.yml uses an expression this test cannot evaluate: {expr}")

    return EXPR.sub(one, template)


def cli_has_pr() -> bool:
    from tierbot import cli

    return "pr" in getattr(cli.cli, "commands", {})


def run_action(
    w: PrWorld, given: dict[str, str], extra_env: dict[str, str] | None = None
) -> tuple[int, str, str, dict[str, str]]:
    """Run every `run:` step of action.yml in order; return the last step's results."""
    if not cli_has_pr():
        pytest.skip("tierbot/cli.py does not expose `tierbot pr` yet (the lead wires it)")
    spec = action()
    inputs = {name: str(meta.get("default", "")) for name, meta in spec["inputs"].items()}
    token = os.environ["GITHUB_TOKEN"]
    inputs = {k: evaluate(v, {}, token) if "${{" in v else v for k, v in inputs.items()}
    inputs.update(given)
    step_outputs: dict[str, dict[str, str]] = {}
    code, out, err = 0, "", ""
    for step in spec["runs"]["steps"]:
        if "uses" in step or step.get("name") in SKIPPED_STEPS:
            continue
        assert step.get("shell") == "bash", "composite run steps must name their shell"
        assert "${{" not in step["run"], "never interpolate expressions into a run script"
        output_file = w.tmp / f"output-{step.get('id', 'step')}.txt"
        output_file.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))}
        env.update(
            {
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "GITHUB_ACTIONS": "true",
                "GITHUB_ACTION_PATH": str(ROOT),
                "GITHUB_WORKSPACE": str(w.repo),
                "GITHUB_EVENT_NAME": os.environ["GITHUB_EVENT_NAME"],
                "GITHUB_EVENT_PATH": os.environ["GITHUB_EVENT_PATH"],
                "GITHUB_API_URL": os.environ["GITHUB_API_URL"],
                "GITHUB_REPOSITORY": os.environ["GITHUB_REPOSITORY"],
                "GITHUB_OUTPUT": str(output_file),
                "GITHUB_STEP_SUMMARY": str(w.summary_path),
                "RUNNER_TEMP": str(w.tmp),
                **(extra_env or {}),
            }
        )
        env.pop("GITHUB_TOKEN", None)  # only what the step's env passes may reach it
        env.pop("ANTHROPIC_API_KEY", None)
        for k, v in (step.get("env") or {}).items():
            env[k] = evaluate(str(v), inputs, token)
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=w.repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        code, out, err = proc.returncode, proc.stdout, proc.stderr
        if "id" in step:
            step_outputs[step["id"]] = read_outputs(output_file)
        if code != 0:
            break
    mapped = {}
    for name, meta in spec.get("outputs", {}).items():
        m = re.fullmatch(r"\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}", meta["value"])
        assert m, f"output {name} must map a step output"
        mapped[name] = step_outputs.get(m.group(1), {}).get(m.group(2), "")
    return code, out, err, mapped


def test_action_inputs_outputs_and_steps_are_what_the_cli_takes() -> None:
    spec = action()
    assert spec["runs"]["using"] == "composite"
    assert set(spec["inputs"]) == {
        "anthropic-api-key",
        "github-token",
        "config",
        "fail-on",
        "dry-run",
    }
    assert spec["inputs"]["github-token"]["default"] == "${{ github.token }}"
    assert set(spec["outputs"]) == {"tier", "cost-usd", "findings", "blocking", "costs-file"}
    uses = [s["uses"] for s in spec["runs"]["steps"] if "uses" in s]
    assert uses and all(PINNED.match(u) for u in uses), uses
    run_text = "\n".join(s.get("run", "") for s in spec["runs"]["steps"])
    assert "tierbot" in run_text and "${{" not in run_text


def test_example_workflow_is_least_privilege_with_full_history() -> None:
    wf = yaml.safe_load(WORKFLOW.read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in on and "pull_request_target" not in on
    assert wf["permissions"] == {}  # nothing at the workflow level; the job asks for its own
    [job] = wf["jobs"].values()
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    checkout = next(s for s in job["steps"] if "actions/checkout" in s.get("uses", ""))
    assert PINNED.match(checkout["uses"])
    assert checkout["with"]["fetch-depth"] == 0
    assert checkout["with"]["persist-credentials"] is False
    # The step that gets the key runs a pinned commit of the action, never the PR's own copy.
    [review] = [s for s in job["steps"] if "anthropic-api-key" in s.get("with", {})]
    assert PINNED.match(review["uses"]) and review["uses"].startswith("tierbot/tierbot@")
    assert not any(s.get("uses", "").startswith("./") for s in job["steps"])


def test_action_reviews_a_pull_request_and_a_rerun_changes_nothing(world: PrWorld) -> None:
    from fake_anthropic import answer, fake_anthropic, finding

    base = world.commit({"app.py": "def main():\n    return 1\n"}, "base")
    git(world.repo, "checkout", "-q", "-b", "feature")
    head = world.commit(
        {"app.py": "def main():\n    x = 1\n    return x\n", "keys.py": f"K = '{SECRET}'\n"},
        "feature",
    )
    world.publish(base, head)
    with fake_anthropic() as model:
        model.responder = lambda req: answer(
            [finding("app.py", 2, "x is pointless", suggestion="    return 1")]
        )
        env = {"ANTHROPIC_BASE_URL": model.url, "TIERBOT_GITHUB_THROTTLE": "0"}
        given = {"anthropic-api-key": "sk-ant-test-key-000000000000000000"}
        code, _, err, outputs = run_action(world, given, env)
        assert code == 0, err
        assert model.requests and all(
            r.headers.get("x-api-key") == given["anthropic-api-key"]
            or r.headers.get("authorization") == f"Bearer {given['anthropic-api-key']}"
            for r in model.requests
        )
        assert outputs["findings"] == "2" and outputs["blocking"] == "false"
        assert outputs["tier"] in ("haiku", "sonnet", "opus") and float(outputs["cost-usd"]) > 0
        [summary] = world.summary_comments()
        assert f"<!-- tierbot:head={head} -->" in summary["body"]
        assert sorted(c["path"] for c in world.fake.review_comments) == ["app.py", "keys.py"]
        assert "tierbot review" in world.summary_path.read_text()

        writes_before = len(world.fake.writes())
        code, _, err, outputs = run_action(world, given, env)
        assert code == 0, err
    new_writes = world.fake.writes()[writes_before:]
    assert [(r.method, r.path.rsplit("/", 2)[-2]) for r in new_writes] == [("PATCH", "comments")]
    assert len(world.summary_comments()) == 1 and len(world.fake.review_comments) == 2
    assert len(world.fake.reviews) == 1


def test_action_fail_on_and_dry_run_inputs_reach_the_cli(world: PrWorld) -> None:
    base = world.commit({"app.py": "x = 1\n"}, "base")
    git(world.repo, "checkout", "-q", "-b", "feature")
    head = world.commit({"keys.py": f"K = '{SECRET}'\n"}, "feature")
    world.publish(base, head)
    code, _, _, outputs = run_action(
        world, {"fail-on": "high", "dry-run": "true"}, {"TIERBOT_GITHUB_THROTTLE": "0"}
    )
    assert code == 1 and outputs["blocking"] == "true"
    assert world.fake.writes() == []  # dry run: nothing posted


def test_action_config_input_is_read_from_the_base_commit(world: PrWorld) -> None:
    base = world.commit(
        {"app.py": "x = 1\n", "ci/review.yml": "github:\n  max_comments: 1\n"}, "base"
    )
    git(world.repo, "checkout", "-q", "-b", "feature")
    head = world.commit(
        {
            "ci/review.yml": "github:\n  max_comments: 5\n",
            "a.py": f"A = '{SECRET}'\n",
            "b.py": f"B = '{SECRET}'\n",
        },
        "feature",
    )
    world.publish(base, head)
    code, _, err, outputs = run_action(
        world, {"config": "ci/review.yml"}, {"TIERBOT_GITHUB_THROTTLE": "0"}
    )
    assert code == 0, err
    assert outputs["findings"] == "2" and len(world.fake.review_comments) == 1


def test_action_exports_the_runs_costs_and_the_workflow_keeps_them(world: PrWorld) -> None:
    from fake_anthropic import answer, fake_anthropic, finding

    base = world.commit({"app.py": "def main():\n    return 1\n"}, "base")
    git(world.repo, "checkout", "-q", "-b", "feature")
    head = world.commit({"app.py": "def main():\n    x = 1\n    return x\n"}, "feature")
    world.publish(base, head)
    env = {"TIERBOT_GITHUB_THROTTLE": "0", "GITHUB_RUN_ID": "77", "GITHUB_RUN_ATTEMPT": "1"}
    given = {"anthropic-api-key": "sk-ant-test-key-000000000000000000"}
    with fake_anthropic() as model:
        model.responder = lambda req: answer([finding("app.py", 2, "x is pointless")])
        env["ANTHROPIC_BASE_URL"] = model.url
        code, _, err, outputs = run_action(world, given, env)
        assert code == 0, err
        path = Path(outputs["costs-file"])
        assert path.name == "tierbot-costs-77-1.jsonl" and path.parent == world.tmp
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert rows and all(
            r["command"] == "pr" and r["schema"] == "tierbot.cost-row/1" for r in rows
        )
        assert sum(r["cost_usd"] for r in rows) == pytest.approx(
            float(outputs["cost-usd"]), abs=1e-5
        )
        # A push, and its run (the ledger restored from the cache) exports only its own rows.
        later = world.commit({"util.py": "def helper(y):\n    return y * 2\n"}, "more")
        world.publish(base, later)
        env["GITHUB_RUN_ID"] = "78"
        code, _, err, outputs = run_action(world, given, env)
        assert code == 0, err
        again = [json.loads(line) for line in Path(outputs["costs-file"]).read_text().splitlines()]
        assert again and {r["row"] for r in again}.isdisjoint({r["row"] for r in rows})
    wf = yaml.safe_load(WORKFLOW.read_text())
    [job] = wf["jobs"].values()
    steps = {s.get("uses", "").split("@")[0]: s for s in job["steps"]}
    restore, save = steps["actions/cache/restore"], steps["actions/cache/save"]
    assert restore["with"]["path"] == save["with"]["path"] == "${{ runner.temp }}/tierbot-home"
    assert "pull_request.number" in restore["with"]["key"] and save["if"] == "always()"
    review = next(s for s in job["steps"] if "anthropic-api-key" in s.get("with", {}))
    assert review["env"]["TIERBOT_HOME"] == restore["with"]["path"]
    upload = steps["actions/upload-artifact"]
    assert upload["with"]["path"] == "${{ steps.tierbot.outputs.costs-file }}"
    assert all(PINNED.match(s["uses"]) for s in job["steps"] if "uses" in s)


@pytest.mark.parametrize(
    "target,schema",
    [
        ("action.yml", "vendor.github-actions"),
        (".github/workflows/tierbot.yml", "vendor.github-workflows"),
    ],
)
def test_check_jsonschema(target: str, schema: str) -> None:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("check-jsonschema is not installed")
    proc = subprocess.run(
        [exe, "--builtin-schema", schema, target], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing() -> None:
    exe = shutil.which("zizmor", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("zizmor is not installed")
    proc = subprocess.run(
        [exe, "--offline", "--persona", "auditor", "action.yml", ".github/workflows/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
