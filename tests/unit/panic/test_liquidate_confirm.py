"""The production confirmation of ``liquidate``: typed on a terminal, --yes, or refused."""

from __future__ import annotations

import pytest

from harness.exchanges.target import Target, TargetKind
from harness.panic.accounts import Account
from harness.panic.command import Refused, confirm

PROD = Target(TargetKind.PRODUCTION, "https://fapi.binance.com")
TEST = Target(TargetKind.TESTNET, "https://testnet.binancefuture.com")


def account(name: str, target: Target, key: str = "k" * 60 + "WXYZ") -> Account:
    return Account(name, target, "K", "S", key, "s" * 64)


def never(prompt: str) -> str:
    raise AssertionError(f"asked {prompt!r}")


def test_not_production_needs_no_confirmation() -> None:
    assert confirm([account("a", TEST)], yes=False, tty=False, ask=never) == "not production"


def test_yes_confirms_without_asking() -> None:
    assert confirm([account("a", PROD)], yes=True, tty=True, ask=never) == "--yes"


def test_no_terminal_and_no_yes_is_refused() -> None:
    with pytest.raises(Refused, match="pass --yes"):
        confirm([account("a", PROD)], yes=False, tty=False, ask=never)


def test_one_account_is_confirmed_by_the_keys_last_four_characters() -> None:
    prompts: list[str] = []
    assert confirm([account("a", PROD)], yes=False, tty=True, ask=lambda p: prompts.append(p) or " WXYZ ") \
        == "typed the key's last 4 characters"
    assert "last 4 characters" in prompts[0] and "WXYZ" not in prompts[0]


def test_a_wrong_fingerprint_is_refused() -> None:
    with pytest.raises(Refused, match="did not match"):
        confirm([account("a", PROD)], yes=False, tty=True, ask=lambda p: "wxyz")


def test_a_fleet_is_confirmed_by_the_number_of_production_accounts() -> None:
    fleet = [account("a", PROD), account("b", TEST), account("c", PROD)]
    assert confirm(fleet, yes=False, tty=True, ask=lambda p: "2") == "typed the number of production accounts"
    with pytest.raises(Refused, match="is not 2"):
        confirm(fleet, yes=False, tty=True, ask=lambda p: "3")


def test_the_account_never_shows_its_keys() -> None:
    assert "k" * 10 not in repr(account("a", PROD)) and "WXYZ" in repr(account("a", PROD))
