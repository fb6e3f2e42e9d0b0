"""``liquidation-harness verify`` runs as the tests start them, and what a finished run left.

The ccxt example bot's full verification (every checklist scenario plus the conformance kit on its
order manager, a ccxt bot start costs over a CPU-second) is the suite's most expensive run, so it
runs once per session (``ccxt_verify_run`` in tests/conftest.py) and several tests read it: the
verdict and the report (tests/e2e/test_verify_bot_under_test.py), each conformance check on the
ccxt order manager (tests/integration/test_conformance_kit.py) and the acceptance check the ccxt bot
must pass (tests/e2e/test_acceptance_bot_on_foreign_bots.py). The readers are listed in
``CCXT_READERS``; under xdist's default ``--dist load`` tests/conftest.py's scheduler hands them to
one worker as one unit (each other test is a unit of its own), so the run happens once. (xdist's
own ``--dist loadgroup`` would do it from ``xdist_group`` marks, but with pytest 9.2 its rename of
the node ids has no effect: xdist 3.8 sets ``item._nodeid``, pytest 9 reads ``item._id``.) A test
that asks for the run without being listed fails, rather than silently running it twice.
"""

from __future__ import annotations

import shlex
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from harness.cli import cli
from tests.support import NO_HYPOTHESIS, REPO_ROOT

CCXT_BOT = REPO_ROOT / "examples" / "ccxt_bot" / "bot.py"
CCXT_COMMAND = shlex.join([sys.executable, str(CCXT_BOT)])
CCXT_ORDER_MANAGER = "examples.ccxt_bot.om:factory"
#: the tests that read the shared ccxt run (node ids, or their prefix before the parameters)
CCXT_READERS = (
    "tests/e2e/test_verify_bot_under_test.py::test_the_ccxt_example_bot_passes_on_the_embedded_exchange_with_its_order_manager",
    "tests/integration/test_conformance_kit.py::TestReferenceOrderManagers::test_ccxt_example_order_manager_passes",
    "tests/e2e/test_acceptance_bot_on_foreign_bots.py::test_the_ccxt_bot_passes",
)
#: the xdist work unit of those tests
CCXT_GROUP = "ccxt-verify"


def reads_ccxt_run(nodeid: str) -> bool:
    """``nodeid`` is one of ``CCXT_READERS`` (with or without parameters)."""
    return any(nodeid == reader or nodeid.startswith(f"{reader}[") for reader in CCXT_READERS)


@dataclass(frozen=True)
class VerifyRun:
    """A finished ``verify``: its exit code, its output, the deployment report and the run directory."""

    exit_code: int
    output: str
    report: str
    run_dir: Path | None

    def outcomes(self) -> dict[str, str]:
        """``<scenario file stem>::<test name>`` -> passed / failed / error / skipped, from the run's JUnit XML."""
        if self.run_dir is None or not (self.run_dir / "junit.xml").is_file():
            raise AssertionError(f"the verify run left no junit.xml (exit {self.exit_code}):\n{self.output[-3000:]}")
        found: dict[str, str] = {}
        for case in ET.parse(self.run_dir / "junit.xml").getroot().iter("testcase"):
            module = case.get("classname", "").rpartition(".")[2]
            kinds = {child.tag for child in case}
            outcome = next((kind for kind in ("failure", "error", "skipped") if kind in kinds), "passed")
            found[f"{module}::{case.get('name', '')}"] = {"failure": "failed"}.get(outcome, outcome)
        return found

    def assert_passed(self, test: str) -> None:
        """``test`` (``<scenario file stem>::<name>``) ran in this run and passed."""
        outcomes = self.outcomes()
        assert outcomes.get(test) == "passed", (
            f"{test}: {outcomes.get(test, 'not run')} in the verify run (exit {self.exit_code}); "
            f"it ran {len(outcomes)} tests:\n{self.output[-3000:]}")


def verify(tmp_path: Path, *args: str, pytest_args: tuple[str, ...] = ()) -> VerifyRun:
    """``verify`` on the embedded exchange, through the CLI in this process (its pytest is a subprocess)."""
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["verify", "--results", str(tmp_path / "results"), "--out", str(out), "--no-html",
                                      "--no-gate", "--workers", "2", *args, "--", *NO_HYPOTHESIS, *pytest_args],
                                env={"TRADING_ENV": "testnet"})
    reports = sorted(out.glob("runs/*/deployment-report-*.md"))
    run_dirs = sorted(path.parent for path in out.glob("runs/*/junit.xml"))
    return VerifyRun(result.exit_code, result.output, reports[-1].read_text(encoding="utf-8") if reports else "",
                     run_dirs[-1] if run_dirs else None)


def ccxt_verify(tmp_path: Path) -> VerifyRun:
    """The ccxt example bot judged by every scenario, with the conformance kit on its order manager."""
    return verify(tmp_path, "--bot-cmd", CCXT_COMMAND, "--bot-cwd", str(REPO_ROOT), "--order-manager", CCXT_ORDER_MANAGER)
