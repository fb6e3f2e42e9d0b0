"""Point ccxt's ``binanceusdm`` at the simulator (or any Binance-compatible root URL).

ccxt builds every request URL from ``exchange.urls['api'][<api name>]``; the USD-M futures calls use
the ``fapi*`` names below. The simulator serves only ``/fapi``: spot (``public``, ``private``, ``v1``)
and ``sapi`` calls are not modelled, so also switch off the calls ccxt makes there on its own::

    import ccxt
    from harness.exchanges.sim.ccxt_urls import ccxt_binanceusdm_config

    exchange = ccxt.binanceusdm(ccxt_binanceusdm_config(sim.base_url, sim.api_key, sim.api_secret))

``ccxt_binanceusdm_config`` sets ``options.fetchCurrencies = False`` (``load_markets`` would otherwise
call ``sapi/v1/capital/config/getall``) and ``options.fetchMarkets = ['linear']`` (USD-M only). This
module does not import ccxt: it only builds plain dicts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from harness.core.errors import ConfigError

#: ccxt api name -> path under the root URL
FAPI_PATHS: dict[str, str] = {
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
}


def _root(root_url: str) -> str:
    if not isinstance(root_url, str):
        raise ConfigError("root_url", root_url, "an http(s) URL such as 'http://127.0.0.1:8080'")
    parts = urlsplit(root_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError("root_url", root_url, "an http(s) URL such as 'http://127.0.0.1:8080' (no query)")
    return root_url.rstrip("/")


def ccxt_fapi_urls(root_url: str) -> dict[str, str]:
    """The ``urls['api']`` entries that send ccxt's USD-M calls to ``root_url`` (e.g. ``sim.base_url``)."""
    root = _root(root_url)
    return {name: root + path for name, path in FAPI_PATHS.items()}


def ccxt_binanceusdm_config(root_url: str, api_key: str, api_secret: str) -> dict[str, Any]:
    """A complete ``ccxt.binanceusdm(config)`` for the simulator: keys, URLs and options.

    ccxt deep-merges ``urls``, so the spot / sapi entries keep their Binance addresses; with the
    options set here a USD-M bot loop never calls them.
    """
    return {
        "apiKey": api_key,
        "secret": api_secret,
        "enableRateLimit": False,
        "urls": {"api": ccxt_fapi_urls(root_url)},
        "options": {
            "fetchCurrencies": False,
            "fetchMarkets": {"types": ["linear"]},
            "warnOnFetchOpenOrdersWithoutSymbol": False,
            "adjustForTimeDifference": False,
        },
    }
