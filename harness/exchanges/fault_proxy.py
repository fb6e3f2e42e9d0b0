"""``FaultProxy``: the simulator's fault plan in front of a real exchange (testnet, Demo Trading).

A local HTTP server on 127.0.0.1 that a bot is pointed at (``LIQUIDATION_EXCHANGE_URL``). Every
request goes upstream unchanged (method, path, raw query string, body, headers including
``X-MBX-APIKEY``, so the signature stays valid), and the answer comes back with its headers
(``X-MBX-USED-WEIGHT-*``, ``Retry-After``). On the way, the same ``FaultPlan`` as the embedded
exchange's (``harness.exchanges.sim.faults``) applies per endpoint and symbol:

==========================  =====================================================================
``latency``                 wait ``seconds``, then forward
``hang``                    wait until ``release_hangs()`` (or the rule's maximum), then forward
``error``, ``lock_symbol``  answer Binance's JSON error; the request never reaches upstream
``unknown_status_executed`` forward (the order exists upstream), then answer 503 unknown status
``malformed_body``,         answer a truncated body / an HTML 502 / a reset connection; with
``html_body``,              ``executed=True`` after forwarding (a lost reply), else without
``connection_reset``
==========================  =====================================================================

``partial_fill`` needs the exchange's own matching and is refused (ConfigError) on the proxy's plan.
A production upstream is refused (``harness.exchanges.hosts``): faults are for testnet, Demo Trading
or a stand-in. ``request_log`` records what came in and what the proxy did (``ProxyRecord``: the
simulator's ``RequestRecord`` plus ``forwarded`` and ``upstream_status``); it never holds the API key
or the signature, and the proxy logs neither.

    with FaultProxy("https://testnet.binancefuture.com") as proxy:
        proxy.faults.latency(4.0, endpoint="new_order", symbol="SOLUSDT")
        env["LIQUIDATION_EXCHANGE_URL"] = proxy.base_url
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from yarl import URL

from harness.core.errors import ConfigError

from .hosts import host_kind
from .loop_thread import LoopThreadServer
from .sim._http import RequestRecord
from .sim.fault_http import call_names, fault_response, request_symbols
from .sim.faults import FaultPlan, FaultRule

__all__ = ["FaultProxy", "ProxyFaultPlan", "ProxyRecord", "UNSUPPORTED_KINDS", "check_upstream"]

#: kinds that need the exchange's own state, not a man in the middle
UNSUPPORTED_KINDS = frozenset({"partial_fill"})
UPSTREAM_TIMEOUT_SECONDS = 30.0
_HIDDEN_PARAMS = frozenset({"signature"})
#: request headers not forwarded (hop-by-hop, or recomputed by the client session)
_DROP_REQUEST = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te",
                           "upgrade", "proxy-connection", "proxy-authorization", "accept-encoding", "trailer"})
#: response headers not passed back (hop-by-hop, or no longer true of the body we send)
_DROP_RESPONSE = frozenset({"content-length", "connection", "keep-alive", "transfer-encoding", "content-encoding",
                            "server", "date", "trailer", "upgrade"})


@dataclass(frozen=True)
class ProxyRecord(RequestRecord):
    """One request through the proxy: what the client got (``status``, ``code``, ``faults``), whether
    it reached upstream, and what upstream answered (None when not forwarded or unreachable)."""

    forwarded: bool = False
    upstream_status: int | None = None


class ProxyFaultPlan(FaultPlan):
    """A ``FaultPlan`` that refuses the kinds a proxy cannot apply (``partial_fill``)."""

    def add(self, rule: FaultRule) -> FaultRule:
        if isinstance(rule, FaultRule) and rule.kind in UNSUPPORTED_KINDS:
            raise ConfigError("kind", rule.kind, "a kind the fault proxy can apply in front of a real exchange "
                                                 "(partial fills need the embedded exchange)")
        return super().add(rule)


def check_upstream(url: Any) -> str:
    """``url`` as an upstream root (``/fapi`` and trailing ``/`` stripped); ConfigError for a
    production host or a URL that is not http(s)."""
    from .target import root_url

    root = root_url(url, field="upstream")
    if host_kind(root) == "production":
        raise ConfigError("upstream", root, "Binance futures testnet (https://testnet.binancefuture.com), Demo "
                                            "Trading (https://demo-fapi.binance.com) or a non-Binance URL: the "
                                            "fault proxy never stands in front of production")
    return root


class FaultProxy(LoopThreadServer):
    """Forward to ``upstream``, applying ``faults``; serves from its own thread and event loop."""

    thread_name = "fault-proxy"

    def __init__(self, upstream: str, faults: FaultPlan | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, inject: bool = True,
                 upstream_timeout: float = UPSTREAM_TIMEOUT_SECONDS) -> None:
        self.upstream = check_upstream(upstream)
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ConfigError("host", host, "a loopback address (127.0.0.1, ::1 or localhost)")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError("port", port, "an integer in 0..65535 (0 = any free port)")
        if not isinstance(inject, bool):
            raise ConfigError("inject", inject, "True (apply the fault plan) or False (forward only)")
        self.host = host
        self.faults = faults if faults is not None else ProxyFaultPlan()
        for rule in self.faults.rules:
            if rule.kind in UNSUPPORTED_KINDS:
                raise ConfigError("faults", rule.kind, "no partial_fill rule: the fault proxy cannot apply it")
        #: False: forward everything untouched (to show that a fault scenario fails without its faults)
        self.inject = inject
        self._timeout = aiohttp.ClientTimeout(total=upstream_timeout)
        self._requested_port = port
        self._log_lock = threading.Lock()
        self._requests: list[ProxyRecord] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._init_loop_thread()

    def __repr__(self) -> str:
        where = self.base_url if self._port else "not started"
        return f"<FaultProxy {where} -> {self.upstream}>"

    # ------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the exchange root to give the bot."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def _startup(self) -> None:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession(timeout=self._timeout, auto_decompress=True)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def _shutdown(self) -> None:
        if self._runner is not None:
            self.faults.release_hangs()
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------ the request log
    @property
    def request_log(self) -> list[ProxyRecord]:
        """Every request the proxy answered, oldest first; parameters never include the signature."""
        with self._log_lock:
            return list(self._requests)

    def requests_to(self, path: str, method: str | None = None) -> list[ProxyRecord]:
        """Logged requests whose path ends with ``path`` (e.g. ``"v1/order"``), of ``method`` if given."""
        return [r for r in self.request_log if r.path.endswith(path) and method in (None, r.method)]

    def forwarded(self) -> list[ProxyRecord]:
        """The requests that reached upstream."""
        return [r for r in self.request_log if r.forwarded]

    def _record(self, record: ProxyRecord) -> None:
        with self._log_lock:
            self._requests.append(record)

    # ------------------------------------------------------------ forwarding
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_query = request.raw_path.partition("?")[2]
        body = await request.read() if request.can_read_body else b""
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)) if body else {}
        if raw_query:
            params.update(parse_qsl(raw_query, keep_blank_values=True))
        shown = {k: v for k, v in params.items() if k not in _HIDDEN_PARAMS}
        state: dict[str, Any] = {"fired": (), "forwarded": False, "upstream": None}
        try:
            response = await self._answer(request, params, raw_query, body, state)
        except asyncio.CancelledError:  # the client went away or the proxy is stopping
            self._record(ProxyRecord(request.method, request.path, shown, 0, None, time.time(),
                                     (*state["fired"], "cancelled"), state["forwarded"], state["upstream"]))
            raise
        code = _code_of(response) if response.status >= 400 else None
        self._record(ProxyRecord(request.method, request.path, shown, response.status, code, time.time(),
                                 state["fired"], state["forwarded"], state["upstream"]))
        return response

    async def _answer(self, request: web.Request, params: dict[str, str], raw_query: str, body: bytes,
                      state: dict[str, Any]) -> web.StreamResponse:
        outcome: FaultRule | None = None
        if self.inject:
            decision = self.faults.draw(call_names(request.method, request.path), request_symbols(params), http=True)
            state["fired"] = tuple(rule.kind for rule in decision.fired)
            if decision.latency:
                await asyncio.sleep(decision.latency)
            if decision.hang is not None:
                await self.faults.wait_hang_async(decision.hang)
            outcome = decision.outcome
        forwards = outcome is None or outcome.kind == "unknown_status_executed" or outcome.executed
        if not forwards:
            assert outcome is not None
            return fault_response(request, outcome, None, {})
        try:
            status, headers, payload = await self._forward(request, raw_query, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            state["forwarded"] = True  # it may have arrived: the proxy cannot tell
            return web.Response(text=f"fault proxy: upstream {self.upstream} did not answer ({type(exc).__name__})",
                                status=502, content_type="text/plain")
        state["forwarded"], state["upstream"] = True, status
        if outcome is None:
            return web.Response(body=payload, status=status, headers=headers)
        return fault_response(request, outcome, payload.decode("utf-8", "replace"), _passed_headers(headers))

    async def _forward(self, request: web.Request, raw_query: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        url = URL(self.upstream + request.path + (f"?{raw_query}" if raw_query else ""), encoded=True)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST}
        async with self._session.request(request.method, url, data=body or None, headers=headers,
                                         allow_redirects=False) as reply:
            payload = await reply.read()
            passed = {k: v for k, v in reply.headers.items() if k.lower() not in _DROP_RESPONSE}
            return reply.status, passed, payload


def _passed_headers(headers: dict[str, str]) -> dict[str, str]:
    """Upstream's headers for a fault reply: the weight counters and Retry-After, not its content type."""
    return {k: v for k, v in headers.items() if k.lower() != "content-type"}


def _code_of(response: web.StreamResponse) -> int | None:
    if not isinstance(response, web.Response) or response.content_type != "application/json" or response.body is None:
        return None
    try:
        data = json.loads(bytes(response.body))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, int) else None

