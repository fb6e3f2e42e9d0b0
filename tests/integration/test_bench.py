"""``liquidation-harness bench`` end to end on a tiny account (the real numbers come from the full run)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from harness.bench import bench_command, percentile, seed_account, synthetic_specs
from harness.exchanges.sim import SimBook


class TestBenchCommand:
    def test_quick_run_writes_json_with_engine_baseline_memory_and_target_verdicts(self, tmp_path: Path) -> None:
        args = ["--quick", "--sizes", "2", "--rtt-ms", "2", "--runs", "2", "--memory-liquidations", "3",
                "--no-profile", "--out", str(tmp_path)]
        result = CliRunner().invoke(bench_command, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "liquidation_latency.json").read_text())
        (row,) = report["results"]
        assert (row["n"], row["rtt_ms"], row["engine"]["runs"], row["baseline"]["runs"]) == (2, 2, 2, 1)
        assert row["engine"]["all_flat"] and row["baseline"]["all_flat"]
        assert row["engine"]["http_429"] == 0 and row["engine"]["requests"] >= 7
        assert report["memory"]["liquidations"] == 3 and report["memory"]["failures"] == 0
        verdicts = {t["target"]: t["verdict"] for t in report["targets"]}
        assert verdicts["N=200 RTT=50ms median"] == "not measured"
        assert "PNG skipped" in result.output or (tmp_path / "liquidation_latency.png").exists()

    def test_bad_sizes_are_a_usage_error(self) -> None:
        result = CliRunner().invoke(bench_command, ["--sizes", "0,x"])
        assert result.exit_code == 2 and "--sizes" in result.output


class TestAccounts:
    def test_every_symbol_gets_a_position_and_two_orders_and_every_fourth_needs_two_market_orders(self) -> None:
        specs = synthetic_specs(8)
        book = SimBook(specs)
        assert seed_account(book, specs) == 16
        assert len(book.open_orders()) == 8 and len(book.open_algo_orders()) == 8
        big = [p for p in book.positions() if abs(p["position_amt"]) > specs[0].market_max_qty]
        assert sorted(p["symbol"] for p in big) == ["B000USDT", "B004USDT"]

    def test_percentile_is_nearest_rank(self) -> None:
        assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.95) == 5.0
        assert percentile([1.0, 2.0], 0.5) == 1.0
