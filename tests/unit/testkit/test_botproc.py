"""The bot-under-test contract's bad inputs: every way a bot can break it is a named failure
(BotContractError, an AssertionError), never a harness traceback, and never a leftover process."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.core.errors import ConfigError
from harness.testkit import BotContractError, BotProcess, BotUnderTest


@pytest.fixture
def marker() -> Iterator[str]:
    """A unique word put in each tiny bot's argv; after the test no process may carry it."""
    word = f"bot-under-test-{uuid.uuid4().hex}"
    yield word
    table = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    left = [line for line in table.splitlines() if word in line and "ps -eo" not in line]
    assert not left, f"processes left behind: {left}"


def tiny_bot(code: str, marker: str, **options: str) -> BotUnderTest:
    return BotUnderTest.from_options(cmd=shlex.join([sys.executable, "-c", f"{code}\n# {marker}"]), **options)


READY_THEN_WAIT = "import signal, time\nprint('READY', flush=True)\n"


def start(spec: BotUnderTest, tmp_path: Path) -> BotProcess:
    return BotProcess(tmp_path / "logs", exchange_url="http://127.0.0.1:9", symbols=["BTCUSDT"], spec=spec)


def test_a_command_that_does_not_exist_is_named(tmp_path: Path) -> None:
    spec = BotUnderTest.from_options(cmd="no-such-bot-binary --flag")
    with pytest.raises(BotContractError, match=r"(?s)'no-such-bot-binary --flag' could not be started.*No such file"):
        start(spec, tmp_path).start(timeout=5)


def test_a_bot_that_exits_at_once_names_its_exit_code_and_stderr(tmp_path: Path, marker: str) -> None:
    spec = tiny_bot("import sys\nsys.stderr.write('no config here\\n')\nsys.exit(4)", marker)
    with pytest.raises(BotContractError, match=r"(?s)exited before it was ready \(exit code 4\).*no config here"):
        start(spec, tmp_path).start(timeout=10)


def test_a_bot_that_never_gets_ready_is_killed_after_the_bound(tmp_path: Path, marker: str) -> None:
    spec = tiny_bot("import sys, time\nsys.stderr.write('connecting...\\n'); sys.stderr.flush()\ntime.sleep(60)", marker,
                    ready_timeout="1")
    bot = start(spec, tmp_path)
    with pytest.raises(BotContractError, match=r"(?s)not ready within 1s \(no stdout line starting 'READY'.*connecting"):
        bot.start()
    assert bot.proc is not None and bot.proc.poll() is not None


def test_a_bot_that_ignores_sigterm_is_a_hanging_shutdown(tmp_path: Path, marker: str) -> None:
    spec = tiny_bot(READY_THEN_WAIT.replace("print", "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint")
                    + "time.sleep(60)", marker)
    bot = start(spec, tmp_path).start(timeout=10)
    with pytest.raises(BotContractError, match=r"^Shutdown hangs: the bot did not exit within 1s of SIGTERM; killed"):
        bot.stop(timeout=1)
    assert bot.proc is not None and bot.proc.poll() is not None


def test_a_bot_killed_by_a_signal_reports_a_negative_exit_status_by_name(tmp_path: Path, marker: str) -> None:
    # the handler is installed before READY, so the stop signal can never arrive ahead of it
    spec = tiny_bot("import os, signal, time\nsignal.signal(signal.SIGTERM, lambda *a: os.kill(os.getpid(), signal.SIGKILL))\n"
                    "print('READY', flush=True)\ntime.sleep(60)", marker)
    run = start(spec, tmp_path).start(timeout=10).stop(timeout=10)
    assert run.returncode == -signal.SIGKILL
    assert run.exit == "killed by signal SIGKILL (exit status -9)"


def test_a_bot_that_writes_no_audit_trail_is_named(tmp_path: Path, marker: str) -> None:
    run = start(tiny_bot(READY_THEN_WAIT + "time.sleep(60)", marker), tmp_path).start(timeout=10).stop(timeout=10)
    assert run.returncode == -signal.SIGTERM and run.audit == ()
    assert run.audit_problem.startswith(f"no audit trail: the bot wrote no {tmp_path / 'logs' / 'audit.jsonl'}")
    assert run.verdict() == {} and run.why_no_verdict() == run.audit_problem


def test_a_malformed_audit_trail_is_named_with_its_line(tmp_path: Path, marker: str) -> None:
    code = ("import os, pathlib, signal, sys, time\nd = pathlib.Path(os.environ['LIQUIDATION_LOG_DIR']); d.mkdir(parents=True)\n"
            "(d / 'audit.jsonl').write_text('this is not json\\n')\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\nprint('READY', flush=True)\ntime.sleep(60)")
    run = start(tiny_bot(code, marker), tmp_path).start(timeout=10).stop(timeout=10)
    assert run.returncode == 0 and run.audit == ()
    assert run.audit_problem.startswith("malformed audit trail") and "audit.jsonl:1" in run.audit_problem


def test_readiness_by_the_bot_ready_file_and_a_custom_prefix(tmp_path: Path, marker: str) -> None:
    by_file = ("import os, pathlib, time\nd = pathlib.Path(os.environ['LIQUIDATION_LOG_DIR']); d.mkdir(parents=True)\n"
               "(d / 'bot.ready').write_text('1')\ntime.sleep(60)")
    bot = start(tiny_bot(by_file, marker), tmp_path).start(timeout=10)
    assert bot.ready_by == "file"
    bot.kill()
    prefixed = start(tiny_bot("import time\nprint('UP and running', flush=True)\ntime.sleep(60)", marker, ready="stdout:UP"),
                     tmp_path / "second").start(timeout=10)
    assert prefixed.ready_by == "stdout"
    prefixed.kill()


def test_the_bot_gets_the_contract_environment_and_nothing_else(tmp_path: Path, marker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "real-production-key")
    code = ("import json, os, signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
            "print('READY ' + json.dumps(dict(os.environ)), flush=True)\ntime.sleep(60)")
    bot = BotProcess(tmp_path / "logs", exchange_url="http://127.0.0.1:9/", symbols=["BTCUSDT", "ETHUSDT"],
                     env={"BINANCE_TESTNET_API_KEY": "k", "BINANCE_TESTNET_API_SECRET": "s"},
                     spec=tiny_bot(code, marker), config={"timeout_seconds": 1.0, "cancel_orders": False}, rollback=True)
    run = bot.start(timeout=10).stop(timeout=10)
    seen = json.loads(run.stdout.split("READY ", 1)[1].splitlines()[0])
    assert seen["LIQUIDATION_EXCHANGE_URL"] == "http://127.0.0.1:9"
    assert seen["LIQUIDATION_LOG_DIR"] == str(tmp_path / "logs") and seen["TRADING_ENV"] == "testnet"
    assert (seen["LIQUIDATION_SYMBOLS"], seen["LIQUIDATION_TIMEOUT_SECONDS"], seen["LIQUIDATION_CANCEL_ORDERS"]) == (
        "BTCUSDT,ETHUSDT", "1.0", "false")
    assert seen["EMERGENCY_LIQUIDATION_DISABLED"] == "true" and seen["BINANCE_TESTNET_API_KEY"] == "k"
    assert "BINANCE_API_KEY" not in seen


@pytest.mark.parametrize(("options", "named"), [
    ({"cmd": "python 'unclosed"}, "--bot-cmd"),
    ({"cwd": "/no/such/directory"}, "--bot-cwd"),
    ({"ready_timeout": "soon"}, "--bot-ready-timeout"),
    ({"ready_timeout": "0"}, "--bot-ready-timeout"),
    ({"stop_signal": "SIGNOPE"}, "--bot-stop-signal"),
    ({"metrics_url": "localhost:9000"}, "--bot-metrics-url"),
    ({"ready": "stdout:"}, "--bot-ready"),
])
def test_bad_options_name_the_option(options: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        BotUnderTest.from_options(**options)
    assert info.value.field == named


def test_the_default_spec_is_the_reference_bot_and_a_foreign_one_is_not() -> None:
    assert BotUnderTest().is_reference and BotUnderTest().argv()[1:] == ["-m", "harness.bot"]
    foreign = BotUnderTest.from_options(cmd="python src/main.py --live", stop_signal="INT")
    assert not foreign.is_reference and foreign.command == ("python", "src/main.py", "--live")
    assert foreign.stop_signal is signal.SIGINT
