"""scenarios/test_acceptance_engine.py through pytest, against bots that are not harness.bot.

The ccxt example bot must pass the file; the unsafe example bot (exits on SIGTERM without liquidating)
must fail it with messages naming the broken behaviours; and harness.bot with one behaviour broken
(``tests/support/broken_engine_bot.py``) must fail the scenario that guards that behaviour, naming it:
the acceptance scenarios can fail. The full runs are slow; a small subset runs in CI.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import NO_HYPOTHESIS, REPO_ROOT

SCENARIOS = REPO_ROOT / "scenarios" / "test_acceptance_engine.py"
BROKEN_BOT = REPO_ROOT / "tests" / "support" / "broken_engine_bot.py"
UNSAFE_BOT = REPO_ROOT / "examples" / "unsafe_bot" / "bot.py"
CCXT_BOT = REPO_ROOT / "examples" / "ccxt_bot" / "bot.py"


def run_scenarios(bot: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q", "-o", "addopts=", *NO_HYPOTHESIS, str(SCENARIOS),
         "--bot-cmd", f"{sys.executable} {bot}", "--bot-cwd", str(REPO_ROOT), *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def tail(run: subprocess.CompletedProcess[str]) -> str:
    return run.stdout[-3000:] + run.stderr[-1500:]


def test_the_unsafe_bot_fails_naming_what_it_did_not_do() -> None:
    run = run_scenarios(str(UNSAFE_BOT), "-k", "retries_seen or total_failure")
    assert run.returncode == 1, tail(run)
    assert "2 failed" in run.stdout, tail(run)
    for named in ("RETRY COUNT", "TERMINAL RETRIED", "TOTAL FAILURE: bot exit code 0"):
        assert named in run.stdout, f"{named!r} not in the failure output: {tail(run)}"


class TestTheAcceptanceScenariosCanFail:
    """harness.bot with one planted fault fails the scenario that guards it, naming the behaviour."""

    def test_an_engine_that_ignores_its_deadline_fails_the_deadline_scenario(self) -> None:
        """The adapter's per-request bound still ends the run in time; only the engine's deadline is missing."""
        run = run_scenarios(f"{BROKEN_BOT} ignore-the-deadline", "-k", "own_deadline")
        assert run.returncode == 1, tail(run)
        assert "1 failed" in run.stdout and "DEADLINE NOT ENFORCED BY THE ENGINE" in run.stdout, tail(run)

    @pytest.mark.slow
    def test_every_planted_fault_fails_its_scenario(self) -> None:
        sys.path.insert(0, str(BROKEN_BOT.parent))
        try:
            from broken_engine_bot import BREAKAGES
        finally:
            sys.path.remove(str(BROKEN_BOT.parent))
        missed = {}
        for breakage, (_, scenario, named) in BREAKAGES.items():
            run = run_scenarios(f"{BROKEN_BOT} {breakage}", "-k", scenario)
            if run.returncode != 1 or named not in run.stdout:
                missed[breakage] = tail(run)[-600:]
        assert not missed, missed


@pytest.mark.slow
def test_the_ccxt_example_bot_passes() -> None:
    pytest.importorskip("ccxt")
    run = run_scenarios(str(CCXT_BOT))
    assert run.returncode == 0, tail(run)
    assert " failed" not in run.stdout and " error" not in run.stdout, tail(run)


@pytest.mark.slow
def test_the_unsafe_bot_fails_every_scenario() -> None:
    run = run_scenarios(str(UNSAFE_BOT))
    assert run.returncode == 1, tail(run)
    for named in ("RETRY COUNT", "DEADLINE", "AMBIGUOUS OUTCOME", "UNKNOWN READ AS FLAT", "ABOVE MAX QTY",
                  "WHOLE ACCOUNT", "SCOPE", "TOTAL FAILURE"):
        assert named in run.stdout, f"{named!r} not in the failure output: {tail(run)}"
    assert " passed" not in run.stdout, f"a scenario passed on a bot that never liquidates: {tail(run)}"
