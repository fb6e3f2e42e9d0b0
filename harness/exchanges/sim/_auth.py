"""Request signing as Binance checks it: HMAC-SHA256 (hex) of the exact query string + body.

Binance's ``totalParams`` is the query string concatenated with the request body, exactly as sent
(no ``&`` between them, no decoding), with the ``signature`` parameter left out. A signature over
anything else (the decoded form, a re-ordered or re-encoded copy) is -1022. The secret and
signature are never logged or stored.
"""

from __future__ import annotations

import hashlib
import hmac


def _without_signature(raw: str) -> str:
    return "&".join(part for part in raw.split("&") if not part.startswith("signature="))


def signature_payloads(raw_query: str, raw_body: str) -> list[str]:
    """The one string a valid signature is computed over (a list for callers that show it)."""
    return [_without_signature(raw_query) + _without_signature(raw_body)]


def signature_valid(secret: str, signature: str, raw_query: str, raw_body: str) -> bool:
    """True when ``signature`` is the hex HMAC-SHA256 of one of the accepted payloads."""
    key = secret.encode("utf-8")
    return any(signature_matches(key, signature, payload) for payload in signature_payloads(raw_query, raw_body))


def signature_matches(key: bytes, signature: str, payload: str) -> bool:
    """True when ``signature`` is the hex HMAC-SHA256 of ``payload`` under ``key`` (the secret's UTF-8);
    for a caller that already holds the payload without its ``signature`` parts (the HTTP face
    builds it while it parses the parameters)."""
    given = signature.strip().lower().encode("ascii", "replace")
    expected = hmac.digest(key, payload.encode("utf-8"), "sha256").hex().encode("ascii")
    return hmac.compare_digest(expected, given)


def sign(secret: str, payload: str) -> str:
    """Hex HMAC-SHA256 of ``payload`` (for clients and tests that build requests by hand)."""
    return hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).hexdigest()
