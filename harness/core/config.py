"""LiquidationConfig: the six settings of an emergency liquidation (plus the bot's dead-man's
switch timing), profiles, and loading.

Precedence, lowest first: the environment's profile -> a TOML file -> ``LIQUIDATION_<FIELD>``
variables -> ``EMERGENCY_LIQUIDATION_DISABLED=true`` (the rollback switch: all three switches off).

Values are validated by pydantic in strict mode: a TOML string for a bool or an int for a float
where a bool is meant is a type error; an environment variable (always text) is parsed per field
("true"/"false", "5.0", "3") and then validated the same way. Every failure raises ``ConfigError``
naming the field, the value, where it came from and what is allowed.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from harness.core.errors import ConfigError

log = logging.getLogger("harness.config")

#: (low, high) inclusive ranges, shared by the model, the validator and error messages
RANGES: dict[str, tuple[float, float]] = {
    "timeout_seconds": (1.0, 30.0),
    "max_retries": (0, 10),
    "retry_delay_seconds": (0.1, 5.0),
    "deadman_countdown_seconds": (0.0, 3600.0),
    "deadman_interval_seconds": (0.1, 600.0),
}
SWITCHES: tuple[str, ...] = ("emergency_liquidation", "close_positions", "cancel_orders")
FIELD_TYPES: dict[str, type] = {
    "emergency_liquidation": bool,
    "close_positions": bool,
    "cancel_orders": bool,
    "timeout_seconds": float,
    "max_retries": int,
    "retry_delay_seconds": float,
    "deadman_countdown_seconds": float,
    "deadman_interval_seconds": float,
}
ENV_PREFIX = "LIQUIDATION_"
#: the bot-under-test contract's non-field variables (DESIGN.md): a bot reads them, the config loader
#: passes them by; any other unknown LIQUIDATION_* name stays an error (the typo guard)
RESERVED_ENV_NAMES = ("LIQUIDATION_EXCHANGE_URL", "LIQUIDATION_LOG_DIR", "LIQUIDATION_SYMBOLS")
ROLLBACK_VARIABLE = "EMERGENCY_LIQUIDATION_DISABLED"
ENVIRONMENT_VARIABLE = "TRADING_ENV"
DEFAULT_ENVIRONMENT = "production"


class LiquidationConfig(BaseModel):
    """Settings of one emergency liquidation. ``LiquidationConfig()`` is the production profile."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    emergency_liquidation: bool = True
    close_positions: bool = True
    cancel_orders: bool = True
    timeout_seconds: float = Field(default=5.0, ge=RANGES["timeout_seconds"][0], le=RANGES["timeout_seconds"][1])
    max_retries: int = Field(default=3, ge=RANGES["max_retries"][0], le=RANGES["max_retries"][1])
    retry_delay_seconds: float = Field(
        default=0.5, ge=RANGES["retry_delay_seconds"][0], le=RANGES["retry_delay_seconds"][1]
    )
    #: the bot's dead-man's switch (Binance countdownCancelAll, see harness.bot.deadman): the countdown it
    #: keeps armed per symbol (0 = off) and how often it re-arms (must be shorter than the countdown)
    deadman_countdown_seconds: float = Field(
        default=120.0, ge=RANGES["deadman_countdown_seconds"][0], le=RANGES["deadman_countdown_seconds"][1]
    )
    deadman_interval_seconds: float = Field(
        default=30.0, ge=RANGES["deadman_interval_seconds"][0], le=RANGES["deadman_interval_seconds"][1]
    )

    def summary(self) -> str:
        """The checklist's one-line form: ``emergency_liquidation=True, timeout=5s, retries=3``."""
        return (
            f"emergency_liquidation={self.emergency_liquidation}, "
            f"timeout={self.timeout_seconds:g}s, retries={self.max_retries}"
        )

    def backoff_schedule(self) -> list[float]:
        """The sleeps between attempts: retry_delay_seconds * 2^(attempt-1) for each retry."""
        return [self.retry_delay_seconds * 2 ** (attempt - 1) for attempt in range(1, self.max_retries + 1)]


#: named profiles; every one is a complete, valid configuration
PROFILES: dict[str, dict[str, Any]] = {
    "production": {},
    "testnet": {},
    "development": {},
    "high-latency": {"timeout_seconds": 15.0, "max_retries": 5, "retry_delay_seconds": 0.25},
}
ENVIRONMENTS: tuple[str, ...] = tuple(PROFILES)


#: the shortest dead-man's switch countdown worth arming (0 turns the switch off)
DEADMAN_MIN_COUNTDOWN_SECONDS = 1.0


def check_deadman_timing(countdown_seconds: float, interval_seconds: float) -> None:
    """ConfigError unless the switch is off (countdown 0) or its countdown is at least 1 s and the
    re-arm interval is shorter than the countdown (else it fires while the bot is alive)."""
    if countdown_seconds == 0:
        return
    if countdown_seconds < DEADMAN_MIN_COUNTDOWN_SECONDS:
        raise ConfigError("deadman_countdown_seconds", countdown_seconds,
                          f"0 (off) or at least {DEADMAN_MIN_COUNTDOWN_SECONDS:g} seconds")
    if not 0 < interval_seconds < countdown_seconds:
        raise ConfigError("deadman_interval_seconds", interval_seconds,
                          f"more than 0 and less than deadman_countdown_seconds={countdown_seconds:g}, "
                          "or the switch fires while the bot is alive")


def describe_allowed(field: str) -> str:
    """What ``field`` accepts, for error messages."""
    if field in RANGES:
        low, high = RANGES[field]
        kind = FIELD_TYPES[field].__name__
        return f"allowed: {kind} from {low} to {high}"
    if field in FIELD_TYPES:
        return "allowed: true or false"
    return f"unknown field; allowed fields: {', '.join(FIELD_TYPES)}"


def _error_from_validation(exc: ValidationError, values: Mapping[str, Any], sources: Mapping[str, str]) -> ConfigError:
    first = exc.errors()[0]
    loc = first.get("loc") or ("?",)
    field = str(loc[0])
    value = values.get(field, first.get("input"))
    if first.get("type") == "extra_forbidden":
        allowed = describe_allowed(field)
    else:
        allowed = f"{first.get('msg', 'invalid')}; {describe_allowed(field)}"
    return ConfigError(field, value, allowed, source=sources.get(field))


def build_config(values: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> LiquidationConfig:
    """Validate ``values`` into a LiquidationConfig, or raise ConfigError for the first bad field.

    Ints are accepted for float fields (TOML ``timeout_seconds = 5``); nothing else is coerced.
    """
    sources = sources or {}
    prepared = dict(values)
    for field, kind in FIELD_TYPES.items():
        value = prepared.get(field)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            prepared[field] = float(value)
    try:
        return LiquidationConfig(**prepared)
    except ValidationError as exc:
        raise _error_from_validation(exc, values, sources) from None


def profile(environment: str) -> dict[str, Any]:
    """The profile's full set of field values for ``environment``."""
    if environment not in PROFILES:
        raise ConfigError("environment", environment, f"allowed: {', '.join(ENVIRONMENTS)}", source=ENVIRONMENT_VARIABLE)
    return {**LiquidationConfig().model_dump(), **PROFILES[environment]}


def read_toml(path: str | Path) -> dict[str, Any]:
    """Field values from a TOML file: top-level keys, or the same keys under a ``[liquidation]`` table."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("config_file", str(path), "file does not exist") from None
    except OSError as exc:
        raise ConfigError("config_file", str(path), f"cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config_file", str(path), f"malformed TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError("config_file", str(path), f"not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:  # tomllib lets some values through unwrapped, e.g. a 5,000-digit integer
        raise ConfigError("config_file", str(path), f"malformed TOML: {str(exc)[:80]}") from None
    if "liquidation" in data:
        extra = sorted(set(data) - {"liquidation"})
        if extra:
            raise ConfigError(extra[0], data[extra[0]], describe_allowed(extra[0]), source=str(path))
        data = data["liquidation"]
        if not isinstance(data, dict):
            raise ConfigError("liquidation", data, "must be a table of fields", source=str(path))
    for key in data:
        if key not in FIELD_TYPES:
            raise ConfigError(key, data[key], describe_allowed(key), source=str(path))
    return dict(data)


def _parse_env_value(field: str, raw: str, variable: str) -> Any:
    kind = FIELD_TYPES[field]
    try:
        return TypeAdapter(kind).validate_python(raw.strip(), strict=False)
    except ValidationError:
        allowed = "allowed: true or false" if kind is bool else describe_allowed(field)
        raise ConfigError(field, raw, f"not a valid {kind.__name__}; {allowed}", source=variable) from None


def parse_bool_flag(name: str, raw: str | None) -> bool:
    """A boolean environment flag (true/false/1/0/yes/no/on/off); unset or empty is False."""
    if raw is None or raw.strip() == "":
        return False
    try:
        return TypeAdapter(bool).validate_python(raw.strip(), strict=False)
    except ValidationError:
        raise ConfigError(name, raw, "allowed: true or false", source=name) from None


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``LIQUIDATION_<FIELD>`` variables parsed to typed values; an unknown LIQUIDATION_ name is an error
    (except the contract's ``RESERVED_ENV_NAMES``, which are not configuration fields)."""
    values: dict[str, Any] = {}
    for variable, raw in environ.items():
        if not variable.startswith(ENV_PREFIX) or variable in RESERVED_ENV_NAMES:
            continue
        field = variable[len(ENV_PREFIX):].lower()
        if field not in FIELD_TYPES:
            raise ConfigError(field, raw, describe_allowed(field), source=variable)
        values[field] = _parse_env_value(field, raw, variable)
    return values


def load_raw(
    environment: str | None = None,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Merge profile, file, env and rollback switch without validating ranges.

    Returns (environment, values, sources) where sources names where each non-default value came
    from. Parsing errors (bad TOML, unknown keys, text that is not a bool or number) raise ConfigError.
    """
    environ = os.environ if environ is None else environ
    environment = environment or environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_ENVIRONMENT
    values = profile(environment)
    sources = {field: f"profile {environment}" for field in values}
    if config_file is not None:
        file_values = read_toml(config_file)
        values.update(file_values)
        sources.update({field: str(config_file) for field in file_values})
    overrides = env_overrides(environ)
    values.update(overrides)
    sources.update({field: ENV_PREFIX + field.upper() for field in overrides})
    if parse_bool_flag(ROLLBACK_VARIABLE, environ.get(ROLLBACK_VARIABLE)):
        for switch in SWITCHES:
            values[switch] = False
            sources[switch] = ROLLBACK_VARIABLE
        log.critical(
            "%s=true: emergency liquidation DISABLED (rollback switch); positions will NOT be closed on shutdown",
            ROLLBACK_VARIABLE,
        )
    return environment, values, sources


def load_config(
    environment: str | None = None,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LiquidationConfig:
    """The effective configuration for ``environment`` (default: $TRADING_ENV or production)."""
    _, values, sources = load_raw(environment, config_file, environ)
    return build_config(values, sources)
