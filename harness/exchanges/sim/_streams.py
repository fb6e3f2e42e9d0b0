"""The simulator's WebSocket face: Binance USD-M user data and market streams.

Served by the same aiohttp server (and port) as the REST API, under Binance's paths:

* classic: ``/ws/<stream>[/<stream>...]`` (raw payloads), ``/stream?streams=a/b`` (combined,
  ``{"stream": name, "data": payload}``); a listen key is a stream name there;
* 2026 split: ``/public/...`` (bookTicker), ``/market/...`` (markPrice) and
  ``/private/ws?listenKey=<key>[&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE]`` (and ``/private/stream``);
  a stream on the wrong category is refused.

Every connection also takes Binance's JSON requests (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS,
SET_PROPERTY / GET_PROPERTY ``combined``). An unknown or expired listen key is refused at the
handshake (HTTP 400, -1125); a key that expires or is deleted while connected gets
``listenKeyExpired`` and no more user events.

Events come from ``SimBook`` observers: they are built with the book's lock held (so the figures
agree) only while a client listens, and handed to the server's event loop, which serialises and
sends them; the REST handler never waits for a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from . import _events as ev
from ._models import SimBookError

if TYPE_CHECKING:
    from ._routes_account import ListenKeys
    from .book import SimBook

#: seconds between markPrice pushes (Binance: 3 s, or 1 s for ``@markPrice@1s``)
MARK_PRICE_INTERVAL = 3.0
FAST_MARK_PRICE_INTERVAL = 1.0
#: how often connected listen keys are checked for expiry / deletion
KEY_CHECK_INTERVAL = 0.05
#: Binance pings every 3 minutes
HEARTBEAT_SECONDS = 180.0
#: how long a server-side close waits for the client's close frame
CLOSE_TIMEOUT_SECONDS = 1.0
MAX_QUEUED_MESSAGES = 10_000
USER_EVENTS = frozenset({"ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "ALGO_UPDATE"})
#: stream kind -> 2026 category that serves it
_KINDS = {"markPrice": "market", "markPrice@1s": "market", "bookTicker": "public"}
_ALL_STREAMS = {"!markPrice@arr": "market", "!markPrice@arr@1s": "market", "!bookTicker": "public"}
CATEGORIES = ("public", "market", "private")


class _Refused(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    category: str | None
    combined: bool
    streams: set[str] = field(default_factory=set)
    keys: dict[str, frozenset[str]] = field(default_factory=dict)
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUED_MESSAGES))
    dropped: bool = False

    def push(self, stream: str, data: Any) -> None:
        text = json.dumps({"stream": stream, "data": data} if self.combined else data, separators=(",", ":"))
        if self.dropped:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:  # a reader that stopped reading: drop it, as Binance does
            self.dropped = True
            asyncio.get_running_loop().create_task(self.ws.close(code=1008, message=b"queue overflow"))


class StreamHub:
    """Connections, subscriptions and the book observer that feeds them."""

    def __init__(self, book: SimBook, listen_keys: ListenKeys, *, legacy_paths: bool = True,
                 mark_interval: float = MARK_PRICE_INTERVAL,
                 fast_mark_interval: float = FAST_MARK_PRICE_INTERVAL) -> None:
        self.legacy_paths = legacy_paths
        self._book = book
        self._keys = listen_keys
        self._mark_interval = mark_interval
        self._fast_interval = fast_mark_interval
        self._clients: set[_Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._update_id = 0
        # read from any thread that changes the book: plain counters, no iteration
        self._user_listeners = 0
        self._market_listeners = 0
        self._changed = threading.Condition()
        self._notional = ev.OpenNotional()

    # ------------------------------------------------------------ wiring
    def add_routes(self, app: web.Application) -> None:
        for prefix in ("", *(f"/{c}" for c in CATEGORIES)):
            app.router.add_get(prefix + "/ws", self.handle)
            app.router.add_get(prefix + "/ws/{tail:.*}", self.handle)
            app.router.add_get(prefix + "/stream", self.handle)
            app.router.add_get(prefix + "/stream/", self.handle)
        app.on_shutdown.append(self._on_shutdown)

    def start(self) -> None:
        """In the server's loop: observe the book and run the timers."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._book.add_observer(self._observe)
        self._task = self._loop.create_task(self._timers())

    async def _on_shutdown(self, app: web.Application) -> None:
        self._book.remove_observer(self._observe)
        if self._task is not None:
            self._task.cancel()
        for client in list(self._clients):
            await client.ws.close(code=1001, message=b"server shutdown")

    @property
    def connections(self) -> int:
        return len(self._clients)

    # ------------------------------------------------------------ connections
    async def handle(self, request: web.Request) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        category = parts[0] if parts[0] in CATEGORIES else None
        mode = parts[1] if category else parts[0]
        tail = request.match_info.get("tail", "")
        if category is None and not self.legacy_paths:  # Binance retired them on 2026-04-23
            return web.json_response({"code": -5000, "msg": f"Path {request.path}, Method GET is invalid"},
                                     status=404)
        try:
            names = [n for n in tail.split("/") if n] if mode == "ws" else []
            if request.query.get("streams"):
                names += [n for n in request.query["streams"].split("/") if n]
            ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, timeout=CLOSE_TIMEOUT_SECONDS)
            client = _Client(ws, category, combined=mode == "stream")
            self._subscribe(client, names, from_url=True)
            if "listenKey" in request.query or (category == "private" and not client.keys):
                self._subscribe_private(client, request.query.get("listenKey", ""), request.query.get("events"))
        except _Refused as exc:
            return web.json_response({"code": exc.code, "msg": exc.msg}, status=400)
        if not request.headers.get("Upgrade", "").lower() == "websocket":
            return web.json_response({"code": -1102, "msg": "This endpoint accepts WebSocket connections only."},
                                     status=400)
        self._add(client)  # before the handshake completes: nothing the client causes afterwards is missed
        sender = asyncio.get_running_loop().create_task(self._send_loop(client))
        try:
            await client.ws.prepare(request)
            async for message in client.ws:
                if message.type == WSMsgType.TEXT:
                    self._request(client, message.data)
        finally:
            self._remove(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return client.ws

    async def _send_loop(self, client: _Client) -> None:
        while True:
            text = await client.queue.get()
            if client.ws.closed:
                return
            try:
                await client.ws.send_str(text)
            except (ConnectionError, RuntimeError):  # the client went away mid-send
                return

    def _add(self, client: _Client) -> None:
        self._clients.add(client)
        self._recount()

    def _remove(self, client: _Client) -> None:
        self._clients.discard(client)
        self._recount()

    def _recount(self) -> None:
        with self._changed, self._book.lock:
            users = sum(1 for c in self._clients if c.keys)
            if users and not self._user_listeners:  # the open-order notional is kept only while listened to
                self._notional.reset(self._book)
            self._user_listeners = users
            self._market_listeners = sum(1 for c in self._clients if c.streams)
            self._changed.notify_all()

    @property
    def user_listeners(self) -> int:
        """Connections subscribed to a valid listen key's user data stream."""
        return self._user_listeners

    def wait_for_user_listeners(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block (any thread but the server's) until ``count`` connections listen to the user
        stream; False on ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: self._user_listeners >= count, timeout)

    # ------------------------------------------------------------ subscriptions
    def _subscribe(self, client: _Client, names: Iterable[str], *, from_url: bool) -> list[str]:
        """Canonical stream names added; listen keys in the list subscribe the user stream."""
        added = []
        parsed = [self._parse(client, name) for name in names]
        for kind, value in parsed:
            if kind == "key":
                client.keys[value] = USER_EVENTS
            else:
                client.streams.add(value)
            added.append(value)
        if not from_url:
            self._recount()
        return added

    def _subscribe_private(self, client: _Client, keys: str, events: str | None) -> None:
        if not keys:
            raise _Refused(-1102, "Mandatory parameter 'listenKey' was not sent, was empty/null, or malformed.")
        wanted = USER_EVENTS
        if events:
            wanted = frozenset(e for e in events.replace(",", "/").split("/") if e)
            unknown = sorted(wanted - USER_EVENTS)
            if unknown:
                raise _Refused(-1130, f"Data sent for parameter 'events' is not valid: {', '.join(unknown)} "
                                      f"(the simulator serves {', '.join(sorted(USER_EVENTS))}).")
        for key in keys.split("/"):
            if not self._keys.valid(key):
                raise _Refused(-1125, "This listenKey does not exist.")
            client.keys[key] = wanted

    def _parse(self, client: _Client, name: str) -> tuple[str, str]:
        """("key", listenKey) or ("stream", canonical name); ``_Refused`` when not served."""
        if "@" not in name and not name.startswith("!"):
            if client.category not in (None, "private"):
                raise _Refused(-1020, f"Stream {name!r}: user data is served on /private, not /{client.category}.")
            if not self._keys.valid(name):
                raise _Refused(-1125, "This listenKey does not exist.")
            return "key", name
        if name in _ALL_STREAMS:
            needed = _ALL_STREAMS[name]
            canonical = name
        else:
            symbol, _, kind = name.partition("@")
            needed = _KINDS.get(kind, "")
            if not needed:
                raise _Refused(-1020, f"Stream {name!r} is not supported by the simulator (it serves "
                                      "<symbol>@markPrice, <symbol>@markPrice@1s, <symbol>@bookTicker, "
                                      "!markPrice@arr, !bookTicker and the user data stream).")
            if symbol.upper() not in self._book.symbols:
                raise _Refused(-1121, "Invalid symbol.")
            canonical = f"{symbol.lower()}@{kind}"
        if client.category is not None and client.category != needed:
            raise _Refused(-1020, f"Stream {name!r} is served on /{needed}, not /{client.category}.")
        return "stream", canonical

    def _request(self, client: _Client, text: str) -> None:
        """Binance's live subscription requests on an open connection."""
        try:
            request = json.loads(text)
        except ValueError:
            return self._reply(client, None, error=(3, "Invalid JSON: expected a JSON object"))
        if not isinstance(request, dict):
            return self._reply(client, None, error=(3, "Invalid JSON: expected a JSON object"))
        rid, method, params = request.get("id"), request.get("method"), request.get("params", [])
        if isinstance(rid, bool) or not isinstance(rid, (int, str, type(None))):
            return self._reply(client, None, error=(1, "Invalid value type: expected 'id' as an integer or string"))
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return self._reply(client, rid, error=(1, "Invalid value type: expected 'params' as a list of "
                                                          "stream names"))
            if method == "SUBSCRIBE":
                try:
                    self._subscribe(client, params, from_url=False)
                except _Refused as exc:
                    return self._reply(client, rid, error=(2, f"Invalid request: {exc.msg}"))
            else:
                for name in params:
                    client.streams.discard(name if name.startswith("!") else _lower_symbol(name))
                    client.keys.pop(name, None)
                self._recount()
            return self._reply(client, rid, result=None)
        if method == "LIST_SUBSCRIPTIONS":
            return self._reply(client, rid, result=sorted(client.streams) + sorted(client.keys))
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not isinstance(params, list) or not params or params[0] != "combined":
                return self._reply(client, rid, error=(2, "Invalid request: unknown property"))
            if method == "GET_PROPERTY":
                return self._reply(client, rid, result=client.combined)
            if len(params) != 2 or not isinstance(params[1], bool):
                return self._reply(client, rid, error=(1, "Invalid value type: expected Boolean"))
            client.combined = params[1]
            return self._reply(client, rid, result=None)
        return self._reply(client, rid, error=(2, f"Invalid request: unknown method {method!r}; allowed: "
                                                  "SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, "
                                                  "GET_PROPERTY"))

    @staticmethod
    def _reply(client: _Client, rid: Any, *, result: Any = None, error: tuple[int, str] | None = None) -> None:
        body = {"error": {"code": error[0], "msg": error[1]}, "id": rid} if error else {"result": result, "id": rid}
        with contextlib.suppress(asyncio.QueueFull):
            client.queue.put_nowait(json.dumps(body, separators=(",", ":")))

    # ------------------------------------------------------------ the book's feed (lock held, any thread)
    def _observe(self, kind: str, data: Any) -> None:
        book = self._book
        if kind == "mark":
            if self._market_listeners:
                self._update_id += 1
                now = book.now_ms()
                self._dispatch("mark", (data, ev.mark_price_update(book, data, now),
                                        ev.book_ticker(book, data, now, self._update_id)))
            return
        if not self._user_listeners:
            return
        now = book.now_ms()
        if kind == "order":
            order, execution = data
            self._notional.update(order, still_open=execution in ("NEW", "AMENDMENT"))
            self._dispatch("user", [ev.order_trade_update(order, execution, now,
                                                          notional=self._notional.of(order.symbol))])
        elif kind == "trade":
            order, fill = data
            self._notional.update(order, still_open=order.executed_qty < order.orig_qty)
            self._dispatch("user", [ev.order_trade_update(order, "TRADE", now, fill, self._notional.of(order.symbol)),
                                    ev.account_update(book, order.symbol, order.position_side, now)])
        elif kind == "algo":
            self._dispatch("user", [ev.algo_update(data, now)])

    def _dispatch(self, target: str, payload: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        deliver = self._deliver_user if target == "user" else self._deliver_mark
        try:
            if threading.get_ident() == self._loop_thread:
                loop.call_soon(deliver, payload)  # same FIFO as other threads' events: order is kept
            else:
                loop.call_soon_threadsafe(deliver, payload)
        except RuntimeError:  # loop closing
            pass

    def _deliver_user(self, events: list[dict[str, Any]]) -> None:
        for client in list(self._clients):
            for key, wanted in list(client.keys.items()):
                for event in events:
                    if event["e"] in wanted:
                        client.push(key, event)

    def _deliver_mark(self, payload: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
        symbol, mark, ticker = payload
        lower = symbol.lower()
        for client in list(self._clients):
            streams = client.streams
            for suffix in ("@markPrice", "@markPrice@1s"):
                if lower + suffix in streams:
                    client.push(lower + suffix, mark)
            if "!markPrice@arr" in streams:
                client.push("!markPrice@arr", [mark])
            if "!markPrice@arr@1s" in streams:
                client.push("!markPrice@arr@1s", [mark])
            if lower + "@bookTicker" in streams:
                client.push(lower + "@bookTicker", ticker)
            if "!bookTicker" in streams:
                client.push("!bookTicker", ticker)

    # ------------------------------------------------------------ timers (the loop)
    async def _timers(self) -> None:
        next_slow = next_fast = time.monotonic()
        while True:
            await asyncio.sleep(KEY_CHECK_INTERVAL)
            self._check_keys()
            now = time.monotonic()
            if now >= next_fast:
                next_fast = now + self._fast_interval
                self._push_marks(fast=True)
            if now >= next_slow:
                next_slow = now + self._mark_interval
                self._push_marks(fast=False)

    def _check_keys(self) -> None:
        expired = []
        for client in list(self._clients):
            for key in list(client.keys):
                if not self._keys.valid(key):
                    del client.keys[key]
                    expired.append((client, key))
        if expired:
            now = self._book.now_ms()
            for client, key in expired:
                client.push(key, ev.listen_key_expired(key, now))
            self._recount()

    def _push_marks(self, *, fast: bool) -> None:
        suffix = "@markPrice@1s" if fast else "@markPrice"
        every = "!markPrice@arr@1s" if fast else "!markPrice@arr"
        clients = [c for c in self._clients if c.streams]
        if not clients:
            return
        book = self._book
        with book.lock:
            now = book.now_ms()
            try:
                marks = {s.lower(): ev.mark_price_update(book, s, now) for s in book.symbols}
            except SimBookError:  # pragma: no cover - symbols never disappear
                return
        for client in clients:
            for lower, event in marks.items():
                if lower + suffix in client.streams:
                    client.push(lower + suffix, event)
            if every in client.streams:
                client.push(every, list(marks.values()))


def _lower_symbol(name: str) -> str:
    symbol, sep, kind = name.partition("@")
    return f"{symbol.lower()}{sep}{kind}"
