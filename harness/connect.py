"""Clients pointed where the bot-under-test contract says: a bot connects in one line.

The harness starts a bot under test with ``LIQUIDATION_EXCHANGE_URL`` (the exchange root, e.g. the
embedded exchange's ``http://127.0.0.1:PORT``; ``/fapi`` is appended by the client), ``TRADING_ENV``
and the target's keys (``BINANCE_TESTNET_API_KEY`` / ``_SECRET`` for testnet and custom URLs). Without
``LIQUIDATION_EXCHANGE_URL`` the target follows ``TRADING_ENV`` as everywhere else
(``harness.exchanges.target.resolve_target``)::

    from harness.connect import futures_client, ccxt_exchange

    client = futures_client()                 # python-binance Client, FUTURES_URL set
    aclient = futures_client(async_=True)     # python-binance AsyncClient (call inside a running loop)
    exchange = ccxt_exchange()                # ccxt.binanceusdm with the URL overrides

Keys come from the environment only (the target's ``key_vars``); a missing key is a ``ConfigError``
naming the variable. ``ccxt_options()`` is the plain ``ccxt.binanceusdm(config)`` dict (built by
``harness.exchanges.sim.ccxt_urls``); this module imports ccxt only inside ``ccxt_exchange``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from harness.core.config import DEFAULT_ENVIRONMENT, ENVIRONMENT_VARIABLE
from harness.exchanges.sim.ccxt_urls import ccxt_binanceusdm_config
from harness.exchanges.target import Target, TargetKind, require_credentials, resolve_target

EXCHANGE_URL_VARIABLE = "LIQUIDATION_EXCHANGE_URL"
DEFAULT_REQUEST_TIMEOUT = 10.0


def target_from_env(environ: Mapping[str, str] | None = None) -> Target:
    """The contract's target: ``LIQUIDATION_EXCHANGE_URL`` when set, else ``TRADING_ENV``'s default."""
    environ = os.environ if environ is None else environ
    url = environ.get(EXCHANGE_URL_VARIABLE) or None
    environment = environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_ENVIRONMENT
    return resolve_target(environment, url)


def keys_from_env(target: Target, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(api_key, api_secret) from the target's variables; ConfigError naming a missing one."""
    return require_credentials(target, environ)


def futures_client(async_: bool = False, *, environ: Mapping[str, str] | None = None,
                   timeout: float = DEFAULT_REQUEST_TIMEOUT) -> Any:
    """A python-binance ``Client`` (``AsyncClient`` with ``async_=True``) for the contract's target.

    No ping on construction; ``FUTURES_URL`` is the target's ``futures_url``. An ``AsyncClient`` must
    be built inside a running event loop and closed with ``await client.close_connection()``.
    """
    target = target_from_env(environ)
    key, secret = keys_from_env(target, environ)
    if async_:
        from binance import AsyncClient

        client: Any = AsyncClient(key, secret, requests_params={"timeout": timeout})
    else:
        from binance.client import Client

        client = Client(key, secret, ping=False, requests_params={"timeout": timeout})
    client.FUTURES_URL = target.futures_url
    return client


def ccxt_options(environ: Mapping[str, str] | None = None, *, exchange_url: str | None = None,
                 api_key: str | None = None, api_secret: str | None = None) -> dict[str, Any]:
    """``ccxt.binanceusdm(config)`` for the contract's target (or the given URL and keys).

    The URL overrides and options are ``harness.exchanges.sim.ccxt_urls.ccxt_binanceusdm_config``'s;
    ccxt's own rate limiter is switched on again for every target but the embedded exchange.
    """
    if exchange_url is not None:
        target = resolve_target(DEFAULT_ENVIRONMENT, exchange_url)
    else:
        target = target_from_env(environ)
    if api_key is None or api_secret is None:
        env_key, env_secret = keys_from_env(target, environ)
        api_key, api_secret = api_key or env_key, api_secret or env_secret
    config = ccxt_binanceusdm_config(target.root_url, api_key, api_secret)
    config["enableRateLimit"] = target.kind is not TargetKind.CUSTOM
    return config


def ccxt_exchange(environ: Mapping[str, str] | None = None, *, async_: bool = False, **overrides: Any) -> Any:
    """A ``ccxt.binanceusdm`` (``ccxt.async_support`` with ``async_=True``) built from ``ccxt_options``.

    ``overrides`` (``exchange_url``, ``api_key``, ``api_secret``) go to ``ccxt_options``. Needs the
    ``ccxt`` extra (``pip install liquidation-harness[ccxt]``).
    """
    try:
        if async_:
            import ccxt.async_support as ccxt_module
        else:
            import ccxt as ccxt_module
    except ImportError:
        raise ImportError("harness.connect.ccxt_exchange needs ccxt: pip install 'liquidation-harness[ccxt]'") from None
    return ccxt_module.binanceusdm(ccxt_options(environ, **overrides))
