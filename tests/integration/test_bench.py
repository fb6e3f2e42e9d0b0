"""``liquidation-harness bench`` end to end on a tiny account (the real numbers come from the full run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.bench import PEER_NAME, bench_command, percentile, plot_labels, seed_account, synthetic_specs, write_plot
from harness.exchanges.sim import SimBook


class TestBenchCommand:
    def test_quick_run_writes_json_with_engine_baseline_memory_and_target_verdicts(self, tmp_path: Path) -> None:
        args = ["--quick", "--sizes", "2", "--rtt-ms", "2", "--runs", "2", "--memory-liquidations", "3",
                "--no-profile", "--no-peer", "--out", str(tmp_path)]
        result = CliRunner().invoke(bench_command, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "liquidation_latency.json").read_text())
        (row,) = report["results"]
        assert (row["n"], row["rtt_ms"], row["engine"]["runs"], row["baseline"]["runs"]) == (2, 2, 2, 1)
        assert row["engine"]["all_flat"] and row["baseline"]["all_flat"]
        assert row["engine"]["http_429"] == 0 and row["engine"]["requests"] >= 7
        for figure in ("median_ms", "p95_ms", "median_rtts", "p95_rtts", "peak_in_flight", "http_418",
                       "bot_cpu_ms_median", "exchange_cpu_ms_median"):
            assert isinstance(row["engine"][figure], (int, float)), figure
        assert row["ratios"]["vs_sequential_baseline"] == row["speedup"] > 0
        assert report["memory"]["liquidations"] == 3 and report["memory"]["failures"] == 0
        assert len(report["load_average_at_start"]) == len(report["load_average_at_end"]) == 3
        verdicts = {t["target"]: t["verdict"] for t in report["targets"]}
        assert verdicts["N=200 RTT=50ms median"] == verdicts["N=200 RTT=20ms median"] == "not measured"
        assert verdicts["N=50 RTT=50ms speed-up over the ccxt peer"] == "not measured" and report["peer"] == "off"
        assert "PNG skipped" in result.output or (tmp_path / "liquidation_latency.png").exists()

    def test_the_ccxt_peer_liquidates_the_same_accounts_and_gets_a_ratio(self, tmp_path: Path) -> None:
        pytest.importorskip("ccxt")
        args = ["--sizes", "3", "--rtt-ms", "2", "--runs", "2", "--baseline-runs", "0", "--memory-liquidations", "0",
                "--no-profile", "--exchange", "in-process", "--out", str(tmp_path)]
        result = CliRunner().invoke(bench_command, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "liquidation_latency.json").read_text())
        (row,) = report["results"]
        peer = row["ccxt"]
        assert report["peer"] == PEER_NAME and peer["runs"] == 2 and peer["all_flat"], peer
        assert peer["states"] == ["COMPLETED"] and peer["http_429"] + peer["http_418"] == 0
        # one position read, 2 cancels per symbol, 1 + 1 + 1 closes (the first symbol's 150 splits in two), a read back,
        # and the leverage brackets ccxt loads before its first position read
        assert peer["requests"] == 1 + 1 + 2 * 3 + 4 + 1
        assert row["ratios"]["vs_ccxt"] == round(peer["median_ms"] / row["engine"]["median_ms"], 2)
        assert row["ratios"]["vs_sequential_baseline"] is None and "baseline" not in row

    def test_the_plot_shows_the_engine_both_peers_and_the_floor(self, tmp_path: Path) -> None:
        pytest.importorskip("matplotlib")
        engine = {"median_ms": 10.0, "p95_ms": 12.0}
        rows = [{"n": n, "rtt_ms": 5, "engine": engine, "baseline": {"median_ms": 90.0}, "ccxt": {"median_ms": 20.0},
                 "ratios": {"vs_ccxt": 2.0, "vs_sequential_baseline": 9.0}} for n in (1, 10)]
        report = {"settings": {"rtts_ms": [5]}, "results": rows}
        path = tmp_path / "plot.png"
        assert write_plot(report, path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert set(plot_labels(report)) >= {"engine, RTT 5 ms (median)", "sequential baseline, RTT 5 ms",
                                            "ccxt async + gather, RTT 5 ms", "floor 3 RTT = 15 ms"}

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
