"""Shared test support: the repository root, one fake clock, the chaos strategies and checks.

Imported as ``tests.support`` (the repository root is on ``sys.path`` through the root conftest).
"""

from __future__ import annotations

from pathlib import Path

#: the repository checkout the tests run in
REPO_ROOT = Path(__file__).resolve().parents[2]

#: for every pytest a test starts in a subprocess (scenario runs, verify's inner run): without
#: Hypothesis's plugin. No scenario uses Hypothesis, and its plugin imports all of Hypothesis at the
#: end of every run (its terminal summary), about a CPU-second per run on this suite's machines.
NO_HYPOTHESIS = ("-p", "no:hypothesispytest")
