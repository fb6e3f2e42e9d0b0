"""The single-file Allure HTML report, opened in headless Chromium, shows the four scenarios."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import NO_HYPOTHESIS, REPO_ROOT
from tests.support.headless import render_until

from harness.checklist import item
from harness.report import find_allure, generate_html

SCENARIO_ITEMS = ("scenario.1.normal", "scenario.2.disabled", "scenario.3.timeout", "scenario.4.partial")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
ROOT = REPO_ROOT

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (bash scripts/bootstrap-tools.sh installs it as root)"),
    pytest.mark.skipif(find_allure() is None or shutil.which("node") is None,
                       reason="Allure 3 CLI or Node.js not installed (bash scripts/bootstrap-tools.sh)"),
]


def scenario_results(tmp_path: Path) -> Path:
    """Allure results for four tests labelled with the scenario items, one of them failing."""
    test_file = tmp_path / "test_four.py"
    lines = ["import pytest"]
    for number, item_id in enumerate(SCENARIO_ITEMS, start=1):
        body = "assert False, 'positions still open'" if number == 4 else "assert True"
        lines += [f"@pytest.mark.checklist({item_id!r})", f"def test_scenario_{number}():", f"    {body}"]
    test_file.write_text("\n".join(lines) + "\n")
    results = tmp_path / "allure-results"
    subprocess.run(
        [sys.executable, "-m", "pytest", str(test_file), "-p", "harness.pytest_plugin", "-p", "no:cacheprovider",
         f"--alluredir={results}", "-q", f"--rootdir={tmp_path}", "-c", "/dev/null", *NO_HYPOTHESIS],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    return results


@pytest.mark.timeout(300)  # report build plus up to 90 s for Chromium to draw it on a loaded machine
def test_html_report_shows_the_four_scenarios(tmp_path: Path) -> None:
    results = scenario_results(tmp_path)
    assert list(results.glob("*-result.json")), "the inner pytest run wrote no Allure results"
    index = generate_html(results, tmp_path / "html")
    assert index is not None and index.exists(), "the Allure HTML report was not generated"
    stories = [item(i).story for i in SCENARIO_ITEMS]
    shown = render_until(CHROMIUM, index.as_uri(), stories, tmp_path / "chromium-profile")
    assert shown.missing == [], f"scenarios not shown in the rendered report within 90 s: {shown.missing}"
    dom = shown.dom
    assert "Emergency liquidation" in dom or "Deployment" in dom or "Report" in dom
