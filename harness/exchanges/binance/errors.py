"""Map python-binance and transport exceptions onto ``harness.core.errors``.

python-binance raises ``BinanceAPIException`` for any non-2xx reply (``.code`` is 0 when the body is
not JSON, e.g. an HTML 502), ``BinanceRequestException`` for a 2xx reply that is not JSON, and lets
transport errors through unwrapped (``requests.exceptions.*``, ``aiohttp.ClientError``,
``asyncio.TimeoutError``). The adapter's own transport (``harness.exchanges.binance.wire``) raises the
same two python-binance exceptions, and ``WireConnectError`` (never sent) / ``WireError`` (may have
been processed) for transport failures.

Whether a failure is *ambiguous* depends on the request: for an order placement (not idempotent) a
timeout, -1006, -1007, a 503 "Unknown error..." and any other 5xx that is not the certain-failure
"Service Unavailable." / "Internal error" reply may hide an executed order, so the caller must query
before sending again. For idempotent requests (reads, cancels) the same failures are simply
retryable. Messages never carry the API secret or a request signature: URLs, bodies and exception
texts are scrubbed, and the original exception is not chained (``__cause__`` would print it).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

import aiohttp
import requests
from binance.exceptions import BinanceAPIException, BinanceRequestException

from harness.core.errors import (
    AmbiguousExchangeError,
    ExchangeError,
    RetryableExchangeError,
    TerminalExchangeError,
)
from harness.exchanges.binance.wire import WireConnectError, WireError
from harness.exchanges.codes import DUPLICATE_CLIENT_ORDER_ID, CodeClass, codes_in

# The adapter uses harness.exchanges.codes as is (no deliberate differences): -2022 and -4061 map
# to TerminalExchangeError, and MarketCloser (close.py) reacts to them itself before that surfaces.
#: the order may have executed (only for non-idempotent requests; retryable for reads and cancels)
AMBIGUOUS_CODES = codes_in(CodeClass.AMBIGUOUS)
#: certain failures that may succeed later
RETRYABLE_CODES = codes_in(CodeClass.RETRYABLE)
#: retrying cannot help: bad symbol, margin, auth/permissions, position mode, malformed request
TERMINAL_CODES = codes_in(CodeClass.TERMINAL)
#: "there is no such order": on a cancel this means nothing to cancel, on a query "never placed"
NOT_FOUND_CODES = codes_in(CodeClass.NOT_FOUND)
RATE_LIMIT_STATUSES = frozenset({418, 429})
#: Retry-After assumed when a 429/418 carries none (418 bans last at least 2 minutes)
DEFAULT_RETRY_AFTER = {429: 1.0, 418: 120.0}

_UNKNOWN_503 = "unknown error"
_CERTAIN_5XX = ("service unavailable", "internal error")
_SIGNATURE = re.compile(r"(signature=)[^&\s'\"<>]+", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")
_MAX_MESSAGE = 300


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without signatures and secrets, whitespace collapsed, at most ``_MAX_MESSAGE`` chars."""
    cleaned = _SIGNATURE.sub(r"\1<redacted>", text)
    for secret in secrets:
        if secret:
            cleaned = cleaned.replace(secret, "<redacted>")
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= _MAX_MESSAGE else cleaned[: _MAX_MESSAGE - 3] + "..."


def api_error_text(exc: BinanceAPIException) -> str:
    """Binance's ``msg``, or for a non-JSON body (code 0) its reason and tag-stripped text."""
    message = str(exc.message or "")
    if not message.startswith("Invalid JSON error message"):
        return message
    response = getattr(exc, "response", None)
    reason = str(getattr(response, "reason", "") or "")
    body = getattr(response, "text", None)  # requests: the body; aiohttp: a method (body not kept)
    text = " ".join(_TAGS.sub(" ", body).split()) if isinstance(body, str) else ""
    return "non-JSON reply" + (f" ({reason})" if reason else "") + (f": {text}" if text else "")


def retry_after_seconds(exc: BaseException) -> float | None:
    """The Retry-After header (seconds) of a 429/418 ``BinanceAPIException``, with a default."""
    if not isinstance(exc, BinanceAPIException) or exc.status_code not in RATE_LIMIT_STATUSES:
        return None
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        value = float(headers.get("Retry-After"))
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER[exc.status_code]
    return max(0.0, value)


def may_have_executed(exc: BaseException) -> bool:
    """True when a non-idempotent request that failed with ``exc`` may still have taken effect."""
    if isinstance(exc, BinanceAPIException):
        if exc.code in AMBIGUOUS_CODES:
            return True
        message = str(exc.message or "").lower()
        if exc.status_code >= 500:
            return _UNKNOWN_503 in message or not any(m in message for m in _CERTAIN_5XX)
        return False
    if isinstance(exc, BinanceRequestException):
        return True  # a 2xx reply we could not read: the request was processed
    if isinstance(exc, (aiohttp.ClientConnectorError, requests.exceptions.ConnectTimeout, WireConnectError)):
        return False  # never connected, nothing was sent
    if isinstance(exc, WireError):
        return True  # the connection broke after the request was written
    if isinstance(exc, requests.exceptions.ConnectionError) and "NewConnectionError" in repr(exc.args):
        return False
    return isinstance(exc, (asyncio.TimeoutError, TimeoutError, aiohttp.ClientError, requests.RequestException))


def is_transport_error(exc: BaseException) -> bool:
    return isinstance(
        exc,
        (BinanceAPIException, BinanceRequestException, asyncio.TimeoutError, TimeoutError, aiohttp.ClientError,
         requests.RequestException, WireError),
    )


def to_exchange_error(
    exc: BaseException,
    *,
    operation: str,
    symbol: str | None,
    idempotent: bool,
    secrets: Iterable[str] = (),
) -> ExchangeError:
    """The ``harness.core.errors`` exception for ``exc`` (which must satisfy ``is_transport_error``)."""
    where = f"{operation} {symbol}" if symbol else operation
    if isinstance(exc, BinanceAPIException):
        code = exc.code if exc.code is not None else 0
        status = exc.status_code
        text = scrub(api_error_text(exc), secrets)
        message = f"{where}: HTTP {status}, code {code}: {text}"
        kwargs: dict[str, Any] = {"code": code, "status": status, "symbol": symbol}
        if status in RATE_LIMIT_STATUSES:
            return RetryableExchangeError(message, retry_after=retry_after_seconds(exc), **kwargs)
        if not idempotent and may_have_executed(exc):
            return AmbiguousExchangeError(message + " (execution status unknown)", **kwargs)
        if code == DUPLICATE_CLIENT_ORDER_ID:  # the order exists: ambiguous even when may_have_executed says no
            return AmbiguousExchangeError(message, **kwargs)
        if code in RETRYABLE_CODES or code in AMBIGUOUS_CODES or status >= 500:
            return RetryableExchangeError(message, **kwargs)
        if code in TERMINAL_CODES or code in NOT_FOUND_CODES or 400 <= status < 500:
            return TerminalExchangeError(message, **kwargs)
        return RetryableExchangeError(message, **kwargs)
    detail = scrub(f"{type(exc).__name__}: {exc}", secrets)
    kind = "timed out" if isinstance(exc, (asyncio.TimeoutError, TimeoutError, requests.Timeout)) else "failed"
    message = f"{where}: request {kind} ({detail})"
    if not idempotent and may_have_executed(exc):
        return AmbiguousExchangeError(message + "; execution status unknown", symbol=symbol)
    return RetryableExchangeError(message, symbol=symbol)
