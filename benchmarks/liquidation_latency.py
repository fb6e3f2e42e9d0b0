"""Liquidation latency at scale against a sequential baseline (issue 8).

    .venv/bin/python benchmarks/liquidation_latency.py [--quick] [--sizes 1,10,50,200] [--rtt-ms 20,50]

The same as ``liquidation-harness bench``; the benchmark itself lives in ``harness.bench`` so the
installed package can run it. Writes reports/out/bench/liquidation_latency.json (and .png with the
``bench`` extra: ``pip install -e '.[bench]'``). Not a test: it prints pass/miss per target.
"""

from __future__ import annotations

from harness.bench import bench_command

if __name__ == "__main__":  # the guard matters: the exchange's child process imports this module too
    bench_command(prog_name="benchmarks/liquidation_latency.py")
