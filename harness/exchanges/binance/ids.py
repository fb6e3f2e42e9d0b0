"""Deterministic client order ids: ``lq-<run tag>-<symbol>-<sequence>``.

Binance accepts ``newClientOrderId`` matching ``^[\\.A-Z\\:/a-z0-9_-]{1,36}$``. The id is a pure
function of (correlation id, symbol, sequence number), so after a crash the same run's ids can be
recomputed and queried (``GET /fapi/v1/order?origClientOrderId=...``) to reconcile what was sent.

* run tag: the correlation id itself when it is at most ``TAG_LENGTH`` allowed characters, else the
  first ``TAG_LENGTH`` hex digits of its BLAKE2b digest (the engine's ids are 32-hex uuids);
* symbol: as is when the whole id fits in 36 characters, else an 8-hex digest of it;
* sequence: 1, 2, ... per (run, symbol), one per order sent (resends of an order that was never
  placed reuse its id).
"""

from __future__ import annotations

import hashlib
import re

CLIENT_ORDER_ID_PATTERN = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
MAX_CLIENT_ORDER_ID_LENGTH = 36
PREFIX = "lq"
TAG_LENGTH = 10
_ALLOWED = re.compile(r"^[\.A-Z\:/a-z0-9_-]+$")


def _digest(text: str, hex_chars: int) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=(hex_chars + 1) // 2).hexdigest()[:hex_chars]


def run_tag(correlation_id: str) -> str:
    """A short, id-safe stand-in for ``correlation_id`` (see the module docstring)."""
    if not isinstance(correlation_id, str) or not correlation_id:
        raise ValueError(f"correlation_id={correlation_id!r}: expected a non-empty string")
    if len(correlation_id) <= TAG_LENGTH and _ALLOWED.match(correlation_id):
        return correlation_id
    return _digest(correlation_id, TAG_LENGTH)


def make_client_order_id(correlation_id: str, symbol: str, sequence: int) -> str:
    """The ``newClientOrderId`` of the ``sequence``-th order for ``symbol`` in run ``correlation_id``."""
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        raise ValueError(f"sequence={sequence!r}: expected an int >= 1")
    if not isinstance(symbol, str) or not symbol:
        raise ValueError(f"symbol={symbol!r}: expected a non-empty string")
    tag = run_tag(correlation_id)
    seq = str(sequence)
    name = symbol if _ALLOWED.match(symbol) else _digest(symbol, 8)
    candidate = f"{PREFIX}-{tag}-{name}-{seq}"
    if len(candidate) > MAX_CLIENT_ORDER_ID_LENGTH:
        candidate = f"{PREFIX}-{tag}-{_digest(symbol, 8)}-{seq}"
    if len(candidate) > MAX_CLIENT_ORDER_ID_LENGTH:
        raise ValueError(f"sequence={sequence}: too large for a {MAX_CLIENT_ORDER_ID_LENGTH}-character client order id")
    return candidate
