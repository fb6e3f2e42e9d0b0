"""The simulator's WebSocket streams, driven by real clients (python-binance, aiohttp, ccxt.pro).

Every wait is for a message with a timeout, never a sleep: a test that gets nothing fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import requests

from harness.core.errors import ConfigError
from harness.exchanges.sim import BinanceSimulator, SimBook
from harness.exchanges.sim.ccxt_urls import ccxt_binanceusdm_config
from tests.support.clock import ManualClock

WAIT = 10.0


@pytest.fixture
async def sim() -> AsyncIterator[BinanceSimulator]:
    async with BinanceSimulator() as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def listen_key(sim: BinanceSimulator) -> str:
    response = requests.post(sim.base_url + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": sim.api_key}, timeout=5)
    response.raise_for_status()
    return str(response.json()["listenKey"])


async def next_event(ws: aiohttp.ClientWebSocketResponse, event: str, **match: Any) -> dict[str, Any]:
    """The first message whose ``e`` is ``event`` and whose ``o`` fields match (raw or combined format)."""
    async def wait() -> dict[str, Any]:
        while True:
            message = await ws.receive_json()
            data = message.get("data", message) if isinstance(message, dict) else message
            if isinstance(data, dict) and data.get("e") == event:
                fields = data.get("o", {})
                if all(fields.get(k) == v for k, v in match.items()):
                    return message
    return await asyncio.wait_for(wait(), WAIT)


async def handshake_refusal(session: aiohttp.ClientSession, sim: BinanceSimulator,
                            path: str) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body of a refused WebSocket handshake."""
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    async with session.get(sim.base_url + path, headers=headers) as response:
        return response.status, await response.json()


class TestPythonBinance:
    async def test_futures_user_socket_receives_order_trade_update_for_a_fill(self, sim: BinanceSimulator) -> None:
        from binance import AsyncClient, BinanceSocketManager

        client = AsyncClient(sim.api_key, sim.api_secret)
        client.FUTURES_URL = sim.base_url + "/fapi"
        try:
            manager = BinanceSocketManager(client)
            manager.FSTREAM_URL = sim.streams_url + "/"
            socket = manager.futures_user_socket()
            socket.TIMEOUT = 0.2  # its read loop notices the close only after a message or this timeout
            async with socket:
                placed = await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET",
                                                           quantity="0.010")

                async def fill() -> dict[str, Any]:
                    while True:
                        message = await socket.recv()
                        if message.get("e") == "ORDER_TRADE_UPDATE" and message["o"]["x"] == "TRADE":
                            return message
                message = await asyncio.wait_for(fill(), WAIT)
        finally:
            await client.close_connection()
        order = message["o"]
        assert order["i"] == placed["orderId"] and order["c"] == placed["clientOrderId"]
        assert (order["s"], order["S"], order["o"], order["X"]) == ("BTCUSDT", "BUY", "MARKET", "FILLED")
        assert (order["l"], order["z"]) == ("0.010", "0.010")
        assert Decimal(order["L"]) == sim.book.mark_price("BTCUSDT")
        assert isinstance(order["t"], int) and order["t"] == sim.fill_log[-1].trade_id
        assert isinstance(message["E"], int) and isinstance(order["m"], bool) and isinstance(order["R"], bool)
        assert sim.book.position_amount("BTCUSDT") == Decimal("0.010")


class TestPlainWebSocket:
    async def test_market_path_pushes_mark_price_when_it_moves(self, sim: BinanceSimulator,
                                                               session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(sim.streams_url + "/market/ws/btcusdt@markPrice") as ws:
            await asyncio.to_thread(sim.set_mark_price, "BTCUSDT", "51234.5")
            message = await next_event(ws, "markPriceUpdate")
        assert message["s"] == "BTCUSDT" and message["p"] == "51234.5"
        assert isinstance(message["E"], int) and isinstance(message["T"], int) and message["T"] > message["E"]
        premium = requests.get(sim.base_url + "/fapi/v1/premiumIndex", params={"symbol": "BTCUSDT"}, timeout=5).json()
        assert (message["i"], message["r"]) == (premium["indexPrice"], premium["lastFundingRate"])

    async def test_mark_price_1s_arrives_on_its_cadence_after_subscribe(self, sim: BinanceSimulator,
                                                                        session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(sim.streams_url + "/market/ws") as ws:
            await ws.send_json({"method": "SUBSCRIBE", "params": ["ethusdt@markPrice@1s"], "id": 7})
            assert await asyncio.wait_for(ws.receive_json(), WAIT) == {"result": None, "id": 7}
            message = await next_event(ws, "markPriceUpdate")
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 8})
            listed = await asyncio.wait_for(ws.receive_json(), WAIT)
            while "id" not in listed:
                listed = await asyncio.wait_for(ws.receive_json(), WAIT)
        assert message["s"] == "ETHUSDT" and Decimal(message["p"]) == sim.book.mark_price("ETHUSDT")
        assert listed == {"result": ["ethusdt@markPrice@1s"], "id": 8}

    async def test_account_update_on_a_fill_agrees_with_position_risk(self, sim: BinanceSimulator,
                                                                       session: aiohttp.ClientSession) -> None:
        key = listen_key(sim)
        async with session.ws_connect(f"{sim.streams_url}/ws/{key}") as ws:
            await asyncio.to_thread(sim.book.place_order, "BTCUSDT", "SELL", "MARKET", "0.020")
            message = await next_event(ws, "ACCOUNT_UPDATE")
        update = message["a"]
        assert update["m"] == "ORDER"
        [balance] = update["B"]
        assert balance["a"] == "USDT" and Decimal(balance["wb"]) == sim.book.wallet_balance
        [position] = update["P"]
        assert (position["s"], position["pa"], position["ps"], position["mt"]) == ("BTCUSDT", "-0.020", "BOTH", "cross")
        assert Decimal(position["ep"]) == sim.book.mark_price("BTCUSDT")
        assert isinstance(message["E"], int) and isinstance(message["T"], int)

    async def test_book_ticker_on_public_combined_stream_matches_rest(self, sim: BinanceSimulator,
                                                                      session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(sim.streams_url + "/public/stream?streams=btcusdt@bookTicker") as ws:
            await asyncio.to_thread(sim.set_mark_price, "BTCUSDT", "60000")
            message = await next_event(ws, "bookTicker")
        assert message["stream"] == "btcusdt@bookTicker"
        rest = requests.get(sim.base_url + "/fapi/v1/ticker/bookTicker", params={"symbol": "BTCUSDT"}, timeout=5).json()
        data = message["data"]
        assert (data["b"], data["B"], data["a"], data["A"]) == (rest["bidPrice"], rest["bidQty"], rest["askPrice"],
                                                                rest["askQty"])
        assert isinstance(data["u"], int)

    async def test_limit_order_new_amend_cancel_with_open_notional(self, sim: BinanceSimulator,
                                                                   session: aiohttp.ClientSession) -> None:
        resting = sim.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "39000")  # before anyone listens
        key = listen_key(sim)
        url = f"{sim.streams_url}/private/ws?listenKey={key}&events=ORDER_TRADE_UPDATE"
        async with session.ws_connect(url) as ws:
            order = await asyncio.to_thread(sim.place_order, "BTCUSDT", "BUY", "LIMIT", "0.010", "40000")
            new = await next_event(ws, "ORDER_TRADE_UPDATE", x="NEW")
            await asyncio.to_thread(sim.book.modify_order, "BTCUSDT", "BUY", "0.020", "40000", order["orderId"])
            amended = await next_event(ws, "ORDER_TRADE_UPDATE", x="AMENDMENT")
            await asyncio.to_thread(sim.book.cancel_order, "BTCUSDT", order["orderId"])
            cancelled = await next_event(ws, "ORDER_TRADE_UPDATE", x="CANCELED")
            # the events filter keeps ACCOUNT_UPDATE away even when something fills
            await asyncio.to_thread(sim.book.place_order, "BTCUSDT", "SELL", "MARKET", "0.010")
            trade = await ws.receive_json(timeout=WAIT)
            while trade["o"]["x"] != "TRADE":
                trade = await ws.receive_json(timeout=WAIT)
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 1})
            following = await ws.receive_json(timeout=WAIT)
            while "id" not in following:
                assert following["e"] == "ORDER_TRADE_UPDATE"
                following = await ws.receive_json(timeout=WAIT)
        assert (new["o"]["i"], new["o"]["X"], new["o"]["p"]) == (order["orderId"], "NEW", "40000.0")
        assert (new["o"]["b"], new["o"]["a"]) == ("790", "0")  # 0.010 x 39000 resting + 0.010 x 40000
        assert (amended["o"]["q"], amended["o"]["b"]) == ("0.020", "1190")
        assert (cancelled["o"]["X"], cancelled["o"]["b"]) == ("CANCELED", "390")
        assert resting["status"] == "NEW" and trade["o"]["X"] == "FILLED"

    async def test_algo_update_from_placement_to_trigger(self, sim: BinanceSimulator,
                                                         session: aiohttp.ClientSession) -> None:
        sim.set_position("BTCUSDT", "0.010")
        key = listen_key(sim)
        statuses: list[str] = []
        async with session.ws_connect(f"{sim.streams_url}/ws/{key}") as ws:
            algo = await asyncio.to_thread(sim.place_algo_order, "BTCUSDT", "SELL", "STOP_MARKET",
                                           trigger_price="45000", close_position=True)
            statuses.append((await next_event(ws, "ALGO_UPDATE"))["o"]["X"])
            await asyncio.to_thread(sim.set_mark_price, "BTCUSDT", "44000")
            statuses.append((await next_event(ws, "ALGO_UPDATE"))["o"]["X"])
            final = await next_event(ws, "ALGO_UPDATE")
            statuses.append(final["o"]["X"])
        assert statuses == ["NEW", "TRIGGERING", "FINISHED"]
        data = final["o"]
        assert (data["aid"], data["caid"], data["at"], data["cp"]) == (algo["algoId"], algo["clientAlgoId"],
                                                                       "CONDITIONAL", True)
        assert data["ai"] == algo_order_id(sim) and data["aq"] == "0.01" and isinstance(data["tt"], int)

    async def test_stream_on_the_wrong_category_or_unmodelled_is_refused(self, sim: BinanceSimulator,
                                                                         session: aiohttp.ClientSession) -> None:
        assert await handshake_refusal(session, sim, "/public/ws/btcusdt@markPrice") == (
            400, {"code": -1020, "msg": "Stream 'btcusdt@markPrice' is served on /market, not /public."})
        status, body = await handshake_refusal(session, sim, "/market/stream?streams=btcusdt@depth")
        assert (status, body["code"]) == (400, -1020) and "btcusdt@depth" in body["msg"]
        assert await handshake_refusal(session, sim, "/ws/foousdt@markPrice") == (
            400, {"code": -1121, "msg": "Invalid symbol."})


def algo_order_id(sim: BinanceSimulator) -> str:
    [algo] = sim.book.algo_orders("BTCUSDT")
    return algo.actual_order_id


#: documented keys and JSON types (Binance USD-M user data / market streams docs)
S, I, B = str, int, bool
ORDER_FIELDS = {"s": S, "c": S, "S": S, "o": S, "f": S, "q": S, "p": S, "ap": S, "sp": S, "x": S, "X": S, "i": I,
                "l": S, "z": S, "L": S, "T": I, "t": I, "b": S, "a": S, "m": B, "R": B, "wt": S, "ot": S, "ps": S,
                "cp": B, "rp": S, "pP": B, "si": I, "ss": I, "V": S, "pm": S, "gtd": I}
TRADE_ONLY_FIELDS = {"N": S, "n": S}
BALANCE_FIELDS = {"a": S, "wb": S, "cw": S, "bc": S}
POSITION_FIELDS = {"s": S, "pa": S, "ep": S, "bep": S, "cr": S, "up": S, "mt": S, "iw": S, "ps": S}
ALGO_FIELDS = {"caid": S, "aid": I, "at": S, "o": S, "s": S, "S": S, "ps": S, "f": S, "q": S, "X": S, "ai": S,
               "ap": S, "aq": S, "act": S, "tp": S, "p": S, "V": S, "wt": S, "pm": S, "cp": B, "pP": B, "R": B,
               "tt": I, "gtd": I}
MARK_FIELDS = {"e": S, "E": I, "s": S, "p": S, "i": S, "P": S, "r": S, "T": I}
BOOK_TICKER_FIELDS = {"e": S, "u": I, "E": I, "T": I, "s": S, "b": S, "B": S, "a": S, "A": S}


#: string fields that are not numbers (everything else typed str must parse as a Decimal)
TEXT_KEYS = {"e", "s", "c", "S", "o", "f", "x", "X", "wt", "ot", "ps", "V", "pm", "mt", "caid", "at", "ai", "act",
             "N"}


def assert_shape(payload: dict[str, Any], fields: dict[str, type], text: set[str] = TEXT_KEYS) -> None:
    missing = sorted(set(fields) - set(payload))
    assert not missing, f"missing keys {missing} in {payload}"
    wrong = {k: type(payload[k]).__name__ for k, t in fields.items() if type(payload[k]) is not t}
    assert not wrong, f"wrong JSON types {wrong} in {payload}"
    for key in (k for k, t in fields.items() if t is str and k not in text):
        try:
            Decimal(payload[key])
        except ArithmeticError:
            pytest.fail(f"{key}={payload[key]!r} is not a number string in {payload}")


async def test_every_event_has_binances_keys_and_json_types(sim: BinanceSimulator,
                                                            session: aiohttp.ClientSession) -> None:
    sim.set_position("ETHUSDT", "1.000")
    key = listen_key(sim)
    streams = f"{key}/btcusdt@markPrice/btcusdt@bookTicker"
    async with session.ws_connect(f"{sim.streams_url}/stream?streams={streams}") as ws:
        await asyncio.to_thread(sim.book.place_order, "BTCUSDT", "BUY", "LIMIT", "0.010", "70000")
        new = await next_event(ws, "ORDER_TRADE_UPDATE", x="NEW")
        trade = await next_event(ws, "ORDER_TRADE_UPDATE", x="TRADE")
        account = await next_event(ws, "ACCOUNT_UPDATE")
        await asyncio.to_thread(sim.place_algo_order, "ETHUSDT", "SELL", "STOP_MARKET", trigger_price="1000",
                                quantity="0.500", reduce_only=True)
        algo = await next_event(ws, "ALGO_UPDATE")
        await asyncio.to_thread(sim.set_mark_price, "BTCUSDT", "65000")
        mark = await next_event(ws, "markPriceUpdate")
        ticker = await next_event(ws, "bookTicker")
    for message in (new, trade, account, algo):
        assert message["stream"] == key
        assert type(message["data"]["E"]) is int and type(message["data"]["T"]) is int
    assert_shape(new["data"]["o"], ORDER_FIELDS)
    assert_shape(trade["data"]["o"], {**ORDER_FIELDS, **TRADE_ONLY_FIELDS})
    assert not set(TRADE_ONLY_FIELDS) & set(new["data"]["o"])  # "will not push if no commission"
    [balance] = account["data"]["a"]["B"]
    [position] = account["data"]["a"]["P"]
    assert_shape(balance, BALANCE_FIELDS, TEXT_KEYS | {"a"})
    assert_shape(position, POSITION_FIELDS)
    assert_shape(algo["data"]["o"], ALGO_FIELDS)
    assert_shape(mark["data"], MARK_FIELDS)
    assert_shape(ticker["data"], BOOK_TICKER_FIELDS)
    assert (mark["stream"], ticker["stream"]) == ("btcusdt@markPrice", "btcusdt@bookTicker")


class TestListenKeys:
    @pytest.mark.parametrize("path", ["/ws/{key}", "/private/ws?listenKey={key}", "/stream?streams={key}"])
    async def test_unknown_listen_key_is_refused_at_the_handshake(self, sim: BinanceSimulator,
                                                                  session: aiohttp.ClientSession, path: str) -> None:
        listen_key(sim)  # a key exists, but not this one
        bogus = "x" * 64
        assert await handshake_refusal(session, sim, path.format(key=bogus)) == (
            400, {"code": -1125, "msg": "This listenKey does not exist."})
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(sim.streams_url + path.format(key=bogus))
        assert refused.value.status == 400

    async def test_private_path_needs_a_listen_key(self, sim: BinanceSimulator, session: aiohttp.ClientSession) -> None:
        status, body = await handshake_refusal(session, sim, "/private/ws")
        assert (status, body["code"]) == (400, -1102) and "listenKey" in body["msg"]

    async def test_deleted_key_gets_listen_key_expired_and_no_more_user_events(
            self, sim: BinanceSimulator, session: aiohttp.ClientSession) -> None:
        key = listen_key(sim)
        async with session.ws_connect(f"{sim.streams_url}/ws/{key}") as ws:
            requests.delete(sim.base_url + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": sim.api_key}, timeout=5)
            expired = await next_event(ws, "listenKeyExpired")
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 1})
            listed = await asyncio.wait_for(ws.receive_json(), WAIT)
        assert expired["listenKey"] == key and isinstance(expired["E"], str) and expired["E"].isdigit()
        assert listed == {"result": [], "id": 1}

    async def test_key_expires_after_sixty_minutes_without_keepalive(self, session: aiohttp.ClientSession) -> None:
        clock = ManualClock(start=time.time())
        async with BinanceSimulator(SimBook(clock=clock)) as sim:
            key = listen_key(sim)
            async with session.ws_connect(f"{sim.streams_url}/private/ws?listenKey={key}") as ws:
                clock.advance(59 * 60)
                requests.put(sim.base_url + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": sim.api_key}, timeout=5)
                clock.advance(59 * 60)  # kept alive: still valid 118 minutes after creation
                await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 1})
                assert (await asyncio.wait_for(ws.receive_json(), WAIT)) == {"result": [key], "id": 1}
                clock.advance(2 * 60)
                expired = await next_event(ws, "listenKeyExpired")
        assert expired["listenKey"] == key


class TestSubscriptionRequests:
    async def test_bad_requests_get_binances_error_shape(self, sim: BinanceSimulator,
                                                          session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(sim.streams_url + "/ws") as ws:
            await ws.send_str("not json")
            invalid = await asyncio.wait_for(ws.receive_json(), WAIT)
            await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 2})
            unsupported = await asyncio.wait_for(ws.receive_json(), WAIT)
            await ws.send_json({"method": "SET_PROPERTY", "params": ["combined", True], "id": 3})
            assert await asyncio.wait_for(ws.receive_json(), WAIT) == {"result": None, "id": 3}
            await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@markPrice"], "id": 4})
            assert await asyncio.wait_for(ws.receive_json(), WAIT) == {"result": None, "id": 4}
            await asyncio.to_thread(sim.set_mark_price, "BTCUSDT", "52000")
            combined = await next_event(ws, "markPriceUpdate")
        assert invalid["error"]["code"] == 3 and invalid["id"] is None
        assert unsupported["id"] == 2 and unsupported["error"]["code"] == 2
        assert "btcusdt@aggTrade" in unsupported["error"]["msg"]
        assert combined["stream"] == "btcusdt@markPrice" and combined["data"]["p"] == "52000.0"

    async def test_plain_http_get_on_a_stream_path_is_refused(self, sim: BinanceSimulator) -> None:
        response = await asyncio.to_thread(requests.get, sim.base_url + "/market/ws/btcusdt@markPrice", timeout=5)
        assert response.status_code == 400 and response.json()["code"] == -1102


class TestCcxtPro:
    async def test_watch_orders_sees_a_fill(self, sim: BinanceSimulator) -> None:
        ccxtpro = pytest.importorskip("ccxt.pro")
        exchange = ccxtpro.binanceusdm(ccxt_binanceusdm_config(sim.base_url, sim.api_key, sim.api_secret))
        exchange.urls["api"]["ws"]["linear"] = sim.streams_url + "/ws"
        try:
            await exchange.load_markets()
            watching = asyncio.ensure_future(exchange.watch_orders("BTC/USDT:USDT"))
            assert await asyncio.to_thread(sim.wait_for_user_stream, 1, WAIT)
            placed = await exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.01)

            async def filled() -> list[dict[str, Any]]:
                orders = await watching
                while not any(o["id"] == placed["id"] and o["status"] == "closed" for o in orders):
                    orders = await exchange.watch_orders("BTC/USDT:USDT")
                return orders
            orders = await asyncio.wait_for(filled(), WAIT)
        finally:
            await exchange.close()
        [order] = [o for o in orders if o["id"] == placed["id"] and o["status"] == "closed"]
        assert (order["symbol"], order["side"], order["type"]) == ("BTC/USDT:USDT", "buy", "market")
        assert order["filled"] == pytest.approx(0.01)


async def test_legacy_paths_can_be_retired_as_binance_did(session: aiohttp.ClientSession) -> None:
    async with BinanceSimulator(stream_legacy_paths=False) as sim:
        status, body = await handshake_refusal(session, sim, "/ws/btcusdt@markPrice")
        async with session.ws_connect(sim.streams_url + "/market/ws/btcusdt@markPrice") as ws:
            await asyncio.to_thread(sim.set_mark_price, "BTCUSDT", "63000")
            message = await next_event(ws, "markPriceUpdate")
    assert (status, body["code"]) == (404, -5000)
    assert message["p"] == "63000.0"


def test_stream_legacy_paths_must_be_a_bool() -> None:
    with pytest.raises(ConfigError) as refused:
        BinanceSimulator(stream_legacy_paths="no")  # type: ignore[arg-type]
    assert "stream_legacy_paths" in str(refused.value) and "'no'" in str(refused.value)


def test_streams_url_is_the_rest_port_over_ws() -> None:
    with BinanceSimulator() as sim:
        assert sim.streams_url == f"ws://127.0.0.1:{sim.port}"
        assert sim.streams_url.replace("ws://", "http://") == sim.base_url
