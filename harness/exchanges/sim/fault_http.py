"""How a ``FaultPlan`` acts on an HTTP request: shared by the simulator's HTTP face and the fault proxy.

* ``call_names(method, path)``: the names a request answers to for rule matching (exact name, path,
  category; an unmodelled path answers to its exact name and path only);
* ``request_symbols(params)``: the symbol(s) a request concerns (batch items included);
* ``fault_response(request, rule, body_text, headers)``: the answer an outcome rule gives in place
  of the real one (JSON error, 503 unknown status, HTML 502, truncated JSON, connection reset).
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

from aiohttp import web

from ._endpoints import BY_ROUTE
from ._routes import request_symbols
from .faults import FaultRule

__all__ = ["HTML_502", "call_names", "fault_response", "json_reply", "request_symbols", "reset_connection"]

HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


def call_names(method: str, path: str) -> tuple[str, ...]:
    """What a request to ``path`` (e.g. ``/fapi/v1/order``) answers to, exact name first."""
    endpoint = BY_ROUTE.get((method, path[len("/fapi/"):])) if path.startswith("/fapi/") else None
    if endpoint is not None:
        return endpoint.names
    return (f"{method} {path}", path)


def json_reply(data: Any, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(data, separators=(",", ":")).encode("utf-8"), status=status,
                        content_type="application/json", charset="utf-8", headers=headers)


def fault_response(request: web.Request, rule: FaultRule, body_text: str | None,
                   headers: dict[str, str]) -> web.StreamResponse:
    """The reply for an outcome rule; ``body_text`` is the real answer's text when the call executed.
    ``connection_reset`` aborts the connection and returns a 499 placeholder nobody receives."""
    if rule.kind in ("error", "lock_symbol", "unknown_status_executed"):
        status, body, extra = rule.answer()
        return json_reply(body, status, {**headers, **extra})
    if rule.kind == "html_body":
        return web.Response(text=HTML_502, status=rule.status or 502, content_type="text/html", headers=headers)
    if rule.kind == "malformed_body":
        text = body_text if body_text is not None else json.dumps({"code": 200, "msg": "success"})
        return web.Response(text=text[: max(1, len(text) // 2)], status=rule.status or 200,
                            content_type="application/json", headers=headers)
    reset_connection(request)
    return web.Response(status=499)


def reset_connection(request: web.Request) -> None:
    """Drop the connection with a TCP RST (SO_LINGER 0), as a crashed proxy would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
