"""harness.report: Allure results -> Deployment Validation Report, rollback advice, CLI, HTML.

Parser tests feed on real allure-pytest output made by ``pytester``. They run the inner pytest in
a subprocess on purpose: allure-pytest registers its writers in a process-global plugin manager,
so an in-process inner run writes its (deliberately failing) results into the outer run's
--alluredir, where they would corrupt the real deployment report.
"""

from __future__ import annotations

pytest_plugins = ["pytester"]

import json
import re
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.support import REPO_ROOT
from click.testing import CliRunner

import harness.report as report_pkg
from harness.checklist import ITEMS
from harness.report import (
    ItemStatus,
    ResultsError,
    RunResults,
    ResultStatus,
    TestResult,
    build_report,
    generate_html,
    load_results,
    rollback_recommendation,
    write_report,
)
from harness.report.cli import audit_command, report_command
from harness.report.evidence import BotIdentity, Evidence, RunInfo
from harness.report.outcomes import item_outcomes

ROOT = REPO_ROOT
NOW = datetime(2026, 1, 2, 10, 0, 0, tzinfo=timezone.utc)
CONFIG = {"emergency_liquidation": True, "close_positions": True, "cancel_orders": True,
          "timeout_seconds": 5.0, "max_retries": 3, "retry_delay_seconds": 0.5}

MIXED_RUN = '''
import allure, pytest

@allure.epic("Emergency Liquidation")
@allure.feature("Configuration Validation")
@allure.story("Type validation passes")
@allure.severity(allure.severity_level.CRITICAL)
@allure.label("checklist_item", "pre.config.types")
def test_types():
    pass

@allure.label("checklist_item", "scenario.1.normal")
def test_normal_shutdown():
    assert False, "positions remain open"

def test_timeout():
    allure.dynamic.label("checklist_item", "scenario.3.timeout")
    raise RuntimeError("engine hung")

@pytest.mark.skip(reason="no testnet keys")
@allure.label("checklist_item", "scenario.2.disabled")
def test_disabled():
    pass

@pytest.fixture
def resource():
    yield 1

def test_with_fixture_and_attachment(resource):
    allure.attach("hello", name="note", attachment_type=allure.attachment_type.TEXT)
'''


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester whose subprocess runs load allure-pytest only (4x faster than every plugin)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester


def run_allure(pytester: pytest.Pytester, results: Path, *, passed: int = 0, failed: int = 0,
               skipped: int = 0, errors: int = 0) -> None:
    """Run the pytester test files in a subprocess with allure-pytest writing into ``results``."""
    outcome = pytester.runpytest_subprocess("-p", "allure_pytest.plugin", "-p", "no:cacheprovider",
                                            f"--alluredir={results}")
    outcome.assert_outcomes(passed=passed, failed=failed, skipped=skipped, errors=errors)


BOT = BotIdentity("python -m harness.bot", "1.0", "sha256:" + "ab" * 32)
EMBEDDED_VERDICT = "PASSED ON THE EMBEDDED EXCHANGE - run on testnet or Demo Trading before production"


def make_result(item_id: str | None, status: ResultStatus = ResultStatus.PASSED, message: str = "",
                name: str | None = None, evidence: Evidence | None = None) -> TestResult:
    label = () if item_id is None else (("checklist_item", item_id),)
    if evidence is not None:
        label += (("evidence", evidence.value), ("evidence_target", f"{evidence.value} (https://example)"))
    test_name = name or f"test_{(item_id or 'unlabelled').replace('.', '_')}"
    return TestResult(name=test_name, full_name=f"scenarios#{test_name}", status=status,
                      history_id=test_name, message=message, labels=label)


def make_run(overrides: dict[str, ResultStatus | None] | None = None,
             extra: tuple[TestResult, ...] = (), evidence: Evidence | None = None, bot: BotIdentity | None = BOT,
             prefixes: tuple[str, ...] = ("",), directory: str = "allure-results") -> RunResults:
    """Every checklist item (those starting with ``prefixes``) passed, except ``overrides`` (None =
    no result for the item); labelled with ``evidence`` and a harness-run.json for ``bot``."""
    overrides = overrides or {}
    results = []
    for item in ITEMS:
        if not item.id.startswith(prefixes):
            continue
        status = overrides.get(item.id, ResultStatus.PASSED)
        if status is not None:
            message = "" if status is ResultStatus.PASSED else f"{item.id} went wrong"
            results.append(make_result(item.id, status, message, evidence=evidence))
    info = None if evidence is None else RunInfo(evidence, f"{evidence.value} (https://example)", "testnet", "0.1.0",
                                                 finished="2026-01-02T09:00:00+00:00", bot=bot,
                                                 post_deploy=evidence is Evidence.PRODUCTION)
    return RunResults(Path(directory), tuple(results) + extra, info=info)


def production_run(overrides: dict[str, ResultStatus | None] | None = None) -> RunResults:
    return make_run(overrides, evidence=Evidence.PRODUCTION, prefixes=("post.", "monitoring."), directory="post-deploy")


def report_for(run: RunResults, **kwargs: object) -> report_pkg.Report:
    options: dict[str, object] = {"environment": "Production", "now": NOW, "config": CONFIG}
    options.update(kwargs)
    return build_report(run, **options)  # type: ignore[arg-type]


def line_of(markdown: str, prefix: str) -> str:
    return next(line for line in markdown.splitlines() if line.startswith(prefix))


class TestLoadResults:
    def test_reads_status_labels_and_messages_of_real_allure_output(
            self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_mixed=MIXED_RUN)
        results = pytester.path / "allure-results"
        run_allure(pytester, results, passed=2, failed=2, skipped=1)

        run = load_results(results)

        by_name = {r.name: r for r in run.results}
        assert run.counts() == {ResultStatus.PASSED: 2, ResultStatus.FAILED: 1, ResultStatus.BROKEN: 1,
                                ResultStatus.SKIPPED: 1, ResultStatus.UNKNOWN: 0}
        types = by_name["test_types"]
        assert (types.epic, types.feature, types.story, types.severity, types.checklist_items) == (
            "Emergency Liquidation", "Configuration Validation", "Type validation passes",
            "critical", ("pre.config.types",))
        assert types.suite == "test_mixed" and types.full_name == "test_mixed#test_types"
        assert "positions remain open" in by_name["test_normal_shutdown"].message
        assert by_name["test_timeout"].status is ResultStatus.BROKEN
        assert by_name["test_timeout"].checklist_items == ("scenario.3.timeout",)
        assert "no testnet keys" in by_name["test_disabled"].message
        assert run.warnings == ()  # containers and attachments are expected, not warned about

    def test_keeps_only_the_latest_result_when_a_test_ran_twice(
            self, pytester: pytest.Pytester) -> None:
        results = pytester.path / "allure-results"
        pytester.makepyfile(test_flaky="def test_close():\n    assert False, 'first attempt'\n")
        run_allure(pytester, results, failed=1)
        pytester.makepyfile(test_flaky="def test_close():\n    pass\n")
        run_allure(pytester, results, passed=1)

        run = load_results(results)

        assert [(r.name, r.status) for r in run.results] == [("test_close", ResultStatus.PASSED)]

    @pytest.mark.parametrize("latest_file", ["a-result.json", "b-result.json"])
    def test_latest_stop_time_wins_whatever_the_file_order(self, tmp_path: Path,
                                                           latest_file: str) -> None:
        older_file = ({"a-result.json", "b-result.json"} - {latest_file}).pop()
        attempt = {"name": "test_close", "historyId": "h", "start": 100}
        (tmp_path / older_file).write_text(json.dumps({**attempt, "status": "failed", "stop": 150}))
        (tmp_path / latest_file).write_text(json.dumps({**attempt, "status": "passed",
                                                        "start": 200, "stop": 250}))
        run = load_results(tmp_path)
        assert [(r.status, r.source) for r in run.results] == [(ResultStatus.PASSED, latest_file)]

    def test_ignores_foreign_files_and_corrupt_results_with_a_warning(self, tmp_path: Path) -> None:
        valid = {"name": "test_ok", "status": "passed", "historyId": "h1", "start": 1, "stop": 2,
                 "labels": [{"name": "checklist_item", "value": "post.audit"}]}
        (tmp_path / "a-result.json").write_text(json.dumps(valid))
        (tmp_path / "b-result.json").write_text('{"name": "torn", "sta')
        (tmp_path / "c-container.json").write_text("{}")
        (tmp_path / "d-attachment.txt").write_text("log")
        (tmp_path / "environment.properties").write_text("# run\nenvironment=testnet\nTRADING_ENV = testnet\n")
        (tmp_path / "executor.json").write_text("{}")
        (tmp_path / "categories.json").write_text("[]")
        (tmp_path / "notes.txt").write_text("not allure")

        run = load_results(tmp_path)

        assert [r.name for r in run.results] == ["test_ok"]
        assert run.environment == {"environment": "testnet", "TRADING_ENV": "testnet"}
        assert len(run.warnings) == 2
        assert "b-result.json" in run.warnings[0] and "notes.txt" in run.warnings[1]

    def test_unrecognised_status_counts_as_unknown(self, tmp_path: Path) -> None:
        (tmp_path / "x-result.json").write_text(json.dumps({"name": "t", "status": "weird"}))
        assert load_results(tmp_path).results[0].status is ResultStatus.UNKNOWN

    @pytest.mark.parametrize("layout", ["missing", "empty", "containers-only", "a-file"])
    def test_a_directory_without_results_is_an_error_naming_the_path(
            self, tmp_path: Path, layout: str) -> None:
        target = tmp_path / "allure-results"
        if layout == "empty":
            target.mkdir()
        elif layout == "containers-only":
            target.mkdir()
            (target / "x-container.json").write_text("{}")
        elif layout == "a-file":
            target.write_text("")
        with pytest.raises(ResultsError, match=re.escape(str(target))) as caught:
            load_results(target)
        assert caught.value.path == target


class TestSignOffVerdict:
    def test_everything_passed_on_testnet_and_deployed_is_ready_with_every_box_ticked(self) -> None:
        report = report_for([make_run(evidence=Evidence.TESTNET), production_run()])
        md = report.markdown

        assert report.ready and report.blocking == ()
        assert report.verdict is report_pkg.Verdict.READY_FOR_PRODUCTION
        assert md.startswith("**READY FOR PRODUCTION**")
        assert "NOT READY" not in md and "- [ ]" not in md
        assert md.count("- [x]") == 11  # 4 pre-deployment boxes, 7 post-deployment
        assert "- [x] Keys valid\n" in md and "- [x] Dead-man's switch armable\n" in md
        production_items = sum(item.id.startswith(("post.", "monitoring.")) for item in ITEMS)
        total = len(ITEMS) + production_items  # every result of both runs
        assert f"- [x] Tests passing ({total}/{total})" in md
        for n, word in enumerate(["Normal", "Disabled", "Timeout", "Partial"], start=1):
            assert f"- Scenario {n} ({word}): ✅ PASSED" in md
        assert "## Issues Encountered\nNone\n" in md
        assert "## Rollback Executed\nNo\n" in md
        assert "- Initial Status: ✅ Healthy" in md
        assert "No rollback needed" in md and report.rollback == ()

    @pytest.mark.parametrize("evidence", [None, Evidence.EMBEDDED, Evidence.CUSTOM, Evidence.PRODUCTION])
    def test_everything_passed_elsewhere_than_testnet_is_at_most_passed_on_the_embedded_exchange(
            self, evidence: Evidence | None) -> None:
        report = report_for(make_run(evidence=evidence))
        md = report.markdown
        assert report.ready and report.verdict is report_pkg.Verdict.EMBEDDED_ONLY
        assert md.startswith(f"**{EMBEDDED_VERDICT}**") and "READY FOR PRODUCTION" not in md
        assert "scenario.1.normal passed only on" in md
        assert line_of(md, "- [ ] Testnet verification complete").startswith(
            "- [ ] Testnet verification complete — not on testnet / Demo Trading")

    @pytest.mark.parametrize("evidence", [Evidence.TESTNET, Evidence.DEMO, Evidence.TESTNET_PROXIED, Evidence.DEMO_PROXIED])
    def test_testnet_and_demo_evidence_in_any_form_gives_ready_for_production(self, evidence: Evidence) -> None:
        assert report_for(make_run(evidence=evidence)).verdict is report_pkg.Verdict.READY_FOR_PRODUCTION

    @pytest.mark.parametrize("tested", [BotIdentity(BOT.command, "0.9", BOT.config_digest),
                                        BotIdentity(BOT.command, BOT.version, "sha256:" + "cd" * 32),
                                        BotIdentity(BOT.command, BOT.version, ""), None],
                             ids=["other-version", "other-config", "no-digest", "no-bot-recorded"])
    def test_testnet_evidence_for_another_bot_or_config_does_not_count(self, tested: BotIdentity | None) -> None:
        report = report_for(make_run(evidence=Evidence.TESTNET, bot=tested), bot=BOT)
        assert report.verdict is report_pkg.Verdict.EMBEDDED_ONLY
        assert "allure-results: " in report.markdown.split("## Pre-Deployment")[0]  # the mismatch is named

    def test_a_scenario_failing_on_testnet_is_not_rescued_by_the_simulator(self) -> None:
        simulated = make_run(evidence=Evidence.EMBEDDED, directory="sim")
        testnet = make_run({"scenario.3.timeout": ResultStatus.FAILED}, evidence=Evidence.TESTNET,
                           prefixes=("scenario.",), directory="testnet")
        report = report_for([simulated, testnet])
        assert report.verdict is report_pkg.Verdict.NOT_READY
        assert line_of(report.markdown, "- Scenario 3 (Timeout): ").startswith("- Scenario 3 (Timeout): ❌ FAILED")

    def test_simulator_run_plus_testnet_scenarios_say_where_each_came_from(self) -> None:
        testnet = make_run({"scenario.4.partial": ResultStatus.SKIPPED}, evidence=Evidence.TESTNET,
                           prefixes=("scenario.",), directory="testnet")
        report = report_for([make_run(evidence=Evidence.EMBEDDED, directory="sim"), testnet])
        md = report.markdown
        assert report.verdict is report_pkg.Verdict.EMBEDDED_ONLY  # scenario 4 never passed on testnet
        assert "scenario.4.partial passed only on: embedded" in md
        normal = line_of(md, "- Scenario 1 (Normal): ")
        assert "the embedded exchange" in normal and "Binance futures testnet at testnet (https://example): passed" in normal
        assert "1. `sim`: the embedded exchange" in md and "2. `testnet`: Binance futures testnet" in md
        assert line_of(md, "**Environment**: ").startswith("**Environment**: ran on the embedded exchange")

    def test_production_sections_say_not_deployed_without_a_post_deployment_run(self) -> None:
        md = report_for(make_run(evidence=Evidence.TESTNET)).markdown
        assert "## Production Deployment\nnot deployed yet" in md
        assert "## Post-Deployment Verification\nnot deployed yet" in md
        assert "Initial Status" not in md and "Deployment Time" not in md

    def test_failed_required_item_blocks_sign_off_and_unticks_its_box(self) -> None:
        report = report_for(make_run({"pre.config.security": ResultStatus.FAILED}))
        md = report.markdown

        assert not report.ready
        assert md.startswith("**NOT READY FOR SIGN-OFF**")
        assert [b.subject for b in report.blocking] == ["pre.config.security"]
        assert line_of(md, "- [ ] Configuration validated").endswith("pre.config.security: FAILED")
        assert "- [x] Dependencies verified" in md
        issue = line_of(md, "- `scenarios#test_pre_config_security`")
        assert "FAILED" in issue and "pre.config.security went wrong" in issue

    @pytest.mark.parametrize("status, shown", [
        (ResultStatus.SKIPPED, "⏭️ SKIPPED"),
        (None, "⏭️ NOT RUN"),
        (ResultStatus.BROKEN, "❌ FAILED (broken)"),
        (ResultStatus.FAILED, "❌ FAILED"),
    ], ids=["skipped", "missing", "broken", "failed"])
    def test_scenario_that_did_not_pass_blocks_sign_off(self, status: ResultStatus | None,
                                                        shown: str) -> None:
        report = report_for(make_run({"scenario.4.partial": status}))

        assert not report.ready
        assert report.blocking[0].subject == "scenario.4.partial"
        assert line_of(report.markdown, "- Scenario 4 (Partial): ").startswith(
            f"- Scenario 4 (Partial): {shown}")
        assert "- [ ] Testnet verification complete — scenario.4.partial" in report.markdown

    def test_optional_item_failing_does_not_block_but_is_reported(self) -> None:
        report = report_for(make_run({"monitoring.dashboard": ResultStatus.FAILED}))

        assert report.ready
        assert f"- [ ] Tests passing ({len(ITEMS) - 1}/{len(ITEMS)})" in report.markdown
        assert "monitoring.dashboard went wrong" in report.markdown

    def test_failed_result_without_a_checklist_item_blocks_sign_off(self) -> None:
        stray = make_result(None, ResultStatus.FAILED, "boom", name="test_helper")
        report = report_for(make_run(extra=(stray,)))

        assert not report.ready
        assert [(b.subject, b.status) for b in report.blocking] == [
            ("scenarios#test_helper", ItemStatus.FAILED)]
        assert "(no checklist item) FAILED: boom" in report.markdown

    def test_item_status_is_the_worst_of_its_results(self) -> None:
        run = RunResults(Path("r"), (
            make_result("post.audit", ResultStatus.PASSED, name="a"),
            make_result("post.audit", ResultStatus.SKIPPED, "later", name="b"),
        ))
        outcome = next(o for o in item_outcomes(run) if o.id == "post.audit")
        assert (outcome.status, outcome.reason) == (ItemStatus.SKIPPED, "b: later")

    def test_tests_passing_counts_all_results_of_the_run(self) -> None:
        extra = (make_result(None, ResultStatus.PASSED, name="t1"), make_result(None, ResultStatus.SKIPPED,
                                                                           name="t2"))
        report = report_for(make_run(extra=extra))
        total = len(ITEMS) + 2
        assert f"- [ ] Tests passing ({total - 1}/{total}) — 1 skipped" in report.markdown


class TestReportContent:
    SECTIONS = ["# Liquidation System Deployment Report", "**Date**: ", "**Environment**: ",
                "**Deployed By**: ", "**Version**: ", "## Pre-Deployment Checklist",
                "## Testnet Verification Results", "## Production Deployment",
                "- Deployment Time: ", "- Configuration: ", "- Initial Status: ",
                "## Post-Deployment Verification", "## Issues Encountered", "## Rollback Executed",
                "## Sign-Off", "- Technical Lead: ", "- Operations: ", "- Date: ",
                "## Rollback Recommendation", "## Checklist Item Details"]

    def test_every_template_section_appears_in_order(self) -> None:
        md = report_for([make_run(evidence=Evidence.TESTNET), production_run()]).markdown
        positions = [md.index(section) for section in self.SECTIONS]
        assert positions == sorted(positions)

    def test_header_and_sign_off_use_the_given_names(self) -> None:
        md = report_for([make_run(evidence=Evidence.TESTNET), production_run()], deployed_by="Dana", version="1.0",
                        technical_lead="Lee", operations="Ops Olga", deployment_time="2026-01-02 09:30 UTC").markdown
        assert "**Date**: 2026-01-02\n**Environment**: ran on Binance futures testnet [testnet (https://example)] + " \
               "production (non-disruptive checks only) [production (https://example)]; TRADING_ENV=Production\n" \
               "**Deployed By**: Dana\n**Version**: 1.0\n**Harness**: liquidation-harness " in md
        assert f"**Bot under test**: `python -m harness.bot`, version 1.0, config {BOT.config_digest}" in md
        assert "- Deployment Time: 2026-01-02 09:30 UTC (post-deployment checks ran 2026-01-02T09:00:00+00:00)" in md
        assert "- Technical Lead: Lee ✅\n- Operations: Ops Olga ✅\n- Date: 2026-01-02" in md

    def test_fields_a_person_fills_stay_visibly_blank(self) -> None:
        md = report_for([make_run(evidence=Evidence.TESTNET), production_run()]).markdown
        assert "**Deployed By**: ________\n" in md
        assert "- Deployment Time: ________" in md
        assert "- Technical Lead: ________\n- Operations: ________\n" in md

    def test_sign_off_names_are_unticked_when_not_ready(self) -> None:
        md = report_for([make_run(evidence=Evidence.TESTNET), production_run({"post.manager": ResultStatus.FAILED})],
                        technical_lead="Lee").markdown
        assert "- Technical Lead: Lee\n- Operations: ________\n" in md
        assert "- Initial Status: ❌ Unhealthy (post.manager: FAILED)" in md

    def test_post_deployment_boxes_come_only_from_production_evidence(self) -> None:
        md = report_for([make_run(evidence=Evidence.TESTNET), production_run({"post.metrics": None})]).markdown
        assert "- [ ] Metrics collection working — post.metrics: NOT RUN" in md  # passed on testnet: not deployed
        assert "- Initial Status: ⚠️ Unverified (post.metrics: NOT RUN)" in md

    def test_configuration_line_follows_the_checklist_form(self) -> None:
        md = report_for([make_run(), production_run()]).markdown
        assert line_of(md, "- Configuration: ").startswith(
            "- Configuration: emergency_liquidation=True, timeout=5s, retries=3")
        assert line_of(md, "**Configuration**: ").startswith("**Configuration**: emergency_liquidation=True")

    def test_configuration_absent_says_so(self) -> None:
        md = report_for(make_run(), config=None).markdown
        assert line_of(md, "**Configuration**: ").startswith("**Configuration**: not provided")

    def test_unknown_configuration_field_is_rejected_by_name(self) -> None:
        with pytest.raises(ValueError, match="timeout_secs"):
            report_for(make_run(), config={**CONFIG, "timeout_secs": 5})

    def test_blank_environment_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="environment=' '"):
            report_for(make_run(), environment=" ")

    def test_rollback_executed_text_is_reported(self) -> None:
        md = report_for(make_run(), rollback_executed="disabled liquidation, bot restarted").markdown
        assert "## Rollback Executed\nYes: disabled liquidation, bot restarted\n" in md

    def test_detail_table_lists_every_item_and_escapes_pipes(self) -> None:
        run = make_run(extra=(make_result("post.audit", ResultStatus.FAILED, "a | b", name="t"),))
        md = report_for(run).markdown
        for item in ITEMS:
            assert f"| `{item.id}` |" in md
        assert "t: a \\| b" in md

    def test_written_report_is_named_by_time_and_never_overwritten(self, tmp_path: Path) -> None:
        report = report_for(make_run())
        first = write_report(report, tmp_path / "out")
        second = write_report(report, tmp_path / "out")
        assert first.name == "deployment-report-20260102-100000.md"
        assert second != first and second.read_text(encoding="utf-8") == report.markdown

    def test_packaged_template_and_reports_copy_are_identical(self) -> None:
        packaged = ROOT / "harness" / "report" / "templates" / "deployment_report.md"
        copy = ROOT / "reports" / "templates" / "deployment_report.md"
        assert packaged.read_bytes() == copy.read_bytes()


class TestRollbackRecommendation:
    @pytest.mark.parametrize("item_id, issue, severity, rollback", [
        ("pre.config.ranges", "Configuration validation fails", "High", True),
        ("scenario.3.timeout", "Shutdown hangs", "Critical", True),
        ("pre.tests.timeout", "Shutdown hangs", "Critical", True),
        ("scenario.4.partial", "Partial liquidation (some fail)", "Medium", False),
        ("scenario.1.normal", "Complete liquidation failure", "High", True),
        ("post.audit", "No audit logs", "Medium", False),
    ])
    def test_failed_item_triggers_its_matrix_row(self, item_id: str, issue: str, severity: str,
                                                 rollback: bool) -> None:
        rows = rollback_recommendation(item_outcomes(make_run({item_id: ResultStatus.FAILED})))
        assert [(r.issue, r.severity, r.rollback, r.triggered_by) for r in rows] == [
            (issue, severity, rollback, (item_id,))]

    def test_skipped_items_are_no_incident(self) -> None:
        assert rollback_recommendation(item_outcomes(make_run({"scenario.3.timeout":
                                                                   ResultStatus.SKIPPED}))) == []

    def test_rows_are_most_severe_first_and_rendered(self) -> None:
        run = make_run({"post.audit": ResultStatus.FAILED, "scenario.3.timeout": ResultStatus.BROKEN})
        report = report_for(run)
        assert [r.severity for r in report.rollback] == ["Critical", "Medium"]
        assert "Rollback recommended: **Yes** (Shutdown hangs; No audit logs" in report.markdown
        assert ("| Shutdown hangs | Critical | Yes | Kill process, investigate timeout "
                "enforcement | scenario.3.timeout |") in report.markdown


class TestReportCommand:
    def all_items_source(self, failing: str | None = None) -> str:
        lines = ["import allure"]
        for n, item in enumerate(ITEMS):
            body = "assert False, 'it broke'" if item.id == failing else "pass"
            lines += [f"@allure.label('checklist_item', {item.id!r})", f"def test_{n}():",
                      f"    {body}"]
        return "\n".join(lines) + "\n"

    def test_exit_0_when_ready_then_1_after_a_rerun_fails(self, pytester: pytest.Pytester,
                                                          tmp_path: Path) -> None:
        results, out = pytester.path / "allure-results", tmp_path / "out"
        pytester.makepyfile(test_all=self.all_items_source())
        run_allure(pytester, results, passed=len(ITEMS))
        args = ["--results", str(results), "--out", str(out), "--no-html",
                "--environment", "testnet"]

        ready = CliRunner().invoke(report_command, args)
        pytester.makepyfile(test_all=self.all_items_source(failing="scenario.2.disabled"))
        run_allure(pytester, results, passed=len(ITEMS) - 1, failed=1)
        blocked = CliRunner().invoke(report_command, args)

        assert ready.exit_code == 0, ready.output
        assert EMBEDDED_VERDICT in ready.output  # plain allure output: no evidence, never production
        assert blocked.exit_code == 1, blocked.output
        assert "scenario.2.disabled: FAILED" in blocked.output
        assert len(list(out.glob("deployment-report-*.md"))) == 2
        written = Path(line_of(blocked.output, "Deployment report: ").split(": ", 1)[1])
        assert written.read_text(encoding="utf-8").startswith("**NOT READY FOR SIGN-OFF**")

    def test_config_file_is_read_as_the_engine_reads_it(self, pytester: pytest.Pytester, tmp_path: Path) -> None:
        """--config merges with the environment's profile and is refused, exit 2, when the engine would refuse it."""
        results, out = pytester.path / "allure-results", tmp_path / "out"
        pytester.makepyfile(test_all=self.all_items_source())
        run_allure(pytester, results, passed=len(ITEMS))
        good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
        good.write_text("timeout_seconds = 8.0\n")
        bad.write_text("timeout_seconds = 45.0\n")
        base = ["--results", str(results), "--out", str(out), "--no-html", "--environment", "production"]

        accepted = CliRunner().invoke(report_command, [*base, "--config", str(good)])
        refused = CliRunner().invoke(report_command, [*base, "--config", str(bad)])

        assert accepted.exit_code == 0, accepted.output
        written = Path(line_of(accepted.output, "Deployment report: ").split(": ", 1)[1]).read_text(encoding="utf-8")
        assert "emergency_liquidation=True, timeout=8s, retries=3" in written
        assert refused.exit_code == 2 and "timeout_seconds" in refused.output and "30.0" in refused.output

    @pytest.mark.parametrize("make_dir", [False, True], ids=["missing", "empty"])
    def test_exit_2_when_results_are_missing_or_empty(self, tmp_path: Path,
                                                      make_dir: bool) -> None:
        results = tmp_path / "nothing-here"
        if make_dir:
            results.mkdir()
        outcome = CliRunner().invoke(report_command, ["--results", str(results), "--no-html"])
        assert outcome.exit_code == 2
        assert str(results) in outcome.output

    def test_config_file_fills_the_configuration_line(self, tmp_path: Path) -> None:
        results = self.results_dir(tmp_path)
        config = tmp_path / "liquidation.toml"
        config.write_text("[liquidation]\nemergency_liquidation = true\ntimeout_seconds = 10.0\n"
                          "max_retries = 5\n")
        out = tmp_path / "out"
        outcome = CliRunner().invoke(report_command, ["--results", str(results), "--out", str(out),
                                                      "--no-html", "--config", str(config)])
        assert outcome.exit_code == 1  # one item only: not ready, but the report is written
        text = next(out.glob("*.md")).read_text(encoding="utf-8")
        assert "**Configuration**: emergency_liquidation=True, timeout=10s, retries=5" in text

    def test_bad_config_file_is_a_usage_error(self, tmp_path: Path) -> None:
        config = tmp_path / "c.json"
        config.write_text('{"timeout_seconds": 5, "max_retries": 3, "emergency_liquidation": true, '
                          '"colour": "red"}')
        outcome = CliRunner().invoke(report_command, ["--results", str(self.results_dir(tmp_path)),
                                                      "--config", str(config), "--no-html",
                                                      "--out", str(tmp_path / "o")])
        assert outcome.exit_code == 2 and "colour" in outcome.output

    def test_environment_says_what_ran_from_the_runs_own_record(self, tmp_path: Path) -> None:
        results = self.results_dir(tmp_path)
        (results / "environment.properties").write_text("TRADING_ENV=staging\nTarget=testnet (https://x)\n")
        out = tmp_path / "out"
        CliRunner().invoke(report_command, ["--results", str(results), "--out", str(out),
                                            "--no-html"])
        text = next(out.glob("*.md")).read_text(encoding="utf-8")
        assert "**Environment**: ran on unknown target (results without harness evidence labels) " \
               "[testnet (https://x)]; TRADING_ENV=staging" in text

    def test_missing_allure_cli_still_writes_the_markdown_report(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        outcome = CliRunner().invoke(
            report_command, ["--results", str(self.results_dir(tmp_path)), "--out", str(out)],
            env={"ALLURE_BIN": str(tmp_path / "no-allure")})
        assert "Allure HTML report skipped" in outcome.output
        assert outcome.exit_code == 1 and list(out.glob("deployment-report-*.md"))

    def test_every_option_has_help_text(self) -> None:
        for command in (report_command, audit_command):
            for param in command.params:
                assert getattr(param, "help", None), f"{command.name} {param.name} has no help"

    @staticmethod
    def results_dir(tmp_path: Path) -> Path:
        results = tmp_path / "allure-results"
        results.mkdir()
        (results / "r-result.json").write_text(json.dumps(
            {"name": "t", "status": "passed", "labels": [{"name": "checklist_item",
                                                           "value": "post.audit"}]}))
        return results


def fake_allure(tmp_path: Path, script: str) -> Path:
    path = tmp_path / "allure"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


class TestAllureHtml:
    def test_runs_awesome_single_file_and_returns_index(self, tmp_path: Path) -> None:
        binary = fake_allure(tmp_path, 'echo "$@" > "$(dirname "$0")/args"\n'
                                       'out=$(echo "$@" | sed "s/.*--output \\([^ ]*\\).*/\\1/")\n'
                                       'echo "<html>" > "$out/index.html"\n')
        results = tmp_path / "ar"
        results.mkdir()
        index = generate_html(results, tmp_path / "html", allure_bin=binary)
        assert index == tmp_path / "html" / "index.html" and index.is_file()
        args = (tmp_path / "args").read_text().split()
        assert args[:3] == ["awesome", str(results.resolve()), "--single-file"]

    # what Allure 3.18's awesome template writes around its analytics, trimmed
    ANALYTICS_PAGE = (
        '<html><body><div id="app"></div>\n'
        '<script src="data:text/javascript;base64,QVBQ"></script>\n'
        '<script async src="https://www.googletagmanager.com/gtag/js?id=G-X"></script>\n'
        "<script>\n  window.dataLayer = window.dataLayer || [];\n  function gtag(){dataLayer.push(arguments);}\n"
        "  gtag('config', 'G-X', {});\n</script>\n"
        '<script async>window.allureReportData = {};</script>\n%s</body></html>\n'
    )

    def writes_page(self, tmp_path: Path, page: str) -> Path:
        (tmp_path / "page.html").write_text(page)
        return fake_allure(tmp_path, 'out=$(echo "$@" | sed "s/.*--output \\([^ ]*\\).*/\\1/")\n'
                                     f'cp "{tmp_path / "page.html"}" "$out/index.html"\n')

    def test_report_is_written_without_the_analytics_scripts(self, tmp_path: Path) -> None:
        (tmp_path / "ar").mkdir()
        messages: list[str] = []
        index = generate_html(tmp_path / "ar", tmp_path / "h", allure_bin=self.writes_page(tmp_path, self.ANALYTICS_PAGE % ""),
                              log=messages.append)
        assert index is not None, messages
        html = index.read_text()
        assert "googletagmanager" not in html and "gtag" not in html, html
        assert 'src="data:text/javascript;base64,QVBQ"' in html and "window.allureReportData = {};" in html
        assert messages == [] and not (index.parent / "index.html.tmp").exists()

    def test_a_remote_script_left_in_the_report_is_named(self, tmp_path: Path) -> None:
        (tmp_path / "ar").mkdir()
        page = self.ANALYTICS_PAGE % '<script src="https://cdn.example.com/x.js"></script>\n'
        messages: list[str] = []
        index = generate_html(tmp_path / "ar", tmp_path / "h", allure_bin=self.writes_page(tmp_path, page),
                              log=messages.append)
        assert index is not None and "googletagmanager" not in index.read_text()
        assert len(messages) == 1 and "https://cdn.example.com/x.js" in messages[0], messages

    def test_failing_cli_returns_none_with_its_output(self, tmp_path: Path) -> None:
        binary = fake_allure(tmp_path, 'echo "Unknown command awesome" >&2\nexit 3\n')
        (tmp_path / "ar").mkdir()
        messages: list[str] = []
        assert generate_html(tmp_path / "ar", tmp_path / "h", allure_bin=binary,
                             log=messages.append) is None
        assert "exited 3" in messages[0] and "Unknown command awesome" in messages[0]

    def test_missing_cli_returns_none_naming_it(self, tmp_path: Path) -> None:
        (tmp_path / "ar").mkdir()
        messages: list[str] = []
        assert generate_html(tmp_path / "ar", tmp_path / "h", allure_bin=tmp_path / "nope",
                             log=messages.append) is None
        assert str(tmp_path / "nope") in messages[0] and "npm install" in messages[0]

    def test_node_script_without_node_returns_none(self, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
        binary = tmp_path / "cli.js"
        binary.write_text("#!/usr/bin/env node\n")
        (tmp_path / "ar").mkdir()
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        messages: list[str] = []
        assert generate_html(tmp_path / "ar", tmp_path / "h", allure_bin=binary,
                             log=messages.append) is None
        assert "needs Node.js" in messages[0]

    def test_real_allure_3_builds_a_single_file_report(self, pytester: pytest.Pytester,
                                                       tmp_path: Path) -> None:
        binary = report_pkg.find_allure()
        if binary is None:
            pytest.skip("Allure 3 CLI not installed (npm install --prefix .allure allure@3)")
        pytester.makepyfile(test_one="def test_ok():\n    pass\n")
        results = pytester.path / "allure-results"
        run_allure(pytester, results, passed=1)
        messages: list[str] = []
        index = generate_html(results, tmp_path / "html", log=messages.append)
        assert index is not None, messages
        html = index.read_text(errors="replace")
        assert index.stat().st_size > 10_000 and "<html" in html[:2000].lower()
        assert "googletagmanager" not in html and messages == [], messages


def test_public_names_are_exported_sorted() -> None:
    assert report_pkg.__all__ == sorted(report_pkg.__all__)
    assert all(hasattr(report_pkg, name) for name in report_pkg.__all__)
