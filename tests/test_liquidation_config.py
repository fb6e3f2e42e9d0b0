"""LiquidationConfig: defaults, profiles, strict types, ranges, TOML and environment loading."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from harness.core.config import (
    PROFILES,
    LiquidationConfig,
    build_config,
    load_config,
    load_raw,
    profile,
)
from harness.core.errors import ConfigError


class TestDefaults:
    def test_default_config_is_the_production_profile(self) -> None:
        config = LiquidationConfig()
        assert config.emergency_liquidation is True
        assert config.close_positions is True
        assert config.cancel_orders is True
        assert config.timeout_seconds == 5.0
        assert config.max_retries == 3
        assert config.retry_delay_seconds == 0.5

    def test_config_is_frozen(self) -> None:
        config = LiquidationConfig()
        with pytest.raises(Exception):
            config.timeout_seconds = 10.0  # type: ignore[misc]

    def test_summary_matches_the_checklist_form(self) -> None:
        assert LiquidationConfig().summary() == "emergency_liquidation=True, timeout=5s, retries=3"

    def test_backoff_schedule_doubles_from_the_retry_delay(self) -> None:
        assert LiquidationConfig(max_retries=4, retry_delay_seconds=0.5).backoff_schedule() == [0.5, 1.0, 2.0, 4.0]

    def test_zero_retries_means_no_backoff(self) -> None:
        assert LiquidationConfig(max_retries=0).backoff_schedule() == []


class TestProfiles:
    @pytest.mark.parametrize("environment", sorted(PROFILES))
    def test_every_profile_is_a_valid_configuration(self, environment: str) -> None:
        config = build_config(profile(environment))
        assert config.emergency_liquidation and config.close_positions and config.cancel_orders

    def test_high_latency_profile_uses_a_long_timeout_and_five_retries(self) -> None:
        config = load_config("high-latency", environ={})
        assert 10.0 <= config.timeout_seconds <= 15.0
        assert config.max_retries == 5
        assert sum(config.backoff_schedule()) < config.timeout_seconds

    def test_trading_env_picks_the_profile(self) -> None:
        config = load_config(environ={"TRADING_ENV": "high-latency"})
        assert config.max_retries == 5

    def test_unknown_environment_names_the_allowed_ones(self) -> None:
        with pytest.raises(ConfigError) as info:
            load_config(environ={"TRADING_ENV": "staging"})
        assert info.value.field == "environment"
        assert "production" in str(info.value) and "staging" in str(info.value)


class TestStrictTypes:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("emergency_liquidation", "true"),
            ("close_positions", 1),
            ("cancel_orders", "yes"),
            ("timeout_seconds", "5"),
            ("timeout_seconds", True),
            ("max_retries", 2.5),
            ("max_retries", "3"),
            ("retry_delay_seconds", None),
        ],
    )
    def test_wrong_type_is_rejected_naming_the_field_and_value(self, field: str, value: object) -> None:
        with pytest.raises(ConfigError) as info:
            build_config({field: value})
        assert info.value.field == field
        assert info.value.value == value
        assert field in str(info.value) and "allowed" in str(info.value)

    def test_int_is_accepted_for_a_float_field(self) -> None:
        assert build_config({"timeout_seconds": 7}).timeout_seconds == 7.0

    def test_unknown_key_is_rejected_listing_allowed_fields(self) -> None:
        with pytest.raises(ConfigError) as info:
            build_config({"timeout": 5.0})
        assert info.value.field == "timeout"
        assert "timeout_seconds" in str(info.value)


class TestRanges:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("timeout_seconds", 1.0),
            ("timeout_seconds", 30.0),
            ("max_retries", 0),
            ("max_retries", 10),
            ("retry_delay_seconds", 0.1),
            ("retry_delay_seconds", 5.0),
        ],
    )
    def test_boundaries_are_inclusive(self, field: str, value: float) -> None:
        assert getattr(build_config({field: value}), field) == value

    @pytest.mark.parametrize(
        ("field", "value", "bounds"),
        [
            ("timeout_seconds", 0.99, "1.0 to 30.0"),
            ("timeout_seconds", 30.01, "1.0 to 30.0"),
            ("timeout_seconds", 45.0, "1.0 to 30.0"),
            ("max_retries", -1, "0 to 10"),
            ("max_retries", 11, "0 to 10"),
            ("retry_delay_seconds", 0.09, "0.1 to 5.0"),
            ("retry_delay_seconds", 5.5, "0.1 to 5.0"),
        ],
    )
    def test_out_of_range_names_field_value_and_range(self, field: str, value: float, bounds: str) -> None:
        with pytest.raises(ConfigError) as info:
            build_config({field: value})
        message = str(info.value)
        assert field in message and repr(value) in message and bounds in message


class TestTomlFile:
    def test_top_level_keys_override_the_profile(self, tmp_path: Path) -> None:
        path = tmp_path / "liq.toml"
        path.write_text("timeout_seconds = 8.0\nmax_retries = 4\n")
        config = load_config("production", path, environ={})
        assert (config.timeout_seconds, config.max_retries) == (8.0, 4)

    def test_liquidation_table_is_accepted(self, tmp_path: Path) -> None:
        path = tmp_path / "liq.toml"
        path.write_text("[liquidation]\ncancel_orders = true\nretry_delay_seconds = 0.25\n")
        assert load_config("production", path, environ={}).retry_delay_seconds == 0.25

    def test_string_for_a_bool_in_toml_is_a_type_error(self, tmp_path: Path) -> None:
        path = tmp_path / "liq.toml"
        path.write_text('close_positions = "true"\n')
        with pytest.raises(ConfigError) as info:
            load_config("production", path, environ={})
        assert info.value.field == "close_positions"
        assert info.value.source == str(path)

    def test_unknown_key_in_toml_names_the_key_and_file(self, tmp_path: Path) -> None:
        path = tmp_path / "liq.toml"
        path.write_text("max_retry = 3\n")
        with pytest.raises(ConfigError) as info:
            load_config("production", path, environ={})
        assert info.value.field == "max_retry"
        assert str(path) in str(info.value)

    def test_unknown_table_beside_liquidation_is_rejected(self, tmp_path: Path) -> None:
        path = tmp_path / "liq.toml"
        path.write_text("[liquidation]\nmax_retries = 3\n[extra]\nx = 1\n")
        with pytest.raises(ConfigError) as info:
            load_config("production", path, environ={})
        assert info.value.field == "extra"

    def test_malformed_toml_is_a_config_error(self, tmp_path: Path) -> None:
        path = tmp_path / "liq.toml"
        path.write_text("timeout_seconds = = 5\n")
        with pytest.raises(ConfigError) as info:
            load_config("production", path, environ={})
        assert info.value.field == "config_file"
        assert "malformed TOML" in str(info.value)

    def test_missing_file_is_a_config_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            load_config("production", tmp_path / "absent.toml", environ={})

    def test_out_of_range_in_toml_names_the_source(self, tmp_path: Path) -> None:
        path = tmp_path / "liq.toml"
        path.write_text("timeout_seconds = 45.0\n")
        with pytest.raises(ConfigError) as info:
            load_config("production", path, environ={})
        assert info.value.source == str(path)


class TestEnvironment:
    @pytest.mark.parametrize(
        ("variable", "raw", "field", "expected"),
        [
            ("LIQUIDATION_TIMEOUT_SECONDS", "7.5", "timeout_seconds", 7.5),
            ("LIQUIDATION_MAX_RETRIES", "5", "max_retries", 5),
            ("LIQUIDATION_RETRY_DELAY_SECONDS", "0.2", "retry_delay_seconds", 0.2),
            ("LIQUIDATION_CANCEL_ORDERS", "false", "cancel_orders", False),
            ("LIQUIDATION_CLOSE_POSITIONS", "0", "close_positions", False),
        ],
    )
    def test_variable_overrides_one_field(self, variable: str, raw: str, field: str, expected: object) -> None:
        config = load_config("production", environ={variable: raw})
        assert getattr(config, field) == expected

    def test_environment_overrides_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "liq.toml"
        path.write_text("timeout_seconds = 8.0\n")
        config = load_config("production", path, environ={"LIQUIDATION_TIMEOUT_SECONDS": "9"})
        assert config.timeout_seconds == 9.0

    def test_timeout_45_from_environment_names_field_and_range(self) -> None:
        with pytest.raises(ConfigError) as info:
            load_config("production", environ={"LIQUIDATION_TIMEOUT_SECONDS": "45"})
        message = str(info.value)
        assert "timeout_seconds" in message and "1.0 to 30.0" in message
        assert "LIQUIDATION_TIMEOUT_SECONDS" in message

    def test_text_that_is_not_a_bool_is_rejected(self) -> None:
        with pytest.raises(ConfigError) as info:
            load_config("production", environ={"LIQUIDATION_CLOSE_POSITIONS": "maybe"})
        assert info.value.field == "close_positions" and info.value.value == "maybe"

    def test_text_that_is_not_a_number_is_rejected(self) -> None:
        with pytest.raises(ConfigError) as info:
            load_config("production", environ={"LIQUIDATION_MAX_RETRIES": "three"})
        assert info.value.field == "max_retries"

    def test_unknown_liquidation_variable_is_rejected(self) -> None:
        with pytest.raises(ConfigError) as info:
            load_config("production", environ={"LIQUIDATION_TIMEOUT": "5"})
        assert info.value.field == "timeout"
        assert info.value.source == "LIQUIDATION_TIMEOUT"

    def test_rollback_switch_turns_all_three_switches_off_and_logs_critical(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.CRITICAL, logger="harness.config"):
            config = load_config("production", environ={"EMERGENCY_LIQUIDATION_DISABLED": "true"})
        assert (config.emergency_liquidation, config.close_positions, config.cancel_orders) == (False, False, False)
        assert any(r.levelno == logging.CRITICAL and "DISABLED" in r.getMessage() for r in caplog.records)

    def test_rollback_switch_wins_over_explicit_overrides(self) -> None:
        environ = {"EMERGENCY_LIQUIDATION_DISABLED": "1", "LIQUIDATION_CLOSE_POSITIONS": "true"}
        assert load_config("production", environ=environ).close_positions is False

    @pytest.mark.parametrize("raw", ["false", "0", ""])
    def test_rollback_switch_off_values_leave_liquidation_enabled(self, raw: str) -> None:
        assert load_config("production", environ={"EMERGENCY_LIQUIDATION_DISABLED": raw}).emergency_liquidation

    def test_rollback_switch_with_garbage_is_an_error(self) -> None:
        with pytest.raises(ConfigError) as info:
            load_config("production", environ={"EMERGENCY_LIQUIDATION_DISABLED": "please"})
        assert info.value.field == "EMERGENCY_LIQUIDATION_DISABLED"

    def test_load_raw_reports_where_each_value_came_from(self, tmp_path: Path) -> None:
        path = tmp_path / "liq.toml"
        path.write_text("max_retries = 4\n")
        _, _, sources = load_raw("testnet", path, {"LIQUIDATION_TIMEOUT_SECONDS": "6"})
        assert sources["max_retries"] == str(path)
        assert sources["timeout_seconds"] == "LIQUIDATION_TIMEOUT_SECONDS"
        assert sources["cancel_orders"] == "profile testnet"
