"""The bot under test as a real subprocess: started under the bot-under-test contract, signalled, read back.

    spec = BotUnderTest.from_options(cmd="python src/main.py", cwd="/srv/bot")   # default: python -m harness.bot
    bot = BotProcess(log_dir, exchange_url=url, symbols=["BTCUSDT"], env=keys, spec=spec).start()
    run = bot.stop()          # the stop signal (SIGTERM), wait, collect
    run.returncode, run.audit, run.stop_seconds, run.result (harness.bot's result file: optional evidence)

The contract (README "Verify your own bot", DESIGN.md): the command (argv, shlex-split, no shell)
runs in ``cwd`` with only this environment (plus PATH, HOME, locale and Python's own variables):
``TRADING_ENV``, the target's key variables, ``LIQUIDATION_EXCHANGE_URL`` (exchange root),
``LIQUIDATION_LOG_DIR``, ``LIQUIDATION_<FIELD>`` / ``EMERGENCY_LIQUIDATION_DISABLED=true`` for the
scenario's configuration and ``LIQUIDATION_SYMBOLS`` only when the scenario scopes the bot.

Readiness is whichever comes first: a stdout line starting with the ready prefix (``READY``), the
file ``$LIQUIDATION_LOG_DIR/bot.ready``, or (embedded exchange only, when the caller gives
``request_seen``) the bot's first signed request plus ``REQUEST_GRACE_SECONDS``. Every way a bot
can break the contract (no such program, exits at once, never ready, hangs on the stop signal)
raises ``BotContractError`` (an AssertionError: a failed check, not a harness error) naming the
cause and the bot's stderr tail, and never leaves a process behind: the bot runs in its own
process group, which is killed whenever the bot is stopped, killed or found hanging.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.audit import AuditFileError, AuditRecord, read_audit
from harness.core.errors import ConfigError

READY_PREFIX = "READY"
READY_FILE = "bot.ready"
AUDIT_FILE = "audit.jsonl"
RESULT_FILE = "liquidation-result.json"
#: after the bot's first signed request, readiness by request waits this long for its set-up to finish
REQUEST_GRACE_SECONDS = 1.0
DEFAULT_READY_TIMEOUT = 30.0
#: how the bot may announce readiness: any of the three, only the stdout line, only the file, only a request
READY_MODES = ("any", "stdout", "file", "request")
STDERR_TAIL = 4000
#: variables a bot subprocess inherits; everything else (including any real keys) is dropped
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "SYSTEMROOT", "TMPDIR", "VIRTUAL_ENV")
_POLL_SECONDS = 0.05


class BotContractError(AssertionError):
    """The bot under test did not honour the contract (start-up, readiness, stop); the message says how."""


def _signal_by_name(text: str, option: str) -> signal.Signals:
    name = text.strip().upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return signal.Signals[name]
    except KeyError:
        raise ConfigError(option, text, "a signal name such as SIGTERM, SIGINT or SIGHUP") from None


def describe_exit(returncode: int | None) -> str:
    """``exit code 1`` / ``killed by signal SIGKILL (exit status -9)`` / ``still running``."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by signal {name} (exit status {returncode})"
    return f"exit code {returncode}"


def git_version(directory: Path) -> str:
    """The git commit checked out in ``directory`` (with ``-dirty`` when it has changes), else ``unknown``."""
    try:
        head = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


@dataclass(frozen=True)
class BotUnderTest:
    """Which bot the scenarios judge and how it is driven. ``command`` empty = the reference bot
    ``python -m harness.bot`` (the default bot under test)."""

    command: tuple[str, ...] = ()
    cwd: Path | None = None
    ready_mode: str = "any"
    ready_prefix: str = READY_PREFIX
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    stop_signal: signal.Signals = signal.SIGTERM
    metrics_url: str | None = None

    @classmethod
    def from_options(cls, cmd: str | None = None, cwd: str | Path | None = None, ready: str | None = None,
                     ready_timeout: float | str | None = None, stop_signal: str | None = None,
                     metrics_url: str | None = None) -> BotUnderTest:
        """The spec from the --bot-* options (text as typed); bad values raise ConfigError naming the option.

        ``ready``: a stdout prefix (``READY``: any of the three signals counts), ``stdout:PREFIX``
        (only that line), ``file`` (only bot.ready) or ``request`` (only the first signed request)."""
        command: tuple[str, ...] = ()
        if cmd is not None and cmd.strip():
            try:
                command = tuple(shlex.split(cmd))
            except ValueError as exc:
                raise ConfigError("--bot-cmd", cmd, f"a command line shlex can split ({exc})") from None
        directory = None
        if cwd:
            directory = Path(cwd).expanduser().resolve()
            if not directory.is_dir():
                raise ConfigError("--bot-cwd", str(cwd), "an existing directory to start the bot in")
        mode, prefix = "any", READY_PREFIX
        text = (ready or "").strip()
        if text in ("file", "request"):
            mode = text
        elif text.startswith("stdout:"):
            mode, prefix = "stdout", text[len("stdout:"):]
        elif text:
            prefix = text
        if mode in ("any", "stdout") and not prefix:
            raise ConfigError("--bot-ready", ready, "a stdout prefix such as READY, stdout:PREFIX, file or request")
        timeout = DEFAULT_READY_TIMEOUT
        if ready_timeout not in (None, ""):
            try:
                timeout = float(ready_timeout)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                timeout = -1.0
            if not 0 < timeout <= 600:
                raise ConfigError("--bot-ready-timeout", ready_timeout, "seconds, more than 0 and at most 600")
        signum = _signal_by_name(stop_signal, "--bot-stop-signal") if stop_signal else signal.SIGTERM
        url = (metrics_url or "").strip() or None
        if url is not None and not url.startswith(("http://", "https://")):
            raise ConfigError("--bot-metrics-url", url, "an http(s) URL of the bot's Prometheus endpoint")
        return cls(command, directory, mode, prefix, timeout, signum, url)

    @property
    def is_reference(self) -> bool:
        """True for ``python -m harness.bot`` (the default, or given explicitly as --bot-cmd)."""
        return not self.command or list(self.command[1:3]) == ["-m", "harness.bot"]

    def argv(self) -> list[str]:
        return list(self.command) if self.command else [sys.executable, "-m", "harness.bot"]

    def describe(self) -> str:
        return shlex.join(self.command) if self.command else "python -m harness.bot (the reference bot)"

    def version(self) -> str:
        """The git commit of ``cwd`` when it is a git checkout, else ``unknown``."""
        if not self.command:
            from harness import __version__

            return f"harness {__version__}"
        return git_version(self.cwd or Path.cwd())

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.describe(), "cwd": str(self.cwd or Path.cwd()), "ready": self.ready_mode,
                "ready_prefix": self.ready_prefix, "ready_timeout": self.ready_timeout,
                "stop_signal": self.stop_signal.name, "metrics_url": self.metrics_url}


#: the default bot under test
REFERENCE_BOT = BotUnderTest()


def contract_env(log_dir: Path, *, environment: str, exchange_url: str | None, keys: Mapping[str, str] | None = None,
                 config: Mapping[str, Any] | None = None, rollback: bool = False,
                 symbols: list[str] | None = None) -> dict[str, str]:
    """The contract's variables for one bot start (without the inherited PATH, HOME, ...)."""
    env = {"TRADING_ENV": environment, "LIQUIDATION_LOG_DIR": str(log_dir)}
    if exchange_url:
        env["LIQUIDATION_EXCHANGE_URL"] = exchange_url.rstrip("/")
    env.update(keys or {})
    for name, value in (config or {}).items():
        env[f"LIQUIDATION_{name.upper()}"] = json.dumps(value) if isinstance(value, bool) else str(value)
    if rollback:
        env["EMERGENCY_LIQUIDATION_DISABLED"] = "true"
    if symbols:
        env["LIQUIDATION_SYMBOLS"] = ",".join(symbols)
    return env


@dataclass
class BotRun:
    """What a bot process left behind. ``result``/``metrics`` come from harness.bot's optional
    liquidation-result.json (empty for a bot that writes none); ``audit_problem`` says why the
    audit trail is missing or damaged (empty when it is whole)."""

    returncode: int
    stdout: str
    stderr: str
    log_dir: Path
    stop_seconds: float  # from the signal to the process's exit
    audit: tuple[AuditRecord, ...] = ()
    result: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    audit_problem: str = ""

    @property
    def trading_log(self) -> str:
        path = self.log_dir / "trading.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    @property
    def exit(self) -> str:
        return describe_exit(self.returncode)

    @property
    def correlation_id(self) -> str | None:
        """The run's correlation id: the result file's, else the last LIQUIDATION_START's."""
        if self.result.get("correlation_id"):
            return str(self.result["correlation_id"])
        starts = [r for r in self.audit if r.event_type == "LIQUIDATION_START"]
        return starts[-1].correlation_id if starts else None

    @property
    def exit_description(self) -> str:
        """How the bot ended, for failure messages: its exit (``exit``) and verdict, or the missing evidence,
        e.g. ``killed by signal SIGTERM (exit status -15), no verdict: ...`` for a bot without handlers."""
        verdict = self.verdict()
        if verdict:
            return f"{self.exit}, state {verdict.get('state')}"
        hint = " (the bot did not liquidate; did it install its signal handlers?)" if self.returncode < 0 else ""
        return f"{self.exit}, no verdict{hint}: {self.why_no_verdict()}"

    def events(self, correlation_id: str | None = None) -> list[AuditRecord]:
        cid = correlation_id or self.correlation_id
        return [r for r in self.audit if r.correlation_id == cid]

    def event_types(self, correlation_id: str | None = None) -> list[str]:
        return [r.event_type for r in self.events(correlation_id)]

    def verdict(self) -> dict[str, Any]:
        """The run's outcome from the contract's evidence: the audit trail's LIQUIDATION_COMPLETE
        (state, positions_closed/failed, duration_seconds), else the result file; {} when neither."""
        complete = [r for r in self.events() if r.event_type == "LIQUIDATION_COMPLETE"]
        if complete:
            details = dict(complete[-1].details)
            details.setdefault("duration_seconds", self.result.get("total_duration_seconds"))
            return details
        if self.result:
            return {**self.result, "duration_seconds": self.result.get("total_duration_seconds")}
        return {}

    def why_no_verdict(self) -> str:
        """For a failure message: what evidence is missing."""
        if self.audit_problem:
            return self.audit_problem
        return f"the audit trail {self.log_dir / AUDIT_FILE} has no LIQUIDATION_COMPLETE for the run"


class BotProcess:
    """The bot under test (``spec``, default ``python -m harness.bot``) with its own log directory."""

    #: every started bot not yet reaped, so a test harness can kill what a failed test left running
    _live: list[BotProcess] = []

    @classmethod
    def kill_all(cls) -> int:
        """Kill every bot this process started that is still running; returns how many were killed."""
        killed = 0
        while cls._live:
            bot = cls._live.pop()
            if bot.proc is not None and bot.proc.poll() is None:
                killed += 1
            bot.kill()
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
        spec: BotUnderTest | None = None,
        config: Mapping[str, Any] | None = None,
        rollback: bool = False,
    ) -> None:
        self.log_dir = Path(log_dir)
        self.spec = spec or REFERENCE_BOT
        if args and not self.spec.is_reference:
            raise ValueError(f"args={args!r} are options of harness.bot; the bot under test is {self.spec.describe()}")
        if testnet and not exchange_url:
            from harness.exchanges.target import TESTNET_ROOT_URL

            exchange_url = TESTNET_ROOT_URL
        self.symbols = list(symbols or [])
        self.command = self.spec.argv() + list(args or [])
        self.env = {k: os.environ[k] for k in INHERITED if k in os.environ}
        self.env.update(contract_env(self.log_dir, environment=environment, exchange_url=exchange_url,
                                     config=config, rollback=rollback, symbols=self.symbols))
        self.env.update(env or {})
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._threads: list[threading.Thread] = []
        self.ready_by = ""

    # -- start ------------------------------------------------------------------------------
    def start(self, timeout: float | None = None, *, request_seen: Callable[[], bool] | None = None) -> BotProcess:
        """Start the bot and wait until it is ready (see the module docstring); raises BotContractError
        naming the cause, with the bot killed, when it cannot start, exits, or is not ready in time."""
        limit = self.spec.ready_timeout if timeout is None else timeout
        (self.log_dir / READY_FILE).unlink(missing_ok=True)  # a stale file from an earlier run is no signal (the bot creates the directory)
        try:
            self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         errors="replace", env=self.env, cwd=self.spec.cwd, start_new_session=True)
        except OSError as exc:  # no such program, not executable, bad cwd
            raise BotContractError(f"the bot command {shlex.join(self.command)!r} could not be started "
                                   f"(cwd {self.spec.cwd or Path.cwd()}): {exc.strerror or exc}") from None
        BotProcess._live.append(self)
        for target in (self._pump, self._pump_stderr):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        self.ready_by = self._wait_ready(limit, request_seen)
        if not self.ready_by:
            exited = self.proc.poll() is not None
            self.kill()
            if exited:
                raise BotContractError(f"the bot exited before it was ready ({describe_exit(self.proc.returncode)}); "
                                       f"stderr tail:\n{self.stderr_tail()}")
            raise BotContractError(f"the bot was not ready within {limit:g}s ({self._ready_signals()}); killed; "
                                   f"stderr tail:\n{self.stderr_tail()}")
        return self

    def _ready_signals(self) -> str:
        wanted = {"stdout": f"no stdout line starting {self.spec.ready_prefix!r}",
                  "file": f"no {self.log_dir / READY_FILE}", "request": "no signed request to the exchange"}
        modes = ("stdout", "file", "request") if self.spec.ready_mode == "any" else (self.spec.ready_mode,)
        return ", ".join(wanted[m] for m in modes)

    def _wait_ready(self, limit: float, request_seen: Callable[[], bool] | None) -> str:
        """How the bot became ready (``stdout``, ``file``, ``request``), or "" on timeout / exit."""
        mode = self.spec.ready_mode
        deadline = time.monotonic() + limit
        request_at: float | None = None
        stdout_open = True
        while time.monotonic() < deadline:
            if stdout_open:
                try:
                    line = self._lines.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    line = ""
                if line is None:
                    stdout_open = False
                elif line and mode in ("any", "stdout") and line.startswith(self.spec.ready_prefix):
                    return "stdout"
            else:
                time.sleep(_POLL_SECONDS)  # a bot that closed its stdout can still be ready by file or request
            if mode in ("any", "file") and (self.log_dir / READY_FILE).exists():
                return "file"
            if mode in ("any", "request") and request_seen is not None:
                if request_at is None and request_seen():
                    request_at = time.monotonic()
                if request_at is not None and time.monotonic() - request_at >= REQUEST_GRACE_SECONDS:
                    return "request"
            assert self.proc is not None
            if self.proc.poll() is not None and self._lines.empty() and not stdout_open:
                return ""
        return ""

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
                self._lines.put(None)  # later waits see the end too
                return False
            if line.startswith(prefix):
                return True

    @property
    def output(self) -> list[str]:
        """Every stdout line the bot has printed so far."""
        return [line.rstrip("\n") for line in self._stdout]

    def stderr_tail(self, limit: int = STDERR_TAIL) -> str:
        for thread in self._threads[1:]:
            if self.proc is not None and self.proc.poll() is not None:
                thread.join(timeout=2)
        text = "".join(self._stderr)
        return text[-limit:] if text.strip() else "<empty>"

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._stdout.append(line)
            self._lines.put(line.strip())
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    # -- stop -------------------------------------------------------------------------------
    def send_signal(self, signum: int | None = None) -> None:
        assert self.proc is not None
        self.proc.send_signal(self.spec.stop_signal if signum is None else signum)

    def stop(self, signum: int | None = None, timeout: float = 30.0) -> BotRun:
        """Send the stop signal and wait for the exit; a bot still alive after ``timeout`` is killed and
        reported as a hanging shutdown (BotContractError)."""
        assert self.proc is not None, "start() first"
        sent = signal.Signals(self.spec.stop_signal if signum is None else signum)
        started = time.monotonic()
        if self.proc.poll() is None:
            self.send_signal(sent)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BotContractError(f"Shutdown hangs: the bot did not exit within {timeout:g}s of {sent.name}; "
                                   f"killed with SIGKILL; stderr tail:\n{self.stderr_tail()}") from None
        elapsed = time.monotonic() - started
        self._kill_group()  # anything the bot started and left behind
        return self.collect(elapsed)

    def collect(self, stop_seconds: float = 0.0) -> BotRun:
        assert self.proc is not None
        for thread in self._threads:
            thread.join(timeout=5)
        payload: dict[str, Any] = {}
        result_path = self.log_dir / RESULT_FILE
        if result_path.exists():
            try:
                payload = json.loads(result_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                payload = {}
            payload = payload if isinstance(payload, dict) else {}
        audit, problem = read_trail(self.log_dir / AUDIT_FILE)
        return BotRun(
            returncode=int(self.proc.returncode if self.proc.returncode is not None else -1),
            stdout="".join(self._stdout),
            stderr="".join(self._stderr),
            log_dir=self.log_dir,
            stop_seconds=stop_seconds,
            audit=audit,
            result=payload.get("result") if isinstance(payload.get("result"), dict) else {},
            metrics=payload.get("metrics") if isinstance(payload.get("metrics"), dict) else {},
            audit_problem=problem,
        )

    def _kill_group(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        if self.proc is None:
            return
        self._kill_group()
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def read_trail(path: Path) -> tuple[tuple[AuditRecord, ...], str]:
    """The audit records at ``path`` and what is wrong with the file ("" when whole)."""
    try:
        trail = read_audit(path)
    except AuditFileError:
        return (), f"no audit trail: the bot wrote no {path} (the contract's $LIQUIDATION_LOG_DIR/{AUDIT_FILE})"
    if trail.skipped_lines:
        return trail.records, (f"malformed audit trail {path}: {trail.skipped_lines} line(s) are not audit records "
                               f"(one JSON object with timestamp, event_type, correlation_id, details): "
                               + "; ".join(trail.warnings[:3]))
    return trail.records, ""
