"""Root conftest: the harness's pytest plugin (options --testnet, --demo, --env, --exchange-url, --symbols).

Everything lives in harness/pytest_plugin.py so it can be tested with pytester and reused. A
``pytest`` from outside the project's .venv (the checklist's ``pytest tests/...`` before
``source .venv/bin/activate``) is re-executed under .venv (scripts/_venv.py).

The probe only looks the packages up (``find_spec``), it does not import them: every pytest
process rooted here loads this file (each xdist worker, each scenario run a test starts), and
importing the test dependencies (hypothesis above all, whose 70 modules pytest assertion-rewrites
as a plugin's, uncached under PYTHONDONTWRITEBYTECODE) cost about two CPU-seconds per process.
"""

import sys
from importlib.util import find_spec
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))
from _venv import REQUIRED, REQUIRED_FOR_TESTS, reexec_pytest_under_venv  # noqa: E402

sys.path.pop(0)


def _project_installed() -> bool:
    """The project's runtime and test dependencies and its plugin can be found by this Python."""
    try:
        return all(find_spec(name) is not None for name in (*REQUIRED, *REQUIRED_FOR_TESTS, "harness.pytest_plugin"))
    except ImportError:  # a dotted name whose parent package is missing
        return False


if not _project_installed():
    reexec_pytest_under_venv()

pytest_plugins = ["harness.pytest_plugin"]
