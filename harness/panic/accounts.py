"""The accounts a ``liquidate`` run flattens: one from the command line, or a fleet from a TOML file.

A fleet file holds one ``[[account]]`` table per account::

    [[account]]
    name = "alpha"                       # unique; logs go to <log-dir>/alpha/
    target = "production"                # production | testnet | demo | an exchange URL
    key_var = "ALPHA_BINANCE_API_KEY"    # the NAMES of the environment variables holding the keys,
    secret_var = "ALPHA_BINANCE_API_SECRET"  # never the keys themselves
    symbols = ["BTCUSDT"]                # optional scope (default: the whole account)

It is validated strictly and as a whole before anything is sent: unknown fields, duplicate names,
a key literal where a variable name belongs, a variable that is unset, crossed credentials (a
testnet or demo key variable for production, the production variables elsewhere, one key value for
a production and a non-production account) are refused with a ``ConfigError`` naming the entry
and the field.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import ConfigError
from harness.exchanges.target import (
    DEMO_KEY_VARS,
    PRODUCTION_KEY_VARS,
    TESTNET_KEY_VARS,
    Target,
    TargetKind,
    refuse_crossed_credentials,
    require_credentials,
    resolve_target,
    target_for_url,
)

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
VAR_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
SYMBOL_PATTERN = re.compile(r"[A-Z0-9_]{1,40}")
FIELDS = ("name", "target", "key_var", "secret_var", "symbols")
REQUIRED = ("name", "target", "key_var", "secret_var")
_TARGET_WORDS = {"production": TargetKind.PRODUCTION, "testnet": TargetKind.TESTNET, "demo": TargetKind.DEMO}
_OTHER_KINDS_VARS = {
    TargetKind.PRODUCTION: (*TESTNET_KEY_VARS, *DEMO_KEY_VARS),
    TargetKind.TESTNET: (*PRODUCTION_KEY_VARS, *DEMO_KEY_VARS),
    TargetKind.DEMO: (*PRODUCTION_KEY_VARS, *TESTNET_KEY_VARS),
    TargetKind.CUSTOM: (*PRODUCTION_KEY_VARS, *DEMO_KEY_VARS),
}


@dataclass(frozen=True)
class Account:
    """One account to flatten: where, with which keys (read from the environment), and its scope."""

    name: str
    target: Target
    key_var: str
    secret_var: str
    api_key: str
    api_secret: str
    symbols: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        """What an operator types to confirm: the last 4 characters of the API key."""
        return self.api_key[-4:]

    def __repr__(self) -> str:  # never shows the keys
        return f"Account({self.name!r}, {self.target}, key=…{self.fingerprint})"


def parse_symbols(value: Any, *, field: str = "symbols") -> tuple[str, ...]:
    """A scope: comma-separated text or a list of upper-case Binance symbols; () = the whole account."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ConfigError(field, value, "a list of symbols such as [\"BTCUSDT\", \"ETHUSDT\"]")
    symbols = [str(s).strip().upper() if isinstance(s, str) else s for s in items]
    bad = [s for s in symbols if not isinstance(s, str) or not SYMBOL_PATTERN.fullmatch(s)]
    if bad or not symbols:
        raise ConfigError(field, value, "Binance symbols such as BTCUSDT,ETHUSDT (upper-case letters, digits and _)")
    return tuple(dict.fromkeys(symbols))


def single_account(environment: str, exchange_url: str | None, testnet: bool, demo: bool,
                   symbols: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> Account:
    """The account of the command line: target as the other commands resolve it, keys from its variables."""
    environ = os.environ if environ is None else environ
    target = resolve_target(environment, exchange_url, testnet, demo)
    refuse_crossed_credentials(target, environment, environ)
    key, secret = require_credentials(target, environ)
    return Account("account", target, target.key_vars[0], target.key_vars[1], key, secret, tuple(symbols))


def _entry_error(where: str, field: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{where}.{field}", value, allowed)


def _target(where: str, value: Any) -> Target:
    if isinstance(value, str) and value in _TARGET_WORDS:
        return resolve_target("production", None, testnet=value == "testnet", demo=value == "demo")
    if isinstance(value, str) and "://" in value:
        return target_for_url(value, field=f"{where}.target")
    raise _entry_error(where, "target", value, "production, testnet, demo or an exchange URL such as http://127.0.0.1:8080")


def _variable(where: str, field: str, value: Any, environ: Mapping[str, str], kind: TargetKind) -> str:
    if not isinstance(value, str) or not VAR_PATTERN.fullmatch(value) or (len(value) >= 32 and not value.isupper()):
        shown = "<redacted: looks like a key>" if isinstance(value, str) and len(value) >= 16 else value
        raise _entry_error(where, field, shown, "the NAME of an environment variable holding the key (e.g. ALPHA_API_KEY); "
                                                "keys never go in the file")
    if value in _OTHER_KINDS_VARS[kind]:
        raise _entry_error(where, field, value, f"a variable for a {kind.value} key: {value} belongs to another kind of "
                                                "target (production keys only for production, test keys never for it)")
    if not environ.get(value):
        raise _entry_error(where, field, value, f"an environment variable that is set: ${value} is unset or empty")
    return environ[value]


def load_accounts(path: Path, environ: Mapping[str, str] | None = None) -> list[Account]:
    """The fleet in ``path`` (module docstring), validated as a whole; ConfigError names entry and field."""
    environ = os.environ if environ is None else environ
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("--accounts", str(path), f"a readable TOML file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("--accounts", str(path), f"valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"account"})
    if unknown:
        raise ConfigError(unknown[0], "<table>", "only [[account]] tables at the top level of an accounts file")
    entries = data.get("account")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("account", entries if entries is None else "<not a list>",
                          "one or more [[account]] tables (name, target, key_var, secret_var)")
    accounts: list[Account] = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(entries, 1):
        where = f"account[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(where, "<not a table>", "an [[account]] table")
        name = entry.get("name")
        if isinstance(name, str) and NAME_PATTERN.fullmatch(name):
            where = f"account[{index}] {name!r}"
        for field in entry:
            if field not in FIELDS:
                value = "<redacted>" if any(m in field.lower() for m in ("key", "secret")) else entry[field]
                raise _entry_error(where, field, value, f"known fields: {', '.join(FIELDS)}"
                                   + ("; keys never go in the file, name their variables in key_var/secret_var"
                                      if any(m in field.lower() for m in ("key", "secret")) else ""))
        for field in REQUIRED:
            if field not in entry:
                raise _entry_error(where, field, None, f"required ({', '.join(REQUIRED)})")
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise _entry_error(where, "name", name, "1-64 letters, digits, _ . - (it names the account's log directory)")
        if name in seen:
            raise _entry_error(where, "name", name, f"a name used once (also {seen[name]})")
        seen[name] = f"account[{index}]"
        target = _target(where, entry["target"])
        key = _variable(where, "key_var", entry["key_var"], environ, target.kind)
        secret = _variable(where, "secret_var", entry["secret_var"], environ, target.kind)
        symbols = parse_symbols(entry.get("symbols"), field=f"{where}.symbols")
        accounts.append(Account(name, target, entry["key_var"], entry["secret_var"], key, secret, symbols))
    production_keys = {a.api_key: a.name for a in accounts if a.target.is_production}
    for account in accounts:
        if not account.target.is_production and account.api_key in production_keys:
            raise ConfigError(f"account {account.name!r}.key_var", account.key_var,
                              f"a key distinct from production account {production_keys[account.api_key]!r}'s "
                              "(one key cannot be both production and test)")
    return accounts


__all__ = ["Account", "load_accounts", "parse_symbols", "single_account"]
