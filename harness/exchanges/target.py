"""Where a bot, a scenario or the adapter sends requests, and which credentials belong there.

The one ``Target`` of the harness: ``resolve_target`` builds it once (bot, pytest plugin) and the
adapter (``BinanceFuturesOrderManager(target=...)``), the testkit and the reports take it as is.

Four kinds of target:

- ``production``: Binance USD-M futures (no URL given, or a binance.com / binance.us futures host);
  keys from BINANCE_API_KEY / BINANCE_API_SECRET.
- ``testnet``: Binance futures testnet (``--testnet`` / TRADING_ENV=testnet or development, or the
  testnet host); keys from BINANCE_TESTNET_API_KEY / BINANCE_TESTNET_API_SECRET.
- ``demo``: Binance Demo Trading (``demo=True`` or the demo host, REST root
  https://demo-fapi.binance.com); keys from BINANCE_DEMO_API_KEY / BINANCE_DEMO_API_SECRET.
- ``custom``: any other URL, e.g. the embedded exchange on 127.0.0.1; test keys from the TESTNET
  variables (production keys are never sent to an unknown host).

Which host is which: ``harness.exchanges.hosts``. An URL is an exchange *root*; one ending in
``/fapi`` (or ``/fapi/``) is accepted and the suffix stripped, everywhere (``root_url``), and
``futures_url`` (root + ``/fapi``) is what python-binance's ``FUTURES_URL`` is set to.

Testnet and demo keys are never used against production and production keys never against
anything else (``refuse_crossed_credentials``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse

from harness.core.errors import ConfigError
from harness.exchanges.hosts import host_kind

__all__ = [
    "DEMO_KEY_VARS",
    "DEMO_ROOT_URL",
    "PRODUCTION_KEY_VARS",
    "PRODUCTION_PROFILES",
    "PRODUCTION_ROOT_URL",
    "TESTNET_KEY_VARS",
    "TESTNET_PROFILES",
    "TESTNET_ROOT_URL",
    "Target",
    "TargetKind",
    "classify_url",
    "credentials",
    "refuse_crossed_credentials",
    "require_credentials",
    "resolve_target",
    "root_url",
    "target_for_url",
]

PRODUCTION_KEY_VARS = ("BINANCE_API_KEY", "BINANCE_API_SECRET")
TESTNET_KEY_VARS = ("BINANCE_TESTNET_API_KEY", "BINANCE_TESTNET_API_SECRET")
DEMO_KEY_VARS = ("BINANCE_DEMO_API_KEY", "BINANCE_DEMO_API_SECRET")
#: which profiles trade real money by default (high-latency is production on a slow network)
PRODUCTION_PROFILES = ("production", "high-latency")
TESTNET_PROFILES = ("testnet", "development")
#: python-binance 1.0.37's FUTURES_URL / FUTURES_TESTNET_URL / FUTURES_DEMO_URL without /fapi
#: (spelled out so the bot and the plugin need not import python-binance; a test compares them)
PRODUCTION_ROOT_URL = "https://fapi.binance.com"
TESTNET_ROOT_URL = "https://testnet.binancefuture.com"
DEMO_ROOT_URL = "https://demo-fapi.binance.com"
_FAPI = "/fapi"
_URL_HINT = "allowed: an http(s) exchange root URL such as http://127.0.0.1:8080 (a trailing /fapi is stripped)"


class TargetKind(StrEnum):
    PRODUCTION = "production"
    TESTNET = "testnet"
    DEMO = "demo"
    CUSTOM = "custom"


_KEY_VARS = {
    TargetKind.PRODUCTION: PRODUCTION_KEY_VARS,
    TargetKind.TESTNET: TESTNET_KEY_VARS,
    TargetKind.DEMO: DEMO_KEY_VARS,
    TargetKind.CUSTOM: TESTNET_KEY_VARS,  # test keys only: production keys never go to an unknown host
}
_DEFAULT_ROOTS = {
    TargetKind.PRODUCTION: PRODUCTION_ROOT_URL,
    TargetKind.TESTNET: TESTNET_ROOT_URL,
    TargetKind.DEMO: DEMO_ROOT_URL,
}


@dataclass(frozen=True)
class Target:
    """One exchange: its kind, its root URL (no /fapi) and the environment variables of its keys."""

    kind: TargetKind
    root_url: str
    #: True when the URL was given explicitly (False: the kind's default Binance URL)
    explicit: bool = False

    @property
    def futures_url(self) -> str:
        """What python-binance's ``FUTURES_URL`` is set to (the root + ``/fapi``)."""
        return self.root_url + _FAPI

    @property
    def key_vars(self) -> tuple[str, str]:
        """(key variable, secret variable) of this target's credentials."""
        return _KEY_VARS[self.kind]

    @property
    def is_production(self) -> bool:
        return self.kind is TargetKind.PRODUCTION

    def describe(self) -> str:
        return f"{self.kind.value} ({self.root_url})"

    def __str__(self) -> str:
        return self.describe()


def root_url(url: Any, *, field: str = "exchange_url") -> str:
    """``url`` as an exchange root: an http(s) URL with a host, trailing ``/`` and ``/fapi`` stripped.

    ConfigError (naming ``field``) for anything else: no scheme, another scheme, no host, a bad
    port, whitespace, or a non-string.
    """
    if not isinstance(url, str) or not url:
        raise ConfigError(field, url, _URL_HINT)
    parsed = urlparse(url)
    try:
        parsed.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError:
        raise ConfigError(field, url, f"{_URL_HINT}; the port is not a number from 0 to 65535") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or any(c.isspace() for c in url):
        raise ConfigError(field, url, _URL_HINT)
    root = url.rstrip("/")
    if root.endswith(_FAPI):
        root = root[: -len(_FAPI)].rstrip("/")
    return root


def classify_url(url: str) -> TargetKind:
    """The kind of the exchange at ``url`` (by host, see ``harness.exchanges.hosts``)."""
    return TargetKind(host_kind(root_url(url)))


def target_for_url(url: Any, *, field: str = "exchange_url") -> Target:
    """The target at an explicit exchange URL (kind by host; ``/fapi`` stripped)."""
    root = root_url(url, field=field)
    return Target(TargetKind(host_kind(root)), root, explicit=True)


def resolve_target(environment: str, exchange_url: str | None = None, testnet: bool = False,
                   demo: bool = False) -> Target:
    """The target for a run: an explicit URL wins, then ``demo``, then ``testnet``, then the
    environment's default (production and high-latency: Binance production; testnet and
    development: futures testnet). A production URL with ``testnet`` or ``demo`` is refused."""
    for name, flag in (("testnet", testnet), ("demo", demo)):
        if not isinstance(flag, bool):
            raise ConfigError(name, flag, "True or False")
    if testnet and demo:
        raise ConfigError("demo", demo, "either testnet or demo, not both")
    if exchange_url:
        target = target_for_url(exchange_url)
        if target.is_production and (testnet or demo):
            raise ConfigError("exchange_url", exchange_url,
                              f"is a production URL but {'--testnet' if testnet else 'demo'} was given")
        return target
    if demo:
        return Target(TargetKind.DEMO, DEMO_ROOT_URL)
    if testnet or environment in TESTNET_PROFILES:
        return Target(TargetKind.TESTNET, TESTNET_ROOT_URL)
    if environment in PRODUCTION_PROFILES:
        return Target(TargetKind.PRODUCTION, PRODUCTION_ROOT_URL)
    raise ConfigError("environment", environment, f"allowed: {', '.join(TESTNET_PROFILES + PRODUCTION_PROFILES)}")


def credentials(target: Target, environ: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """(api_key, api_secret) for ``target`` from the environment; (None, None) when unset."""
    environ = os.environ if environ is None else environ
    key_var, secret_var = target.key_vars
    return environ.get(key_var) or None, environ.get(secret_var) or None


def require_credentials(target: Target, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Credentials for ``target`` or a ConfigError naming the missing variables."""
    key, secret = credentials(target, environ)
    missing = [name for name, value in zip(target.key_vars, (key, secret), strict=True) if not value]
    if missing:
        raise ConfigError(missing[0], None, f"{' and '.join(missing)} must be set in the environment for {target.kind.value}")
    assert key and secret
    return key, secret


_OWNER = {PRODUCTION_KEY_VARS: "production", TESTNET_KEY_VARS: "testnet", DEMO_KEY_VARS: "demo trading"}


def refuse_crossed_credentials(target: Target, environment: str, environ: Mapping[str, str] | None = None) -> None:
    """ConfigError when the keys or the environment belong across the production line from ``target``.

    Refused: TRADING_ENV=testnet with a production target; TRADING_ENV=production with a testnet or
    demo target; the target's own key variables unset while another kind's are set (testnet or demo
    keys for production, production keys for testnet, demo or an unknown host, demo keys for
    testnet or an unknown host); one key value in BINANCE_API_KEY and in BINANCE_TESTNET_API_KEY or
    BINANCE_DEMO_API_KEY. Production keys are never sent anywhere but production, and testnet or
    demo keys never to production, whatever the configuration says.
    """
    environ = os.environ if environ is None else environ
    if environment == "testnet" and target.is_production:
        raise ConfigError("exchange_url", target.root_url,
                          "is production but TRADING_ENV=testnet: testnet runs never reach production")
    if environment == "production" and target.kind in (TargetKind.TESTNET, TargetKind.DEMO):
        raise ConfigError("exchange_url", target.root_url,
                          f"is {target.kind.value} but TRADING_ENV=production: a production deployment must target production")
    own = [environ.get(name) for name in target.key_vars]
    if not any(own):
        for other_vars, owner in _OWNER.items():
            if other_vars != target.key_vars and any(environ.get(name) for name in other_vars):
                raise ConfigError(target.key_vars[0], None,
                                  f"the target is {target.kind.value} and needs {' and '.join(target.key_vars)}; "
                                  f"{' / '.join(other_vars)} belong to {owner} and are never used here")
    production_key = environ.get(PRODUCTION_KEY_VARS[0])
    for other_vars in (TESTNET_KEY_VARS, DEMO_KEY_VARS):
        if production_key and production_key == environ.get(other_vars[0]):
            raise ConfigError(other_vars[0], "<same as BINANCE_API_KEY>",
                              f"a {_OWNER[other_vars]} key distinct from the production key (one key cannot be both)")
