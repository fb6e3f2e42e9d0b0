"""Exceptions raised by the harness.

Every exception the harness raises on purpose, and where it lives::

    HarnessError                          (here)
    ├── ConfigError(ValueError)           bad configuration: names the field, the value and what is allowed
    ├── ExchangeError                     an order-manager call failed (``code``: Binance's error code)
    │   ├── RetryableExchangeError        certain failure, safe to retry (5xx, -1021, 429 with retry_after)
    │   ├── AmbiguousExchangeError        the order MAY have executed: re-read state before sending again
    │   └── TerminalExchangeError         retrying cannot help (invalid symbol, bad key, locked symbol)
    │       └── InvalidArgumentError(ValueError)
    │                                     an argument of an order-manager call is invalid (never sent)
    ├── AuditLogError(OSError)            harness.core.audit: the audit trail cannot be written
    ├── AuditFileError                    harness.report.audit_reader: an audit file cannot be read
    └── ResultsError                      harness.report.results: allure results cannot be read

Not ``HarnessError`` on purpose (internal signals that never leave their module):
``harness.core.manager.IncompleteClose`` (a short close, retried by the engine itself) and the
simulator's ``SimBookError`` / ``RateLimitExceeded`` (turned into HTTP replies or
``ExchangeError`` by the simulator's faces).

The engine retries everything except ``TerminalExchangeError``; before retrying a close it re-reads
the position, so an ambiguous failure never closes the same exposure twice. The codes behind each
class: ``harness.exchanges.codes``.
"""

from __future__ import annotations

from typing import Any


#: longest rendering of a bad value in a ConfigError message
MAX_SHOWN_VALUE = 120


class HarnessError(Exception):
    """Base class of every error the harness raises on purpose."""


class ConfigError(HarnessError, ValueError):
    """A configuration value is missing, of the wrong type, out of range, or unknown."""

    def __init__(self, field: str, value: Any, allowed: str, *, source: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.source = source
        where = f" (from {source})" if source else ""
        shown = repr(value)
        if len(shown) > MAX_SHOWN_VALUE:  # a hostile 5,000-character value must not drown the message
            shown = f"{shown[:MAX_SHOWN_VALUE - 3]}..."
        super().__init__(f"{field}={shown}{where}: {allowed}")


class ExchangeError(HarnessError):
    """An exchange call failed. ``code`` is Binance's error code when there is one."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        symbol: str | None = None,
    ) -> None:
        self.code = code
        self.status = status
        self.symbol = symbol
        super().__init__(message)

    @property
    def terminal(self) -> bool:
        return False


class RetryableExchangeError(ExchangeError):
    """A certain failure that may succeed later. ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class AmbiguousExchangeError(ExchangeError):
    """The request's outcome is unknown: the order may have executed."""


class TerminalExchangeError(ExchangeError):
    """Retrying cannot help; the engine gives up on this call at once."""

    @property
    def terminal(self) -> bool:
        return True


class InvalidArgumentError(TerminalExchangeError, ValueError):
    """An argument of an order-manager call is invalid (wrong type, not a number, bad symbol...).

    Raised before anything is sent; terminal (the same arguments fail again). Also a ``ValueError``
    so callers that validate input with ``except ValueError`` keep working.
    """


def is_terminal(exc: BaseException) -> bool:
    """True when ``exc`` says retrying is pointless (our own class or an adapter's ``terminal`` flag)."""
    return bool(getattr(exc, "terminal", False))
