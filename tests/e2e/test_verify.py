"""`liquidation-harness verify`: the verdict names the evidence level; no run loses earlier evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.checklist import ITEMS
from harness.cli import cli
from harness.exchanges.sim import BinanceSimulator
from harness.exchanges.target import DEMO_KEY_VARS, PRODUCTION_KEY_VARS, TESTNET_KEY_VARS
from harness.report.html import find_allure

EMBEDDED_VERDICT = "PASSED ON THE EMBEDDED EXCHANGE - run on testnet or Demo Trading before production"
ALL_KEY_VARS = PRODUCTION_KEY_VARS + TESTNET_KEY_VARS + DEMO_KEY_VARS


def write_checklist_tests(path: Path, failing: str | None = None, message: str = "shutdown hangs") -> Path:
    """One passing test per checklist item; ``failing`` fails with ``message``. Scenario tests talk
    to the run's target (GET /fapi/v1/time when it is not the embedded exchange), as real ones do."""
    lines = ["import pytest, requests"]
    for number, entry in enumerate(ITEMS):
        body = f"assert False, {message!r}" if entry.id == failing else "assert True"
        lines += [f"@pytest.mark.checklist({entry.id!r})"]
        if entry.id.startswith("scenario."):
            lines += [f"def test_item_{number}(run_target):",
                      "    if run_target.target is not None:",
                      "        requests.get(run_target.target.root_url + '/fapi/v1/time', timeout=5).raise_for_status()",
                      f"    {body}"]
        else:
            lines += [f"def test_item_{number}():", f"    {body}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def invoke_verify(tmp_path: Path, test_file: Path, *extra: str, env: dict[str, str] | None = None,
                  out: Path | None = None) -> tuple[int, str]:
    args = ["verify", "--path", str(test_file), "--out", str(out or tmp_path / "out"), "--no-html", "--no-gate",
            "--workers", "1", "--deployed-by", "Test Runner", "--technical-lead", "T. Lead", *extra,
            "--", "-p", "allure_pytest.plugin", "-p", "harness.pytest_plugin", f"--rootdir={tmp_path}", "-c", "/dev/null"]
    environment = {name: "" for name in ALL_KEY_VARS}
    # only the plugins these runs need: twice as fast on a busy machine
    environment.update({"TRADING_ENV": "testnet", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **(env or {})})
    result = CliRunner().invoke(cli, args, env=environment)
    return result.exit_code, result.output


def latest_report(out: Path) -> str:
    reports = sorted((out / "runs" / "latest").glob("deployment-report-*.md"))
    return reports[-1].read_text() if reports else ""


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_passing_embedded_run_never_claims_production(tmp_path: Path) -> None:
    code, output = invoke_verify(tmp_path, write_checklist_tests(tmp_path / "test_ok.py"))
    assert code == 0, output
    report = latest_report(tmp_path / "out")
    assert f"✅ {EMBEDDED_VERDICT}" in output
    assert report.lstrip().startswith(f"**{EMBEDDED_VERDICT}**")
    assert "READY FOR PRODUCTION" not in report and "READY FOR PRODUCTION" not in output
    assert "**Environment**: ran on the embedded exchange" in report and "production" not in line_of(report, "**Environment**")
    assert "- Scenario 3 (Timeout): ✅ PASSED" in report and "(ran on: the embedded exchange" in line_of(report, "- Scenario 3")
    assert "- [ ] Testnet verification complete — not on testnet / Demo Trading" in report
    assert "## Production Deployment\nnot deployed yet" in report and "Initial Status" not in report
    assert "Deployed By**: Test Runner" in report and "- Operations: ________" in report
    assert "T. Lead\n" in report and "T. Lead ✅" not in report  # no tick under an embedded-only verdict
    run_dir = (tmp_path / "out" / "runs" / "latest").resolve()
    assert (run_dir / "junit.xml").is_file() and (run_dir / "allure-results" / "harness-run.json").is_file()
    assert json.loads((run_dir / "verdict.json").read_text())["verdict"] == EMBEDDED_VERDICT
    assert "requiredChecklistItems" in (run_dir / "allurerc.mjs").read_text()  # the gate CI applies
    assert "Quality gate: not applied (--no-gate)" in output


def line_of(text: str, prefix: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(prefix))


def test_a_broken_scenario_blocks_sign_off_with_the_rollback_recommendation(tmp_path: Path) -> None:
    test_file = write_checklist_tests(tmp_path / "test_broken.py", failing="scenario.3.timeout")
    code, output = invoke_verify(tmp_path, test_file, "--gate")
    report = latest_report(tmp_path / "out")
    assert code == 1, output
    assert report.lstrip().startswith("**NOT READY FOR SIGN-OFF**")
    assert "Scenario 3 (Timeout): ❌ FAILED" in report
    assert "- [ ] Testnet verification complete" in report
    assert "shutdown hangs" in report  # the failure's message under Issues Encountered
    assert "Shutdown hangs" in report and "Critical" in report  # the decision matrix's row
    assert "NOT READY FOR SIGN-OFF" in output and "scenario.3.timeout" in output
    assert "❌ scenario.3.timeout (FAILED)" in output  # the summary table marks it with the report's icon
    # the same rule, applied by the Allure 3 quality gate CI runs (where Node.js + Allure 3 are installed)
    if find_allure() is None:
        assert "Quality gate: not applied (the Allure 3 CLI is not installed" in output
    else:
        assert "Quality gate (" in output and "): FAILED" in output, output
        assert "required checklist items not passed: scenario.3.timeout (failed)" in output
        assert "1 tests failed or broke; at most 0 allowed" in output


def test_a_bad_configuration_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["verify", "--no-html", "--out", str(tmp_path / "out")],
                                env={"LIQUIDATION_TIMEOUT_SECONDS": "45"})
    assert result.exit_code == 2 and "timeout_seconds" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("flag", "key_vars"), [("--testnet", TESTNET_KEY_VARS), ("--demo", DEMO_KEY_VARS)])
def test_simulator_run_next_to_a_stood_in_exchange_run_and_the_verdicts_differ(
        tmp_path: Path, flag: str, key_vars: tuple[str, str]) -> None:
    """The embedded exchange stands in for testnet / Demo Trading at --exchange-url (as a fault
    proxy in front of the real one would): the evidence is "through a proxy", the verdict differs."""
    test_file = write_checklist_tests(tmp_path / "test_ok.py")
    if flag == "--testnet":
        code, output = invoke_verify(tmp_path, test_file, out=tmp_path / "sim")
        assert code == 0, output
    with BinanceSimulator() as sim:
        keys, url = {key_vars[0]: sim.api_key, key_vars[1]: sim.api_secret}, sim.base_url
        code, output = invoke_verify(tmp_path, test_file, flag, "--exchange-url", sim.base_url, out=tmp_path / "stood-in", env=keys)
        preflight_calls = sim.requests_to("/fapi/v2/balance")
    assert code == 0, output
    assert "✅ READY FOR PRODUCTION" in output
    stood_in = latest_report(tmp_path / "stood-in")
    assert stood_in.lstrip().startswith("**READY FOR PRODUCTION**")
    level = "testnet" if flag == "--testnet" else "Demo Trading"
    assert f"{level} through a fault proxy at {flag.removeprefix('--')} through the proxy/stand-in at {url}: passed" \
        in line_of(stood_in, "- Scenario 1")
    assert level in line_of(stood_in, "**Environment**")
    assert "- [x] Testnet verification complete" in stood_in
    assert "T. Lead ✅" in stood_in
    assert preflight_calls  # the key preflight reached the stood-in exchange
    if flag == "--demo":
        return
    assert latest_report(tmp_path / "sim").lstrip().startswith(f"**{EMBEDDED_VERDICT}**")
    # both runs in one report: which evidence came from where
    result = CliRunner().invoke(cli, ["report", "--no-html", "--out", str(tmp_path / "both"),
                                      "--results", str(tmp_path / "sim" / "runs" / "latest" / "allure-results"),
                                      "--results", str(tmp_path / "stood-in" / "runs" / "latest" / "allure-results")])
    assert result.exit_code == 0, result.output
    combined = next((tmp_path / "both").glob("*.md")).read_text()
    assert combined.lstrip().startswith("**READY FOR PRODUCTION**")
    scenario = line_of(combined, "- Scenario 2")
    assert "the embedded exchange" in scenario and "through a fault proxy" in scenario
    assert "1. `" in combined and "2. `" in combined


def test_a_refused_or_failed_verify_leaves_the_previous_run_untouched(tmp_path: Path) -> None:
    test_file = write_checklist_tests(tmp_path / "test_ok.py")
    code, output = invoke_verify(tmp_path, test_file)
    assert code == 0, output
    out = tmp_path / "out"
    before = snapshot(out)
    for extra, env, expected in [
        (("--testnet",), {}, "BINANCE_TESTNET_API_KEY"),  # no keys
        (("--demo", "--exchange-url", "http://127.0.0.1:9"), {DEMO_KEY_VARS[0]: "k", DEMO_KEY_VARS[1]: "s"}, "cannot be reached"),
        (("--testnet", "--demo"), {TESTNET_KEY_VARS[0]: "k", TESTNET_KEY_VARS[1]: "s"}, "not both"),
    ]:
        code, output = invoke_verify(tmp_path, test_file, *extra, env=env)
        assert code == 2 and expected in output, output
        assert snapshot(out) == before
    with BinanceSimulator() as sim:  # reachable, but the keys are refused
        code, output = invoke_verify(tmp_path, test_file, "--testnet", "--exchange-url", sim.base_url,
                                     env={TESTNET_KEY_VARS[0]: "wrong", TESTNET_KEY_VARS[1]: "wrong"})
    assert code == 2 and "refused the API key" in output, output
    assert snapshot(out) == before
    code, output = invoke_verify(tmp_path, tmp_path / "no_such_test.py")  # pytest itself cannot run
    assert code == 2 and "Earlier runs are untouched" in output, output
    assert snapshot(out) == before


def test_each_run_has_its_own_directory_and_the_report_shows_the_last_verdicts(tmp_path: Path) -> None:
    assert invoke_verify(tmp_path, write_checklist_tests(tmp_path / "test_ok.py"))[0] == 0
    first = (tmp_path / "out" / "runs" / "latest").resolve()
    code, output = invoke_verify(tmp_path, write_checklist_tests(tmp_path / "test_bad.py", failing="pre.tests.retry"))
    assert code == 1, output
    second = (tmp_path / "out" / "runs" / "latest").resolve()
    assert first != second and first.is_dir() and any(first.glob("deployment-report-*.md"))
    report = latest_report(tmp_path / "out")
    assert "## Recent Runs" in report
    assert EMBEDDED_VERDICT in line_of(report[report.index("## Recent Runs"):], f"| {json.loads((first / 'verdict.json').read_text())['finished']}")


def test_an_existing_results_directory_is_refused(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "old-result.json").write_text("{}")
    code, output = invoke_verify(tmp_path, write_checklist_tests(tmp_path / "test_ok.py"), "--results", str(results))
    assert code == 2 and "already holds results" in output
    assert [p.name for p in results.iterdir()] == ["old-result.json"]


POST_DEPLOY_TESTS = """
import pytest, requests

@pytest.mark.checklist("post.manager")
def test_manager(run_target):
    assert run_target.post_deploy

@pytest.mark.checklist("post.metrics")
def test_metrics(run_target):
    assert run_target.is_production

@pytest.mark.checklist("post.audit")
def test_audit(run_target):
    pass

@pytest.mark.checklist("post.no_critical")
def test_no_critical(run_target):
    pass

@pytest.mark.checklist("post.keys")
def test_keys(run_target):
    assert run_target.is_production

@pytest.mark.checklist("post.deadman")
def test_deadman(run_target):
    pass

@pytest.mark.checklist("monitoring.alerts")
def test_alerts(run_target):
    pass

@pytest.mark.checklist("monitoring.dashboard")
def test_no_order_can_be_placed(run_target):
    from harness.pytest_plugin import OrderEndpointRefused
    with pytest.raises(OrderEndpointRefused):
        requests.post("https://fapi.binance.com/fapi/v1/order")
"""


def test_post_deploy_fills_the_production_sections_next_to_the_pre_deployment_evidence(tmp_path: Path) -> None:
    assert invoke_verify(tmp_path, write_checklist_tests(tmp_path / "test_ok.py"))[0] == 0
    before = latest_report(tmp_path / "out")
    assert "## Production Deployment\nnot deployed yet" in before
    post = tmp_path / "test_post.py"
    post.write_text(POST_DEPLOY_TESTS)
    code, output = invoke_verify(tmp_path, post, "--post-deploy", "--deployment-time", "2026-01-02 09:30 UTC",
                                 env={"TRADING_ENV": "production"})
    assert code == 0, output
    report = latest_report(tmp_path / "out")
    assert "- Deployment Time: 2026-01-02 09:30 UTC (post-deployment checks ran " in report
    assert "- Initial Status: ✅ Healthy" in report and "- [x] Manager initialized" in report
    assert "production (non-disruptive checks only)" in line_of(report, "**Environment**")
    assert "READY FOR PRODUCTION" not in report  # the scenarios still ran only on the embedded exchange


def test_hypothesis_plugin_is_left_out_only_when_the_project_tests_are_not_run(tmp_path: Path) -> None:
    from harness.verify import project_tests_dir, pytest_command, scenario_dir

    def command(*paths: str) -> list[str]:
        return pytest_command(paths, tmp_path, testnet=False, environment=None, exchange_url=None, symbols=None,
                              workers="0", extra=())

    assert "no:hypothesispytest" in command(str(scenario_dir()))
    tests = project_tests_dir()
    assert tests is not None, "run from a checkout: tests/ is the project's suite"
    with_tests = command(str(tests), str(scenario_dir()))
    assert "no:hypothesispytest" not in with_tests, with_tests
