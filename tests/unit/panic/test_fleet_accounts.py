"""The fleet file (``load_accounts``) and the progress lines, without an exchange."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from harness.core.config import LiquidationConfig
from harness.core.errors import ConfigError
from harness.exchanges.target import TargetKind
from harness.panic.accounts import load_accounts
from harness.panic.progress import LiveDisplay, PlainDisplay
from harness.panic.run import Fleet

ENV = {"A_KEY": "a" * 64, "A_SECRET": "b" * 64, "B_KEY": "c" * 64, "B_SECRET": "d" * 64}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    return path


def entry(name: str, target: str, key: str = "A_KEY", secret: str = "A_SECRET", extra: str = "") -> str:
    return f'[[account]]\nname = "{name}"\ntarget = "{target}"\nkey_var = "{key}"\nsecret_var = "{secret}"\n{extra}\n'


def test_targets_keys_and_scopes_are_read(tmp_path: Path) -> None:
    accounts = load_accounts(write(tmp_path, entry("alpha", "production") + entry("beta", "http://127.0.0.1:9/fapi", "B_KEY", "B_SECRET",
                                                                                'symbols = ["btcusdt", "ETHUSDT"]')), ENV)
    alpha, beta = accounts
    assert (alpha.target.kind, alpha.api_key, alpha.symbols) == (TargetKind.PRODUCTION, "a" * 64, ())
    assert (beta.target.kind, beta.target.root_url, beta.symbols) == (TargetKind.CUSTOM, "http://127.0.0.1:9", ("BTCUSDT", "ETHUSDT"))
    assert beta.api_secret == "d" * 64


def test_one_key_for_production_and_a_test_account_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, entry("alpha", "production") + entry("beta", "testnet"))
    with pytest.raises(ConfigError, match="account 'beta'.key_var.*production account 'alpha'"):
        load_accounts(path, ENV)


def test_production_variables_for_a_testnet_account_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="account\\[1\\] 'alpha'.key_var.*belongs to another kind"):
        load_accounts(write(tmp_path, entry("alpha", "testnet", "BINANCE_API_KEY")), {**ENV, "BINANCE_API_KEY": "x" * 64})


@pytest.mark.parametrize(("text", "field"), [
    ("not toml [", "--accounts"),
    (entry("alpha", "testnet", extra="symbols = \"BTC-USDT\""), "account[1] 'alpha'.symbols"),
    (entry("bad name!", "testnet"), "account[1].name"),
    (entry("alpha", "ftp://example.com"), "account[1] 'alpha'.target"),
])
def test_bad_entries_name_their_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_accounts(write(tmp_path, text), ENV)
    assert str(caught.value).startswith(field) or field in str(caught.value)


def fleet(tmp_path: Path) -> Fleet:
    accounts = load_accounts(write(tmp_path, entry("alpha", "testnet") + entry("beta", "testnet", "B_KEY", "B_SECRET")), ENV)
    return Fleet(accounts, LiquidationConfig(timeout_seconds=3), tmp_path, "test", per_account_dirs=True)


def test_the_live_display_redraws_one_line_per_account_in_place(tmp_path: Path) -> None:
    runs = fleet(tmp_path).runs
    out = io.StringIO()
    display = LiveDisplay(out, runs)
    display.draw()
    runs[0].orders_cancelled, runs[0].positions_found, runs[0].positions_closed = 7, 3, 2
    display.draw()
    frames = out.getvalue().split("\x1b[2F")
    assert len(frames) == 2  # the second frame moved the cursor up over the first's two lines
    assert frames[1].count("\n") == 2
    assert "alpha" in frames[1] and "orders cancelled    7" in frames[1] and "positions closed   2/3" in frames[1]
    assert "time left  3.0s" in frames[1]


def test_plain_lines_are_printed_once_per_step(tmp_path: Path) -> None:
    runs = fleet(tmp_path).runs
    out = io.StringIO()
    display = PlainDisplay(out)
    display.changed(runs[0])
    runs[0].orders_cancelled = 4  # a count alone is not a new step
    display.changed(runs[0])
    runs[0].positions_found = 1
    display.changed(runs[0])
    assert out.getvalue().count("\n") == 2
    assert "\x1b" not in out.getvalue()
