#!/usr/bin/env python3
"""The checklist's command: ``python scripts/validate_liquidation_config.py --env=production --strict``.

A thin wrapper over ``liquidation-harness validate`` with the same options and exit codes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["validate", *sys.argv[1:]]))
