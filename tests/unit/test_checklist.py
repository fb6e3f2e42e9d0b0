"""The harness plugin's checklist marker and production refusal, tested with pytester."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

from harness.checklist import CHECKLIST_LABEL, EPIC, item as checklist_item
from harness.pytest_plugin import PRODUCTION_SKIP_REASON

pytest_plugins = ["pytester"]

REPO = REPO_ROOT
PLUGIN = ("-p", "harness.pytest_plugin", "-p", "no:cacheprovider")  # inner runs autoload no plugins (fast)
MARKERS_INI = """
[pytest]
markers =
    places_orders: the scenario places or cancels orders on the target exchange
"""


def _labels(result_file: Path) -> list[tuple[str, str]]:
    return [(label["name"], label["value"]) for label in json.loads(result_file.read_text())["labels"]]


def _result_for(alluredir: Path, test_name: str) -> Path:
    for path in alluredir.glob("*-result.json"):
        if json.loads(path.read_text()).get("name") == test_name:
            return path
    raise AssertionError(f"no Allure result for {test_name} in {alluredir}: {sorted(p.name for p in alluredir.iterdir())}")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs see no target variables from this run and load only the plugins they name."""
    for name in ("TRADING_ENV", "BINANCE_TESTNET_API_KEY", "BINANCE_TESTNET_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


class TestChecklistMarker:
    def test_marked_test_gets_the_allure_labels_of_its_checklist_item(self, pytester: pytest.Pytester,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        pytester.makepyfile(test_labelled="""
            import pytest

            @pytest.mark.checklist("scenario.1.normal")
            def test_normal():
                pass

            @pytest.mark.checklist("pre.tests.unit")
            @pytest.mark.checklist("pre.tests.mock")
            def test_two_items():
                pass
        """)
        # the subprocess imports the working tree's harness (a stale editable install maps it as a namespace)
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        alluredir = pytester.path / "allure-results"
        result = pytester.runpytest_subprocess(*PLUGIN, "-p", "allure_pytest.plugin", f"--alluredir={alluredir}")
        result.assert_outcomes(passed=2)
        entry = checklist_item("scenario.1.normal")
        labels = _labels(_result_for(alluredir, "test_normal"))
        expected = [("epic", EPIC), ("feature", entry.feature), ("story", entry.story), ("severity", entry.severity),
                    (CHECKLIST_LABEL, "scenario.1.normal")]
        missing = [label for label in expected if label not in labels]
        assert not missing, f"Allure result lacks labels {missing}; it has {labels}"
        assert CHECKLIST_LABEL == "checklist_item", f"the report reads 'checklist_item', the plugin writes {CHECKLIST_LABEL!r}"
        both = sorted(value for name, value in _labels(_result_for(alluredir, "test_two_items")) if name == CHECKLIST_LABEL)
        assert both == ["pre.tests.mock", "pre.tests.unit"], f"a test with two checklist marks has checklist labels {both}"

    def test_a_slow_variant_left_out_labels_nothing_and_runs_with_run_slow(self, pytester: pytest.Pytester,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
        pytester.makepyfile(test_soak="""
            import pytest

            @pytest.mark.checklist("criteria.memory")
            def test_fast():
                pass

            @pytest.mark.slow
            @pytest.mark.checklist("criteria.memory")
            def test_soak():
                pass
        """)
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        alluredir = pytester.path / "allure-results"
        result = pytester.runpytest_subprocess(*PLUGIN, "-p", "allure_pytest.plugin", f"--alluredir={alluredir}")
        result.assert_outcomes(passed=1, skipped=1)
        soak = [value for name, value in _labels(_result_for(alluredir, "test_soak")) if name == CHECKLIST_LABEL]
        assert soak == [], f"a soak test left out without --run-slow still marks its item: {soak}"
        assert (CHECKLIST_LABEL, "criteria.memory") in _labels(_result_for(alluredir, "test_fast"))
        shutil.rmtree(alluredir)
        result = pytester.runpytest_subprocess(*PLUGIN, "-p", "allure_pytest.plugin", f"--alluredir={alluredir}", "--run-slow")
        result.assert_outcomes(passed=2)
        assert (CHECKLIST_LABEL, "criteria.memory") in _labels(_result_for(alluredir, "test_soak"))

    def test_unknown_checklist_id_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_unknown="""
            import pytest

            @pytest.mark.checklist("no.such.item")
            def test_unknown():
                pass
        """)
        result = pytester.runpytest_inprocess(*PLUGIN)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, f"an unknown checklist id gave exit {result.ret}, expected a usage error"
        result.stderr.fnmatch_lines(["*bad checklist marker*unknown checklist item 'no.such.item'*"])


class TestProductionTarget:
    @pytest.mark.parametrize(("environment", "outcomes"), [
        pytest.param("production", {"passed": 1, "skipped": 1}, id="production-skips-order-placing"),
        pytest.param("testnet", {"passed": 2}, id="embedded-testnet-runs-everything"),
    ])
    def test_places_orders_is_skipped_only_against_production(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                              environment: str, outcomes: dict[str, int]) -> None:
        monkeypatch.setenv("TRADING_ENV", environment)
        pytester.makeini(MARKERS_INI)
        pytester.makepyfile(test_target="""
            import pytest

            @pytest.mark.places_orders
            def test_places_an_order():
                pass

            def test_read_only():
                pass
        """)
        result = pytester.runpytest_inprocess(*PLUGIN, f"--env={environment}", "-rs")
        result.assert_outcomes(**outcomes)
        if environment == "production":
            result.stdout.fnmatch_lines([f"SKIPPED*{PRODUCTION_SKIP_REASON[:60]}*"])
