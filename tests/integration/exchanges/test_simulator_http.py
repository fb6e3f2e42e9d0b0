"""BinanceSimulator over real HTTP, driven by the real python-binance clients (sync and async)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support import REPO_ROOT
import requests
from binance import AsyncClient, Client
from binance.exceptions import BinanceAPIException, BinanceRequestException
from click.testing import CliRunner

from harness.core.errors import ConfigError
from harness.exchanges.sim import BinanceSimulator, FaultPlan, SimBook
from harness.exchanges.sim.cli import simulate_command

REPO_ROOT = REPO_ROOT


def sync_client(sim: BinanceSimulator, secret: str | None = None, key: str | None = None) -> Client:
    client = Client(key or sim.api_key, secret or sim.api_secret, ping=False, requests_params={"timeout": 5})
    client.FUTURES_URL = sim.base_url + "/fapi"
    return client


@pytest.fixture
def sim() -> Iterator[BinanceSimulator]:
    with BinanceSimulator(faults=FaultPlan(seed=1)) as simulator:
        yield simulator


@pytest.fixture
def client(sim: BinanceSimulator) -> Iterator[Client]:
    client = sync_client(sim)
    yield client
    client.close_connection()


@pytest.fixture
async def aclient(sim: BinanceSimulator) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(sim.api_key, sim.api_secret)  # constructed inside the running loop: no calls
    client.FUTURES_URL = sim.base_url + "/fapi"
    yield client
    await client.close_connection()


def api_error(excinfo: pytest.ExceptionInfo[BinanceAPIException]) -> tuple[int, int]:
    return excinfo.value.status_code, excinfo.value.code


class TestMarketData:
    def test_exchange_info_lists_symbols_filters_and_rate_limits(self, client: Client) -> None:
        info = client.futures_exchange_info()
        btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
        filters = {f["filterType"]: f for f in btc["filters"]}
        assert filters["MARKET_LOT_SIZE"]["maxQty"] == "120"
        assert filters["MIN_NOTIONAL"]["notional"] == "100"
        limits = {(r["rateLimitType"], r["interval"], r["intervalNum"]): r["limit"] for r in info["rateLimits"]}
        assert limits == {("REQUEST_WEIGHT", "MINUTE", 1): 2400, ("ORDERS", "MINUTE", 1): 1200,
                          ("ORDERS", "SECOND", 10): 300}

    def test_server_time_comes_from_the_book_clock(self, sim: BinanceSimulator, client: Client) -> None:
        before = sim.book.now_ms()
        assert before <= client.futures_time()["serverTime"] <= sim.book.now_ms()

    def test_unknown_path_is_404(self, sim: BinanceSimulator) -> None:
        response = requests.get(sim.base_url + "/fapi/v1/nothingHere", timeout=5)
        assert response.status_code == 404
        assert sim.request_log[-1].status == 404


class TestPositions:
    def test_v3_lists_only_symbols_with_a_position_or_open_orders(self, sim: BinanceSimulator,
                                                                  client: Client) -> None:
        sim.set_position("BTCUSDT", "-0.010")
        sim.place_order("ETHUSDT", "BUY", "LIMIT", "0.100", "3000")
        rows = {r["symbol"]: r for r in client.futures_position_information()}
        assert set(rows) == {"BTCUSDT", "ETHUSDT"}
        assert Decimal(rows["BTCUSDT"]["positionAmt"]) == Decimal("-0.010")
        assert rows["BTCUSDT"]["positionSide"] == "BOTH"

    def test_v2_lists_every_symbol(self, sim: BinanceSimulator, client: Client) -> None:
        rows = client.futures_position_information(version=2)
        assert {r["symbol"] for r in rows} == set(sim.book.symbols)

    async def test_async_client_reads_positions_and_balance(self, sim: BinanceSimulator,
                                                            aclient: AsyncClient) -> None:
        sim.set_position("SOLUSDT", "12")
        (row,) = await aclient.futures_position_information()
        assert (row["symbol"], row["positionAmt"]) == ("SOLUSDT", "12")
        balance = await aclient.futures_account_balance()
        wallet = sim.book.wallet_balance
        assert balance[0]["asset"] == "USDT" and Decimal(balance[0]["balance"]) == wallet
        assert Decimal((await aclient.futures_account())["totalWalletBalance"]) == wallet


class TestOrders:
    def test_reduce_only_market_close_then_query_by_client_id(self, sim: BinanceSimulator,
                                                              client: Client) -> None:
        sim.set_position("BTCUSDT", "0.500")
        placed = client.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.500",
                                             reduceOnly="true", newClientOrderId="lq-run.1",
                                             newOrderRespType="RESULT")
        assert (placed["status"], placed["executedQty"]) == ("FILLED", "0.500")
        queried = client.futures_get_order(symbol="BTCUSDT", origClientOrderId="lq-run.1")
        assert queried["orderId"] == placed["orderId"]
        assert sim.book.positions() == []
        assert [(f.client_order_id, f.reduce_only) for f in sim.fill_log] == [("lq-run.1", True)]

    def test_ack_response_reports_new_even_when_the_market_order_filled(self, sim: BinanceSimulator,
                                                                       client: Client) -> None:
        sim.set_position("BTCUSDT", "0.500")
        placed = client.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.500",
                                             reduceOnly="true")
        assert placed["status"] == "NEW"
        assert client.futures_get_order(symbol="BTCUSDT", orderId=placed["orderId"])["status"] == "FILLED"

    def test_reduce_only_that_would_increase_is_rejected_with_2022(self, sim: BinanceSimulator,
                                                                  client: Client) -> None:
        sim.set_position("BTCUSDT", "0.500")
        with pytest.raises(BinanceAPIException) as info:
            client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.100",
                                        reduceOnly="true")
        assert api_error(info) == (400, -2022)

    def test_query_of_an_unknown_order_is_2013(self, client: Client) -> None:
        with pytest.raises(BinanceAPIException) as info:
            client.futures_get_order(symbol="BTCUSDT", origClientOrderId="never-sent")
        assert api_error(info) == (400, -2013)

    def test_delete_carries_its_parameters_in_the_form_body(self, sim: BinanceSimulator, client: Client) -> None:
        order = client.futures_create_order(symbol="ETHUSDT", side="BUY", type="LIMIT", quantity="0.100",
                                            price="3000", timeInForce="GTC")
        cancelled = client.futures_cancel_order(symbol="ETHUSDT", orderId=order["orderId"])
        assert cancelled["status"] == "CANCELED"
        assert sim.requests_to("v1/order", "DELETE")[0].params["orderId"] == str(order["orderId"])

    def test_cancel_all_reports_done_and_leaves_other_symbols(self, sim: BinanceSimulator, client: Client) -> None:
        sim.place_order("ETHUSDT", "BUY", "LIMIT", "0.100", "3000")
        sim.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
        reply = client.futures_cancel_all_open_orders(symbol="ETHUSDT")
        assert reply == {"code": 200, "msg": "The operation of cancel all open order is done."}
        assert [o["symbol"] for o in client.futures_get_open_orders()] == ["BTCUSDT"]

    def test_hedge_mode_uses_position_side_and_refuses_reduce_only(self, sim: BinanceSimulator,
                                                                   client: Client) -> None:
        client.futures_change_position_mode(dualSidePosition="true")
        assert client.futures_get_position_mode() == {"dualSidePosition": True}
        client.futures_create_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="1.000",
                                    positionSide="LONG")
        with pytest.raises(BinanceAPIException) as info:
            client.futures_create_order(symbol="ETHUSDT", side="SELL", type="MARKET", quantity="1.000",
                                        positionSide="LONG", reduceOnly="true")
        assert api_error(info) == (400, -1106)
        with pytest.raises(BinanceAPIException) as info:
            client.futures_change_position_mode(dualSidePosition="false")
        assert api_error(info) == (400, -4068)
        client.futures_create_order(symbol="ETHUSDT", side="SELL", type="MARKET", quantity="1.000",
                                    positionSide="LONG")
        assert sim.book.positions() == []

    async def test_async_client_places_queries_and_cancels(self, sim: BinanceSimulator,
                                                           aclient: AsyncClient) -> None:
        order = await aclient.futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.010",
                                                   price="50000", timeInForce="GTC", newClientOrderId="a-1")
        assert (await aclient.futures_get_order(symbol="BTCUSDT", origClientOrderId="a-1"))["status"] == "NEW"
        await aclient.futures_cancel_order(symbol="BTCUSDT", orderId=order["orderId"])
        assert await aclient.futures_get_open_orders(symbol="BTCUSDT") == []


class TestAlgoAndBatch:
    def test_conditional_orders_go_to_the_algo_book(self, sim: BinanceSimulator, client: Client) -> None:
        sim.set_position("BTCUSDT", "0.500")
        algo = client.futures_create_order(symbol="BTCUSDT", side="SELL", type="STOP_MARKET", stopPrice="60000",
                                           closePosition="true")
        assert algo["algoStatus"] == "NEW" and client.futures_get_open_orders(symbol="BTCUSDT") == []
        (open_algo,) = client.futures_get_open_orders(symbol="BTCUSDT", conditional=True)
        assert open_algo["algoId"] == algo["algoId"]
        assert client.futures_cancel_all_open_orders(symbol="BTCUSDT", conditional=True)["code"] == 200
        assert sim.book.open_algo_orders() == []

    async def test_algo_order_round_trip_with_the_async_client(self, sim: BinanceSimulator,
                                                               aclient: AsyncClient) -> None:
        placed = await aclient.futures_create_algo_order(symbol="ETHUSDT", side="BUY", type="TAKE_PROFIT_MARKET",
                                                         quantity="0.100", triggerPrice="3000",
                                                         clientAlgoId="tp-1")
        fetched = await aclient.futures_get_algo_order(clientAlgoId="tp-1")
        assert fetched["algoId"] == placed["algoId"]
        await aclient.futures_cancel_algo_order(algoId=placed["algoId"])
        assert await aclient.futures_get_open_algo_orders(symbol="ETHUSDT") == []

    def test_batch_returns_failed_items_as_error_objects_in_a_200_array(self, sim: BinanceSimulator,
                                                                        client: Client) -> None:
        sim.set_position("BTCUSDT", "0.500")
        result = client.futures_place_batch_order(batchOrders=[
            {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.200", "reduceOnly": "true"},
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.100", "reduceOnly": "true"},
            {"symbol": "NOPEUSDT", "side": "SELL", "type": "MARKET", "quantity": "1"},
        ])
        assert result[0]["symbol"] == "BTCUSDT"
        assert result[1:] == [{"code": -2022, "msg": "ReduceOnly Order is rejected."},
                              {"code": -1121, "msg": "Invalid symbol."}]
        assert sim.book.position_amount("BTCUSDT") == Decimal("0.300")

    def test_batch_of_more_than_five_is_refused(self, client: Client) -> None:
        order = {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.100", "price": "3000",
                 "timeInForce": "GTC"}
        with pytest.raises(BinanceAPIException) as info:
            client.futures_place_batch_order(batchOrders=[dict(order) for _ in range(6)])
        assert api_error(info) == (400, -1130)

    async def test_batch_cancel_with_the_async_client(self, sim: BinanceSimulator, aclient: AsyncClient) -> None:
        order = sim.place_order("ETHUSDT", "BUY", "LIMIT", "0.100", "3000")
        result = await aclient.futures_cancel_orders(symbol="ETHUSDT", orderidlist=[order["orderId"], 1])
        assert result[0]["status"] == "CANCELED"
        assert result[1]["code"] == -2011

    def test_countdown_cancels_the_symbols_orders_when_it_runs_out(self, sim: BinanceSimulator,
                                                                   client: Client) -> None:
        sim.place_order("ETHUSDT", "BUY", "LIMIT", "0.100", "3000")
        sim.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
        assert client.futures_countdown_cancel_all(symbol="ETHUSDT", countdownTime=50) == {
            "symbol": "ETHUSDT", "countdownTime": "50"}
        assert sim.wait_for_countdown("ETHUSDT", timeout=5.0) == 1
        assert [o.symbol for o in sim.book.open_orders()] == ["BTCUSDT"]

    def test_countdown_zero_disarms(self, sim: BinanceSimulator, client: Client) -> None:
        client.futures_countdown_cancel_all(symbol="ETHUSDT", countdownTime=60000)
        client.futures_countdown_cancel_all(symbol="ETHUSDT", countdownTime=0)
        assert sim.book.next_countdown_deadline() is None


class TestAuth:
    def test_wrong_signature_is_1022(self, sim: BinanceSimulator) -> None:
        with pytest.raises(BinanceAPIException) as info:
            sync_client(sim, secret="not-the-secret").futures_position_information()
        assert api_error(info) == (400, -1022)

    def test_stale_timestamp_is_1021(self, sim: BinanceSimulator, client: Client) -> None:
        client.timestamp_offset = -(client.REQUEST_RECVWINDOW + 5000)
        with pytest.raises(BinanceAPIException) as info:
            client.futures_position_information()
        assert api_error(info) == (400, -1021)

    def test_timestamp_from_the_future_is_1021(self, client: Client) -> None:
        client.timestamp_offset = 5000
        with pytest.raises(BinanceAPIException) as info:
            client.futures_account_balance()
        assert api_error(info) == (400, -1021)

    def test_wrong_api_key_is_2015_with_401(self, sim: BinanceSimulator) -> None:
        with pytest.raises(BinanceAPIException) as info:
            sync_client(sim, key="someone-else").futures_position_information()
        assert api_error(info) == (401, -2015)

    async def test_async_client_with_a_wrong_secret_is_1022(self, sim: BinanceSimulator) -> None:
        client = AsyncClient(sim.api_key, "not-the-secret")
        client.FUTURES_URL = sim.base_url + "/fapi"
        try:
            with pytest.raises(BinanceAPIException) as info:
                await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
        finally:
            await client.close_connection()
        assert api_error(info) == (400, -1022)
        assert sim.book.orders() == []

    def test_request_log_never_holds_the_signature_or_secret(self, sim: BinanceSimulator, client: Client) -> None:
        client.futures_position_information()
        (record,) = sim.request_log
        assert (record.method, record.path, record.status) == ("GET", "/fapi/v3/positionRisk", 200)
        assert "signature" not in record.params and "timestamp" in record.params
        assert sim.api_secret not in repr(sim.request_log) and sim.api_secret not in repr(sim)


class TestRateLimits:
    def test_weight_limit_answers_429_with_retry_after_then_418_when_ignored(self) -> None:
        with BinanceSimulator(rate_limits={"weight_per_minute": 3, "ban_after": 1}) as sim:
            client = sync_client(sim)
            for _ in range(3):
                client.futures_ping()
            assert client.response.headers["X-MBX-USED-WEIGHT-1M"] == "3"
            with pytest.raises(BinanceAPIException) as info:
                client.futures_ping()
            assert api_error(info) == (429, -1003)
            assert int(info.value.response.headers["Retry-After"]) >= 1
            with pytest.raises(BinanceAPIException) as info:
                client.futures_ping()
            assert info.value.status_code == 418
            assert (sim.rate_limited_count, sim.banned_count) == (1, 1)

    def test_order_count_limit_answers_429_with_1015(self) -> None:
        with BinanceSimulator(rate_limits={"orders_per_10s": 2}) as sim:
            client = sync_client(sim)
            for _ in range(2):
                client.futures_create_order(symbol="ETHUSDT", side="BUY", type="LIMIT", quantity="0.100",
                                            price="3000", timeInForce="GTC")
            assert client.response.headers["X-MBX-ORDER-COUNT-10S"] == "2"
            with pytest.raises(BinanceAPIException) as info:
                client.futures_create_order(symbol="ETHUSDT", side="BUY", type="LIMIT", quantity="0.100",
                                            price="3000", timeInForce="GTC")
            assert api_error(info) == (429, -1015)
            assert len(sim.book.open_orders()) == 2

    def test_bad_rate_limit_config_names_the_field(self) -> None:
        with pytest.raises(ConfigError, match="rate_limits.weight_per_minute"):
            BinanceSimulator(rate_limits={"weight_per_minute": 0})


class TestFaults:
    def test_unknown_status_503_after_the_order_executed(self, sim: BinanceSimulator, client: Client) -> None:
        sim.set_position("BTCUSDT", "0.500")
        sim.faults.unknown_status_executed(endpoint="POST /fapi/v1/order", times=1)
        with pytest.raises(BinanceAPIException) as info:
            client.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.500",
                                        reduceOnly="true", newClientOrderId="amb-1")
        assert info.value.status_code == 503
        assert info.value.message == "Unknown error, please check your request or try again later."
        assert client.futures_get_order(symbol="BTCUSDT", origClientOrderId="amb-1")["status"] == "FILLED"

    def test_service_unavailable_burst_then_success(self, sim: BinanceSimulator, client: Client) -> None:
        sim.faults.error(503, endpoint="positions", times=2)
        for _ in range(2):
            with pytest.raises(BinanceAPIException) as info:
                client.futures_position_information()
            assert (info.value.status_code, info.value.message) == (503, "Service Unavailable.")
        assert client.futures_position_information() == []

    def test_locked_symbol_rejects_only_its_own_orders(self, sim: BinanceSimulator, client: Client) -> None:
        sim.set_position("BTCUSDT", "0.500")
        sim.set_position("ETHUSDT", "1.000")
        sim.faults.lock_symbol("ETHUSDT")
        with pytest.raises(BinanceAPIException) as info:
            client.futures_create_order(symbol="ETHUSDT", side="SELL", type="MARKET", quantity="1.000",
                                        reduceOnly="true")
        assert api_error(info) == (400, -1122)
        client.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.500",
                                    reduceOnly="true")
        assert [p["symbol"] for p in sim.book.positions()] == ["ETHUSDT"]

    def test_html_502_page_surfaces_as_code_0(self, sim: BinanceSimulator, client: Client) -> None:
        sim.faults.html_body(endpoint="positions", times=1)
        with pytest.raises(BinanceAPIException) as info:
            client.futures_position_information()
        assert api_error(info) == (502, 0)

    def test_malformed_json_body_is_a_request_exception(self, sim: BinanceSimulator, client: Client) -> None:
        sim.faults.malformed_body(endpoint="positions", times=1)
        with pytest.raises(BinanceRequestException):
            client.futures_position_information()

    def test_connection_reset_after_execution_leaves_the_order_placed(self, sim: BinanceSimulator,
                                                                     client: Client) -> None:
        sim.set_position("BTCUSDT", "0.500")
        sim.faults.connection_reset(endpoint="new_order", executed=True, times=1)
        with pytest.raises(requests.exceptions.ConnectionError):
            client.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.500",
                                        reduceOnly="true")
        assert sim.book.positions() == []

    def test_hung_request_blocks_neither_other_requests_nor_stop(self) -> None:
        sim = BinanceSimulator().start()
        sim.faults.hang(endpoint="positions")
        outcome: list[object] = []

        def hung_call() -> None:
            try:
                outcome.append(sync_client(sim).futures_position_information())
            except Exception as exc:  # whatever the stop does to it, the thread must end
                outcome.append(exc)

        thread = threading.Thread(target=hung_call)
        thread.start()
        try:
            assert sim.faults.wait_until_hung(1, 5.0)
            assert "serverTime" in sync_client(sim).futures_time()
        finally:
            sim.stop()
        thread.join(timeout=5.0)
        assert not thread.is_alive() and len(outcome) == 1
        assert not sim.running


class TestLifecycle:
    async def test_async_context_manager_serves_and_stops(self) -> None:
        async with BinanceSimulator(SimBook(["BTCUSDT"])) as sim:
            client = AsyncClient(sim.api_key, sim.api_secret)
            client.FUTURES_URL = sim.base_url + "/fapi"
            try:
                assert (await client.futures_exchange_info())["symbols"][0]["symbol"] == "BTCUSDT"
            finally:
                await client.close_connection()
        assert not sim.running
        with pytest.raises(RuntimeError, match="not started"):
            _ = sim.base_url

    def test_non_loopback_host_is_refused(self) -> None:
        with pytest.raises(ConfigError, match="host='0.0.0.0'"):
            BinanceSimulator(host="0.0.0.0")


class TestCommand:
    def test_process_form_serves_until_sigterm_with_a_fault_plan(self, tmp_path: Path) -> None:
        plan = tmp_path / "faults.json"
        plan.write_text(json.dumps({"rules": [{"kind": "error", "endpoint": "GET /fapi/v1/time", "status": 503,
                                               "times": 1}]}), encoding="utf-8")
        process = subprocess.Popen([sys.executable, "-m", "harness.exchanges.sim", "--json", "--faults", str(plan)],
                                   cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            info = json.loads(process.stdout.readline())
            assert requests.get(info["futures_url"] + "/v1/time", timeout=5).status_code == 503
            assert requests.get(info["futures_url"] + "/v1/time", timeout=5).status_code == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)

    def test_bad_fault_file_is_reported_with_the_field(self, tmp_path: Path) -> None:
        plan = tmp_path / "faults.json"
        plan.write_text('{"rules": [{"kind": "latency", "seconds": -1}]}', encoding="utf-8")
        result = CliRunner().invoke(simulate_command, ["--faults", str(plan)])
        assert result.exit_code == 2
        assert "rules[0].seconds=-1" in result.output
