"""ConfigValidator and the `validate` command: every rule, severity and exit code of the checklist."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT
from click.testing import CliRunner

from harness.cli import cli
from harness.core.config import LiquidationConfig
from harness.core.validation import TESTNET_WARNING, ConfigValidator, Severity

ROOT = REPO_ROOT


def findings(report, category: str) -> list:
    return report.by_category(category)


class TestTypesAndRanges:
    @pytest.mark.parametrize(
        ("field", "value"),
        [("emergency_liquidation", "yes"), ("timeout_seconds", "5"), ("max_retries", 1.5), ("cancel_orders", 0)],
    )
    def test_wrong_type_makes_the_report_invalid(self, field: str, value: object) -> None:
        report = ConfigValidator("production").validate({field: value})
        assert not report.valid and not report.ready
        [finding] = findings(report, "type")
        assert finding.field == field and finding.severity is Severity.CRITICAL

    @pytest.mark.parametrize(
        ("field", "value"),
        [("timeout_seconds", 0.5), ("timeout_seconds", 31.0), ("max_retries", 11), ("retry_delay_seconds", 0.05)],
    )
    def test_out_of_range_makes_the_report_invalid(self, field: str, value: float) -> None:
        report = ConfigValidator("production").validate({field: value})
        assert not report.valid
        [finding] = findings(report, "range")
        assert finding.field == field and "out of range" in finding.message

    @pytest.mark.parametrize(
        ("field", "value"),
        [("timeout_seconds", 1.0), ("timeout_seconds", 30.0), ("max_retries", 0), ("max_retries", 10)],
    )
    def test_boundaries_are_valid(self, field: str, value: float) -> None:
        report = ConfigValidator("development").validate({field: value})
        assert report.valid
        assert not findings(report, "range")

    def test_every_bad_field_is_reported_not_just_the_first(self) -> None:
        report = ConfigValidator("production").validate({"timeout_seconds": 99.0, "max_retries": "x"})
        assert {f.field for f in report.findings if f.category in ("type", "range")} == {"timeout_seconds", "max_retries"}

    def test_unknown_field_is_a_type_finding(self) -> None:
        report = ConfigValidator("production").validate({"timeout": 5.0})
        assert not report.valid
        assert findings(report, "type")[0].field == "timeout"


class TestConsistency:
    @pytest.mark.parametrize("switch", ["close_positions", "cancel_orders"])
    def test_disabled_liquidation_with_a_switch_on_is_inconsistent(self, switch: str) -> None:
        values = {"emergency_liquidation": False, "close_positions": False, "cancel_orders": False, switch: True}
        report = ConfigValidator("testnet").validate(values)
        assert not report.valid
        [finding] = findings(report, "consistency")
        assert finding.field == switch

    def test_all_three_off_is_consistent(self) -> None:
        values = {"emergency_liquidation": False, "close_positions": False, "cancel_orders": False}
        report = ConfigValidator("testnet").validate(values)
        assert report.valid and not findings(report, "consistency")

    def test_enabled_liquidation_with_switches_off_is_consistent(self) -> None:
        report = ConfigValidator("development").validate({"cancel_orders": False})
        assert not findings(report, "consistency")


class TestSecurityReview:
    @pytest.mark.parametrize("switch", ["emergency_liquidation", "close_positions", "cancel_orders"])
    def test_production_requires_every_switch(self, switch: str) -> None:
        values = {"emergency_liquidation": True, "close_positions": True, "cancel_orders": True, switch: False}
        if switch == "emergency_liquidation":
            values.update(close_positions=False, cancel_orders=False)
        report = ConfigValidator("production").validate(values)
        assert not report.ready
        assert any(f.field == switch and f.severity is Severity.CRITICAL for f in findings(report, "security"))

    def test_production_defaults_pass_the_security_review(self) -> None:
        report = ConfigValidator("production", strict=True).validate(LiquidationConfig())
        assert report.valid and report.ready and report.findings == []

    def test_disabled_liquidation_on_testnet_is_a_warning_not_critical(self) -> None:
        values = {"emergency_liquidation": False, "close_positions": False, "cancel_orders": False}
        report = ConfigValidator("testnet").validate(values)
        assert report.ready  # not strict: warnings allowed
        assert [f.severity for f in findings(report, "security")] == [Severity.WARNING]

    def test_a_scoped_production_liquidation_is_warned_about(self) -> None:
        report = ConfigValidator("production", strict=True).validate(LiquidationConfig(), symbols=["BTCUSDT", "ETHUSDT"])
        [finding] = findings(report, "security")
        assert (finding.severity, finding.field) == (Severity.WARNING, "symbols")
        assert "BTCUSDT,ETHUSDT" in finding.message and "stay open" in finding.message
        assert not report.ready  # strict: a scope in production blocks sign-off until it is deliberate
        unscoped = ConfigValidator("production", strict=True).validate(LiquidationConfig(), symbols=[])
        assert unscoped.ready and findings(ConfigValidator("testnet").validate(LiquidationConfig(), symbols=["BTCUSDT"]), "security") == []


class TestEnvironmentNotes:
    def test_testnet_warns_to_proceed_with_testing(self) -> None:
        report = ConfigValidator("testnet").validate(LiquidationConfig())
        assert [f.message for f in report.by_severity(Severity.WARNING)] == [TESTNET_WARNING]
        assert report.valid and report.ready

    def test_testnet_is_not_ready_under_strict(self) -> None:
        report = ConfigValidator("testnet", strict=True).validate(LiquidationConfig())
        assert report.valid and not report.ready

    def test_development_gets_an_info_note_that_never_blocks(self) -> None:
        report = ConfigValidator("development", strict=True).validate(LiquidationConfig())
        assert [f.severity for f in report.findings] == [Severity.INFO]
        assert report.ready

    def test_unknown_environment_is_refused(self) -> None:
        with pytest.raises(ValueError, match="staging"):
            ConfigValidator("staging")


class TestDefaultsAppropriateness:
    def test_production_timeout_below_five_seconds_warns(self) -> None:
        report = ConfigValidator("production").validate({"timeout_seconds": 4.0})
        assert [f.field for f in findings(report, "defaults")] == ["timeout_seconds"]
        assert report.ready and not ConfigValidator("production", strict=True).validate({"timeout_seconds": 4.0}).ready

    def test_production_below_three_retries_warns(self) -> None:
        report = ConfigValidator("production").validate({"max_retries": 2})
        assert [f.field for f in findings(report, "defaults")] == ["max_retries"]

    def test_high_latency_below_ten_seconds_warns(self) -> None:
        report = ConfigValidator("high-latency").validate({"timeout_seconds": 8.0, "max_retries": 5, "retry_delay_seconds": 0.1})
        assert [f.field for f in findings(report, "defaults")] == ["timeout_seconds"]

    def test_backoff_longer_than_the_timeout_warns(self) -> None:
        # 1 + 2 + 4 + 8 = 15 s of sleeps against a 10 s budget
        report = ConfigValidator("production").validate({"timeout_seconds": 10.0, "max_retries": 4, "retry_delay_seconds": 1.0})
        [finding] = findings(report, "defaults")
        assert finding.field == "retry_delay_seconds" and "15" in finding.message

    def test_backoff_that_fits_does_not_warn(self) -> None:
        report = ConfigValidator("production").validate({"timeout_seconds": 10.0, "max_retries": 3, "retry_delay_seconds": 1.0})
        assert not findings(report, "defaults")

    def test_defaults_are_not_judged_when_types_are_wrong(self) -> None:
        report = ConfigValidator("production").validate({"timeout_seconds": "fast"})
        assert not findings(report, "defaults")


class TestReportShape:
    def test_to_dict_is_json_serialisable_and_complete(self) -> None:
        report = ConfigValidator("testnet").validate(LiquidationConfig())
        data = json.loads(json.dumps(report.to_dict()))
        assert data["valid"] is True and data["ready"] is True and data["environment"] == "testnet"
        assert data["findings"][0] == {
            "severity": "WARNING",
            "category": "environment",
            "field": None,
            "message": TESTNET_WARNING,
        }
        assert data["config"]["timeout_seconds"] == 5.0


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    base = {"TRADING_ENV": "production"}
    result = CliRunner().invoke(cli, ["validate", *args], env={**base, **(env or {})})
    return result.exit_code, result.output


class TestValidateCommand:
    def test_production_strict_defaults_are_valid_and_ready(self) -> None:
        code, out = run_cli("--env=production", "--strict")
        assert code == 0
        assert out.splitlines() == ["✓ Valid: True", "✓ Ready: True", "✅ Configuration validated successfully"]

    def test_testnet_prints_the_checklist_warning(self) -> None:
        code, out = run_cli("--env=testnet")
        assert code == 0
        assert "⚠️ [WARNING] Testnet environment - proceed with testing" in out.splitlines()

    def test_rollback_switch_reports_critical_and_exits_1(self) -> None:
        code, out = run_cli("--env=production", env={"EMERGENCY_LIQUIDATION_DISABLED": "true"})
        assert code == 1
        assert "[CRITICAL]" in out and "✓ Ready: True" not in out

    def test_timeout_45_exits_2_naming_field_and_range(self) -> None:
        code, out = run_cli("--env=production", env={"LIQUIDATION_TIMEOUT_SECONDS": "45"})
        assert code == 2
        assert "timeout_seconds" in out and "1.0 to 30.0" in out

    def test_bad_config_file_exits_2(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.toml"
        path.write_text('cancel_orders = "yes"\n')
        code, out = run_cli("--config", str(path))
        assert code == 2 and "cancel_orders" in out

    def test_inconsistent_config_file_exits_1(self, tmp_path: Path) -> None:
        path = tmp_path / "inconsistent.toml"
        path.write_text("emergency_liquidation = false\n")
        code, out = run_cli("--env=testnet", "--config", str(path))
        assert code == 1 and "[CRITICAL]" in out and "✗ Valid: False" in out

    def test_json_output_is_machine_readable(self) -> None:
        code, out = run_cli("--env=testnet", "--json")
        data = json.loads(out)
        assert code == 0 and data["valid"] and data["findings"][0]["message"] == TESTNET_WARNING

    def test_unknown_env_is_a_usage_error(self) -> None:
        code, out = run_cli("--env=prod")
        assert code == 2 and "production" in out

    def test_help_explains_every_option(self) -> None:
        result = CliRunner().invoke(cli, ["validate", "--help"])
        for option in ("--env", "--strict", "--config", "--json"):
            assert option in result.output

    def test_checklist_script_runs_as_written(self) -> None:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "validate_liquidation_config.py"), "--env=production", "--strict"],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert "✓ Valid: True" in proc.stdout and "✅ Configuration validated successfully" in proc.stdout
