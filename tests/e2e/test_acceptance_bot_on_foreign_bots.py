"""scenarios/test_acceptance_bot.py against bots that are not harness.bot, run as a team would run it.

``pytest scenarios/test_acceptance_bot.py --bot-cmd "<python> examples/<bot>/bot.py" --bot-cwd <repo>``
in a subprocess: the ccxt example bot passes every check, the unsafe bot fails the checks it breaks
and each failure names the behaviour. The default variant runs a few checks per bot (a bot start costs
seconds); the whole file for both bots is the slow variant. The ccxt bot's default check is read
from the session's full ccxt ``verify`` run (tests/support/verify_runs.py), which runs this file on
that bot among every scenario, instead of starting the bot once more for it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support import NO_HYPOTHESIS, REPO_ROOT
from tests.support.verify_runs import VerifyRun

pytest.importorskip("ccxt")

SCENARIOS = REPO_ROOT / "scenarios" / "test_acceptance_bot.py"
CCXT_BOT = f"{sys.executable} examples/ccxt_bot/bot.py"
UNSAFE_BOT = f"{sys.executable} examples/unsafe_bot/bot.py"
RUN_TIMEOUT = 300

#: check -> what its failure message must say for the unsafe bot (which exits on SIGTERM without liquidating)
UNSAFE_MESSAGES = {
    "test_one_way_shutdown_cancels_conditional_orders_and_sends_only_reduce_only_closes":
        "conditional orders left in the algo book after shutdown",
    "test_hedge_mode_closes_both_legs_with_their_position_side": "hedge-mode closes sent wrong",
    "test_restart_keeps_both_runs_whole_in_the_audit_trail": "left BTCUSDT open",
    "test_deadmans_switch_cancels_orders_after_sigkill": "the bot never armed countdownCancelAll",
    "test_second_sigterm_does_not_abort_the_liquidation": "the first SIGTERM started no close",
    "test_no_memory_growth_across_on_demand_liquidations": "the bot does not support SIGUSR1",
}
#: the default variant: one check the ccxt bot must pass (it arms its own switch), two the unsafe bot fails fast
CCXT_FAST = ("test_deadmans_switch_cancels_orders_after_sigkill",)
UNSAFE_FAST = ("test_second_sigterm_does_not_abort_the_liquidation", "test_no_memory_growth_across_on_demand_liquidations")


def run_scenarios(bot_cmd: str, report: Path, checks: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest", str(SCENARIOS), "-p", "no:cacheprovider", "-n", "0", "--tb=short",
            f"--junitxml={report}", "--bot-cmd", bot_cmd, "--bot-cwd", str(REPO_ROOT), *NO_HYPOTHESIS]
    if checks:
        argv += ["-k", " or ".join(checks)]
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def failed_checks(report: Path) -> dict[str, str]:
    """check name -> its failure message, from the run's JUnit XML."""
    found = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        failure = case.find("failure")
        if failure is not None:
            found[case.get("name", "").split("[")[0]] = failure.get("message", "")
    return found


def _assert_unsafe_fails(checks: tuple[str, ...], tmp_path: Path) -> None:
    report = tmp_path / "unsafe.xml"
    result = run_scenarios(UNSAFE_BOT, report, checks)
    output = result.stdout + result.stderr
    assert result.returncode == 1, f"the unsafe bot must fail the acceptance checks (exit 1): {result.returncode}\n{output[-3000:]}"
    failed = failed_checks(report)
    for check in checks or tuple(UNSAFE_MESSAGES):
        assert check in failed, f"{check} passed on the unsafe bot:\n{output[-3000:]}"
        assert UNSAFE_MESSAGES[check] in failed[check], (
            f"{check} failed without naming the behaviour ({UNSAFE_MESSAGES[check]!r}): {failed[check]}")


def _assert_ccxt_passes(checks: tuple[str, ...], tmp_path: Path) -> None:
    result = run_scenarios(CCXT_BOT, tmp_path / "ccxt.xml", checks)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"the ccxt example bot failed acceptance checks:\n{output[-4000:]}"
    assert re.search(r"\b[1-9]\d* passed\b", result.stdout), f"no check ran:\n{output[-2000:]}"


@pytest.mark.parametrize("check", CCXT_FAST)
def test_the_ccxt_bot_passes(ccxt_verify_run: VerifyRun, check: str) -> None:
    ccxt_verify_run.assert_passed(f"{SCENARIOS.stem}::{check}")


def test_the_unsafe_bot_fails_naming_the_checks(tmp_path: Path) -> None:
    _assert_unsafe_fails(UNSAFE_FAST, tmp_path)


@pytest.mark.slow
def test_the_whole_file_on_the_ccxt_bot_passes(tmp_path: Path) -> None:
    _assert_ccxt_passes((), tmp_path)


@pytest.mark.slow
def test_the_whole_file_on_the_unsafe_bot_fails_every_check_naming_it(tmp_path: Path) -> None:
    _assert_unsafe_fails((), tmp_path)
