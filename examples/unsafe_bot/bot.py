"""An UNSAFE bot, kept as a negative control for ``liquidation-harness verify``: do not copy it.

It honours the start-up half of the bot-under-test contract (it reads LIQUIDATION_LOG_DIR, writes
trading.log and prints ``READY``) but on SIGTERM it simply exits 0: no order is cancelled, no
position closed, no audit trail written. ``verify --bot-cmd "python examples/unsafe_bot/bot.py"``
must answer NOT READY (scenarios 1, 3 and 4 fail on the exchange, with the rollback matrix's rows).
"""

import os
import signal
import sys
import time
from pathlib import Path

log_dir = Path(os.environ.get("LIQUIDATION_LOG_DIR", "logs"))
log_dir.mkdir(parents=True, exist_ok=True)
trading_log = log_dir / "trading.log"


def log(message: str) -> None:
    with trading_log.open("a", encoding="utf-8") as handle:
        handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} INFO unsafe_bot {message}\n")


def stop(signum: int, frame: object) -> None:
    log(f"{signal.Signals(signum).name} received: exiting without liquidating")
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
log("started")
print(f"READY pid={os.getpid()}", flush=True)
while True:
    signal.pause()
