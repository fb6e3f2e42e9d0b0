"""Tools for verifying a liquidation engine end to end: used by scenarios/ and by teams' own tests.

* ``ExchangeAccount``: scenario setup and checks through the exchange's API (embedded exchange or testnet);
* ``BotUnderTest``: which bot the scenarios judge (``--bot-cmd`` ...; default ``python -m harness.bot``);
* ``BotProcess`` / ``BotRun``: that bot as a real subprocess under the bot-under-test contract,
  signalled and read back; ``BotContractError`` when it breaks the contract.
"""

from typing import TYPE_CHECKING, Any

from harness.testkit.botproc import REFERENCE_BOT, BotContractError, BotProcess, BotRun, BotUnderTest

if TYPE_CHECKING:
    from harness.testkit.account import ExchangeAccount, SymbolFilters


def __getattr__(name: str) -> Any:
    # ExchangeAccount imports python-binance (~1 s of CPU): loaded when first used, not by every
    # pytest process that loads harness.pytest_plugin (which needs only botproc)
    if name in ("ExchangeAccount", "SymbolFilters"):
        from harness.testkit import account

        return getattr(account, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["REFERENCE_BOT", "BotContractError", "BotProcess", "BotRun", "BotUnderTest", "ExchangeAccount", "SymbolFilters"]
