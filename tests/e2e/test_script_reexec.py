"""The checklist's commands work as written from a Python without the project: they re-exec under .venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

BASE_PYTHON = Path(sys.base_prefix) / "bin" / "python3"
needs_venv = pytest.mark.skipif(not (REPO_ROOT / ".venv" / "bin" / "python").exists() or not BASE_PYTHON.exists(),
                                reason="needs the project's .venv (bash scripts/bootstrap.sh) and a base Python")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("VIRTUAL_ENV", "PYTHONPATH", "HARNESS_VENV_REEXEC") and not k.startswith(("LIQUIDATION_", "PYTEST_"))}


@needs_venv
def test_validate_script_runs_from_a_python_without_the_project(tmp_path: Path) -> None:
    # -S: no site-packages at all, so nothing of the project is importable before the re-exec
    done = subprocess.run([str(BASE_PYTHON), "-S", str(REPO_ROOT / "scripts" / "validate_liquidation_config.py"),
                           "--env=production", "--strict"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=clean_env())
    assert done.returncode == 0, done.stderr
    assert "Configuration validated successfully" in done.stdout


@needs_venv
def test_validate_script_keeps_the_exit_code_of_a_refused_configuration(tmp_path: Path) -> None:
    env = {**clean_env(), "LIQUIDATION_TIMEOUT_SECONDS": "45"}
    done = subprocess.run([str(BASE_PYTHON), "-S", str(REPO_ROOT / "scripts" / "validate_liquidation_config.py"),
                           "--env=production", "--strict"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 2 and "timeout_seconds" in done.stdout + done.stderr
