"""The checklist's own commands, run as written (only the import path adapted) over a real audit trail."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

from harness.core import AuditLogger, LiquidationConfig, LiquidationManager
from harness.exchanges.sim import FaultPlan, InMemoryOrderManager, SimBook

ROOT = REPO_ROOT
needs_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="jq not installed (bash scripts/bootstrap-tools.sh)")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A deployment directory whose logs/audit.jsonl holds a COMPLETED and a PARTIAL run."""
    book = SimBook()
    book.set_position("BTCUSDT", "0.010")
    book.set_position("ETHUSDT", "-0.500")
    faults = FaultPlan()
    faults.lock_symbol("ETHUSDT")
    with AuditLogger(tmp_path / "logs" / "audit.jsonl") as audit:
        manager = LiquidationManager(LiquidationConfig(), InMemoryOrderManager(book, faults), audit, ["BTCUSDT", "ETHUSDT"])
        asyncio.run(manager.execute_emergency_liquidation("first"))
        faults.clear()
        asyncio.run(manager.execute_emergency_liquidation("second"))
    return tmp_path


def sh(command: str, cwd: Path) -> str:
    done = subprocess.run(["bash", "-c", "set -o pipefail; " + command], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, f"{command!r} failed: {done.stderr}"
    return done.stdout


@needs_jq
class TestAuditQueries:
    def test_count_liquidation_events_by_type(self, workdir: Path) -> None:
        out = sh("jq -r '.event_type' logs/audit.jsonl | grep LIQUIDATION | sort | uniq -c", workdir)
        counts = {line.split()[1]: int(line.split()[0]) for line in out.strip().splitlines()}
        assert counts == {"LIQUIDATION_COMPLETE": 2, "LIQUIDATION_START": 2}

    def test_average_execution_time(self, workdir: Path) -> None:
        out = sh("jq -r 'select(.event_type == \"LIQUIDATION_COMPLETE\") | .details.duration_seconds' logs/audit.jsonl | "
                 "awk '{sum+=$1; count+=1} END {if(count>0) print \"Avg:\", sum/count, \"seconds\"}'", workdir)
        assert out.startswith("Avg: ") and out.strip().endswith("seconds")
        assert float(out.split()[1]) >= 0

    def test_final_state_of_the_last_run(self, workdir: Path) -> None:
        out = sh("grep \"LIQUIDATION_COMPLETE\" logs/audit.jsonl | tail -1 | jq '.'", workdir)
        assert json.loads(out)["details"]["state"] == "COMPLETED"

    def test_real_time_liquidation_filter(self, workdir: Path) -> None:
        out = sh("cat logs/audit.jsonl | jq -c 'select(.event_type | contains(\"LIQUIDATION\"))'", workdir)
        assert [json.loads(line)["event_type"] for line in out.splitlines()] == [
            "LIQUIDATION_START", "LIQUIDATION_COMPLETE", "LIQUIDATION_START", "LIQUIDATION_COMPLETE"]

    def test_review_recent_events_and_errors(self, workdir: Path) -> None:
        out = sh("grep -i liquidation logs/audit.jsonl | tail -50", workdir)
        assert len(out.splitlines()) == 4


class TestSmokeOneLiners:
    def test_liquidation_manager_initialized(self, tmp_path: Path) -> None:
        out = sh(f"{sys.executable} -c \"from harness.bot import TradingBot; bot = TradingBot(); bot.initialize(); "
                 "assert bot.liquidation_manager is not None; print('✓ Liquidation manager initialized')\"", tmp_path)
        assert "✓ Liquidation manager initialized" in out

    def test_configuration_loaded(self, tmp_path: Path) -> None:
        out = sh(f"{sys.executable} -c \"from harness.bot import TradingBot; bot = TradingBot(); bot.initialize(); "
                 "config = bot.liquidation_manager.config; "
                 "print(f'Config: emergency={config.emergency_liquidation}, timeout={config.timeout_seconds}s')\"", tmp_path)
        assert out.strip() == "Config: emergency=True, timeout=5.0s"

    def test_security_verification(self, tmp_path: Path) -> None:
        out = sh(f"{sys.executable} -c \"from harness.core import LiquidationConfig; config = LiquidationConfig(); "
                 "assert config.emergency_liquidation == True, 'Emergency liquidation must be enabled'; "
                 "print('✓ Security check passed')\"", tmp_path)
        assert "✓ Security check passed" in out

    def test_metrics_as_json(self, tmp_path: Path) -> None:
        out = sh(f"{sys.executable} -c \"from harness.bot import TradingBot; bot = TradingBot(); bot.initialize(); "
                 "import json; print(json.dumps(bot.liquidation_manager.get_metrics(), indent=2))\"", tmp_path)
        assert json.loads(out)["total_executions"] == 0
