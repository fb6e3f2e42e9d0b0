"""The liquidation engine: configuration, validation, the order-manager port, audit and the manager.

``harness.core`` imports nothing from HTTP clients, pytest, python-binance or Allure.
"""

from harness.core.audit import (
    AuditEvent,
    AuditFileError,
    AuditLog,
    AuditLogError,
    AuditLogger,
    AuditRecord,
    read_audit,
)
from harness.core.config import ENVIRONMENTS, PROFILES, LiquidationConfig, load_config
from harness.core.errors import (
    AmbiguousExchangeError,
    ConfigError,
    ExchangeError,
    HarnessError,
    RetryableExchangeError,
    TerminalExchangeError,
)
from harness.core.manager import LiquidationManager
from harness.core.outcome import LiquidationResult, LiquidationState, PositionOutcome, SymbolOutcome
from harness.core.ports import OrderExecutionManager
from harness.core.validation import ConfigValidator, Finding, Severity, ValidationReport

__all__ = [
    "ENVIRONMENTS",
    "PROFILES",
    "AmbiguousExchangeError",
    "AuditEvent",
    "AuditFileError",
    "AuditLog",
    "AuditLogError",
    "AuditLogger",
    "AuditRecord",
    "ConfigError",
    "ConfigValidator",
    "ExchangeError",
    "Finding",
    "HarnessError",
    "LiquidationConfig",
    "LiquidationManager",
    "LiquidationResult",
    "LiquidationState",
    "OrderExecutionManager",
    "PositionOutcome",
    "RetryableExchangeError",
    "Severity",
    "SymbolOutcome",
    "TerminalExchangeError",
    "ValidationReport",
    "load_config",
    "read_audit",
]
