"""What a person (or a machine) sees while ``liquidate`` runs, and the tables at the end.

* ``LiveDisplay``: on a terminal, one line per account redrawn in place (state, orders cancelled,
  positions closed, time left), refreshed every ``REFRESH_SECONDS``;
* ``PlainDisplay``: elsewhere (a pipe, a log), one plain line per step of each account;
* ``JsonDisplay`` (``--json``): one JSON object per line: ``{"type": "progress", ...}`` per step,
  then ``{"type": "dry_run" | "summary", ...}`` last.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import IO, Any

from harness.panic.run import AccountRun

REFRESH_SECONDS = 0.1


def progress_line(run: AccountRun, width: int = 12) -> str:
    found = "?" if run.positions_found is None else str(run.positions_found)
    return (f"{run.account.name:<{width}} {run.state:<9} orders cancelled {run.orders_cancelled:>4}  "
            f"positions closed {run.positions_closed:>3}/{found:<3}  time left {run.time_left():4.1f}s"
            + (f"  {run.error}" if run.error else ""))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def summary_table(runs: Sequence[AccountRun]) -> str:
    rows = [
        (r.account.name, r.account.target.describe(), r.state, r.orders_cancelled, r.positions_closed,
         r.result.positions_failed if r.result else "-", f"{r.duration:.2f}s", r.result_file or r.error or "-")
        for r in runs
    ]
    flat = sum(r.flat for r in runs)
    lines = _table(("account", "target", "state", "cancelled", "closed", "failed", "time", "result"), rows)
    lines.append(f"{flat} of {len(runs)} account(s) flat" + ("" if flat == len(runs) else ": NOT all flat, exit 1"))
    for run in runs:
        lines.extend(_scope_lines(run))
        left = run.left_open
        if left is not None and not left.flat:
            lines.append(f"{run.account.name}: STILL OPEN after the liquidation:")
            lines += [f"  position {p.symbol} {p.position_side} {p.amount}" for p in left.positions]
            lines += [f"  {o.kind} order {o.symbol} {o.order_id} {o.side} {o.type} {o.quantity}" for o in left.orders]
        for error in (run.result.errors if run.result else [])[:10]:
            lines.append(f"  {run.account.name}: {error}")
    return "\n".join(lines)


def _scope_lines(run: AccountRun) -> list[str]:
    outside = run.out_of_scope
    if outside is None or outside.flat:
        return []
    lines = [f"{run.account.name}: out of scope (--symbols {','.join(run.account.symbols)}), left alone:"]
    lines += [f"  position {p.symbol} {p.position_side} {p.amount}" for p in outside.positions]
    lines += [f"  {o.kind} order {o.symbol} {o.order_id} {o.side} {o.type} {o.quantity}" for o in outside.orders]
    return lines


def dry_run_table(runs: Sequence[AccountRun]) -> str:
    rows: list[tuple[Any, ...]] = []
    for run in runs:
        if run.snapshot is None:
            rows.append((run.account.name, "-", "-", "-", "-", f"could not read the account: {run.error}"))
            continue
        for p in run.snapshot.positions:
            rows.append((run.account.name, "close", p.symbol, p.position_side, p.close_side, f"MARKET {abs(p.amount)} reduce-only"))
        for o in run.snapshot.orders:
            rows.append((run.account.name, "cancel", o.symbol, o.kind, o.side, f"{o.type} {o.order_id} qty {o.quantity} @ {o.price}"))
        if run.snapshot.flat:
            rows.append((run.account.name, "-", "-", "-", "-", "already flat: nothing to do"))
    lines = ["DRY RUN: nothing was sent but reads; this is what liquidate would do:"]
    lines += _table(("account", "action", "symbol", "what", "side", "detail"), rows)
    for run in runs:
        lines.extend(_scope_lines(run))
    return "\n".join(lines)


class PlainDisplay:
    """One line per step (start, positions found, done); nothing redrawn."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._said: dict[str, tuple[Any, ...]] = {}

    def changed(self, run: AccountRun) -> None:
        key = (run.phase, run.positions_found is not None)
        if self._said.get(run.account.name) == key:
            return
        self._said[run.account.name] = key
        print(progress_line(run), file=self.stream, flush=True)

    async def __aenter__(self) -> PlainDisplay:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class JsonDisplay(PlainDisplay):
    def changed(self, run: AccountRun) -> None:
        print(json.dumps({"type": "progress", "account": run.account.name, "state": run.state,
                          "orders_cancelled": run.orders_cancelled, "positions_closed": run.positions_closed,
                          "positions_found": run.positions_found, "time_left": round(run.time_left(), 3)}),
              file=self.stream, flush=True)


class LiveDisplay(PlainDisplay):
    """One line per account, redrawn in place on a terminal."""

    def __init__(self, stream: IO[str], runs: Sequence[AccountRun]) -> None:
        super().__init__(stream)
        self.runs = runs
        self._drawn = 0
        self._task: asyncio.Task[None] | None = None
        self._width = max([len(r.account.name) for r in runs] + [8])

    def changed(self, run: AccountRun) -> None:
        return None  # drawn by the refresh loop

    def draw(self) -> None:
        out = self.stream
        if self._drawn:
            out.write(f"\x1b[{self._drawn}F")
        for run in self.runs:
            out.write("\x1b[2K" + progress_line(run, self._width) + "\n")
        self._drawn = len(self.runs)
        out.flush()

    async def _loop(self) -> None:
        while True:
            self.draw()
            await asyncio.sleep(REFRESH_SECONDS)

    async def __aenter__(self) -> LiveDisplay:
        self._task = asyncio.ensure_future(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.draw()


def display_for(stream: IO[str], runs: Sequence[AccountRun], *, as_json: bool, tty: bool) -> PlainDisplay:
    if as_json:
        return JsonDisplay(stream)
    return LiveDisplay(stream, runs) if tty else PlainDisplay(stream)


__all__ = ["JsonDisplay", "LiveDisplay", "PlainDisplay", "display_for", "dry_run_table", "progress_line", "summary_table"]
