"""Pre-Deployment, Dependency Verification: the conformance kit for the team's OrderExecutionManager.

Runs only with ``--order-manager package.module:factory`` (or the ``order_manager`` ini value); without
it every check is skipped with that reason and carries no checklist label (the plugin does both for
tests marked ``order_manager_kit``), so a run without the kit does not mark the items skipped. Each check of ``harness.conformance.CHECKS`` is one test,
labelled with its checklist item ("Required methods available" / "OrderExecutionManager initialized")
so it lands in the report's Dependency Verification section. The checks always run on the embedded
exchange (a fresh one per check, faults from its FaultPlan), whatever the run's target: they inject
faults no real venue offers.

    pytest scenarios/test_order_manager_conformance.py --order-manager examples.ccxt_bot.om:factory
"""

from __future__ import annotations

import pytest

from harness.conformance import CHECKS, Check, load_factory, run_check
from harness.pytest_plugin import NO_ORDER_MANAGER_REASON, order_manager_spec

try:
    import allure
except ImportError:  # allure-pytest is optional: titles are cosmetic
    allure = None



@pytest.fixture(scope="module")
def order_manager_factory(pytestconfig: pytest.Config):
    spec = order_manager_spec(pytestconfig)
    if spec is None:
        pytest.skip(NO_ORDER_MANAGER_REASON)
    return spec, load_factory(spec)


@pytest.mark.parametrize(
    "check",
    [pytest.param(check, id=check.id, marks=[pytest.mark.order_manager_kit, pytest.mark.checklist(check.checklist_item)])
     for check in CHECKS],
)
async def test_order_manager_conformance(check: Check, order_manager_factory) -> None:
    spec, factory = order_manager_factory
    if allure is not None:
        allure.dynamic.title(f"Order manager conformance: {check.title}")
        allure.dynamic.description(f"{spec} on the embedded exchange: {check.title}")
    await run_check(check, factory)
