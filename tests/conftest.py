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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
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
