"""Evidence levels: what a result was shown on, and who it was shown for.

Every result the harness's pytest plugin records carries the Allure label ``evidence`` (one of
:class:`Evidence`) and ``evidence_target`` (the exchange URL, or ``in-process``). A test that never
touched the run's target (it did not use the ``run_target`` fixture, directly or through
``exchange``) ran on the embedded exchange or an in-process face, and is labelled ``embedded``
whatever banner the run had. Beside the results the plugin writes ``harness-run.json``
(:class:`RunInfo`): the run's level, target, harness version, bot under test and config digest.

Only results with a testnet or Demo Trading level (plain or through a fault proxy) count towards
"READY FOR PRODUCTION"; ``production`` results are non-disruptive post-deployment checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

EVIDENCE_LABEL = "evidence"
EVIDENCE_TARGET_LABEL = "evidence_target"
RUN_FILE = "harness-run.json"
DEFAULT_BOT_COMMAND = "python -m harness.bot"


class Evidence(StrEnum):
    """Where a result was obtained, weakest first."""

    UNKNOWN = "unknown"  # results written without the harness plugin
    EMBEDDED = "embedded"  # the embedded exchange on 127.0.0.1 or an in-process face
    CUSTOM = "custom"  # an exchange URL that is neither Binance nor claimed to be testnet/demo
    TESTNET_PROXIED = "testnet-proxied"  # --testnet through a fault proxy / stand-in at --exchange-url
    DEMO_PROXIED = "demo-proxied"
    TESTNET = "testnet"
    DEMO = "demo"
    PRODUCTION = "production"  # non-disruptive checks only

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @property
    def is_exchange_evidence(self) -> bool:
        """True for testnet / Demo Trading (plain or proxied): evidence for production readiness."""
        return self in (Evidence.TESTNET, Evidence.DEMO, Evidence.TESTNET_PROXIED, Evidence.DEMO_PROXIED)

    @classmethod
    def parse(cls, value: object) -> Evidence:
        try:
            return cls(str(value))
        except ValueError:
            return cls.UNKNOWN


_DESCRIPTIONS = {
    Evidence.UNKNOWN: "unknown target (results without harness evidence labels)",
    Evidence.EMBEDDED: "the embedded exchange (simulator on 127.0.0.1 / in-process)",
    Evidence.CUSTOM: "a custom exchange URL (neither Binance nor claimed testnet/demo)",
    Evidence.TESTNET_PROXIED: "Binance futures testnet through a fault proxy",
    Evidence.DEMO_PROXIED: "Binance Demo Trading through a fault proxy",
    Evidence.TESTNET: "Binance futures testnet",
    Evidence.DEMO: "Binance Demo Trading",
    Evidence.PRODUCTION: "production (non-disruptive checks only)",
}


@dataclass(frozen=True)
class BotIdentity:
    """The bot under test as the report names it. Default: the reference bot, harness.bot."""

    command: str = DEFAULT_BOT_COMMAND
    version: str = ""  # version or git commit
    config_digest: str = ""  # sha256:<hex> of the effective LiquidationConfig (config_digest())

    @classmethod
    def default(cls, config: Mapping[str, Any] | None = None) -> BotIdentity:
        from harness import __version__

        return cls(DEFAULT_BOT_COMMAND, __version__, config_digest(config) if config is not None else "")

    @classmethod
    def from_dict(cls, data: Any) -> BotIdentity | None:
        if not isinstance(data, dict):
            return None
        return cls(str(data.get("command") or DEFAULT_BOT_COMMAND), str(data.get("version") or ""),
                   str(data.get("config_digest") or ""))

    def describe(self) -> str:
        parts = [f"`{self.command}`"]
        parts.append(f"version {self.version}" if self.version else "version unknown")
        parts.append(f"config {self.config_digest}" if self.config_digest else "config digest unknown")
        return ", ".join(parts)


def config_digest(config: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the configuration as canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(dict(config), sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RunInfo:
    """``harness-run.json``: one pytest run's evidence level and subject."""

    evidence: Evidence
    target: str  # "embedded exchange (127.0.0.1)", "testnet (https://...)", ...
    environment: str
    harness_version: str
    started: str = ""  # ISO 8601 UTC
    finished: str = ""
    exit_status: int | None = None
    bot: BotIdentity | None = None
    post_deploy: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evidence"] = self.evidence.value
        return data

    def write(self, directory: Path) -> Path:
        path = Path(directory) / RUN_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, directory: Path) -> RunInfo | None:
        """The run file in ``directory``; None when absent or unreadable."""
        path = Path(directory) / RUN_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        exit_status = data.get("exit_status")
        return cls(
            evidence=Evidence.parse(data.get("evidence")),
            target=str(data.get("target") or ""),
            environment=str(data.get("environment") or ""),
            harness_version=str(data.get("harness_version") or ""),
            started=str(data.get("started") or ""),
            finished=str(data.get("finished") or ""),
            exit_status=exit_status if isinstance(exit_status, int) else None,
            bot=BotIdentity.from_dict(data.get("bot")),
            post_deploy=bool(data.get("post_deploy")),
            extra=data.get("extra") if isinstance(data.get("extra"), dict) else {},
        )
