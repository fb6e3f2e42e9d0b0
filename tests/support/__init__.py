"""Shared test support: the repository root, one fake clock, the chaos strategies and checks.

Imported as ``tests.support`` (the repository root is on ``sys.path`` through the root conftest).
"""

from __future__ import annotations

from pathlib import Path

#: the repository checkout the tests run in
REPO_ROOT = Path(__file__).resolve().parents[2]
