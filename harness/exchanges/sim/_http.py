"""The HTTP pipeline of the simulator: parse, rate-limit, authenticate, inject faults, dispatch.

One aiohttp handler serves every ``/fapi`` path. Order of checks (as Binance): unknown path (404),
request weight and order counts (429 / 418), API key (-2015, 401), ``timestamp``/``recvWindow``
(-1021), signature (-1022), then the fault plan, then the endpoint itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from ._auth import signature_matches
from ._endpoints import ENDPOINTS, UNMODELLED, Endpoint
from ._models import SimBookError
from ._ratelimit import RateLimiter, RateLimitExceeded
from ._routes import HANDLERS, Call, Handler, order_count, request_symbols
from .book import SimBook
from .fault_http import HTML_502, fault_response
from .faults import FaultPlan, FaultRule

DEFAULT_RECV_WINDOW = 5000
FUTURE_TOLERANCE_MS = 1000
_SIGNATURE = "signature"
_SIGNATURE_PART = _SIGNATURE + "="
_LAST_SIGNATURE = "&" + _SIGNATURE_PART
_FAPI = "/fapi/"
_JSON_CONTENT_TYPE = "application/json; charset=utf-8"
__all__ = ["HTML_502", "HttpFace", "HttpSettings", "RequestRecord", "json_response"]


@dataclass(frozen=True)
class RequestRecord:
    """One request as the simulator saw it; ``params`` never include the signature."""

    method: str
    path: str
    params: dict[str, str]
    status: int
    code: int | None
    time: float
    faults: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class HttpSettings:
    book: SimBook
    faults: FaultPlan
    limiter: RateLimiter
    api_key: str
    api_secret: str
    recv_window_max: int
    record: Callable[[RequestRecord], None]
    streams: Any = None


class _Reply(Exception):
    """Internal: stop the pipeline and answer with this response."""

    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


try:  # the ``speed`` extra: the same compact JSON, ten times faster
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    _encode = _dumps
else:
    def _encode(data: Any) -> bytes:
        try:
            return orjson.dumps(data)
        except TypeError:  # what orjson refuses (non-str keys, huge ints), json renders as before
            return _dumps(data)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # the Content-Type as a header, not content_type= and charset= (which aiohttp assembles per response)
    all_headers = {"Content-Type": _JSON_CONTENT_TYPE}
    if headers:
        all_headers.update(headers)
    return web.Response(body=_encode(data), status=status, headers=all_headers)


@dataclass(frozen=True)
class _Route:
    """What serving one modelled path needs, looked up once per request by (method, full path)."""

    endpoint: Endpoint
    handler: Handler
    orders: tuple[int, int]  # what a request adds to the (10 s, 1 min) ORDERS counters

    def weight(self, params: dict[str, str]) -> int:
        endpoint = self.endpoint
        if endpoint.path == "v1/openOrders" and not params.get("symbol"):
            return 40
        return endpoint.weight if endpoint.weight_of is None else endpoint.weight_of(params)


_ROUTES: dict[tuple[str, str], _Route] = {
    (e.method, _FAPI + e.path): _Route(e, HANDLERS[(e.method, e.path)], order_count(e.method, e.path, {}))
    for e in ENDPOINTS
}


def _parse_into(raw: str, params: dict[str, str]) -> str:
    """Add ``raw``'s parameters to ``params`` as ``parse_qsl(raw, keep_blank_values=True)`` reads them
    (later ones win); return ``raw`` without its ``signature=`` parts, as the signature covers it.

    No unquoting when nothing is quoted (the usual request), and the usual signature (one, last) is
    cut off without rebuilding the string.
    """
    parts = raw.split("&")
    if "%" in raw or "+" in raw:
        for part in parts:
            if part:
                name, _, value = part.partition("=")
                if "%" in name or "+" in name:
                    name = unquote(name.replace("+", " "))
                if "%" in value or "+" in value:
                    value = unquote(value.replace("+", " "))
                params[name] = value
    else:
        for part in parts:
            if part:
                name, _, value = part.partition("=")
                params[name] = value
    if _SIGNATURE_PART not in raw:
        return raw
    last = raw.rfind(_LAST_SIGNATURE)
    if last >= 0 and "&" not in raw[last + 1:] and _SIGNATURE_PART not in raw[:last]:
        return raw[:last]  # the only signature= part is the last one
    return "&".join(part for part in parts if not part.startswith(_SIGNATURE_PART))


class HttpFace:
    """The aiohttp request handler over shared settings."""

    def __init__(self, settings: HttpSettings) -> None:
        self.s = settings
        self._secret = settings.api_secret.encode("utf-8")

    def app(self, before: Callable[[web.Application], None] | None = None) -> web.Application:
        """The application; ``before`` adds routes that take precedence (the WebSocket paths)."""
        app = web.Application(client_max_size=1024 * 1024)
        if before is not None:
            before(app)
        # the modelled paths as plain routes: aiohttp finds them by one dict lookup, where the catch-all
        # (every other path: the 404 and -1020 answers) costs a regular expression per request
        for path in dict.fromkeys(path for _, path in _ROUTES):
            app.router.add_route("*", path, self.handle)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw_query = request.raw_path.partition("?")[2]
        raw_body = (await request.read()).decode("utf-8", "replace") if request.can_read_body else ""
        # a parameter sent in both places resolves as Binance does: the query string wins
        params: dict[str, str] = {}
        payload = _parse_into(raw_body, params) if raw_body else ""
        if raw_query:
            payload = _parse_into(raw_query, params) + payload
        # the signature leaves the parameters: never logged, never seen by an endpoint
        signature = params.pop(_SIGNATURE, None)
        fired: list[FaultRule] = []
        try:
            response, fired = await self._pipeline(request, params, signature, payload)
        except _Reply as reply:
            response = reply.response
        except SimBookError as exc:
            response = json_response(exc.to_api(), exc.status)
        except asyncio.CancelledError:  # client gone or server stopping while the call hung
            self.s.record(RequestRecord(request.method, request.path, params, 0, None, time.time(), ("cancelled",)))
            raise
        status = response.status
        self.s.record(RequestRecord(request.method, request.path, params, status,
                                    _code_of(response) if status >= 400 else None, time.time(),
                                    tuple([r.kind for r in fired]) if fired else ()))
        return response

    async def _pipeline(self, request: web.Request, params: dict[str, str], signature: str | None,
                        payload: str) -> tuple[web.StreamResponse, list[FaultRule]]:
        route = self._route(request)
        endpoint = route.endpoint
        headers = self._admit(route, params)
        if endpoint.signed:
            self._authenticate(request, params, signature, payload, headers)
        elif endpoint.key_only:
            self._check_key(request, headers)
        decision = self.s.faults.draw(endpoint.names, request_symbols(params), http=True)
        if decision.latency:
            await asyncio.sleep(decision.latency)
        if decision.hang is not None:
            await self.s.faults.wait_hang_async(decision.hang)
        outcome = decision.outcome
        if outcome is not None and outcome.kind == "error":
            status, error, extra = outcome.answer()
            return json_response(error, status, {**headers, **extra}), decision.fired
        executes = outcome is None or outcome.kind in ("lock_symbol", "unknown_status_executed") or outcome.executed
        body: Any = None
        status = 200
        if executes:
            call = Call(self.s.book, params, self.s.limiter.limits, decision.fill_ratio,
                        outcome if outcome is not None and outcome.kind == "lock_symbol" else None, self.s.streams)
            try:
                body = route.handler(call)
            except SimBookError as exc:
                body, status = exc.to_api(), exc.status
        if outcome is None or outcome.kind == "lock_symbol":
            return json_response(body, status, headers), decision.fired
        return self._corrupt(request, outcome, body, headers), decision.fired

    @staticmethod
    def _route(request: web.Request) -> _Route:
        method, path = request.method, request.path
        route = _ROUTES.get((method, path))
        if route is None:
            if path.startswith(_FAPI) and (method, path[len(_FAPI):]) in UNMODELLED:
                raise _Reply(json_response({"code": -1020, "msg": "This operation is not supported."}, 400))
            raise _Reply(json_response({"code": -5000, "msg": f"Path {path}, Method {method} is invalid"}, 404))
        return route

    def _admit(self, route: _Route, params: dict[str, str]) -> dict[str, str]:
        try:
            return self.s.limiter.admit(route.weight(params), route.orders)
        except RateLimitExceeded as exc:
            raise _Reply(json_response(exc.to_api(), exc.status, exc.headers)) from None

    def _check_key(self, request: web.Request, headers: dict[str, str]) -> None:
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise _Reply(json_response({"code": -2014, "msg": "API-key format invalid."}, 401, headers))
        if key != self.s.api_key:
            raise _Reply(json_response({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
                                       401, headers))

    def _authenticate(self, request: web.Request, params: dict[str, str], signature: str | None, payload: str,
                      headers: dict[str, str]) -> None:
        def fail(code: int, msg: str, status: int = 400) -> _Reply:
            return _Reply(json_response({"code": code, "msg": msg}, status, headers))

        self._check_key(request, headers)
        timestamp = _int_param(params, "timestamp", required=True)
        recv_window = _int_param(params, "recvWindow", required=False)
        window = DEFAULT_RECV_WINDOW if recv_window is None else recv_window
        if window <= 0 or window > self.s.recv_window_max:
            raise fail(-1131, f"recvWindow must be less than {self.s.recv_window_max}.")
        now = self.s.book.now_ms()
        if not (timestamp < now + FUTURE_TOLERANCE_MS and now - timestamp <= window):
            raise fail(-1021, "Timestamp for this request is outside of the recvWindow.")
        if not signature:
            raise fail(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        if not signature_matches(self._secret, signature, payload):
            raise fail(-1022, "Signature for this request is not valid.")

    @staticmethod
    def _corrupt(request: web.Request, rule: FaultRule, body: Any, headers: dict[str, str]) -> web.StreamResponse:
        text = json.dumps(body) if body is not None else None
        response = fault_response(request, rule, text, headers)
        if rule.kind == "connection_reset":
            raise _Reply(response)
        return response


def _int_param(params: dict[str, str], name: str, *, required: bool) -> int | None:
    value = params.get(name)
    if value in (None, ""):
        if required:
            raise SimBookError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        return None
    try:
        return int(value)
    except ValueError:
        raise SimBookError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.") \
            from None


def _code_of(response: web.StreamResponse) -> int | None:
    if not isinstance(response, web.Response) or response.content_type != "application/json":
        return None
    try:
        data = json.loads(response.text or "")
    except ValueError:
        return None
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, int) else None
