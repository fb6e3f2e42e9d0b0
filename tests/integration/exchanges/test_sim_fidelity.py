"""The simulator answers what bots call as Binance does: margin, set-up, reads, market data, strictness.

Raw HTTP with requests (so the exact bytes on the wire are under test control) and the book's control API.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from harness.exchanges.sim import BinanceSimulator, FaultPlan, SimBook, SymbolSpec
from harness.exchanges.sim._auth import sign


@pytest.fixture
def sim() -> Iterator[BinanceSimulator]:
    with BinanceSimulator(SimBook(wallet_balance="10000"), FaultPlan(seed=3)) as simulator:
        yield simulator


def call(sim: BinanceSimulator, method: str, path: str, *, body: dict[str, Any] | None = None,
         key: str | None = None, **params: Any) -> requests.Response:
    """A signed request: ``params`` in the query string, ``body`` form-encoded; signature over both as sent."""
    query_params = {**params, "timestamp": sim.book.now_ms()}
    query = urlencode(query_params)
    raw_body = urlencode(body) if body else ""
    signature = sign(sim.api_secret, query + raw_body)
    if raw_body:
        raw_body += f"&signature={signature}"
    else:
        query += f"&signature={signature}"
    headers = {"X-MBX-APIKEY": key or sim.api_key, "Content-Type": "application/x-www-form-urlencoded"}
    return requests.request(method, f"{sim.base_url}/fapi/{path}?{query}", data=raw_body or None,
                            headers=headers, timeout=5)


def public(sim: BinanceSimulator, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{sim.base_url}/fapi/{path}", params=params, timeout=5)


def error(response: requests.Response) -> tuple[int, int]:
    return response.status_code, response.json()["code"]


class TestMarginModel:
    def test_a_100_btc_market_order_on_a_10000_usdt_wallet_is_2019(self, sim: BinanceSimulator) -> None:
        response = call(sim, "POST", "v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="100")
        assert error(response) == (400, -2019)
        assert response.json()["msg"] == "Margin is insufficient."
        assert sim.book.positions() == [] and sim.fill_log == []

    def test_reduce_only_close_never_needs_margin_even_when_the_account_is_under_water(
            self, sim: BinanceSimulator) -> None:
        sim.set_position("BTCUSDT", "50")  # 3.2M notional on a 10k wallet
        assert sim.book.available_balance() < 0
        response = call(sim, "POST", "v1/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="50",
                        reduceOnly="true")
        assert response.status_code == 200 and response.json()["status"] in ("NEW", "FILLED")
        assert sim.book.positions() == []

    def test_plain_close_of_the_whole_position_needs_no_margin_but_flipping_does(self, sim: BinanceSimulator) -> None:
        sim.set_position("BTCUSDT", "50")
        assert error(call(sim, "POST", "v1/order", symbol="BTCUSDT", side="SELL", type="MARKET",
                          quantity="100")) == (400, -2019)
        assert call(sim, "POST", "v1/order", symbol="BTCUSDT", side="SELL", type="MARKET",
                    quantity="50").status_code == 200
        assert sim.book.positions() == []

    def test_account_balance_and_position_risk_agree_after_an_opening_fill(self, sim: BinanceSimulator) -> None:
        assert call(sim, "POST", "v1/order", symbol="ETHUSDT", side="BUY", type="MARKET",
                    quantity="10").status_code == 200
        initial_margin = Decimal("10") * Decimal("3200") / 20
        v2, v3 = call(sim, "GET", "v2/account").json(), call(sim, "GET", "v3/account").json()
        (balance,) = call(sim, "GET", "v2/balance").json()
        available = Decimal("10000") - initial_margin
        assert Decimal(v2["availableBalance"]) == Decimal(v3["availableBalance"]) == available
        assert Decimal(balance["availableBalance"]) == available
        assert Decimal(v3["totalPositionInitialMargin"]) == initial_margin
        (risk,) = call(sim, "GET", "v2/positionRisk", symbol="ETHUSDT").json()
        assert (risk["leverage"], risk["marginType"], risk["positionAmt"]) == ("20", "cross", "10")
        row = next(p for p in v2["positions"] if p["symbol"] == "ETHUSDT")
        assert (row["leverage"], row["isolated"], Decimal(row["initialMargin"])) == ("20", False, initial_margin)
        assert "unRealizedProfit" not in row and "unrealizedProfit" in row
        assert [p["symbol"] for p in v3["positions"]] == ["ETHUSDT"]

    def test_leverage_sets_the_initial_margin_and_is_bounded(self, sim: BinanceSimulator) -> None:
        reply = call(sim, "POST", "v1/leverage", body={"symbol": "ETHUSDT", "leverage": "10"}).json()
        assert reply == {"leverage": 10, "maxNotionalValue": "100000000", "symbol": "ETHUSDT"}
        call(sim, "POST", "v1/order", symbol="ETHUSDT", side="BUY", type="MARKET", quantity="10")
        (risk,) = call(sim, "GET", "v3/positionRisk", symbol="ETHUSDT").json()
        assert Decimal(risk["initialMargin"]) == Decimal("3200")
        assert error(call(sim, "POST", "v1/leverage", symbol="ETHUSDT", leverage="126")) == (400, -4028)


class TestSetUp:
    def test_margin_type_changes_once_then_4046_and_never_with_a_position(self, sim: BinanceSimulator) -> None:
        assert call(sim, "POST", "v1/marginType", symbol="BTCUSDT", marginType="ISOLATED").json() == {
            "code": 200, "msg": "success"}
        again = call(sim, "POST", "v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
        assert again.json() == {"code": -4046, "msg": "No need to change margin type."}
        sim.set_position("ETHUSDT", "1")
        assert error(call(sim, "POST", "v1/marginType", symbol="ETHUSDT", marginType="ISOLATED")) == (400, -4048)

    def test_brackets_commission_and_multi_assets(self, sim: BinanceSimulator) -> None:
        (entry,) = call(sim, "GET", "v1/leverageBracket", symbol="BTCUSDT").json()
        first = entry["brackets"][0]
        assert entry["symbol"] == "BTCUSDT" and first["initialLeverage"] == 125 and first["notionalFloor"] == 0
        assert isinstance(first["maintMarginRatio"], float) and isinstance(first["notionalCap"], int)
        rates = call(sim, "GET", "v1/commissionRate", symbol="BTCUSDT").json()
        assert set(rates) >= {"symbol", "makerCommissionRate", "takerCommissionRate"}
        assert call(sim, "GET", "v1/multiAssetsMargin").json() == {"multiAssetsMargin": False}
        assert call(sim, "POST", "v1/multiAssetsMargin", multiAssetsMargin="true").json()["code"] == 200
        assert error(call(sim, "POST", "v1/multiAssetsMargin", multiAssetsMargin="true")) == (400, -4171)


class TestReads:
    def test_modify_open_order_then_history_trades_and_income(self) -> None:
        book = SimBook(wallet_balance="10000", taker_fee="0.0005", maker_fee="0.0002")
        with BinanceSimulator(book) as sim:
            placed = call(sim, "POST", "v1/order", symbol="ETHUSDT", side="BUY", type="LIMIT", quantity="1",
                          price="3000", timeInForce="GTC").json()
            assert call(sim, "GET", "v1/openOrder", symbol="ETHUSDT", orderId=placed["orderId"]).json()["price"] == \
                "3000.00"
            same = call(sim, "PUT", "v1/order", symbol="ETHUSDT", side="BUY", orderId=placed["orderId"],
                        quantity="1", price="3000")
            assert error(same) == (400, -5027)
            moved = call(sim, "PUT", "v1/order", symbol="ETHUSDT", side="BUY", orderId=placed["orderId"],
                         quantity="1", price="3250").json()  # now marketable: fills at the mark
            assert moved["status"] == "FILLED"
            assert error(call(sim, "GET", "v1/openOrder", symbol="ETHUSDT", orderId=placed["orderId"])) == (400, -2013)
            (order,) = call(sim, "GET", "v1/allOrders", symbol="ETHUSDT").json()
            assert order["orderId"] == placed["orderId"]
            (trade,) = call(sim, "GET", "v1/userTrades", symbol="ETHUSDT").json()
            assert (trade["qty"], trade["price"], trade["commission"], trade["buyer"]) == ("1", "3200", "1.6", True)
            incomes = call(sim, "GET", "v1/income").json()
            assert [(i["incomeType"], i["income"]) for i in incomes] == [("COMMISSION", "-1.60000000")]
            assert book.wallet_balance == Decimal("9998.4")

    def test_all_algo_orders_keep_cancelled_ones(self, sim: BinanceSimulator) -> None:
        sim.set_position("BTCUSDT", "0.100")
        algo = call(sim, "POST", "v1/algoOrder", algoType="CONDITIONAL", symbol="BTCUSDT", side="SELL",
                    type="STOP_MARKET", triggerPrice="60000", closePosition="true").json()
        call(sim, "DELETE", "v1/algoOrder", algoId=algo["algoId"])
        (row,) = call(sim, "GET", "v1/allAlgoOrders", symbol="BTCUSDT").json()
        assert (row["algoId"], row["algoStatus"]) == (algo["algoId"], "CANCELED")

    def test_listen_key_needs_the_api_key_and_is_kept_alive_until_deleted(self, sim: BinanceSimulator) -> None:
        url = sim.base_url + "/fapi/v1/listenKey"
        assert requests.post(url, timeout=5).json()["code"] == -2014
        headers = {"X-MBX-APIKEY": sim.api_key}
        key = requests.post(url, headers=headers, timeout=5).json()["listenKey"]
        assert requests.post(url, headers=headers, timeout=5).json()["listenKey"] == key
        assert requests.put(url, headers=headers, timeout=5).json() == {"listenKey": key}
        assert requests.delete(url, headers=headers, timeout=5).json() == {}
        assert requests.put(url, headers=headers, timeout=5).json()["code"] == -1125


class TestMarketData:
    def test_klines_follow_the_price_path_set_for_the_symbol(self, sim: BinanceSimulator) -> None:
        sim.book.set_price_path("ETHUSDT", ["3000", "3100", "3050"])
        rows = public(sim, "v1/klines", symbol="ETHUSDT", interval="1m", limit=4).json()
        closes = [r[4] for r in rows]
        assert closes == ["3000.00", "3000.00", "3100.00", "3050.00"]
        assert [r[1] for r in rows[1:]] == closes[:-1]  # each candle opens at the previous close
        assert rows[2][2] == "3100.00" and rows[2][3] == "3000.00"
        assert sim.book.mark_price("ETHUSDT") == Decimal("3050")
        day = public(sim, "v1/ticker/24hr", symbol="ETHUSDT").json()
        assert (day["openPrice"], day["highPrice"], day["lowPrice"], day["lastPrice"]) == (
            "3000.00", "3100.00", "3000.00", "3050.00")

    def test_mark_price_tickers_and_depth(self, sim: BinanceSimulator) -> None:
        one = public(sim, "v1/premiumIndex", symbol="BTCUSDT").json()
        assert one["markPrice"] == "64000.1" and isinstance(one["nextFundingTime"], int)
        assert len(public(sim, "v1/premiumIndex").json()) == len(sim.book.symbols)
        assert public(sim, "v2/ticker/price", symbol="BTCUSDT").json()["price"] == "64000.1"
        top = public(sim, "v1/ticker/bookTicker", symbol="BTCUSDT").json()
        assert Decimal(top["bidPrice"]) <= Decimal("64000.1") < Decimal(top["askPrice"])
        book = public(sim, "v1/depth", symbol="BTCUSDT", limit=5)
        assert len(book.json()["bids"]) == len(book.json()["asks"]) == 5
        assert book.headers["X-MBX-USED-WEIGHT-1M"] == str(1 + 10 + 1 + 2 + 2)
        assert error(public(sim, "v1/depth", symbol="BTCUSDT", limit=7)) == (400, -1130)


class TestStrictness:
    def test_query_string_wins_over_the_body(self, sim: BinanceSimulator) -> None:
        sim.set_position("ETHUSDT", "1")
        response = call(sim, "POST", "v1/order", symbol="ETHUSDT", side="SELL", type="MARKET", quantity="0.5",
                        reduceOnly="true", newOrderRespType="RESULT", body={"quantity": "1"})
        assert response.json()["executedQty"] == "0.500"

    def test_signature_must_cover_the_exact_bytes_sent(self, sim: BinanceSimulator) -> None:
        stamp = sim.book.now_ms()
        body = urlencode({"symbol": "BTCUSDT", "newClientOrderId": "a:b/c", "side": "BUY", "type": "LIMIT",
                          "quantity": "0.010", "price": "50000", "timeInForce": "GTC", "timestamp": stamp})
        decoded = body.replace("%3A", ":").replace("%2F", "/")
        headers = {"X-MBX-APIKEY": sim.api_key, "Content-Type": "application/x-www-form-urlencoded"}
        url = sim.base_url + "/fapi/v1/order"
        wrong = requests.post(url, data=f"{body}&signature={sign(sim.api_secret, decoded)}", headers=headers,
                              timeout=5)
        assert error(wrong) == (400, -1022)
        right = requests.post(url, data=f"{body}&signature={sign(sim.api_secret, body)}", headers=headers, timeout=5)
        assert right.status_code == 200 and right.json()["clientOrderId"] == "a:b/c"

    def test_signature_joins_query_and_body_without_an_ampersand(self, sim: BinanceSimulator) -> None:
        query, body = f"symbol=BTCUSDT&timestamp={sim.book.now_ms()}", "countdownTime=0"
        headers = {"X-MBX-APIKEY": sim.api_key, "Content-Type": "application/x-www-form-urlencoded"}
        url = f"{sim.base_url}/fapi/v1/countdownCancelAll?{query}"
        joined = requests.post(url, data=f"{body}&signature={sign(sim.api_secret, query + '&' + body)}",
                               headers=headers, timeout=5)
        assert error(joined) == (400, -1022)
        exact = requests.post(url, data=f"{body}&signature={sign(sim.api_secret, query + body)}", headers=headers,
                              timeout=5)
        assert exact.status_code == 200

    def test_over_precise_price_is_1111_off_tick_is_4014(self, sim: BinanceSimulator) -> None:
        base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.010", "timeInForce": "GTC"}
        assert error(call(sim, "POST", "v1/order", price="50000.001", **base)) == (400, -1111)
        assert error(call(sim, "POST", "v1/order", price="50000.05", **base)) == (400, -4014)

    def test_1008_fault_is_503_with_binances_text(self, sim: BinanceSimulator) -> None:
        sim.faults.error(code=-1008, endpoint="new_order", times=1)
        response = call(sim, "POST", "v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
        assert error(response) == (503, -1008)
        assert response.json()["msg"] == "Server is currently overloaded with other requests. Please try again."

    def test_a_batch_counts_five_on_the_10s_counter_and_one_on_the_minute(self, sim: BinanceSimulator) -> None:
        items = '[{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.010","price":"50000",' \
                '"timeInForce":"GTC"}]'
        response = call(sim, "POST", "v1/batchOrders", body={"batchOrders": items})
        assert response.status_code == 200
        assert (response.headers["X-MBX-ORDER-COUNT-10S"], response.headers["X-MBX-ORDER-COUNT-1M"]) == ("5", "1")

    def test_exchange_info_is_current(self, sim: BinanceSimulator) -> None:
        info = public(sim, "v1/exchangeInfo").json()
        btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
        assert "MAX_NUM_ALGO_ORDERS" not in {f["filterType"] for f in btc["filters"]}
        assert {"maintMarginPercent", "requiredMarginPercent", "underlyingSubType", "pricePrecision"} <= set(btc)
        assert btc["pricePrecision"] == 2

    def test_unmodelled_endpoint_is_binances_unsupported_answer_and_unknown_is_404(self, sim: BinanceSimulator) -> None:
        assert error(public(sim, "v1/fundingRate", symbol="BTCUSDT")) == (400, -1020)
        assert error(public(sim, "v9/nothing")) == (404, -5000)


class TestBadSpecs:
    @pytest.mark.parametrize(("kwargs", "field"), [
        ({"max_price": "-1"}, "max_price"), ({"min_price": "abc"}, "min_price"),
        ({"quote_asset": "BUSD"}, "quote_asset"), ({"min_qty": "0.0015"}, "min_qty"),
    ])
    def test_bad_symbol_spec_names_the_field(self, kwargs: dict[str, str], field: str) -> None:
        values = {"symbol": "FOOUSDT", "tick_size": "0.01", "step_size": "0.001", "min_qty": "0.001",
                  "max_qty": "100", "market_max_qty": "10", "min_notional": "5", "mark_price": "10", **kwargs}
        with pytest.raises(ValueError, match=field):
            SymbolSpec(**values)  # type: ignore[arg-type]

    def test_a_book_of_something_else_than_specs_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"symbols\[0\]"):
            SimBook(symbols=[object()])  # type: ignore[list-item]
