"""`liquidation-harness verify`: ready only when every required checklist item passed."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from harness.checklist import ITEMS
from harness.cli import cli


def write_checklist_tests(path: Path, failing: str | None = None, message: str = "shutdown hangs") -> Path:
    """One passing test per checklist item; ``failing`` fails with ``message``."""
    lines = ["import pytest"]
    for number, entry in enumerate(ITEMS):
        body = f"assert False, {message!r}" if entry.id == failing else "assert True"
        lines += [f"@pytest.mark.checklist({entry.id!r})", f"def test_item_{number}():", f"    {body}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_verify(tmp_path: Path, test_file: Path) -> tuple[int, str, str]:
    out = tmp_path / "out"
    args = ["verify", "--path", str(test_file), "--results", str(tmp_path / "results"), "--out", str(out),
            "--no-html", "--workers", "1", "--deployed-by", "Test Runner", "--technical-lead", "T. Lead",
            "--", "-p", "harness.pytest_plugin", f"--rootdir={tmp_path}", "-c", "/dev/null"]
    result = CliRunner().invoke(cli, args, env={"TRADING_ENV": "production"})
    reports = sorted(out.glob("deployment-report-*.md"))
    return result.exit_code, result.output, reports[-1].read_text() if reports else ""


def test_all_items_passing_is_ready_for_sign_off(tmp_path: Path) -> None:
    code, output, report = run_verify(tmp_path, write_checklist_tests(tmp_path / "test_ok.py"))
    assert code == 0, output
    assert "READY FOR SIGN-OFF" in output and "NOT READY" not in report
    assert "- Scenario 3 (Timeout): ✅ PASSED" in report
    assert "Deployed By**: Test Runner" in report and "T. Lead" in report


def test_a_broken_scenario_blocks_sign_off_with_the_rollback_recommendation(tmp_path: Path) -> None:
    test_file = write_checklist_tests(tmp_path / "test_broken.py", failing="scenario.3.timeout")
    code, output, report = run_verify(tmp_path, test_file)
    assert code == 1, output
    assert report.lstrip().startswith("**NOT READY FOR SIGN-OFF**")
    assert "Scenario 3 (Timeout): ❌ FAILED" in report
    assert "- [ ] Testnet verification complete" in report
    assert "shutdown hangs" in report  # the failure's message under Issues Encountered
    assert "Shutdown hangs" in report and "Critical" in report  # the decision matrix's row
    assert "NOT READY FOR SIGN-OFF" in output and "scenario.3.timeout" in output
    assert "❌ scenario.3.timeout (FAILED)" in output  # the summary table marks it with the report's icon


def test_a_bad_configuration_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["verify", "--no-html"], env={"LIQUIDATION_TIMEOUT_SECONDS": "45"})
    assert result.exit_code == 2 and "timeout_seconds" in result.output
