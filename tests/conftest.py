"""The project's own tests as the checklist's "Testing Validation" boxes.

Each test under tests/ named below gets ``@pytest.mark.checklist(...)`` marks at collection; the
harness plugin (which runs after this hook) turns them into Allure labels, so the sign-off report
ticks "All unit tests pass", "Timeout enforcement verified" and the others from these results.
A test may carry two items (one ``checklist_item`` label per mark).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.testkit import BotProcess
from tests.support.verify_runs import CCXT_GROUP, CCXT_READERS, VerifyRun, ccxt_verify, reads_ccxt_run

HERE = Path(__file__).resolve().parent

#: test file -> checklist items every test in it verifies
FILE_ITEMS: dict[str, tuple[str, ...]] = {
    "test_liquidation_config.py": ("pre.tests.unit",),
    "test_config_validator.py": ("pre.tests.unit",),
    "test_liquidation_manager.py": ("pre.tests.unit", "pre.tests.mock"),
    "test_sim_memory.py": ("pre.tests.mock",),
    "test_liquidation_integration.py": ("pre.tests.integration",),
    "test_e2e_liquidation.py": ("pre.tests.integration",),
}
#: (file, class) -> the item that replaces "pre.tests.unit" for the tests of that class
CLASS_ITEMS: dict[tuple[str, str], str] = {
    ("test_liquidation_manager.py", "TestLiquidationTimeout"): "pre.tests.timeout",
    ("test_liquidation_manager.py", "TestRetryLogic"): "pre.tests.retry",
}


def checklist_items_for(path: Path, class_name: str | None) -> list[str]:
    """The checklist items a test in ``path`` (inside ``class_name``) verifies; [] outside tests/."""
    if path.parent != HERE:
        return []
    items = list(FILE_ITEMS.get(path.name, ()))
    special = CLASS_ITEMS.get((path.name, class_name or ""))
    if special is not None:
        items = [special if entry == "pre.tests.unit" else entry for entry in items]
    return items


#: pytest-timeout for a reader of the shared ccxt run: the first one's setup is the whole run (about
#: a minute on two busy cores; the ini's 120 s bounded that run alone when it was one test)
SHARED_RUN_TIMEOUT_SECONDS = 300


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if reads_ccxt_run(item.nodeid):
            item.add_marker(pytest.mark.timeout(SHARED_RUN_TIMEOUT_SECONDS))
        cls = getattr(item, "cls", None)
        present = {str(m.args[0]) for m in item.iter_markers("checklist") if m.args}
        for entry in checklist_items_for(Path(item.path).resolve(), cls.__name__ if cls else None):
            if entry not in present:
                item.add_marker(pytest.mark.checklist(entry))


@pytest.fixture(autouse=True)
def _kill_leftover_bots() -> Iterator[None]:
    """A bot subprocess that a failed assertion left running is killed, never orphaned."""
    yield
    BotProcess.kill_all()


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    """The bot's configure_logging adds root handlers; put the root logger back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


@pytest.fixture(scope="session")
def _ccxt_verify_session(tmp_path_factory: pytest.TempPathFactory) -> VerifyRun:
    pytest.importorskip("ccxt")
    return ccxt_verify(tmp_path_factory.mktemp("ccxt-verify"))


@pytest.fixture
def ccxt_verify_run(request: pytest.FixtureRequest, _ccxt_verify_session: VerifyRun) -> VerifyRun:
    """The ccxt example bot's full ``verify`` run, once per session for the tests that read it
    (tests/support/verify_runs.py): only those in ``CCXT_READERS``, which one xdist worker runs."""
    assert reads_ccxt_run(request.node.nodeid), (
        f"{request.node.nodeid} reads the shared ccxt run: add it to CCXT_READERS "
        f"(tests/support/verify_runs.py) so it runs on the worker that has the run; readers: {CCXT_READERS}")
    return _ccxt_verify_session


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # pytest-xdist is a test dependency; without it nothing is distributed
    LoadScopeScheduling = None


#: test files whose tests share a session-scoped fixture that is expensive to build, so they run on one
#: worker: scenarios/test_pre_deployment.py runs the validate command once per environment and
#: session (four subprocesses, about a CPU-second each), which each worker would otherwise repeat
ONE_WORKER_FILES = ("scenarios/test_pre_deployment.py",)


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test: the shared ccxt run's readers, a file of ``ONE_WORKER_FILES``, else the test."""
    if reads_ccxt_run(nodeid):
        return CCXT_GROUP
    path = nodeid.partition("::")[0]
    return path if path in ONE_WORKER_FILES else nodeid


if LoadScopeScheduling is not None:
    class SharedRunScheduling(LoadScopeScheduling):
        """``--dist load`` except that the tests sharing an expensive fixture are one work unit
        (``work_unit``): the readers of the shared ccxt run, and each file of ``ONE_WORKER_FILES``.

        Every other test is its own unit, handed out as workers free up (like ``--dist load``).
        The biggest unit goes first (xdist's loadscope reorder), so the long run starts at once.
        """

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN001, ANN201 (xdist's Producer)
    if LoadScopeScheduling is None or config.getvalue("dist") != "load":
        return None  # another --dist mode given on the command line: xdist's own scheduler
    return SharedRunScheduling(config, log)
