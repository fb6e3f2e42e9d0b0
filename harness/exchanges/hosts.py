"""Which Binance an URL points at: the one rule every part of the harness uses.

A known testnet host is TESTNET, the Demo Trading host is DEMO, any other ``*.binance.*`` host
counts as PRODUCTION (fail safe: an unknown Binance host is treated as real money); everything else
(e.g. the embedded exchange on 127.0.0.1) is CUSTOM.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

TESTNET_HOSTS = frozenset({"testnet.binancefuture.com"})
#: Binance Demo Trading (USD-M futures REST root https://demo-fapi.binance.com)
DEMO_HOSTS = frozenset({"demo-fapi.binance.com"})
_BINANCE_HOST = re.compile(r"(.+\.)?binance\.[a-z.]+")


def host_kind(url: str) -> str:
    """``production``, ``testnet``, ``demo`` or ``custom`` for ``url`` (scheme optional)."""
    host = (urlsplit(url if "://" in url else f"https://{url}").hostname or "").lower()
    if host in TESTNET_HOSTS:
        return "testnet"
    if host in DEMO_HOSTS:
        return "demo"
    if _BINANCE_HOST.fullmatch(host):
        return "production"
    return "custom"
