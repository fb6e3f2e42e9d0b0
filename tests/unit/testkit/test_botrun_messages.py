"""BotRun's failure wording (harness.testkit.botproc): a bot killed by a signal before any verdict says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.testkit.botproc import BotRun


def test_a_bot_killed_by_its_own_sigterm_is_named_as_such(tmp_path: Path) -> None:
    # a process that dies of SIGTERM the way a bot without signal handlers does
    done = subprocess.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"], timeout=30)
    run = BotRun(returncode=done.returncode, stdout="", stderr="", log_dir=tmp_path, stop_seconds=0.0)
    assert run.exit_description.startswith("killed by signal SIGTERM (exit status -15), no verdict")
    assert "did it install its signal handlers?" in run.exit_description
    assert "no LIQUIDATION_COMPLETE" in run.exit_description


def test_a_bot_with_a_verdict_reports_its_code_and_state(tmp_path: Path) -> None:
    run = BotRun(returncode=1, stdout="", stderr="", log_dir=tmp_path, stop_seconds=0.0, result={"state": "PARTIAL"})
    assert run.exit_description == "exit code 1, state PARTIAL"
