"""The Allure 3 quality gate and the report state one sign-off rule: a failing item fails both.

The gate cases run the real ``allure quality-gate`` (Node.js + Allure 3, installed by
scripts/bootstrap-tools.sh) and are skipped, with the reason, where it is not installed.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from harness.checklist import ITEMS
from harness.report import build_report, load_results
from harness.report.gate import GATE_FILE, gate_config, required_item_ids, run_gate, write_gate_config
from harness.report.html import find_allure

CONFIG = {"emergency_liquidation": True, "timeout_seconds": 5.0, "max_retries": 3}


def write_results(directory: Path, statuses: dict[str, str], extra: tuple[dict, ...] = ()) -> Path:
    """One Allure result per checklist item (status from ``statuses``, default passed), plus ``extra``."""
    directory.mkdir(parents=True)
    entries = [{"name": f"test_{n}", "status": statuses.get(entry.id, "passed"),
                "labels": [{"name": "checklist_item", "value": entry.id}]} for n, entry in enumerate(ITEMS)]
    for n, entry in enumerate([*entries, *extra]):
        uid = str(uuid.uuid4())
        result = {"uuid": uid, "historyId": f"history-{n}", "name": entry["name"], "fullName": f"tests.t#{entry['name']}",
                  "status": entry["status"], "start": 1000 + n, "stop": 2000 + n, "labels": entry.get("labels", [])}
        if entry["status"] != "passed":
            result["statusDetails"] = {"message": f"{entry['name']} did not pass"}
        (directory / f"{uid}-result.json").write_text(json.dumps(result), encoding="utf-8")
    return directory


def verify_rule(directory: Path) -> bool:
    """verify's own rule without pytest: the report is ready and no result failed or broke
    (what pytest's exit code 0 means)."""
    run = load_results(directory)
    return build_report(run, config=CONFIG).ready and not run.failures()


def test_the_gate_config_is_generated_from_the_checklist_table() -> None:
    required = [entry.id for entry in ITEMS if entry.required]
    assert required_item_ids() == required and "monitoring.dashboard" not in required
    text = gate_config()
    assert f"requiredChecklistItems: {json.dumps(required)}" in text and "maxFailures: 0" in text
    # items the suites cannot judge (a team's bot: the project's own tests) are not required
    narrowed = required_item_ids(("pre.tests.", "pre.deps.methods"))
    assert set(required) - set(narrowed) == {i for i in required if i.startswith("pre.tests.")} | {"pre.deps.methods"}


# each gate case starts Node.js (~2 s of CPU): one per rule path, not one per status
CASES = [
    pytest.param({}, (), True, id="every-item-passed"),
    pytest.param({"scenario.3.timeout": "failed"}, (), False, id="a-required-item-failed"),  # both rules
    pytest.param({"pre.tests.retry": "skipped"}, (), False, id="a-required-item-skipped"),  # requiredChecklistItems
    pytest.param({}, ({"name": "test_unlabelled", "status": "broken"},), False, id="an-unlabelled-test-broke"),  # maxFailures
]


@pytest.mark.parametrize(("statuses", "extra", "passes"), CASES)
def test_verify_and_the_allure_gate_agree(tmp_path: Path, statuses: dict[str, str], extra: tuple[dict, ...],
                                          passes: bool) -> None:
    results = write_results(tmp_path / "allure-results", statuses, extra)
    assert verify_rule(results) is passes
    if find_allure() is None:
        pytest.skip("the Allure 3 CLI is not installed (scripts/bootstrap-tools.sh): the gate side was not run")
    gate = run_gate(write_gate_config(tmp_path), [results])
    assert gate.ran, gate.output
    assert gate.passed is passes, gate.output
    if not passes and statuses and "failed" not in statuses.values():
        assert next(iter(statuses)) in gate.output, gate.output  # the gate names the item that did not pass


def test_an_optional_item_that_failed_still_fails_verify(tmp_path: Path) -> None:
    """Not required, so the report does not block on it, but the failed test is a failure (pytest
    exit 1, the gate's maxFailures, as the unlabelled case above checks)."""
    results = write_results(tmp_path / "allure-results", {"monitoring.dashboard": "failed"})
    assert build_report(load_results(results), config=CONFIG).ready and not verify_rule(results)


def test_a_missing_cli_is_not_a_verdict(tmp_path: Path) -> None:
    results = write_results(tmp_path / "allure-results", {})
    gate = run_gate(write_gate_config(tmp_path), [results], allure_bin=tmp_path / "no-such-allure")
    assert not gate.ran and gate.passed is None and "not installed" in gate.output
    assert (tmp_path / GATE_FILE).is_file()
