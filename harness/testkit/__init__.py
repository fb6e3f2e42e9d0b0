"""Tools for verifying a liquidation engine end to end: used by scenarios/ and by teams' own tests.

* ``ExchangeAccount``: scenario setup and checks through the exchange's API (embedded exchange or testnet);
* ``BotProcess`` / ``BotRun``: the bot as a real subprocess, signalled and read back.
"""

from harness.testkit.account import ExchangeAccount, SymbolFilters
from harness.testkit.botproc import BotProcess, BotRun

__all__ = ["BotProcess", "BotRun", "ExchangeAccount", "SymbolFilters"]
