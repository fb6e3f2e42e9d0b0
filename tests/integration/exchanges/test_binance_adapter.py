"""Unit tests of the Binance adapter: targets, quantity planning, client order ids, exchangeInfo
parsing, and the synchronous ``cancel_all_orders`` path (python-binance's ``Client`` over requests,
mocked with ``responses``). The async paths run against the simulator in
test_liquidation_integration.py.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st

import harness.exchanges.binance as binance_module
from tests.support.clock import ManualClock
from harness.core.context import current_deadline
from harness.core.errors import (
    ConfigError,
    RetryableExchangeError,
    TerminalExchangeError,
)
from harness.core.ports import OrderExecutionManager, describe_order_manager
from harness.exchanges.binance import (
    CLIENT_ORDER_ID_PATTERN,
    BinanceFuturesOrderManager,
    InvalidArgumentError,
    SymbolRules,
    make_client_order_id,
    parse_exchange_info,
    plan_market_orders,
)
from harness.exchanges.target import TargetKind, resolve_target, target_for_url

BASE = "http://127.0.0.1:18080"
FAPI = BASE + "/fapi/v1"
KEY = "unit-test-api-key-0001"
SECRET = "unit-test-api-secret-never-shown-42"
BTC = SymbolRules("BTCUSDT", step_size=Decimal("0.001"), min_qty=Decimal("0.001"), max_qty=Decimal("100"))


@pytest.fixture
def sleeps() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def manager(sleeps: ManualClock) -> AsyncIterator[BinanceFuturesOrderManager]:
    async with BinanceFuturesOrderManager(KEY, SECRET, base_url=BASE, sync_sleep=sleeps.sync_sleep) as om:
        yield om


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{FAPI}/time", json={"serverTime": int(time.time() * 1000)})
        yield mock


def _open_orders(mock: responses.RequestsMock, regular: int, algo: int) -> None:
    mock.get(f"{FAPI}/openOrders", json=[{"orderId": i, "symbol": "BTCUSDT"} for i in range(regular)])
    mock.get(f"{FAPI}/openAlgoOrders", json=[{"algoId": i, "symbol": "BTCUSDT"} for i in range(algo)])
    done = {"code": 200, "msg": "The operation of cancel all open order is done."}
    mock.delete(f"{FAPI}/allOpenOrders", json=done)
    mock.delete(f"{FAPI}/algoOpenOrders", json=done)


def _paths(mock: responses.RequestsMock) -> list[str]:
    return [f"{call.request.method} {urlsplit(call.request.url).path}" for call in mock.calls]


class TestTargets:
    """The adapter takes a ``harness.exchanges.target.Target`` as is (resolution: tests/unit/exchanges/test_exchange_target.py)."""

    def test_base_url_is_shorthand_for_the_target_at_that_url(self) -> None:
        om = BinanceFuturesOrderManager(KEY, SECRET, base_url="http://127.0.0.1:8080/fapi/")
        assert om.target == target_for_url("http://127.0.0.1:8080")
        assert (om.target.kind, om.target.futures_url) == (TargetKind.CUSTOM, "http://127.0.0.1:8080/fapi")

    @pytest.mark.parametrize(
        ("environment", "flags", "kind", "futures_url"),
        [
            pytest.param("testnet", {}, TargetKind.TESTNET, "https://testnet.binancefuture.com/fapi", id="testnet"),
            pytest.param("testnet", {"demo": True}, TargetKind.DEMO, "https://demo-fapi.binance.com/fapi", id="demo"),
            pytest.param("production", {}, TargetKind.PRODUCTION, "https://fapi.binance.com/fapi", id="production"),
        ],
    )
    def test_a_resolved_target_is_used_as_is(self, environment: str, flags: dict, kind: TargetKind,
                                             futures_url: str) -> None:
        target = resolve_target(environment, **flags)
        om = BinanceFuturesOrderManager(KEY, SECRET, target=target)
        assert om.target is target
        assert (om.target.kind, om.target.futures_url) == (kind, futures_url)
        assert om._session.futures_url == futures_url

    def test_no_target_and_no_url_means_production(self) -> None:
        assert BinanceFuturesOrderManager(KEY, SECRET).target.kind is TargetKind.PRODUCTION

    def test_a_base_url_naming_binance_production_is_classified_production(self) -> None:
        om = BinanceFuturesOrderManager(KEY, SECRET, base_url="https://fapi.binance.com")
        assert om.target.kind is TargetKind.PRODUCTION

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            pytest.param({"base_url": "http://127.0.0.1:1", "target": resolve_target("testnet")}, "base_url",
                         id="base-url-and-target"),
            pytest.param({"base_url": "ftp://example.org"}, "base_url", id="not-http"),
            pytest.param({"base_url": "http://127.0.0.1:port"}, "base_url", id="bad-port"),
            pytest.param({"target": "https://testnet.binancefuture.com"}, "target", id="target-is-a-string"),
        ],
    )
    def test_contradictory_or_malformed_targets_raise_config_error_naming_the_field(
        self, kwargs: dict, field: str
    ) -> None:
        with pytest.raises(ConfigError) as info:
            BinanceFuturesOrderManager(KEY, SECRET, **kwargs)
        assert info.value.field == field

    async def test_requests_go_to_the_target_with_the_configured_recv_window(
        self, rsps: responses.RequestsMock
    ) -> None:
        async with BinanceFuturesOrderManager(KEY, SECRET, base_url=BASE, recv_window_ms=3000) as om:
            _open_orders(rsps, 0, 0)
            om.cancel_all_orders("BTCUSDT")
        query = parse_qs(urlsplit(rsps.calls[1].request.url).query)
        assert query["recvWindow"] == ["3000"]
        assert all(call.request.url.startswith(BASE + "/fapi/") for call in rsps.calls)


class TestConstruction:
    def test_manager_conforms_to_the_order_execution_manager_port(self, manager: BinanceFuturesOrderManager) -> None:
        assert describe_order_manager(manager) == []
        assert isinstance(manager, OrderExecutionManager)

    def test_repr_never_contains_the_secret(self, manager: BinanceFuturesOrderManager) -> None:
        text = repr(manager) + str(manager) + repr(vars(manager))
        assert SECRET not in text
        assert "custom (http://127.0.0.1:18080)" in repr(manager)

    def test_empty_secret_is_a_config_error_that_does_not_echo_the_value(self) -> None:
        with pytest.raises(ConfigError) as info:
            BinanceFuturesOrderManager(KEY, "   ", base_url=BASE)
        assert info.value.field == "api_secret"

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [({"recv_window_ms": 0}, "recv_window_ms"), ({"recv_window_ms": 70000}, "recv_window_ms"),
         ({"request_timeout": 0}, "request_timeout"), ({"request_timeout": True}, "request_timeout")],
    )
    def test_out_of_range_settings_raise_config_error(self, kwargs: dict, field: str) -> None:
        with pytest.raises(ConfigError) as info:
            BinanceFuturesOrderManager(KEY, SECRET, base_url=BASE, **kwargs)
        assert info.value.field == field

    def test_public_names_are_sorted_and_importable(self) -> None:
        assert binance_module.__all__ == sorted(binance_module.__all__)
        assert all(hasattr(binance_module, name) for name in binance_module.__all__)


class TestQuantityPlanning:
    def test_quantity_is_rounded_down_to_the_step_and_the_remainder_reported(self) -> None:
        plan = plan_market_orders(Decimal("1.23456"), BTC)
        assert plan.chunks == (Decimal("1.234"),)
        assert plan.remainder == Decimal("0.00056")

    def test_float_quantities_go_through_str_not_binary_fractions(self) -> None:
        plan = plan_market_orders(0.1 + 0.2, BTC)  # 0.30000000000000004
        assert plan.chunks == (Decimal("0.300"),)
        assert plan.remainder == Decimal("4E-17")

    def test_position_above_max_qty_is_split_into_nearly_equal_orders(self) -> None:
        plan = plan_market_orders(Decimal("250.0005"), BTC)
        assert plan.chunks == (Decimal("83.334"), Decimal("83.333"), Decimal("83.333"))
        assert plan.total == Decimal("250.000")

    def test_quantity_below_min_qty_yields_no_order(self) -> None:
        plan = plan_market_orders(Decimal("0.0009"), BTC)
        assert plan.chunks == ()
        assert plan.remainder == Decimal("0.0009")

    @pytest.mark.parametrize("bad", [0, -1, "abc", float("nan"), float("inf"), True, None])
    def test_invalid_quantities_are_rejected_naming_the_argument(self, bad: object) -> None:
        with pytest.raises(InvalidArgumentError, match="quantity"):
            plan_market_orders(bad, BTC)  # type: ignore[arg-type]

    @given(
        steps=st.integers(min_value=1, max_value=10**7),
        dust=st.integers(min_value=0, max_value=999),
        orders=st.integers(min_value=1, max_value=40),
    )
    def test_chunks_respect_step_min_and_max_and_add_up(self, steps: int, dust: int, orders: int) -> None:
        max_steps = max(2, -(-steps // orders))
        rules = SymbolRules("XUSDT", Decimal("0.01"), Decimal("0.01"), Decimal(max_steps) * Decimal("0.01"))
        quantity = Decimal(steps) * Decimal("0.01") + Decimal(dust) * Decimal("0.00001")
        plan = plan_market_orders(quantity, rules)
        assert plan.total + plan.remainder == quantity
        assert Decimal("0") <= plan.remainder < rules.step_size
        for chunk in plan.chunks:
            assert rules.min_qty <= chunk <= rules.max_qty
            assert chunk % rules.step_size == 0
        assert max(plan.chunks) - min(plan.chunks) <= rules.step_size


class TestClientOrderIds:
    def test_ids_match_binance_format_and_are_deterministic(self) -> None:
        first = make_client_order_id("0f1e2d3c4b5a69788796a5b4c3d2e1f0", "BTCUSDT", 1)
        assert CLIENT_ORDER_ID_PATTERN.match(first)
        assert first == make_client_order_id("0f1e2d3c4b5a69788796a5b4c3d2e1f0", "BTCUSDT", 1)
        assert first.startswith("lq-") and first.endswith("-BTCUSDT-1")

    def test_sequence_and_run_make_ids_distinct(self) -> None:
        ids = {make_client_order_id(run, "ETHUSDT", seq) for run in ("run-a", "run-b") for seq in (1, 2, 3)}
        assert len(ids) == 6

    def test_short_valid_correlation_id_is_kept_verbatim(self) -> None:
        assert make_client_order_id("run42", "ETHUSDT", 7) == "lq-run42-ETHUSDT-7"

    @given(
        correlation=st.text(min_size=1, max_size=80),
        symbol=st.from_regex(r"[A-Z0-9]{1,40}", fullmatch=True),
        sequence=st.integers(min_value=1, max_value=99999),
    )
    def test_any_correlation_id_and_symbol_give_a_valid_id(self, correlation: str, symbol: str, sequence: int) -> None:
        client_order_id = make_client_order_id(correlation, symbol, sequence)
        assert CLIENT_ORDER_ID_PATTERN.match(client_order_id)
        assert client_order_id.endswith(f"-{sequence}")


class TestExchangeInfo:
    RAW = {
        "rateLimits": [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300}],
        "symbols": [
            {
                "symbol": "BTCUSDT",
                "status": "TRADING",
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": "0.10", "minPrice": "1", "maxPrice": "1000000"},
                    {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001", "maxQty": "1000"},
                    {"filterType": "MARKET_LOT_SIZE", "stepSize": "0.001", "minQty": "0.001", "maxQty": "120"},
                    {"filterType": "MIN_NOTIONAL", "notional": "100"},
                ],
            },
            {
                "symbol": "ETHUSDT",
                "filters": [
                    {"filterType": "LOT_SIZE", "stepSize": "0.01", "minQty": "0.01", "maxQty": "10000"},
                    {"filterType": "MARKET_LOT_SIZE", "stepSize": "0", "minQty": "0", "maxQty": "0"},
                ],
            },
        ],
    }

    def test_market_lot_size_bounds_one_market_order(self) -> None:
        rules = parse_exchange_info(self.RAW)
        btc = rules.symbols["BTCUSDT"]
        assert (btc.step_size, btc.min_qty, btc.max_qty) == (Decimal("0.001"), Decimal("0.001"), Decimal("120"))
        assert (btc.tick_size, btc.min_notional) == (Decimal("0.10"), Decimal("100"))
        assert rules.rate_limits[0]["limit"] == 300

    def test_lot_size_is_used_when_market_lot_size_is_empty(self) -> None:
        eth = parse_exchange_info(self.RAW).symbols["ETHUSDT"]
        assert (eth.step_size, eth.min_qty, eth.max_qty) == (Decimal("0.01"), Decimal("0.01"), Decimal("10000"))

    def test_symbol_without_lot_size_is_rejected_by_name(self) -> None:
        with pytest.raises(ValueError, match="XRPUSDT has no LOT_SIZE"):
            parse_exchange_info({"symbols": [{"symbol": "XRPUSDT", "filters": []}]})

    async def test_given_symbols_info_is_used_instead_of_fetching(self, rsps: responses.RequestsMock) -> None:
        async with BinanceFuturesOrderManager(KEY, SECRET, base_url="http://127.0.0.1:9", symbols_info=self.RAW) as om:
            rules = await om.symbol_rules("BTCUSDT")
        assert rules.max_qty == Decimal("120")

    async def test_symbol_missing_from_exchange_info_is_terminal_invalid_symbol(self) -> None:
        async with BinanceFuturesOrderManager(KEY, SECRET, base_url="http://127.0.0.1:9", symbols_info=self.RAW) as om:
            with pytest.raises(TerminalExchangeError) as info:
                await om.execute_market_close("DOGEUSDT", "SELL", Decimal("1"))
        assert (info.value.code, info.value.symbol) == (-1121, "DOGEUSDT")


class TestCancelAllOrders:
    def test_cancels_regular_and_algo_orders_and_returns_how_many_were_open(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock
    ) -> None:
        _open_orders(rsps, regular=2, algo=1)
        assert manager.cancel_all_orders("BTCUSDT") == 3
        assert _paths(rsps)[-2:] == ["DELETE /fapi/v1/allOpenOrders", "DELETE /fapi/v1/algoOpenOrders"]
        body = parse_qs(rsps.calls[-1].request.body)
        assert body["symbol"] == ["BTCUSDT"] and "signature" in body

    def test_nothing_to_cancel_returns_zero(self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock) -> None:
        _open_orders(rsps, regular=0, algo=0)
        assert manager.cancel_all_orders("BTCUSDT") == 0

    def test_unknown_order_on_cancel_all_means_nothing_to_cancel(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock
    ) -> None:
        rsps.get(f"{FAPI}/openOrders", json=[])
        rsps.get(f"{FAPI}/openAlgoOrders", json=[])
        rsps.delete(f"{FAPI}/allOpenOrders", status=400, json={"code": -2011, "msg": "Unknown order sent."})
        rsps.delete(f"{FAPI}/algoOpenOrders", status=400, json={"code": -2011, "msg": "Unknown order sent."})
        assert manager.cancel_all_orders("BTCUSDT") == 0

    def test_no_spot_ping_and_one_clock_sync(self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock) -> None:
        _open_orders(rsps, regular=1, algo=0)
        manager.cancel_all_orders("BTCUSDT")
        manager.cancel_all_orders("BTCUSDT")
        paths = _paths(rsps)
        assert paths.count("GET /fapi/v1/time") == 1
        assert not any("/api/" in path for path in paths)

    @pytest.mark.parametrize(
        ("status", "code", "msg"),
        [
            pytest.param(400, -1121, "Invalid symbol.", id="invalid-symbol"),
            pytest.param(401, -2015, "Invalid API-key, IP, or permissions for action.", id="bad-key"),
            pytest.param(400, -1022, "Signature for this request is not valid.", id="bad-signature"),
        ],
    )
    def test_configuration_and_symbol_errors_are_terminal_with_code_status_and_symbol(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock, status: int, code: int, msg: str
    ) -> None:
        rsps.get(f"{FAPI}/openOrders", status=status, json={"code": code, "msg": msg})
        with pytest.raises(TerminalExchangeError) as info:
            manager.cancel_all_orders("BTCUSDT")
        assert (info.value.code, info.value.status, info.value.symbol) == (code, status, "BTCUSDT")
        assert msg in str(info.value)

    def test_html_502_is_retryable_with_code_zero_and_no_signature_in_the_message(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock
    ) -> None:
        def echo_url(request: requests.PreparedRequest) -> tuple[int, dict, str]:
            return 502, {}, f"<html><body><h1>502 Bad Gateway</h1>{request.url}</body></html>"

        rsps.add_callback(responses.GET, f"{FAPI}/openOrders", callback=echo_url)
        with pytest.raises(RetryableExchangeError) as info:
            manager.cancel_all_orders("BTCUSDT")
        assert (info.value.code, info.value.status, info.value.symbol) == (0, 502, "BTCUSDT")
        signature = parse_qs(urlsplit(rsps.calls[-1].request.url).query)["signature"][0]
        assert "502 Bad Gateway" in str(info.value)
        assert signature not in str(info.value) and SECRET not in str(info.value)
        assert info.value.__cause__ is None and info.value.__context__ is None

    def test_request_timeout_on_an_idempotent_cancel_is_retryable(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock
    ) -> None:
        _open_orders(rsps, regular=1, algo=0)
        rsps.replace(responses.DELETE, f"{FAPI}/allOpenOrders", body=requests.exceptions.ReadTimeout("Read timed out."))
        with pytest.raises(RetryableExchangeError, match="timed out") as info:
            manager.cancel_all_orders("BTCUSDT")
        assert info.value.symbol == "BTCUSDT"

    def test_connection_error_text_is_scrubbed_of_the_signed_url(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock
    ) -> None:
        leaked = f"Max retries exceeded with url: /fapi/v1/openOrders?symbol=BTCUSDT&signature=deadbeef{SECRET}"
        rsps.get(f"{FAPI}/openOrders", body=requests.exceptions.ConnectionError(leaked))
        with pytest.raises(RetryableExchangeError) as info:
            manager.cancel_all_orders("BTCUSDT")
        assert "deadbeef" not in str(info.value) and SECRET not in str(info.value)
        assert "signature=<redacted>" in str(info.value)

    def test_timestamp_outside_recv_window_resyncs_the_clock_and_retries_once(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock
    ) -> None:
        rsps.get(f"{FAPI}/openOrders", status=400, json={"code": -1021, "msg": "Timestamp outside recvWindow."})
        rsps.get(f"{FAPI}/openOrders", json=[{"orderId": 1}])
        rsps.get(f"{FAPI}/openAlgoOrders", json=[])
        rsps.delete(f"{FAPI}/allOpenOrders", json={"code": 200})
        rsps.delete(f"{FAPI}/algoOpenOrders", json={"code": 200})
        assert manager.cancel_all_orders("BTCUSDT") == 1
        assert _paths(rsps)[:4] == ["GET /fapi/v1/time", "GET /fapi/v1/openOrders", "GET /fapi/v1/time", "GET /fapi/v1/openOrders"]

    def test_persistent_clock_skew_is_retryable_after_one_resync(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock
    ) -> None:
        rsps.get(f"{FAPI}/openOrders", status=400, json={"code": -1021, "msg": "Timestamp outside recvWindow."})
        with pytest.raises(RetryableExchangeError) as info:
            manager.cancel_all_orders("BTCUSDT")
        assert info.value.code == -1021
        assert _paths(rsps).count("GET /fapi/v1/openOrders") == 2

    def test_429_retry_after_that_fits_is_waited_out_once(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock, sleeps: ManualClock
    ) -> None:
        rsps.get(f"{FAPI}/openOrders", status=429, headers={"Retry-After": "1"}, json={"code": -1003, "msg": "Too many requests."})
        _open_orders(rsps, regular=2, algo=0)
        assert manager.cancel_all_orders("BTCUSDT") == 2
        assert sleeps.sleeps == [1.0]

    def test_429_retry_after_beyond_the_deadline_raises_without_waiting(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock, sleeps: ManualClock
    ) -> None:
        rsps.get(f"{FAPI}/openOrders", status=429, headers={"Retry-After": "30"}, json={"code": -1003, "msg": "Too many requests."})
        token = current_deadline.set(time.monotonic() + 3.0)
        try:
            with pytest.raises(RetryableExchangeError) as info:
                manager.cancel_all_orders("BTCUSDT")
        finally:
            current_deadline.reset(token)
        assert (info.value.retry_after, info.value.status, info.value.code) == (30.0, 429, -1003)
        assert sleeps.sleeps == []

    def test_418_ban_without_retry_after_assumes_two_minutes(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock, sleeps: ManualClock
    ) -> None:
        rsps.get(f"{FAPI}/openOrders", status=418, json={"code": -1003, "msg": "Way too many requests; IP banned."})
        with pytest.raises(RetryableExchangeError) as info:
            manager.cancel_all_orders("BTCUSDT")
        assert info.value.retry_after == 120.0 and sleeps.sleeps == []

    def test_each_request_timeout_is_bounded_by_the_runs_remaining_time(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock
    ) -> None:
        _open_orders(rsps, regular=0, algo=0)
        manager.cancel_all_orders("BTCUSDT")
        unbounded = rsps.calls[-1].request.req_kwargs["timeout"]
        token = current_deadline.set(time.monotonic() + 1.5)
        try:
            manager.cancel_all_orders("BTCUSDT")
        finally:
            current_deadline.reset(token)
        bounded = rsps.calls[-1].request.req_kwargs["timeout"]
        assert unbounded == 5.0
        assert 0 < bounded <= 1.5

    def test_nothing_is_sent_once_the_deadline_has_passed(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock
    ) -> None:
        _open_orders(rsps, regular=1, algo=0)
        manager.cancel_all_orders("BTCUSDT")  # clock synced
        sent = len(rsps.calls)
        token = current_deadline.set(time.monotonic() - 1.0)
        try:
            with pytest.raises(RetryableExchangeError, match="deadline"):
                manager.cancel_all_orders("BTCUSDT")
        finally:
            current_deadline.reset(token)
        assert len(rsps.calls) == sent

    @pytest.mark.parametrize("bad", ["", "btcusdt", None, "BTC USDT"])
    def test_malformed_symbols_are_rejected_before_any_request(
        self, manager: BinanceFuturesOrderManager, rsps: responses.RequestsMock, bad: object
    ) -> None:
        with pytest.raises(InvalidArgumentError, match="symbol"):
            manager.cancel_all_orders(bad)  # type: ignore[arg-type]
        assert len(rsps.calls) == 0
