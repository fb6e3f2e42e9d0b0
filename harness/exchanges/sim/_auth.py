"""Request signing as Binance checks it: HMAC-SHA256 (hex) of the exact query string + body.

python-binance signs the unquoted ``k=v&...`` string but form-encodes POST/DELETE bodies, so the
signature is checked against the raw text as sent, with and without ``&`` between query and body,
and against the percent-decoded form. The secret and signature are never logged or stored.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl


def _segments(raw: str) -> list[str]:
    return [part for part in raw.split("&") if part and not part.startswith("signature=")]


def _decoded(raw: str) -> list[str]:
    return [f"{k}={v}" for k, v in parse_qsl(raw, keep_blank_values=True) if k != "signature"]


def signature_payloads(raw_query: str, raw_body: str) -> list[str]:
    """The strings a valid signature may have been computed over."""
    query, body = _segments(raw_query), _segments(raw_body)
    candidates = [
        "&".join(query + body),
        "&".join(query) + "&".join(body),
        "&".join(_decoded(raw_query) + _decoded(raw_body)),
    ]
    return list(dict.fromkeys(candidates))


def signature_valid(secret: str, signature: str, raw_query: str, raw_body: str) -> bool:
    """True when ``signature`` is the hex HMAC-SHA256 of one of the accepted payloads."""
    key = secret.encode("utf-8")
    given = signature.strip().lower().encode("ascii", "replace")
    for payload in signature_payloads(raw_query, raw_body):
        expected = hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest().encode("ascii")
        if hmac.compare_digest(expected, given):
            return True
    return False


def sign(secret: str, payload: str) -> str:
    """Hex HMAC-SHA256 of ``payload`` (for clients and tests that build requests by hand)."""
    return hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).hexdigest()
