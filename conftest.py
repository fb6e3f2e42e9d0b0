"""Root conftest: the harness's pytest plugin (options --testnet, --demo, --env, --exchange-url, --symbols).

Everything lives in harness/pytest_plugin.py so it can be tested with pytester and reused. A
``pytest`` from outside the project's .venv (the checklist's ``pytest tests/...`` before
``source .venv/bin/activate``) is re-executed under .venv (scripts/_venv.py).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))
from _venv import has_project, reexec_pytest_under_venv  # noqa: E402

sys.path.pop(0)

if not has_project("harness.pytest_plugin", tests=True):
    reexec_pytest_under_venv()

pytest_plugins = ["harness.pytest_plugin"]
