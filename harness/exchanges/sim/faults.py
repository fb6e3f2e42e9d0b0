"""``FaultPlan``: what goes wrong, where and how often, for both simulator faces.

A plan is an ordered list of ``FaultRule``s. A rule matches a call by ``endpoint`` (an exact name
such as ``"POST /fapi/v1/order"`` or ``"execute_market_close"``, a path, or a category such as
``"new_order"``; ``None`` = any) and ``symbol`` (``None`` = any). ``times=N`` limits it to its first N
matches; ``probability=p`` makes it fire at random, drawn from ``random.Random(seed)`` so a run is
reproducible. Kinds:

==========================  =====================================================================
``latency``                 delay the call ``seconds``
``hang``                    block until ``release_hangs()`` (or ``seconds``, the maximum), then go on
``error``                   reject with HTTP ``status``, Binance ``code`` and ``msg`` (``retry_after``)
``unknown_status_executed`` execute the order, then answer 503 "Unknown error..." (or ``code=-1007``)
``lock_symbol``             reject every new order on ``symbol`` (terminal; default -1122)
``partial_fill``            a MARKET order fills only ``ratio`` of its quantity; the rest expires
``malformed_body``          HTTP only: truncated JSON (``executed=True``: after placing the order)
``html_body``               HTTP only: an HTML error page (default 502)
``connection_reset``        HTTP only: drop the connection without an answer
==========================  =====================================================================

The same plan can be written as JSON or TOML (``FaultPlan.from_file``)::

    {"seed": 7, "rules": [
      {"kind": "error", "endpoint": "new_order", "symbol": "BTCUSDT", "times": 2, "status": 503},
      {"kind": "latency", "endpoint": "positions", "seconds": 0.2, "probability": 0.5}]}
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from harness.core.errors import ConfigError

from ._endpoints import known_names
from ._hang import HangGate
from ._num import to_decimal

KINDS: tuple[str, ...] = (
    "latency", "hang", "error", "unknown_status_executed", "lock_symbol", "partial_fill",
    "malformed_body", "html_body", "connection_reset",
)
HTTP_ONLY_KINDS = frozenset({"malformed_body", "html_body", "connection_reset"})
OUTCOME_KINDS = frozenset({"error", "unknown_status_executed", "lock_symbol"}) | HTTP_ONLY_KINDS
#: kinds that only ever apply to a new order
_NEW_ORDER_KINDS = frozenset({"lock_symbol", "partial_fill", "unknown_status_executed"})
HANG_MAX_SECONDS = 30.0
SERVICE_UNAVAILABLE = "Service Unavailable."
UNKNOWN_ERROR = "Unknown error, please check your request or try again later."
TIMEOUT_UNKNOWN = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."

_DEFAULT_MSG: dict[int, str] = {
    -1001: "Internal error; unable to process your request. Please try again.",
    -1003: "Too many requests; current request has limited.",
    -1006: UNKNOWN_ERROR,
    -1007: TIMEOUT_UNKNOWN,
    -1008: "Server is currently overloaded with other requests. Please try again.",
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -1121: "Invalid symbol.",
    -1122: "Invalid symbol status.",
    -2015: "Invalid API-key, IP, or permissions for action.",
    -2019: "Margin is insufficient.",
    -2022: "ReduceOnly Order is rejected.",
    -4061: "Order's position side does not match user's setting.",
}


@dataclass(frozen=True)
class FaultRule:
    """One fault. See the module docstring for ``kind`` and the fields each kind uses."""

    kind: str
    endpoint: str | None = None
    symbol: str | None = None
    times: int | None = None
    probability: float | None = None
    seconds: float | None = None
    status: int | None = None
    code: int | None = None
    msg: str | None = None
    retry_after: int | None = None
    ratio: Decimal | None = None
    executed: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError("kind", self.kind, f"one of {', '.join(KINDS)}")
        if self.endpoint is not None and self.endpoint not in known_names():
            raise ConfigError("endpoint", self.endpoint,
                              "None (any), a category (new_order, cancel, positions, query, account, market_data), "
                              "an in-memory method (execute_market_close, ...) or 'METHOD /fapi/vN/path'")
        if self.symbol is not None and (not isinstance(self.symbol, str) or not self.symbol.isalnum()):
            raise ConfigError("symbol", self.symbol, "None (any) or a symbol such as 'BTCUSDT'")
        if self.times is not None and (isinstance(self.times, bool) or not isinstance(self.times, int)
                                       or self.times < 1):
            raise ConfigError("times", self.times, "None (every match) or an integer >= 1")
        if self.probability is not None and not (isinstance(self.probability, (int, float))
                                                 and 0.0 < self.probability <= 1.0):
            raise ConfigError("probability", self.probability, "None or a number in (0, 1]")
        self._check_kind_fields()

    def _check_kind_fields(self) -> None:
        set_ = object.__setattr__
        if self.kind in ("latency", "hang"):
            seconds = HANG_MAX_SECONDS if self.kind == "hang" and self.seconds is None else self.seconds
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 < seconds <= 3600:
                raise ConfigError("seconds", self.seconds, f"{self.kind}: a number of seconds in (0, 3600]")
            set_(self, "seconds", float(seconds))
        elif self.seconds is not None:
            raise ConfigError("seconds", self.seconds, f"only for latency and hang, not {self.kind}")
        if self.kind == "partial_fill":
            try:
                ratio = to_decimal(self.ratio, "ratio") if self.ratio is not None else None
            except ValueError:
                ratio = None
            if ratio is None or not 0 <= ratio < 1:
                raise ConfigError("ratio", self.ratio, "partial_fill: a decimal in [0, 1), e.g. '0.5'")
            set_(self, "ratio", ratio)
        elif self.ratio is not None:
            raise ConfigError("ratio", self.ratio, f"only for partial_fill, not {self.kind}")
        if self.kind == "lock_symbol" and self.symbol is None:
            raise ConfigError("symbol", None, "lock_symbol needs the symbol to lock")
        if self.executed and self.kind not in HTTP_ONLY_KINDS:
            raise ConfigError("executed", self.executed, "only for malformed_body, html_body, connection_reset")
        if self.retry_after is not None and (not isinstance(self.retry_after, int) or self.retry_after < 0):
            raise ConfigError("retry_after", self.retry_after, "None or whole seconds >= 0")
        if self.status is not None and (not isinstance(self.status, int) or not 200 <= self.status <= 599):
            raise ConfigError("status", self.status, "an HTTP status in 200..599")
        if self.code is not None and (not isinstance(self.code, int) or self.code >= 0):
            raise ConfigError("code", self.code, "None or a negative Binance error code such as -1021")
        if self.kind == "error":
            if self.status is None and self.code is None:
                raise ConfigError("status", None, "error needs an HTTP status, a Binance code, or both")
            status = self.status or (429 if self.code == -1003 else 503 if self.code in (-1006, -1007, -1008) else 400)
            set_(self, "status", status)
            if self.msg is None:
                default = SERVICE_UNAVAILABLE if status == 503 else f"HTTP {status}"
                set_(self, "msg", _DEFAULT_MSG.get(self.code or 0, default))
            if self.code is None:
                set_(self, "code", -1001 if status >= 500 else -1003 if status in (418, 429) else -1000)
        elif self.kind == "unknown_status_executed":
            code = self.code if self.code is not None else -1006
            if code not in (-1006, -1007):
                raise ConfigError("code", self.code, "unknown_status_executed: -1006 (503 'Unknown error...') or "
                                                     "-1007 (backend timeout)")
            set_(self, "code", code)
            set_(self, "status", self.status or 503)
            set_(self, "msg", self.msg or _DEFAULT_MSG[code])
        elif self.kind == "lock_symbol":
            set_(self, "code", self.code if self.code is not None else -1122)
            set_(self, "status", self.status or 400)
            set_(self, "msg", self.msg or _DEFAULT_MSG.get(self.code, "Invalid symbol status."))
        elif self.kind == "html_body":
            set_(self, "status", self.status or 502)
        elif self.kind == "malformed_body":
            set_(self, "status", self.status or 200)

    def answer(self) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Binance's reply for a rule that answers in JSON (``error``, ``lock_symbol``,
        ``unknown_status_executed``): HTTP status, ``{"code", "msg"}`` body, extra headers
        (``Retry-After``). Both the simulator's HTTP face and the fault proxy answer with it."""
        if self.kind not in ("error", "lock_symbol", "unknown_status_executed"):
            raise ValueError(f"a {self.kind} rule has no JSON answer")
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        default = 503 if self.kind == "unknown_status_executed" else 400
        return self.status or default, {"code": self.code, "msg": self.msg}, headers

    def to_dict(self) -> dict[str, Any]:
        """The rule as plain data (the file format), without defaulted-away fields."""
        data = {k: v for k, v in asdict(self).items() if v is not None and v is not False}
        if "ratio" in data:
            data["ratio"] = str(data["ratio"])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "rule") -> FaultRule:
        if not isinstance(data, Mapping):
            raise ConfigError(where, data, "a table/object with at least 'kind'")
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", data[unknown[0]], f"known fields: {', '.join(sorted(allowed))}")
        try:
            return cls(**dict(data))
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc.field}", exc.value, exc.allowed) from None
        except TypeError as exc:
            raise ConfigError(where, dict(data), f"a valid fault rule ({exc})") from None


@dataclass
class FaultDecision:
    """What a face must do with one call: the rules that fired, folded together."""

    latency: float = 0.0
    hang: FaultRule | None = None
    outcome: FaultRule | None = None
    fill_ratio: Decimal | None = None
    fired: list[FaultRule] = field(default_factory=list)


@dataclass(frozen=True)
class FiredFault:
    """One rule firing, for assertions: which rule, on which call and symbol, when (monotonic)."""

    rule: FaultRule
    call: str
    symbol: str | None
    at: float


class FaultPlan:
    """Ordered fault rules with per-rule counters and a seeded random source (thread-safe)."""

    def __init__(self, seed: int = 0, rules: Iterable[FaultRule] = ()) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError("seed", seed, "an integer")
        self.seed = seed
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._rules: list[list[Any]] = []  # [rule, times fired]
        self._history: list[FiredFault] = []
        self._gate = HangGate()
        for rule in rules:
            self.add(rule)

    # ------------------------------------------------------------ building
    def add(self, rule: FaultRule) -> FaultRule:
        if not isinstance(rule, FaultRule):
            raise ConfigError("rule", rule, "a FaultRule")
        with self._lock:
            self._rules.append([rule, 0])
        return rule

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules = [entry for entry in self._rules if entry[0] is not rule]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def latency(self, seconds: float, **match: Any) -> FaultRule:
        return self.add(FaultRule("latency", seconds=seconds, **match))

    def hang(self, *, max_seconds: float = HANG_MAX_SECONDS, **match: Any) -> FaultRule:
        return self.add(FaultRule("hang", seconds=max_seconds, **match))

    def error(self, status: int | None = None, code: int | None = None, msg: str | None = None, *,
              retry_after: int | None = None, **match: Any) -> FaultRule:
        return self.add(FaultRule("error", status=status, code=code, msg=msg, retry_after=retry_after, **match))

    def unknown_status_executed(self, *, code: int | None = None, **match: Any) -> FaultRule:
        return self.add(FaultRule("unknown_status_executed", code=code, **match))

    def lock_symbol(self, symbol: str, *, code: int | None = None, msg: str | None = None,
                    **match: Any) -> FaultRule:
        return self.add(FaultRule("lock_symbol", symbol=symbol, code=code, msg=msg, **match))

    def partial_fill(self, ratio: str | Decimal, **match: Any) -> FaultRule:
        return self.add(FaultRule("partial_fill", ratio=Decimal(str(ratio)), **match))

    def malformed_body(self, **match: Any) -> FaultRule:
        return self.add(FaultRule("malformed_body", **match))

    def html_body(self, **match: Any) -> FaultRule:
        return self.add(FaultRule("html_body", **match))

    def connection_reset(self, **match: Any) -> FaultRule:
        return self.add(FaultRule("connection_reset", **match))

    # ------------------------------------------------------------ reading
    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [entry[0] for entry in self._rules]

    @property
    def history(self) -> list[FiredFault]:
        with self._lock:
            return list(self._history)

    def fired(self, kind: str | None = None) -> int:
        """How many times rules (of ``kind``) fired."""
        with self._lock:
            return sum(1 for f in self._history if kind in (None, f.rule.kind))

    # ------------------------------------------------------------ matching
    def draw(self, names: Sequence[str], symbols: Iterable[str] | str | None = None, *,
             http: bool = False) -> FaultDecision:
        """Match one call; consumes counters and random draws.

        ``names``: what the call answers to, its exact name first; ``symbols``: the call's symbol(s).
        """
        decision = FaultDecision()
        if not self._rules:  # no plan: nothing to match (a rule added meanwhile applies from the next call)
            return decision
        symbol_list = [symbols] if isinstance(symbols, str) else list(symbols or ())
        symbol_set: frozenset[str] | None = None  # built when a rule names a symbol
        call = names[0] if names else "?"
        call_symbol = symbol_list[0] if len(symbol_list) == 1 else None
        with self._lock:
            for entry in self._rules:
                rule, count = entry
                # the rule's own conditions (inline: the HTTP face draws once per request), then
                # whether the decision still has room for its kind
                kind = rule.kind
                if (kind in HTTP_ONLY_KINDS and not http) or (rule.endpoint is not None
                                                              and rule.endpoint not in names):
                    continue
                if kind in _NEW_ORDER_KINDS and "new_order" not in names:
                    continue
                if rule.symbol is not None:
                    if symbol_set is None:
                        symbol_set = frozenset(symbol_list)
                    if rule.symbol not in symbol_set:
                        continue
                if not self._free_for(kind, decision):
                    continue
                if rule.times is not None and count >= rule.times:
                    continue
                if rule.probability is not None and self._random.random() >= rule.probability:
                    continue
                entry[1] = count + 1
                self._history.append(FiredFault(rule, call, rule.symbol or call_symbol, time.monotonic()))
                decision.fired.append(rule)
                if kind == "latency":
                    decision.latency += rule.seconds or 0.0
                elif kind == "hang":
                    decision.hang = rule
                elif kind == "partial_fill":
                    decision.fill_ratio = rule.ratio
                else:
                    decision.outcome = rule
        return decision

    @staticmethod
    def _free_for(kind: str, decision: FaultDecision) -> bool:
        """False when an earlier rule already took this kind's slot (one outcome, hang, fill ratio)."""
        if kind == "latency":
            return True
        if kind in OUTCOME_KINDS:
            return decision.outcome is None
        if kind == "hang":
            return decision.hang is None
        return not (kind == "partial_fill" and decision.fill_ratio is not None)

    # ------------------------------------------------------------ hangs
    def wait_hang(self, rule: FaultRule) -> bool:
        """Block this thread until ``release_hangs()`` (True) or the rule's maximum (False)."""
        return self._gate.wait_sync(rule.seconds or HANG_MAX_SECONDS)

    async def wait_hang_async(self, rule: FaultRule) -> bool:
        """Await ``release_hangs()`` (True) or the rule's maximum (False); cancellable."""
        return await self._gate.wait_async(rule.seconds or HANG_MAX_SECONDS)

    def release_hangs(self) -> int:
        """Release every call hung now (later hangs block again); how many were released."""
        return self._gate.release()

    @property
    def hung(self) -> int:
        """How many calls are hung right now."""
        return self._gate.waiting

    def wait_until_hung(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` calls are hung (True) or ``timeout`` passes (False)."""
        return self._gate.wait_waiting(count, timeout)

    # ------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [rule.to_dict() for rule in self.rules]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> FaultPlan:
        if not isinstance(data, Mapping):
            raise ConfigError("fault plan", data, "an object with 'seed' and 'rules'", source=source)
        unknown = sorted(set(data) - {"seed", "rules"})
        if unknown:
            raise ConfigError(unknown[0], data[unknown[0]], "known keys: seed, rules", source=source)
        rules_data = data.get("rules", [])
        if not isinstance(rules_data, list):
            raise ConfigError("rules", rules_data, "a list of rule objects", source=source)
        try:
            rules = [FaultRule.from_dict(item, where=f"rules[{i}]") for i, item in enumerate(rules_data)]
            return cls(seed=data.get("seed", 0), rules=rules)
        except ConfigError as exc:
            raise ConfigError(exc.field, exc.value, exc.allowed, source=source) from None

    @classmethod
    def from_file(cls, path: str | Path) -> FaultPlan:
        """Load a plan from ``.json`` or ``.toml``."""
        file = Path(path)
        suffix = file.suffix.lower()
        if suffix not in (".json", ".toml"):
            raise ConfigError("path", str(path), "a .json or .toml fault plan file")
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError("path", str(path), f"a readable file ({exc.strerror})") from None
        try:
            if suffix == ".json":
                data = json.loads(text)
            else:
                import tomllib

                data = tomllib.loads(text)
        except ValueError as exc:
            raise ConfigError("path", str(path), f"valid {suffix[1:].upper()} ({exc})") from None
        return cls.from_dict(data, source=str(path))
