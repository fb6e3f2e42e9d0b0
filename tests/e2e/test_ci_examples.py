"""examples/ci/: the GitHub Actions and GitLab CI workflows parse, install with the project's
scripts, upload what verify writes, and their verify invocations run here as written."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import cli
from harness.exchanges.target import DEMO_KEY_VARS, PRODUCTION_KEY_VARS, TESTNET_KEY_VARS
from tests.support import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples" / "ci"
VERIFY = ".venv/bin/liquidation-harness verify"


def github_commands(workflow: dict[str, Any]) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def gitlab_commands(pipeline: dict[str, Any]) -> list[str]:
    return [line for job in pipeline.values() if isinstance(job, dict) and "script" in job for line in job["script"]]


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))


WORKFLOWS = {"github-actions.yml": github_commands, "gitlab-ci.yml": gitlab_commands}


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_workflow_installs_with_the_project_scripts_and_keeps_the_run_directories(name: str) -> None:
    workflow = load(name)
    commands = WORKFLOWS[name](workflow)
    assert any("scripts/bootstrap.sh" in command for command in commands)
    assert sum(command.startswith(VERIFY) for command in commands) >= 1
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert "reports/out/runs/" in text and "junit.xml" in text


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_the_embedded_verify_invocation_runs_as_written(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first verify line (the embedded-exchange one), with only a small test file and a
    temporary working directory substituted, produces the directories the upload step names."""
    command = next(c for c in WORKFLOWS[name](load(name)) if c.startswith(VERIFY) and "--testnet" not in c)
    args = shlex.split(command)[1:]  # drop the executable: ["verify", ...]
    assert args[0] == "verify"
    test_file = tmp_path / "test_one.py"
    test_file.write_text("def test_ok():\n    pass\n")
    monkeypatch.chdir(tmp_path)
    env = {name: "" for name in PRODUCTION_KEY_VARS + TESTNET_KEY_VARS + DEMO_KEY_VARS}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the plugins the run needs (below): faster here
    result = CliRunner().invoke(cli, [*args, "--no-html", "--path", str(test_file), "--", "-p", "allure_pytest.plugin",
                                      "-p", "xdist.plugin", "-p", "harness.pytest_plugin", f"--rootdir={tmp_path}", "-c", "/dev/null"], env=env)
    assert result.exit_code == 1, result.output  # one test is not the checklist: not ready, but it ran
    latest = tmp_path / "reports" / "out" / "runs" / "latest"
    assert (latest / "junit.xml").is_file() and any(latest.glob("deployment-report-*.md"))
    assert any(latest.glob("*.intoto.json"))
