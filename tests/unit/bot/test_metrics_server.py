"""harness.bot.metrics_server (Prometheus exposition) and monitoring/ (alert rules, rule tests, dashboard)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO_ROOT
from prometheus_client.parser import text_string_to_metric_families

from harness.bot.metrics_server import METRIC_NAMES, render_metrics, start_metrics_server

MONITORING = REPO_ROOT / "monitoring"
ALERTS, ALERT_TESTS, DASHBOARD = (MONITORING / n for n in ("alerts.yml", "alerts_test.yml",
                                                            "dashboard.json"))
BOUNDS = [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 30.0]
# The checklist's four alerts: alert name -> (severity, the checklist's action, verbatim).
CHECKLIST_ALERTS = {
    "LiquidationSlowExecution": ("warning", "Investigate latency, consider timeout increase"),
    "LiquidationHung": ("critical", "Check logs, verify timeout enforcement"),
    "LiquidationFailed": ("critical", "Review error logs, check API connectivity"),
    "LiquidationPositionsFailed": ("critical", "Manual position closure may be required"),
}
PROMQL_WORDS = {"sum", "by", "max", "and", "increase", "rate", "time", "histogram_quantile", "le",
                "state", "on"}


def engine_metrics(**overrides: Any) -> dict[str, Any]:
    """A get_metrics() dict as the engine returns it: 3 runs (2 COMPLETED, 1 FAILED)."""
    cumulative = [0, 1, 1, 1, 2, 3, 3, 3, 3, 3]
    metrics: dict[str, Any] = {
        "total_executions": 3,
        "executions_by_state": {"COMPLETED": 2, "PARTIAL": 0, "FAILED": 1, "SKIPPED": 0},
        "last_state": "FAILED",
        "last_execution_time_seconds": 4.5,
        "average_execution_time_seconds": 2.0,
        "max_execution_time_seconds": 4.5,
        "execution_time_histogram": {
            "buckets": [[b, c] for b, c in zip(BOUNDS, cumulative)] + [[float("inf"), 3]],
            "sum": 6.0, "count": 3},
        "success_rate": 2 / 3,
        "positions_closed": 5,
        "positions_failed": 1,
        "position_close_success_rate": 5 / 6,
        "orders_cancelled": 4,
        "retries": 2,
        "audit_write_errors": 0,
        "in_progress": False,
        "in_progress_since": None,
    }
    metrics.update(overrides)
    return metrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def exported_sample_names() -> set[str]:
    return {name for name, _ in samples(render_metrics(engine_metrics))}


def metric_names_in(expr: str) -> set[str]:
    return {word for word in re.findall(r"\b[a-z_][a-z0-9_]*\b", expr)
            if word.startswith("liquidation_")}


class TestCollector:
    def test_exports_every_metric_with_the_engines_values(self) -> None:
        got = samples(render_metrics(engine_metrics))

        assert got[("liquidation_executions_total", (("state", "FAILED"),))] == 1
        assert got[("liquidation_executions_total", (("state", "COMPLETED"),))] == 2
        assert got[("liquidation_last_duration_seconds", ())] == 4.5
        assert got[("liquidation_positions_closed_total", ())] == 5
        assert got[("liquidation_positions_failed_total", ())] == 1
        assert got[("liquidation_orders_cancelled_total", ())] == 4
        assert got[("liquidation_retries_total", ())] == 2
        assert got[("liquidation_audit_write_errors_total", ())] == 0
        assert got[("liquidation_in_progress", ())] == 0
        assert got[("liquidation_in_progress_since_seconds", ())] == 0

    def test_family_names_are_the_documented_ones(self) -> None:
        families = {f.name for f in text_string_to_metric_families(render_metrics(engine_metrics))}
        # the parser drops the _total suffix of counters
        assert {re.sub(r"_total$", "", n) for n in METRIC_NAMES} == families

    def test_duration_histogram_keeps_cumulative_buckets_sum_and_count(self) -> None:
        got = samples(render_metrics(engine_metrics))

        def bucket(le: str) -> float:
            return got[("liquidation_duration_seconds_bucket", (("le", le),))]

        assert (bucket("1.0"), bucket("4.0"), bucket("5.0"), bucket("+Inf")) == (1, 2, 3, 3)
        assert got[("liquidation_duration_seconds_sum", ())] == 6.0
        assert got[("liquidation_duration_seconds_count", ())] == 3

    def test_inf_bound_may_be_the_string_or_missing(self) -> None:
        histogram = {"buckets": [[4.0, 1], ["+Inf", 2]], "sum": 9.0, "count": 2}
        got = samples(render_metrics(lambda: engine_metrics(execution_time_histogram=histogram)))
        assert got[("liquidation_duration_seconds_bucket", (("le", "+Inf"),))] == 2
        histogram = {"buckets": [[4.0, 1]], "sum": 9.0, "count": 2}
        got = samples(render_metrics(lambda: engine_metrics(execution_time_histogram=histogram)))
        assert got[("liquidation_duration_seconds_bucket", (("le", "+Inf"),))] == 2

    def test_every_state_is_exported_even_before_it_happened(self) -> None:
        got = samples(render_metrics(lambda: engine_metrics(executions_by_state={"COMPLETED": 1})))
        states = {labels[0][1]: v for (n, labels), v in got.items()
                  if n == "liquidation_executions_total"}
        assert states == {"COMPLETED": 1, "PARTIAL": 0, "FAILED": 0, "SKIPPED": 0}

    def test_running_liquidation_exports_its_start_time(self) -> None:
        got = samples(render_metrics(lambda: engine_metrics(in_progress=True,
                                                            in_progress_since=1_767_348_000.5)))
        assert got[("liquidation_in_progress", ())] == 1
        assert got[("liquidation_in_progress_since_seconds", ())] == 1_767_348_000.5

    @pytest.mark.parametrize("key, value, message", [
        ("positions_closed", None, r"get_metrics\(\)\['positions_closed'\]=None: must be an int"),
        ("in_progress", "yes", r"\['in_progress'\]='yes': must be a bool"),
        ("executions_by_state", [], r"\['executions_by_state'\]=\[\]: must be a mapping"),
        ("execution_time_histogram", {"sum": 1}, r"must be a mapping with 'buckets'"),
    ])
    def test_malformed_metrics_fail_the_scrape_naming_the_key(self, key: str, value: Any,
                                                              message: str) -> None:
        with pytest.raises(ValueError, match=message):
            render_metrics(lambda: engine_metrics(**{key: value}))

    def test_missing_key_names_it(self) -> None:
        metrics = engine_metrics()
        del metrics["retries"]
        with pytest.raises(ValueError, match="has no 'retries'"):
            render_metrics(lambda: metrics)


class TestMetricsServer:
    @pytest.fixture
    def state(self) -> dict[str, Any]:
        return engine_metrics()

    @pytest.fixture
    def server(self, state: dict[str, Any]) -> Iterator[Any]:
        with start_metrics_server(0, lambda: state) as running:
            yield running

    def scrape(self, url: str) -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode("utf-8")

    def test_serves_current_values_on_each_scrape(self, server: Any, state: dict[str, Any]) -> None:
        first = samples(self.scrape(server.url))
        state["positions_closed"] = 9
        second = samples(self.scrape(server.url))
        assert server.url.startswith("http://127.0.0.1:")
        key = ("liquidation_positions_closed_total", ())
        assert (first[key], second[key]) == (5, 9)

    def test_stops_serving_after_close(self) -> None:
        running = start_metrics_server(0, engine_metrics)
        url = running.url
        running.close()
        with pytest.raises(urllib.error.URLError):
            self.scrape(url)

    @pytest.mark.parametrize("port", [-1, 70000, "9100"])
    def test_invalid_port_is_rejected(self, port: Any) -> None:
        with pytest.raises(ValueError, match="port="):
            start_metrics_server(port, engine_metrics)


class TestAlertRules:
    def alert_blocks(self) -> dict[str, str]:
        """alert name -> its block of YAML text (a structural read that needs no YAML library)."""
        text = ALERTS.read_text(encoding="utf-8")
        parts = re.split(r"^\s*- alert:\s*", text, flags=re.MULTILINE)[1:]
        return {part.split()[0]: part for part in parts}

    def test_the_four_checklist_alerts_have_severity_and_action(self) -> None:
        blocks = self.alert_blocks()
        assert set(blocks) == set(CHECKLIST_ALERTS)
        for name, (severity, action) in CHECKLIST_ALERTS.items():
            block = blocks[name]
            assert re.search(rf"^\s+severity: {severity}$", block, re.MULTILINE), name
            assert f'action: "{action}"' in block, name
            assert "summary:" in block and "description:" in block, name

    def test_alerts_parse_as_yaml_with_the_expected_thresholds(self) -> None:
        yaml = pytest.importorskip("yaml", reason="PyYAML not installed; structural test covers")
        doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
        rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"]}
        assert set(rules) == set(CHECKLIST_ALERTS)
        assert rules["LiquidationSlowExecution"]["expr"].endswith("> 4")
        assert rules["LiquidationHung"]["expr"].endswith("> 5")
        assert 'state="FAILED"' in rules["LiquidationFailed"]["expr"]
        for name, (severity, action) in CHECKLIST_ALERTS.items():
            assert rules[name]["labels"]["severity"] == severity
            assert rules[name]["annotations"]["action"] == action

    def test_alerts_use_only_exported_metric_names(self) -> None:
        exprs = re.findall(r"^\s+expr:\s*(.+)$", ALERTS.read_text(encoding="utf-8"), re.MULTILINE)
        assert len(exprs) == 4
        used = set().union(*(metric_names_in(e) for e in exprs))
        assert used and used <= exported_sample_names()

    def test_promtool_checks_and_unit_tests_pass(self) -> None:
        promtool = shutil.which("promtool")
        if promtool is None:
            pytest.skip("promtool not installed (apt-get install -y prometheus)")
        check = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True,
                               text=True, timeout=60, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "SUCCESS: 4 rules found" in check.stdout
        tests = subprocess.run([promtool, "test", "rules", ALERT_TESTS.name], cwd=MONITORING,
                               capture_output=True, text=True, timeout=60, check=False)
        assert tests.returncode == 0, tests.stdout + tests.stderr

    def test_rule_tests_cover_every_alert_firing_and_not_firing(self) -> None:
        text = ALERT_TESTS.read_text(encoding="utf-8")
        for name in CHECKLIST_ALERTS:
            cases = re.findall(rf"alertname: {name}\n\s+exp_alerts:(.*)", text)
            assert "" in [c.strip() for c in cases], f"{name} never fires in a test"
            assert "[]" in [c.strip() for c in cases], f"{name} never checked silent"


class TestDashboard:
    def exprs(self) -> list[str]:
        board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
        return [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]

    def test_has_the_checklists_panels(self) -> None:
        board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
        titles = {panel["title"] for panel in board["panels"]}
        assert {"Total executions", "Average execution time", "Success rate",
                "Position close success rate", "Liquidation states over time"} <= titles

    def test_references_only_exported_metric_names(self) -> None:
        exported = exported_sample_names()
        for expr in self.exprs():
            used = metric_names_in(expr)
            assert used, f"no liquidation metric in {expr!r}"
            assert used <= exported, f"{expr!r} uses {used - exported}"

    def test_queries_are_valid_promql(self, tmp_path: Path) -> None:
        promtool = shutil.which("promtool")
        if promtool is None:
            pytest.skip("promtool not installed (apt-get install -y prometheus)")
        rules = ["groups:", "  - name: dashboard", "    rules:"]
        for n, expr in enumerate(self.exprs()):
            promql = expr.replace("$__rate_interval", "5m")
            rules += [f"      - record: dashboard:query{n}", f"        expr: {json.dumps(promql)}"]
        path = tmp_path / "dashboard_rules.yml"
        path.write_text("\n".join(rules) + "\n", encoding="utf-8")
        check = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                               text=True, timeout=60, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
