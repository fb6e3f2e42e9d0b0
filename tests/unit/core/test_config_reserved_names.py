"""The bot-under-test contract's non-field variables pass the config loader; every other unknown
LIQUIDATION_* name is still refused (the typo guard), and harness.bot reads the three as defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.bot import make_bot_command
from harness.core.config import RESERVED_ENV_NAMES, env_overrides, load_config
from harness.core.errors import ConfigError

CONTRACT = {"LIQUIDATION_EXCHANGE_URL": "http://127.0.0.1:9", "LIQUIDATION_LOG_DIR": "/tmp/x", "LIQUIDATION_SYMBOLS": "BTCUSDT"}


def test_the_reserved_names_are_not_configuration_fields() -> None:
    assert set(RESERVED_ENV_NAMES) == set(CONTRACT)
    assert env_overrides({**CONTRACT, "LIQUIDATION_TIMEOUT_SECONDS": "2.5"}) == {"timeout_seconds": 2.5}
    assert load_config("testnet", environ=CONTRACT).timeout_seconds == load_config("testnet", environ={}).timeout_seconds


@pytest.mark.parametrize("typo", ["LIQUIDATION_TIMEOUT_SECOND", "LIQUIDATION_SYMBOL", "LIQUIDATION_EXCHANGE"])
def test_any_other_unknown_name_is_still_an_error_naming_the_variable(typo: str) -> None:
    with pytest.raises(ConfigError) as info:
        env_overrides({**CONTRACT, typo: "1"})
    assert info.value.source == typo and "allowed fields" in info.value.allowed


def test_harness_bot_takes_url_log_dir_and_symbols_from_the_contract(tmp_path: Path, restore_root_logging: None) -> None:
    handed = []
    command = make_bot_command(run=lambda bot: handed.append(bot) or 0)
    env = {"LIQUIDATION_EXCHANGE_URL": "http://127.0.0.1:9", "LIQUIDATION_LOG_DIR": str(tmp_path / "contract-logs"),
           "LIQUIDATION_SYMBOLS": "SOLUSDT,XRPUSDT", "TRADING_ENV": "testnet"}
    result = CliRunner().invoke(command, [], env=env)
    assert result.exit_code == 0, result.output
    (bot,) = handed
    assert bot.symbols == ["SOLUSDT", "XRPUSDT"] and bot.log_dir == tmp_path / "contract-logs"
    assert bot.target is not None and bot.target.root_url == "http://127.0.0.1:9"
    assert (tmp_path / "contract-logs" / "audit.jsonl").is_file()
    bot.audit_logger.close()


def test_command_line_options_win_over_the_contract_variables(tmp_path: Path, restore_root_logging: None) -> None:
    handed = []
    command = make_bot_command(run=lambda bot: handed.append(bot) or 0)
    result = CliRunner().invoke(command, ["--symbols", "BTCUSDT", "--log-dir", str(tmp_path / "cli")],
                                env={"LIQUIDATION_SYMBOLS": "ETHUSDT", "LIQUIDATION_LOG_DIR": str(tmp_path / "env"),
                                     "LIQUIDATION_EXCHANGE_URL": "http://127.0.0.1:9", "TRADING_ENV": "testnet"})
    assert result.exit_code == 0, result.output
    assert handed[0].symbols == ["BTCUSDT"] and handed[0].log_dir == tmp_path / "cli"
    handed[0].audit_logger.close()
