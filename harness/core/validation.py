"""ConfigValidator: the checklist's configuration review as findings with a severity.

Rules (../shared/CHECKLIST.md, "Configuration Validation"):
- types: bool / float / int per field (category ``type``);
- ranges: timeout_seconds 1.0-30.0, max_retries 0-10, retry_delay_seconds 0.1-5.0 (``range``);
- consistency: emergency_liquidation=False requires close_positions=False and cancel_orders=False;
- security review: production requires all three switches True (CRITICAL otherwise), and a
  dead-man's switch (``deadman_countdown_seconds`` > 0) or a WARNING says a killed bot's orders stay;
  a production liquidation limited to a symbol scope (``validate(config, symbols=[...])``) is a
  WARNING: positions and orders on any other symbol stay open at shutdown;
- dead-man's switch timing: on, its countdown is at least 1 s and the re-arm interval shorter than
  the countdown (``consistency``);
- environment notes: testnet is a WARNING "Testnet environment - proceed with testing";
- defaults: production below 5 s or 3 retries, high-latency below 10 s or 5 retries, and a backoff
  schedule whose sleeps alone exceed the timeout are WARNINGs.

``valid`` = no type, range or consistency error; ``ready`` = valid, no CRITICAL, and under strict
no WARNING either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import ValidationError

from harness.core.config import (
    ENVIRONMENTS,
    FIELD_TYPES,
    RANGES,
    SWITCHES,
    LiquidationConfig,
    check_deadman_timing,
    describe_allowed,
)
from harness.core.errors import ConfigError

TESTNET_WARNING = "Testnet environment - proceed with testing"
ERROR_CATEGORIES = frozenset({"type", "range", "consistency"})
PRODUCTION_MIN_TIMEOUT = 5.0
PRODUCTION_MIN_RETRIES = 3
HIGH_LATENCY_MIN_TIMEOUT = 10.0
HIGH_LATENCY_MIN_RETRIES = 5


class Severity(str, Enum):
    CRITICAL = "CRITICAL"
    WARNING = "WARNING"
    INFO = "INFO"


@dataclass(frozen=True)
class Finding:
    severity: Severity
    category: str  # type | range | consistency | security | environment | defaults
    field: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity.value, "category": self.category, "field": self.field, "message": self.message}


@dataclass
class ValidationReport:
    environment: str
    strict: bool
    findings: list[Finding] = field(default_factory=list)
    config: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        return not any(f.category in ERROR_CATEGORIES for f in self.findings)

    @property
    def ready(self) -> bool:
        if not self.valid or self.by_severity(Severity.CRITICAL):
            return False
        return not (self.strict and self.by_severity(Severity.WARNING))

    def by_severity(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity is severity]

    def by_category(self, category: str) -> list[Finding]:
        return [f for f in self.findings if f.category == category]

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "strict": self.strict,
            "valid": self.valid,
            "ready": self.ready,
            "config": self.config,
            "findings": [f.to_dict() for f in self.findings],
        }


def _category_of(error_type: str) -> str:
    if error_type in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        return "range"
    return "type"


class ConfigValidator:
    """Review a configuration for one environment. ``strict`` makes WARNINGs block readiness."""

    def __init__(self, env: str = "production", strict: bool = False) -> None:
        if env not in ENVIRONMENTS:
            raise ValueError(f"env={env!r}: allowed: {', '.join(ENVIRONMENTS)}")
        self.env = env
        self.strict = strict

    def validate(self, config: LiquidationConfig | Mapping[str, Any], *,
                 symbols: Sequence[str] | None = None) -> ValidationReport:
        """Findings for ``config`` (a LiquidationConfig, or raw field values as read from a source);
        ``symbols``: the liquidation's explicit scope, if any (None or empty: the whole account)."""
        report = ValidationReport(environment=self.env, strict=self.strict)
        if isinstance(config, LiquidationConfig):
            values = config.model_dump()
        else:
            values = {**LiquidationConfig().model_dump(), **dict(config)}
        report.findings.extend(self._type_and_range(values))
        report.config = values
        report.findings.extend(self._consistency(values))
        report.findings.extend(self._security(values))
        report.findings.extend(self._scope(symbols))
        report.findings.extend(self._environment())
        if not report.by_category("type") and not report.by_category("range"):
            report.findings.extend(self._defaults(LiquidationConfig(**values)))
        return report

    # -- rules -------------------------------------------------------------------------------
    @staticmethod
    def _type_and_range(values: Mapping[str, Any]) -> list[Finding]:
        findings: list[Finding] = []
        prepared = {
            k: float(v) if FIELD_TYPES.get(k) is float and isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in values.items()
        }
        try:
            LiquidationConfig(**prepared)
        except ValidationError as exc:
            for error in exc.errors():
                name = str((error.get("loc") or ("?",))[0])
                value = values.get(name)
                if error.get("type") == "extra_forbidden":
                    findings.append(Finding(Severity.CRITICAL, "type", name, f"{name}={value!r}: {describe_allowed(name)}"))
                    continue
                category = _category_of(str(error.get("type")))
                expected = FIELD_TYPES[name].__name__
                if category == "type":
                    message = f"{name}={value!r} has type {type(value).__name__}, expected {expected}"
                else:
                    low, high = RANGES[name]
                    message = f"{name}={value!r} is out of range {low}-{high}"
                findings.append(Finding(Severity.CRITICAL, category, name, message))
        return findings

    @staticmethod
    def _consistency(values: Mapping[str, Any]) -> list[Finding]:
        findings = ConfigValidator._deadman_timing(values)
        if values.get("emergency_liquidation") is not False:
            return findings
        return findings + [
            Finding(
                Severity.CRITICAL,
                "consistency",
                switch,
                f"{switch}=True contradicts emergency_liquidation=False (set {switch}=False too)",
            )
            for switch in ("close_positions", "cancel_orders")
            if values.get(switch) is True
        ]

    @staticmethod
    def _deadman_timing(values: Mapping[str, Any]) -> list[Finding]:
        countdown, interval = values.get("deadman_countdown_seconds"), values.get("deadman_interval_seconds")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (countdown, interval)):
            return []  # a type error, reported by the type rule
        try:
            check_deadman_timing(countdown, interval)
        except ConfigError as exc:
            return [Finding(Severity.CRITICAL, "consistency", exc.field, str(exc))]
        return []

    def _security(self, values: Mapping[str, Any]) -> list[Finding]:
        findings = []
        if self.env == "production" and values.get("deadman_countdown_seconds") == 0:
            findings.append(Finding(
                Severity.WARNING, "security", "deadman_countdown_seconds",
                "dead-man's switch is off in production (deadman_countdown_seconds=0): a bot that is killed "
                "or loses power leaves its orders working on Binance",
            ))
        for switch in SWITCHES:
            if values.get(switch) is True:
                continue
            if self.env == "production":
                findings.append(
                    Finding(Severity.CRITICAL, "security", switch, f"{switch} must be True in production (security review)")
                )
            elif switch == "emergency_liquidation":
                findings.append(
                    Finding(
                        Severity.WARNING,
                        "security",
                        switch,
                        "emergency liquidation is disabled: positions stay open on shutdown",
                    )
                )
        return findings

    def _scope(self, symbols: Sequence[str] | None) -> list[Finding]:
        scope = [s for s in (symbols or []) if s]
        if self.env != "production" or not scope:
            return []
        return [Finding(
            Severity.WARNING, "security", "symbols",
            f"liquidation is limited to {','.join(scope)} in production: positions and orders on any other symbol "
            "stay open at shutdown (listed as out of scope, not closed); drop the scope to cover the whole account",
        )]

    def _environment(self) -> list[Finding]:
        if self.env == "testnet":
            return [Finding(Severity.WARNING, "environment", None, TESTNET_WARNING)]
        if self.env == "production":
            return []
        return [Finding(Severity.INFO, "environment", None, f"{self.env} environment profile in use")]

    def _defaults(self, config: LiquidationConfig) -> list[Finding]:
        findings: list[Finding] = []
        minimums = {
            "production": (PRODUCTION_MIN_TIMEOUT, PRODUCTION_MIN_RETRIES),
            "high-latency": (HIGH_LATENCY_MIN_TIMEOUT, HIGH_LATENCY_MIN_RETRIES),
        }.get(self.env)
        if minimums and config.emergency_liquidation:
            min_timeout, min_retries = minimums
            if config.timeout_seconds < min_timeout:
                findings.append(
                    Finding(
                        Severity.WARNING,
                        "defaults",
                        "timeout_seconds",
                        f"timeout_seconds={config.timeout_seconds:g} is below the {min_timeout:g}s recommended for {self.env}",
                    )
                )
            if config.max_retries < min_retries:
                findings.append(
                    Finding(
                        Severity.WARNING,
                        "defaults",
                        "max_retries",
                        f"max_retries={config.max_retries} is below the {min_retries} recommended for {self.env}",
                    )
                )
        sleeps = sum(config.backoff_schedule())
        if sleeps > config.timeout_seconds:
            findings.append(
                Finding(
                    Severity.WARNING,
                    "defaults",
                    "retry_delay_seconds",
                    f"backoff sleeps alone take {sleeps:g}s (retry_delay_seconds={config.retry_delay_seconds:g}, "
                    f"max_retries={config.max_retries}), more than timeout_seconds={config.timeout_seconds:g}: "
                    "the last retries can never run",
                )
            )
        return findings


__all__ = ["ConfigValidator", "Finding", "Severity", "TESTNET_WARNING", "ValidationReport"]
