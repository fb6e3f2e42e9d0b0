"""Run a checklist command under the project's virtual environment when the current Python lacks it.

The checklist prints ``python scripts/...`` and ``pytest tests/...``: with a plain system Python
(harness's dependencies not installed) these re-exec themselves with ``.venv/bin/python`` (made by
``bash scripts/bootstrap.sh``), so they work as written; without ``.venv`` they say how to make it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
GUARD = "HARNESS_VENV_REEXEC"  # not LIQUIDATION_*: those are config fields


#: what the checklist's commands import (the project's runtime and test dependencies)
REQUIRED = ("click", "pydantic", "jinja2", "binance", "aiohttp", "cryptography")
REQUIRED_FOR_TESTS = ("allure", "xdist", "pytest_asyncio", "hypothesis", "responses")


def has_project(probe: str, *, tests: bool = False) -> bool:
    """True when this Python has the project's dependencies and ``probe`` (found, not imported:
    importing them all costs most of a CPU-second, paid by every script start)."""
    try:
        return all(importlib.util.find_spec(name) is not None
                   for name in (*REQUIRED, *(REQUIRED_FOR_TESTS if tests else ()), probe))
    except (ImportError, ValueError):  # a parent package that is not there, or a broken spec
        return False


def reexec_under_venv(argv: list[str]) -> None:
    """Replace this process with ``.venv/bin/python *argv`` (once); exit 2 saying how when impossible."""
    running_venv = Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()
    if VENV_PYTHON.exists() and not running_venv and not os.environ.get(GUARD):
        os.environ[GUARD] = "1"
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *argv])
    sys.stderr.write(f"liquidation-harness's dependencies are not installed for {sys.executable}; "
                     "run `bash scripts/bootstrap.sh`, then `source .venv/bin/activate`\n")
    raise SystemExit(2)


def reexec_pytest_under_venv() -> None:
    """From the root conftest of a pytest lacking the project: stop pytest's output capture (it
    holds fds 1 and 2, which the new process inherits) and hand the command line to .venv's pytest."""
    import gc

    for obj in gc.get_objects():
        if type(obj).__name__ == "CaptureManager" and hasattr(obj, "stop_global_capturing"):
            obj.stop_global_capturing()
    reexec_under_venv(["-m", "pytest", *sys.argv[1:]])


def ensure_project_python(probe: str, argv: list[str], *, tests: bool = False) -> None:
    """Unless this Python has the project (``has_project``), re-exec ``argv`` under .venv."""
    if not has_project(probe, tests=tests):
        reexec_under_venv(argv)
