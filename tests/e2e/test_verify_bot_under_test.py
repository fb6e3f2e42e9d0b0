"""`liquidation-harness verify --bot-cmd ...`: a team's bot judged by the scenarios, through the public CLI,
and the plugin + scenarios as an installed distribution finds them."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support import NO_HYPOTHESIS, REPO_ROOT
from tests.support.verify_runs import CCXT_COMMAND, VerifyRun, verify

UNSAFE_BOT = REPO_ROOT / "examples" / "unsafe_bot" / "bot.py"


def test_the_unsafe_bot_is_not_ready_naming_the_scenarios_and_the_rollback_rows(tmp_path: Path) -> None:
    command = shlex.join([sys.executable, str(UNSAFE_BOT)])
    # -n 0: four scenarios in one process; xdist workers would each collect every scenario again
    run = verify(tmp_path, "--bot-cmd", command, "--bot-cwd", str(REPO_ROOT), pytest_args=("-n", "0", "-k", "test_testnet_scenario"))
    code, output, report = run.exit_code, run.output, run.report
    assert code == 1, output
    assert "NOT READY FOR SIGN-OFF" in output
    for item in ("scenario.1.normal", "scenario.3.timeout", "scenario.4.partial"):
        assert f"❌ {item} (FAILED)" in output, f"{item} not named as failed:\n{output[-3000:]}"
    assert "positions still open after shutdown (exit code 0)" in output
    assert "Complete liquidation failure -> severity High, rollback YES" in output
    assert "Shutdown hangs -> severity Critical, rollback YES" in output
    assert f"Bot judged: {command} (version " in output and "Suites run: checklist scenarios" in output
    assert "project test suite" not in output  # the project's own tests are its CI's, not the team's sign-off
    assert f"**Bot under test**: `{command}`, version " in report and "**Suites Run**: checklist scenarios" in report
    assert "**Not Judged In This Run**: pre.tests., pre.deps.order_manager, pre.deps.methods" in report


def test_a_bad_bot_option_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    run = verify(tmp_path, "--bot-cmd", "python bot.py", "--bot-stop-signal", "SIGNOPE")
    code, output = run.exit_code, run.output
    assert code == 2 and "--bot-stop-signal" in output and "SIGNOPE" in output


def test_the_plugin_entry_point_is_declared_under_its_module_name() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["entry-points"]["pytest11"] == {"harness.pytest_plugin": "harness.pytest_plugin"}
    assert any(dep.startswith("pytest>=") for dep in project["dependencies"]), "verify needs pytest in a plain install"


def test_an_installed_layout_ships_and_finds_the_scenarios(tmp_path: Path) -> None:
    """build_py as a wheel build runs it; from that layout, verify's scenario_dir and pytest find the scenarios."""
    lib = tmp_path / "lib"
    build = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "-d", str(lib)], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    shipped = lib / "harness" / "scenarios"
    assert {"conftest.py", "scenario_support.py", "test_testnet_scenarios.py"} <= {p.name for p in shipped.iterdir()}
    assert (shipped / "monitoring" / "alerts.yml").is_file()
    elsewhere = tmp_path / "team-repo"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(lib)}
    found = subprocess.run([sys.executable, "-c", "from harness.verify import scenario_dir; print(scenario_dir())"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert found.stdout.strip() == str(shipped), found.stderr
    collected = subprocess.run([sys.executable, "-m", "pytest", str(shipped), "--collect-only", "-q", "-p", "no:cacheprovider",
                                "-o", "asyncio_mode=auto", "-k", "test_testnet_scenario", *NO_HYPOTHESIS],
                               cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert collected.returncode == 0, collected.stdout[-2000:] + collected.stderr[-2000:]
    assert "4 tests collected" in collected.stdout or collected.stdout.count("test_testnet_scenario[") == 4, collected.stdout


@pytest.mark.slow
def test_pip_install_in_a_fresh_venv_then_verify_elsewhere(tmp_path: Path) -> None:
    """The real thing: a fresh virtualenv, `pip install <checkout>`, `liquidation-harness verify --bot-cmd` in /tmp."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(REPO_ROOT)], capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    team = tmp_path / "team-repo"
    team.mkdir()
    bot = shlex.join([str(venv / "bin" / "python"), "-m", "harness.bot"])
    run = subprocess.run([str(venv / "bin" / "liquidation-harness"), "verify", "--bot-cmd", bot, "--no-html", "--no-gate", "--workers", "2"],
                         cwd=team, capture_output=True, text=True, timeout=900, env={**os.environ, "TRADING_ENV": "testnet"})
    assert "Bot judged: " in run.stdout and str(venv) in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 0 and "✅ READY FOR SIGN-OFF" in run.stdout, run.stdout[-4000:]


def test_the_ccxt_example_bot_passes_on_the_embedded_exchange_with_its_order_manager(ccxt_verify_run: VerifyRun) -> None:
    """Every scenario and the conformance kit on the ccxt bot (the session's shared run, tests/support/verify_runs.py)."""
    code, output, report = ccxt_verify_run.exit_code, ccxt_verify_run.output, ccxt_verify_run.report
    assert code == 0, output[-4000:]
    assert "PASSED ON THE EMBEDDED EXCHANGE" in output and "READY FOR PRODUCTION" not in output
    assert "conformance kit (examples.ccxt_bot.om:factory)" in output
    assert f"**Bot under test**: `{CCXT_COMMAND}`, version " in report
