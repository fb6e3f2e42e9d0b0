"""Which Binance an URL points at: the one rule every part of the harness uses.

Any ``*.binance.*`` host that is not a known testnet host counts as PRODUCTION (fail safe: an
unknown Binance host is treated as real money); everything else (e.g. the embedded exchange on
127.0.0.1) is CUSTOM.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

TESTNET_HOSTS = frozenset({"testnet.binancefuture.com", "demo-fapi.binance.com"})
_BINANCE_HOST = re.compile(r"(.+\.)?binance\.[a-z.]+")


def host_kind(url: str) -> str:
    """``production``, ``testnet`` or ``custom`` for ``url`` (scheme optional)."""
    host = (urlsplit(url if "://" in url else f"https://{url}").hostname or "").lower()
    if host in TESTNET_HOSTS:
        return "testnet"
    if _BINANCE_HOST.fullmatch(host):
        return "production"
    return "custom"
