"""AuditLogger: an append-only JSONL trail of every liquidation, linked by correlation ids.

One JSON object per line::

    {"timestamp": "2026-11-25T10:00:00.123456+00:00", "event_type": "LIQUIDATION_START",
     "correlation_id": "3f2a...", "details": {...}}

Each line is encoded first and written with a single ``os.write`` on an ``O_APPEND`` descriptor, so
a line is never interleaved with another and a crash leaves at most one torn last line. The file is
fsynced after ``LIQUIDATION_COMPLETE``. A failed write is logged to the application log and counted
(``write_errors``); it never raises into the liquidation. Keys that look like secrets are redacted,
and values registered with ``register_secret`` are masked wherever they appear.

``read_audit`` is the one reader of this format (the report's run summaries build on it): it turns
each line into an ``AuditRecord`` and skips, counts and names a torn or corrupt line.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

log = logging.getLogger("harness.audit")

DEFAULT_AUDIT_PATH = Path("logs/audit.jsonl")
REDACTED = "***"
_SECRET_KEY_MARKERS = ("secret", "signature", "api_key", "apikey", "password", "token", "private_key")


#: values that can hold no secret and no secret-named key: encoded as they are
_PLAIN = frozenset({int, float, bool, type(None), Decimal})


@functools.lru_cache(maxsize=4096)  # a liquidation writes hundreds of events with the same few dozen keys
def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_KEY_MARKERS)


class AuditEvent(str, Enum):
    LIQUIDATION_START = "LIQUIDATION_START"
    POSITIONS_FETCHED = "POSITIONS_FETCHED"
    POSITIONS_FETCH_FAILED = "POSITIONS_FETCH_FAILED"
    POSITIONS_UNREADABLE = "POSITIONS_UNREADABLE"
    OPEN_ORDERS_FETCH_FAILED = "OPEN_ORDERS_FETCH_FAILED"
    ORDER_DISCOVERY_UNAVAILABLE = "ORDER_DISCOVERY_UNAVAILABLE"
    OUT_OF_SCOPE_LEFT_OPEN = "OUT_OF_SCOPE_LEFT_OPEN"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    ORDER_CANCEL_FAILED = "ORDER_CANCEL_FAILED"
    ORDER_PLACED = "ORDER_PLACED"
    ORDER_REJECTED = "ORDER_REJECTED"
    LIQUIDATION_DEADLINE_EXCEEDED = "LIQUIDATION_DEADLINE_EXCEEDED"
    LIQUIDATION_COMPLETE = "LIQUIDATION_COMPLETE"


class AuditLogError(HarnessError, OSError):
    """The audit trail cannot be opened for appending."""


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


class AuditLogger:
    """Append audit events to ``path`` (default logs/audit.jsonl; its directory is created, owner-only)."""

    def __init__(self, path: str | Path = DEFAULT_AUDIT_PATH, *, fsync_events: tuple[str, ...] = (AuditEvent.LIQUIDATION_COMPLETE.value,)) -> None:
        self.path = Path(path)
        self.fsync_events = frozenset(fsync_events)
        self.event_types: tuple[str, ...] = tuple(e.value for e in AuditEvent)
        self.write_errors = 0
        self.events_written = 0
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._open()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise AuditLogError(f"audit log {self.path} is not writable: {exc.strerror or exc}") from None

    def register_secret(self, value: str | None) -> None:
        """Mask ``value`` wherever it would appear in an audit line (API keys, secrets)."""
        if value and len(value) >= 6:
            self._secrets.add(value)

    def _redact(self, value: Any, key: str = "") -> Any:
        """``value`` with secret-named keys masked and registered secrets cut out of its strings.
        Numbers, booleans and None (most of a liquidation's values) are passed without a call."""
        if key and _is_secret_key(key):
            return REDACTED
        if type(value) is str:
            return self._scrub(value)
        if isinstance(value, Mapping):
            out = {}
            for k, v in value.items():
                name = k if type(k) is str else str(k)
                out[name] = REDACTED if _is_secret_key(name) else (v if type(v) in _PLAIN else self._redact(v))
            return out
        if isinstance(value, (list, tuple)):
            return [v if type(v) in _PLAIN else self._redact(v) for v in value]
        if isinstance(value, str):  # a str subclass
            return self._scrub(value)
        return value

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def encode(self, event_type: str, correlation_id: str | None, details: Mapping[str, Any] | None = None) -> bytes:
        """The exact bytes ``log`` appends for this event (one line, newline-terminated)."""
        record = {
            "timestamp": datetime.now(UTC).isoformat(),
            "event_type": AuditEvent(event_type).value if event_type in AuditEvent._value2member_map_ else str(event_type),
            "correlation_id": correlation_id,
            "details": self._redact(dict(details or {})),
        }
        return (json.dumps(record, default=_json_default, separators=(",", ":")) + "\n").encode("utf-8")

    def log(self, event_type: str | AuditEvent, correlation_id: str | None, details: Mapping[str, Any] | None = None) -> bool:
        """Append one event; True when written. Never raises: failures are logged and counted."""
        name = event_type.value if isinstance(event_type, AuditEvent) else str(event_type)
        try:
            line = self.encode(name, correlation_id, details)
            with self._lock:
                if self._fd is None:
                    self._open()
                assert self._fd is not None
                written = os.write(self._fd, line)
                if written != len(line):
                    raise OSError(f"short write: {written} of {len(line)} bytes")
                if name in self.fsync_events:
                    os.fsync(self._fd)
            self.events_written += 1
            return True
        except Exception as exc:  # an audit failure must never stop a liquidation
            self.write_errors += 1
            log.error("audit write failed for %s (%s): %s", name, correlation_id, exc)
            return False

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                try:
                    os.close(self._fd)
                finally:
                    self._fd = None

    def __enter__(self) -> AuditLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:
            pass


class AuditFileError(HarnessError):
    """The audit file (or the logs directory to bundle) does not exist or cannot be read."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"{str(path)!r}: {problem}")


@dataclass(frozen=True)
class AuditRecord:
    """One parsed audit line. ``event_type`` is kept as written: an :class:`AuditEvent` value for
    the engine's events, any other non-empty name for lines other writers added."""

    timestamp: datetime
    event_type: str
    correlation_id: str | None
    details: dict[str, Any]
    line: int  # 1-based line number in the file

    def to_dict(self) -> dict[str, Any]:
        """The record in the audit line's shape (timestamp as ISO 8601 text)."""
        return {"timestamp": self.timestamp.isoformat(), "event_type": self.event_type,
                "correlation_id": self.correlation_id, "details": dict(self.details)}


@dataclass(frozen=True)
class AuditLog:
    """Every readable record of one audit file, and what was skipped (``warnings`` name each line)."""

    path: Path
    records: tuple[AuditRecord, ...]
    skipped_lines: int = 0
    warnings: tuple[str, ...] = ()


def read_audit(path: str | Path) -> AuditLog:
    """Parse an audit file tolerantly: the trail is read most urgently exactly when something went
    wrong. A torn last line (a crash mid-write), a corrupt line (bad JSON, bad UTF-8, a 5,000-digit
    number, ``[[[[`` nested too deep, no ``event_type``, a timestamp that is not ISO 8601) is skipped,
    counted and warned about, never fatal. A missing or unreadable file is an ``AuditFileError``."""
    file = Path(path)
    if not file.is_file():
        raise AuditFileError(file, "audit file does not exist (is the bot writing logs/audit.jsonl?)")
    records: list[AuditRecord] = []
    warnings: list[str] = []
    try:
        with file.open(encoding="utf-8", errors="replace") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                record, problem = _parse_line(text, number)
                if record is not None:
                    records.append(record)
                else:
                    message = f"{file.name}:{number}: torn or corrupt line skipped ({problem})"
                    log.warning(message)
                    warnings.append(message)
    except OSError as exc:
        raise AuditFileError(file, f"cannot be read: {exc}") from exc
    return AuditLog(file, tuple(records), len(warnings), tuple(warnings))


def _parse_line(text: str, number: int) -> tuple[AuditRecord | None, str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg}"
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, [[[[... nested too deep
        return None, f"unreadable JSON: {type(exc).__name__}"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    event_type = data.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        return None, "no event_type"
    try:
        timestamp = _parse_time(data.get("timestamp"))
    except ValueError as exc:
        return None, str(exc)
    correlation = data.get("correlation_id")
    details = data.get("details")
    return AuditRecord(
        timestamp=timestamp,
        event_type=event_type,
        correlation_id=str(correlation) if correlation else None,
        details=details if isinstance(details, dict) else {},
        line=number,
    ), ""


def _parse_time(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise ValueError(f"timestamp={raw!r}: expected an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp={raw!r}: not ISO 8601") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
