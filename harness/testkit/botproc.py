"""BotProcess: the trading bot as a real subprocess, started, signalled and read back.

    bot = BotProcess(log_dir, exchange_url=url, symbols=["BTCUSDT"], env={...}).start()
    run = bot.stop()          # SIGTERM, wait, collect
    run.returncode, run.result["state"], run.audit, run.stop_seconds

Readiness is the bot's ``READY pid=N`` stdout line, read by a thread and handed over a queue (no
sleeping). Keys are passed in the environment, never on the command line.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.audit import AuditRecord, read_audit

READY_PREFIX = "READY pid="
#: variables a bot subprocess inherits; everything else (including any real keys) is dropped
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "SYSTEMROOT", "TMPDIR", "VIRTUAL_ENV")


@dataclass
class BotRun:
    """What a bot process left behind."""

    returncode: int
    stdout: str
    stderr: str
    log_dir: Path
    stop_seconds: float  # from the signal to the process's exit
    audit: tuple[AuditRecord, ...] = ()
    result: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def trading_log(self) -> str:
        path = self.log_dir / "trading.log"
        return path.read_text(encoding="utf-8") if path.exists() else ""

    @property
    def exit_description(self) -> str:
        """How the bot ended, for failure messages: ``exit by signal 15 (SIGTERM), no verdict (...)``
        when a signal killed it before it wrote liquidation-result.json, else its code and state."""
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = "unknown signal"
            how = f"exit by signal {-self.returncode} ({name})"
        else:
            how = f"exit code {self.returncode}"
        if not self.result:
            return (f"{how}, no verdict: liquidation-result.json was never written (the bot did not liquidate; "
                    "did it install its signal handlers?)")
        return f"{how}, state {self.result.get('state')}"

    def events(self, correlation_id: str | None = None) -> list[AuditRecord]:
        cid = correlation_id or self.result.get("correlation_id")
        return [r for r in self.audit if r.correlation_id == cid]

    def event_types(self, correlation_id: str | None = None) -> list[str]:
        return [r.event_type for r in self.events(correlation_id)]


class BotProcess:
    """``python -m harness.bot`` with its own log directory."""

    #: every started bot not yet reaped, so a test harness can kill what a failed test left running
    _live: list[BotProcess] = []

    @classmethod
    def kill_all(cls) -> int:
        """Kill every bot this process started that is still running; returns how many were killed."""
        killed = 0
        while cls._live:
            bot = cls._live.pop()
            if bot.proc is not None and bot.proc.poll() is None:
                bot.kill()
                killed += 1
        return killed

    def __init__(
        self,
        log_dir: Path,
        *,
        exchange_url: str | None = None,
        testnet: bool = False,
        symbols: list[str] | None = None,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        environment: str = "testnet",
    ) -> None:
        self.log_dir = Path(log_dir)
        command = [sys.executable, "-m", "harness.bot", "--log-dir", str(self.log_dir), "--env", environment]
        if exchange_url:
            command += ["--exchange-url", exchange_url]
        if testnet:
            command.append("--testnet")
        if symbols:
            command += ["--symbols", ",".join(symbols)]
        self.command = command + list(args or [])
        self.env = {k: os.environ[k] for k in INHERITED if k in os.environ}
        self.env.update(env or {})
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stdout: list[str] = []

    def start(self, timeout: float = 30.0) -> BotProcess:
        """Start the bot and wait until it says READY; raises with its output if it does not."""
        self.proc = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env, start_new_session=True
        )
        BotProcess._live.append(self)
        threading.Thread(target=self._pump, daemon=True).start()
        if not self.wait_for_output(READY_PREFIX, timeout):
            self.kill()
            _, err = self.proc.communicate(timeout=5)
            raise RuntimeError(f"bot did not become ready within {timeout}s (exit {self.proc.returncode}):\n{err[-4000:]}")
        return self

    def wait_for_output(self, prefix: str, timeout: float = 10.0) -> bool:
        """Wait for a stdout line starting with ``prefix``; False on timeout or when the bot has exited."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                return False
            if line is None:
                return False
            if line.startswith(prefix):
                return True

    @property
    def output(self) -> list[str]:
        """Every stdout line the bot has printed so far."""
        return [line.rstrip("\n") for line in self._stdout]

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._stdout.append(line)
            self._lines.put(line.strip())
        self._lines.put(None)

    def send_signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> BotRun:
        """Send ``signum`` and wait for the exit; a bot still alive after ``timeout`` is killed and reported."""
        assert self.proc is not None, "start() first"
        started = time.monotonic()
        self.send_signal(signum)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"bot did not exit within {timeout}s of {signal.Signals(signum).name}: shutdown hangs") from None
        return self.collect(time.monotonic() - started)

    def collect(self, stop_seconds: float = 0.0) -> BotRun:
        assert self.proc is not None
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        payload: dict[str, Any] = {}
        result_path = self.log_dir / "liquidation-result.json"
        if result_path.exists():
            payload = json.loads(result_path.read_text(encoding="utf-8"))
        audit_path = self.log_dir / "audit.jsonl"
        return BotRun(
            returncode=int(self.proc.returncode if self.proc.returncode is not None else -1),
            stdout="".join(self._stdout),
            stderr=stderr,
            log_dir=self.log_dir,
            stop_seconds=stop_seconds,
            audit=read_audit(audit_path).records if audit_path.exists() else (),
            result=payload.get("result", {}),
            metrics=payload.get("metrics", {}),
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
