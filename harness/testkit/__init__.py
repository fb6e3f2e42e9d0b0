"""Tools for verifying a liquidation engine end to end: used by scenarios/ and by teams' own tests.

* ``ExchangeAccount``: scenario setup and checks through the exchange's API (embedded exchange or testnet);
* ``BotUnderTest``: which bot the scenarios judge (``--bot-cmd`` ...; default ``python -m harness.bot``);
* ``BotProcess`` / ``BotRun``: that bot as a real subprocess under the bot-under-test contract,
  signalled and read back; ``BotContractError`` when it breaks the contract.
"""

from harness.testkit.account import ExchangeAccount, SymbolFilters
from harness.testkit.botproc import REFERENCE_BOT, BotContractError, BotProcess, BotRun, BotUnderTest

__all__ = ["REFERENCE_BOT", "BotContractError", "BotProcess", "BotRun", "BotUnderTest", "ExchangeAccount", "SymbolFilters"]
