"""Where a bot or a scenario sends orders, and which credentials belong there.

Three kinds of target:
- ``production``: Binance USD-M futures (no URL given, or a binance.com / binance.us futures host);
  keys from BINANCE_API_KEY / BINANCE_API_SECRET.
- ``testnet``: Binance futures testnet (``--testnet`` / TRADING_ENV=testnet, default python-binance's
  testnet URL, or a known testnet host); keys from BINANCE_TESTNET_API_KEY / BINANCE_TESTNET_API_SECRET.
- ``custom``: any other URL, e.g. the embedded exchange on 127.0.0.1; test keys from the TESTNET
  variables (production keys are never sent to an unknown host).

Testnet keys are never used against production and production keys never against anything else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from harness.core.errors import ConfigError
from harness.exchanges.hosts import host_kind

TESTNET_KEY_VARS = ("BINANCE_TESTNET_API_KEY", "BINANCE_TESTNET_API_SECRET")
#: which profiles trade real money by default (high-latency is production on a slow network)
PRODUCTION_PROFILES = ("production", "high-latency")
TESTNET_PROFILES = ("testnet", "development")
PRODUCTION_KEY_VARS = ("BINANCE_API_KEY", "BINANCE_API_SECRET")


@dataclass(frozen=True)
class Target:
    kind: str  # production | testnet | custom
    base_url: str | None  # exchange root without /fapi; None = python-binance's default for the kind

    @property
    def key_vars(self) -> tuple[str, str]:
        return PRODUCTION_KEY_VARS if self.kind == "production" else TESTNET_KEY_VARS

    @property
    def is_production(self) -> bool:
        return self.kind == "production"

    def describe(self) -> str:
        return f"{self.kind} ({self.base_url or 'python-binance default URL'})"


def classify_url(url: str) -> str:
    """``production``, ``testnet`` or ``custom`` for an exchange URL (see harness.exchanges.hosts)."""
    parsed = urlparse(url if "://" in url else f"https://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError("exchange_url", url, "allowed: an http(s) URL such as http://127.0.0.1:8080")
    return host_kind(url)


def _require_root_url(url: str) -> None:
    """An explicit http(s) URL with a host and nothing odd in it (checked before any stripping)."""
    parsed = urlparse(url)
    try:
        parsed.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError:
        raise ConfigError("exchange_url", url, "allowed: an http(s) URL such as http://127.0.0.1:8080 (bad port)") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or any(c.isspace() for c in url):
        raise ConfigError("exchange_url", url, "allowed: an http(s) URL such as http://127.0.0.1:8080")


def resolve_target(environment: str, exchange_url: str | None = None, testnet: bool = False) -> Target:
    """The target for a run: an explicit URL wins, then --testnet, then the environment's default
    (production and high-latency: Binance production; testnet and development: futures testnet)."""
    if exchange_url:
        _require_root_url(exchange_url)
        url = exchange_url.rstrip("/")
        if url.endswith("/fapi"):
            url = url[: -len("/fapi")]
        kind = classify_url(url)
        if testnet and kind == "production":
            raise ConfigError("exchange_url", exchange_url, "is a production URL but --testnet was given")
        return Target(kind, url)
    if testnet or environment in TESTNET_PROFILES:
        return Target("testnet", None)
    if environment in PRODUCTION_PROFILES:
        return Target("production", None)
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
        raise ConfigError(missing[0], None, f"{' and '.join(missing)} must be set in the environment for {target.kind}")
    assert key and secret
    return key, secret


def refuse_crossed_credentials(target: Target, environment: str, environ: Mapping[str, str] | None = None) -> None:
    """ConfigError when the keys or the environment belong across the production/testnet line from ``target``.

    Refused: TRADING_ENV=testnet with a production target and TRADING_ENV=production with a testnet
    target; the target's own key variables unset while the other kind's are set (testnet keys for a
    production URL, production keys for testnet or an unknown host); one key value in both
    BINANCE_API_KEY and BINANCE_TESTNET_API_KEY. Production keys are never sent anywhere but
    production, whatever the configuration says.
    """
    environ = os.environ if environ is None else environ
    if environment == "testnet" and target.kind == "production":
        raise ConfigError("exchange_url", target.base_url or "Binance production",
                          "is production but TRADING_ENV=testnet: testnet runs never reach production")
    if environment == "production" and target.kind == "testnet":
        raise ConfigError("exchange_url", target.base_url or "Binance futures testnet",
                          "is testnet but TRADING_ENV=production: a production deployment must target production")
    own = [environ.get(name) for name in target.key_vars]
    other_vars = TESTNET_KEY_VARS if target.key_vars == PRODUCTION_KEY_VARS else PRODUCTION_KEY_VARS
    other = [environ.get(name) for name in other_vars]
    if not any(own) and any(other):
        raise ConfigError(target.key_vars[0], None,
                          f"the target is {target.kind} and needs {' and '.join(target.key_vars)}; "
                          f"{' / '.join(other_vars)} belong to {'testnet' if target.is_production else 'production'} "
                          "and are never used here")
    production_key, testnet_key = environ.get(PRODUCTION_KEY_VARS[0]), environ.get(TESTNET_KEY_VARS[0])
    if production_key and production_key == testnet_key:
        raise ConfigError(TESTNET_KEY_VARS[0], "<same as BINANCE_API_KEY>",
                          "a testnet key distinct from the production key (one key cannot be both)")
