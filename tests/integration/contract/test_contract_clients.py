"""ccxt's binanceusdm, python-binance and Binance's own USD-M SDK models driving a bot loop on the simulator.

The loop of a typical bot: load markets, set leverage and margin type, read mark price and balance,
open, place a stop via the algo service, read positions and trades, cancel everything, close.
ccxt and the SDK are optional extras (``pip install .[ccxt]`` / ``.[dev]``): skipped when missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from binance import Client

from harness.exchanges.sim import BinanceSimulator, SimBook
from harness.exchanges.sim.ccxt_urls import ccxt_binanceusdm_config, ccxt_fapi_urls
from harness.core.errors import ConfigError


@pytest.fixture
def sim() -> Iterator[BinanceSimulator]:
    with BinanceSimulator(SimBook(wallet_balance="10000")) as simulator:
        yield simulator


class TestCcxtUrls:
    def test_every_fapi_api_name_points_under_the_root(self) -> None:
        urls = ccxt_fapi_urls("http://127.0.0.1:9/")
        assert urls["fapiPrivateV3"] == "http://127.0.0.1:9/fapi/v3" and urls["fapiPublic"] == "http://127.0.0.1:9/fapi/v1"

    def test_a_root_that_is_not_an_http_url_names_the_argument(self) -> None:
        with pytest.raises(ConfigError, match="root_url"):
            ccxt_fapi_urls("127.0.0.1:9")


class TestCcxtLoop:
    def test_binanceusdm_bot_loop(self, sim: BinanceSimulator) -> None:
        ccxt = pytest.importorskip("ccxt")
        exchange = ccxt.binanceusdm(ccxt_binanceusdm_config(sim.base_url, sim.api_key, sim.api_secret))
        markets = exchange.load_markets()
        assert "BTC/USDT:USDT" in markets
        assert exchange.fetch_balance()["USDT"]["free"] == 10000
        assert exchange.set_leverage(10, "BTC/USDT:USDT")["leverage"] == 10
        with pytest.raises(ccxt.MarginModeAlreadySet):  # already cross: Binance's -4046
            exchange.set_margin_mode("cross", "BTC/USDT:USDT")
        assert exchange.set_margin_mode("isolated", "BTC/USDT:USDT")["code"] == 200
        assert exchange.fetch_mark_price("BTC/USDT:USDT")["markPrice"] == pytest.approx(64000.1)
        opened = exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
        assert opened["status"] == "closed" and opened["filled"] == pytest.approx(0.01)
        stop = exchange.create_order("BTC/USDT:USDT", "market", "sell", 0.01, None,
                                     {"stopPrice": 60000, "reduceOnly": True})
        assert stop["info"]["algoType"] == "CONDITIONAL" and len(sim.book.open_algo_orders()) == 1
        (position,) = exchange.fetch_positions(["BTC/USDT:USDT"])
        assert (position["side"], position["contracts"]) == ("long", 0.01)
        (trade,) = exchange.fetch_my_trades("BTC/USDT:USDT")
        assert trade["amount"] == pytest.approx(0.01) and trade["side"] == "buy"
        exchange.cancel_all_orders("BTC/USDT:USDT", {"trigger": True})
        assert sim.book.open_algo_orders() == []
        exchange.create_order("BTC/USDT:USDT", "market", "sell", 0.01, None, {"reduceOnly": True})
        assert sim.book.positions() == []
        with pytest.raises(ccxt.ExchangeError, match="-2019"):
            exchange.create_order("BTC/USDT:USDT", "market", "buy", 100)
        assert all(r.path.startswith("/fapi/") for r in sim.request_log)


class TestPythonBinanceLoop:
    def test_futures_methods_of_the_same_loop(self, sim: BinanceSimulator) -> None:
        client = Client(sim.api_key, sim.api_secret, ping=False, requests_params={"timeout": 5})
        client.FUTURES_URL = sim.base_url + "/fapi"
        try:
            assert any(s["symbol"] == "ETHUSDT" for s in client.futures_exchange_info()["symbols"])
            assert client.futures_change_leverage(symbol="ETHUSDT", leverage=5)["leverage"] == 5
            assert client.futures_change_margin_type(symbol="ETHUSDT", marginType="ISOLATED")["code"] == 200
            assert client.futures_mark_price(symbol="ETHUSDT")["markPrice"] == "3200.00"
            assert Decimal(client.futures_account_balance()[0]["availableBalance"]) == Decimal("10000")
            client.futures_create_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="1",
                                        newClientOrderId="bot-open-1")
            client.futures_create_algo_order(symbol="ETHUSDT", side="SELL", type="STOP_MARKET",
                                             triggerPrice="3000", closePosition="true", algoType="CONDITIONAL")
            (row,) = client.futures_position_information(symbol="ETHUSDT")
            assert row["positionAmt"] == "1"
            assert [t["orderId"] for t in client.futures_account_trades(symbol="ETHUSDT")] == [
                sim.fill_log[0].order_id]
            assert client.futures_leverage_bracket(symbol="ETHUSDT")[0]["symbol"] == "ETHUSDT"
            assert client.futures_get_multi_assets_mode() == {"multiAssetsMargin": False}
            listen_key = client.futures_stream_get_listen_key()
            assert sim.listen_keys.valid(listen_key)
            client.futures_cancel_all_open_orders(symbol="ETHUSDT")
            client.futures_cancel_all_algo_open_orders(symbol="ETHUSDT")
            client.futures_create_order(symbol="ETHUSDT", side="SELL", type="MARKET", quantity="1",
                                        reduceOnly="true", newClientOrderId="bot-close-1")
            assert sim.book.positions() == [] and sim.book.open_algo_orders() == []
        finally:
            client.close_connection()


def _signed_get(sim: BinanceSimulator, path: str, **params: Any) -> Any:
    from urllib.parse import urlencode

    from harness.exchanges.sim._auth import sign

    query = urlencode({**params, "timestamp": sim.book.now_ms()})
    url = f"{sim.base_url}/fapi/{path}?{query}&signature={sign(sim.api_secret, query)}"
    return requests.get(url, headers={"X-MBX-APIKEY": sim.api_key}, timeout=5).json()


class TestUsdmSdkModels:
    """Binance's published response models (strict pydantic types) accept every answer of the loop."""

    def test_loop_responses_parse_into_the_sdk_models(self, sim: BinanceSimulator) -> None:
        models = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures.rest_api.models")
        sim.set_position("BTCUSDT", "0.010")
        sim.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
        sim.place_algo_order("BTCUSDT", "SELL", "STOP_MARKET", trigger_price="60000", close_position=True)
        public = requests.get
        base = sim.base_url + "/fapi/"
        checks: list[tuple[Any, Any]] = [
            (models.ExchangeInformationResponse, public(base + "v1/exchangeInfo", timeout=5).json()),
            (models.MarkPriceResponse1, public(base + "v1/premiumIndex?symbol=BTCUSDT", timeout=5).json()),
            (models.SymbolPriceTickerV2Response1, public(base + "v2/ticker/price?symbol=BTCUSDT", timeout=5).json()),
            (models.SymbolOrderBookTickerResponse1,
             public(base + "v1/ticker/bookTicker?symbol=BTCUSDT", timeout=5).json()),
            (models.Ticker24hrPriceChangeStatisticsResponse1,
             public(base + "v1/ticker/24hr?symbol=BTCUSDT", timeout=5).json()),
            (models.OrderBookResponse, public(base + "v1/depth?symbol=BTCUSDT&limit=5", timeout=5).json()),
            (models.AccountInformationV2Response, _signed_get(sim, "v2/account")),
            (models.AccountInformationV3Response, _signed_get(sim, "v3/account")),
            (models.UserCommissionRateResponse, _signed_get(sim, "v1/commissionRate", symbol="BTCUSDT")),
            (models.GetCurrentMultiAssetsModeResponse, _signed_get(sim, "v1/multiAssetsMargin")),
        ]
        rows: list[tuple[Any, Any]] = [
            (models.FuturesAccountBalanceV2ResponseInner, _signed_get(sim, "v2/balance")),
            (models.PositionInformationV3ResponseInner, _signed_get(sim, "v3/positionRisk")),
            (models.PositionInformationV2ResponseInner, _signed_get(sim, "v2/positionRisk", symbol="BTCUSDT")),
            (models.NotionalAndLeverageBracketsResponse1Inner,
             _signed_get(sim, "v1/leverageBracket", symbol="BTCUSDT")),
            (models.AllOrdersResponseInner, _signed_get(sim, "v1/allOrders", symbol="BTCUSDT")),
            (models.QueryAllAlgoOrdersResponseInner, _signed_get(sim, "v1/allAlgoOrders", symbol="BTCUSDT")),
            (models.CurrentAllAlgoOpenOrdersResponseInner, _signed_get(sim, "v1/openAlgoOrders")),
            (models.CurrentAllOpenOrdersResponseInner, _signed_get(sim, "v1/openOrders")),
        ]
        for model, item in checks + [(m, row) for m, data in rows for row in data]:
            assert isinstance(item, dict), (model.__name__, item)
            model.model_validate(item)  # strict types: a number where Binance sends a string fails here
        assert len(rows[1][1]) == 1 and len(rows[5][1]) == 1


class TestUsdmSdkClient:
    """Binance's own USD-M SDK client, pointed at the simulator, drives the bot loop and parses every
    answer into its models (``.data()`` validates the response against the published shape)."""

    def test_the_bot_loop_through_the_sdk_client(self, sim: BinanceSimulator) -> None:
        sdk = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures")
        from binance_common.configuration import ConfigurationRestAPI
        from binance_sdk_derivatives_trading_usds_futures.rest_api.models import enums

        api = sdk.DerivativesTradingUsdsFutures(config_rest_api=ConfigurationRestAPI(
            api_key=sim.api_key, api_secret=sim.api_secret, base_path=sim.base_url)).rest_api
        info = api.exchange_information().data()
        assert any(s.symbol == "BTCUSDT" for s in info.symbols)
        assert api.change_initial_leverage(symbol="BTCUSDT", leverage=10).data().leverage == 10
        api.change_margin_type(symbol="BTCUSDT", margin_type=enums.ChangeMarginTypeMarginTypeEnum["ISOLATED"]).data()
        with pytest.raises(Exception, match="No need to change margin type"):  # -4046, as Binance answers
            api.change_margin_type(symbol="BTCUSDT", margin_type=enums.ChangeMarginTypeMarginTypeEnum["ISOLATED"])
        mark = api.mark_price(symbol="BTCUSDT").data()
        assert mark is not None
        assert api.futures_account_balance_v3().data()
        api.account_information_v3().data()
        opened = api.new_order(symbol="BTCUSDT", side=enums.NewOrderSideEnum["BUY"], type=enums.NewOrderTypeEnum["MARKET"],
                               quantity=0.01).data()
        assert opened.symbol == "BTCUSDT"
        api.new_algo_order(algo_type=enums.NewAlgoOrderAlgoTypeEnum["CONDITIONAL"], symbol="BTCUSDT",
                           side=enums.NewAlgoOrderSideEnum["SELL"], type=enums.NewAlgoOrderTypeEnum["STOP_MARKET"],
                           quantity=0.01, trigger_price=1000.0).data()
        positions = [p for p in api.position_information_v3().data() if p.symbol == "BTCUSDT"]
        assert len(positions) == 1
        assert len(api.current_all_algo_open_orders(symbol="BTCUSDT").data()) == 1
        api.cancel_all_algo_open_orders(symbol="BTCUSDT").data()
        api.cancel_all_open_orders(symbol="BTCUSDT").data()
        api.new_order(symbol="BTCUSDT", side=enums.NewOrderSideEnum["SELL"], type=enums.NewOrderTypeEnum["MARKET"],
                      quantity=0.01, reduce_only=enums.NewOrderReduceOnlyEnum.TRUE).data()
        assert sim.book.position_amount("BTCUSDT") == 0
        assert api.current_all_algo_open_orders(symbol="BTCUSDT").data() == []
        assert len(api.account_trade_list(symbol="BTCUSDT").data()) == 2
