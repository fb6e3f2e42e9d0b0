#!/usr/bin/env python3
"""The checklist's command: ``python scripts/validate_liquidation_config.py --env=production --strict``.

A thin wrapper over ``liquidation-harness validate`` with the same options and exit codes. Run
with a Python that lacks the project's dependencies, it re-executes itself under ``.venv``.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _venv import ensure_project_python  # noqa: E402

ensure_project_python("harness.cli", [str(Path(__file__).resolve()), *sys.argv[1:]])

from harness.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["validate", *sys.argv[1:]]))
