"""The acceptance scenarios' request-log check can fail (issue 14, item 7), kept fast: no bot process.

scenarios/test_acceptance_bot.py judges what a bot SENT (``check_sent_closes`` over the embedded
exchange's request log), because the exchange's reduce-only cap hides oversized or duplicate closes
in the end state. Here the engine and adapter run in-process against the simulator, once sound and
once with a planted fault each, and the same check must pass the sound run and name every fault.
The full table (every scenario of that file against a broken scratch copy of harness) is in the
issue's note; these are the cheap ones to keep.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Callable
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest

from harness.core.config import LiquidationConfig
from harness.core.manager import LiquidationManager
from harness.exchanges.binance import BinanceFuturesOrderManager
from harness.exchanges.binance.close import MarketCloser
from harness.exchanges.sim import BinanceSimulator
from tests.support import REPO_ROOT


def _scenario_module() -> ModuleType:
    path = REPO_ROOT / "scenarios" / "test_acceptance_bot.py"
    spec = importlib.util.spec_from_file_location("acceptance_bot_checks", path)
    assert spec is not None and spec.loader is not None
    sys.path.insert(0, str(path.parent))  # its sibling scenario_support
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


SCENARIO = _scenario_module()
ONE_WAY = {"BTCUSDT": Decimal("0.010"), "ETHUSDT": Decimal("-0.100")}
HEDGED = {"BTCUSDT:LONG": Decimal("0.010"), "BTCUSDT:SHORT": Decimal("-0.020")}


def sent_problems(opened: dict[str, Decimal], *, hedge: bool) -> list[str]:
    """Seed ``opened``, liquidate in-process, return what check_sent_closes finds in the request log."""
    with BinanceSimulator() as sim:
        if hedge:
            sim.set_hedge_mode(True)
        for leg, amount in opened.items():
            symbol, _, side = leg.partition(":")
            sim.set_position(symbol, amount, side or "BOTH")
        marker = len(sim.request_log)

        async def liquidate() -> None:
            async with BinanceFuturesOrderManager(sim.api_key, sim.api_secret, base_url=sim.base_url) as adapter:
                await LiquidationManager(LiquidationConfig(timeout_seconds=5), adapter).execute_emergency_liquidation("t")

        asyncio.run(liquidate())
        return SCENARIO.check_sent_closes(SCENARIO.close_orders(sim, marker), opened, hedge=hedge)


def _patched_params(change: Callable[[dict[str, str]], dict[str, str]]) -> Callable[..., dict[str, str]]:
    original = MarketCloser._params

    def params(self: Any, *args: Any, **kwargs: Any) -> dict[str, str]:
        return change(dict(original(self, *args, **kwargs)))

    return params


class TestTheSentClosesCheckCanFail:
    @pytest.mark.parametrize(("opened", "hedge"), [(ONE_WAY, False), (HEDGED, True)], ids=["one-way", "hedge"])
    def test_a_sound_engine_passes(self, opened: dict[str, Decimal], hedge: bool) -> None:
        assert sent_problems(opened, hedge=hedge) == []

    def test_it_names_a_close_without_reduce_only(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(MarketCloser, "_params", _patched_params(lambda p: {k: v for k, v in p.items() if k != "reduceOnly"}))
        problems = sent_problems(ONE_WAY, hedge=False)
        assert any("without reduceOnly=true" in p for p in problems), problems

    def test_it_names_an_oversized_close_the_reduce_only_cap_hides(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(MarketCloser, "_params",
                            _patched_params(lambda p: {**p, "quantity": format(Decimal(p["quantity"]) * 2, "f")}))
        problems = sent_problems(ONE_WAY, hedge=False)
        assert any("above the open position" in p and "oversized close" in p for p in problems), problems

    def test_it_names_a_hedge_close_with_the_wrong_position_side(self, monkeypatch: pytest.MonkeyPatch) -> None:
        flip = {"LONG": "SHORT", "SHORT": "LONG"}
        monkeypatch.setattr(MarketCloser, "_params",
                            _patched_params(lambda p: {**p, "positionSide": flip[p["positionSide"]]}))
        problems = sent_problems(HEDGED, hedge=True)
        assert any("wrong positionSide" in p for p in problems), problems


def test_the_memory_bound_names_growth() -> None:
    """The RSS rule: flat after warm-up passes, 1 MiB per liquidation fails naming the growth."""
    warm = [50_000 + 300 * n for n in range(SCENARIO.RSS_WARM_UP_RUNS)]
    SCENARIO._assert_no_growth(warm + [warm[-1] + 100] * 15, SCENARIO.RSS_GROWTH_BOUND_KIB)
    with pytest.raises(AssertionError, match="memory growth across repeated liquidations"):
        SCENARIO._assert_no_growth(warm + [warm[-1] + 1024 * n for n in range(1, 16)], SCENARIO.RSS_GROWTH_BOUND_KIB)
