"""Hostile input: fuzzed configuration, command lines, exchange replies and audit files.

* The config loader (``load_config``: TOML files and ``LIQUIDATION_*`` / ``TRADING_ENV`` /
  ``EMERGENCY_LIQUIDATION_DISABLED`` variables) returns a configuration or raises ``ConfigError``,
  nothing else, whatever the bytes.
* The command lines (``liquidation-harness validate`` and ``python -m harness.bot``) answer every
  bad input with a one-line error and exit 2, never a traceback (the bot's ``run`` is replaced by a
  stub, so an input it accepts returns at once instead of waiting for a signal).
* Exchange replies mangled by ``MutatingProxy`` (a loopback HTTP proxy in front of the embedded
  exchange: missing fields, wrong types, HTML, empty bodies, ``null``, huge numbers) become
  per-symbol failures of a liquidation that still returns in time, never an exception, and I1, I2,
  I4 (COMPLETED only when flat) and I5 hold.
* The audit reader (``harness.core.audit.read_audit``) and the report's ``summarize_audit`` survive any
  corruption of a valid file: truncation at any byte, garbage lines, invalid UTF-8, NUL bytes,
  deeply nested JSON, 5,000-digit numbers; every untouched line is still read.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.chaos_strategies import book_legs, check_audit, check_deadline, check_fills
from harness.bot import TradingBot, make_bot_command
from harness.cli import cli
from harness.core.audit import AuditLogger, read_audit
from harness.core.config import FIELD_TYPES, LiquidationConfig, load_config
from harness.core.errors import ConfigError
from harness.core.manager import LiquidationManager
from harness.exchanges.binance import BinanceFuturesOrderManager
from harness.exchanges.sim import BinanceSimulator
from harness.report import summarize_audit

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# -- configuration ---------------------------------------------------------------------------------
FIELDS = sorted(FIELD_TYPES)
toml_keys = st.one_of(st.sampled_from(FIELDS + ["liquidation", "timeout", "Timeout_Seconds"]),
                      st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
toml_scalars = st.one_of(
    st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(["9" * 5000, "1e400", "-0", "nan", "inf", "true", "5.0"]),
)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value > 0 else "-inf") if value in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


@st.composite
def toml_documents(draw: st.DrawFn) -> bytes:
    """Well-formed TOML with wrong keys and values, or raw bytes (broken TOML, invalid UTF-8, huge numbers)."""
    kind = draw(st.sampled_from(["fields", "table", "raw", "bytes"]))
    if kind == "raw":
        return draw(st.text(max_size=200)).encode("utf-8")
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    lines = [f"{draw(toml_keys)} = {raw if isinstance(raw := draw(toml_scalars), str) and raw.isdigit() else _toml_value(raw)}"
             for _ in range(draw(st.integers(0, 4)))]
    if kind == "table":
        lines = ["[liquidation]"] + lines
    return ("\n".join(lines) + "\n").encode("utf-8")


env_values = st.one_of(st.text(max_size=30).filter(lambda v: "\x00" not in v),
                       st.sampled_from(["9" * 5000, "nan", "inf", "-1", "true", "0", " 5 ", "1e400", ""]))


@st.composite
def environments(draw: st.DrawFn) -> dict[str, str]:
    environ: dict[str, str] = {}
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.one_of(st.sampled_from([f"LIQUIDATION_{f.upper()}" for f in FIELDS]),
                              st.sampled_from(["LIQUIDATION_", "LIQUIDATION_TIMEOUT", "EMERGENCY_LIQUIDATION_DISABLED"])))
        environ[name] = draw(env_values)
    if draw(st.booleans()):
        environ["TRADING_ENV"] = draw(st.one_of(st.sampled_from(["production", "testnet", "prod", ""]), env_values))
    return environ


class TestConfigLoader:
    @FUZZ
    @given(document=toml_documents(), environ=environments())
    @example(document=b"timeout_seconds = 5\n\xff\xfe", environ={})
    @example(document=b"max_retries = " + b"9" * 5000 + b"\n", environ={})
    def test_returns_a_config_or_raises_config_error(self, document: bytes, environ: dict[str, str],
                                                     tmp_path: Path) -> None:
        path = tmp_path / "liquidation.toml"
        path.write_bytes(document)
        try:
            config = load_config(environ.get("TRADING_ENV") or "production", path, environ)
        except ConfigError as exc:
            message = str(exc)
            assert exc.field and len(message) < 600 and "Traceback" not in message, message
        else:
            assert isinstance(config, LiquidationConfig)


# -- command lines ---------------------------------------------------------------------------------
class Built:
    """The bot command with a ``run`` that only records the bot it was handed (an accepted command
    line must not wait for a signal)."""

    def __init__(self) -> None:
        self.bots: list[TradingBot] = []
        self.command = make_bot_command(run=self.run)

    def run(self, bot: TradingBot) -> int:
        self.bots.append(bot)
        return 0


@pytest.fixture
def built() -> Built:
    return Built()



BAD_BOT_ARGS: tuple[tuple[str, ...], ...] = (
    ("--env", "prod"), ("--log-level", "LOUD"), ("--deadman-countdown", "-1"), ("--deadman-countdown", "nan"),
    ("--deadman-countdown", "0.5"), ("--deadman-interval", "1e9"), ("--metrics-port", "70000"),
    ("--metrics-port", "http"), ("--symbols", "BTC USDT"), ("--symbols", ""), ("--symbols", "btc;rm -rf"),
    ("--exchange-url", "ftp://127.0.0.1"), ("--exchange-url", "http://"), ("--exchange-url", "not a url"),
    ("--testnet", "--exchange-url", "https://fapi.binance.com"), ("--log-dir", "/dev/null/logs"),
    ("--config", "/nonexistent/liquidation.toml"), ("--no-such-option",),
)
arg_values = st.one_of(st.text(max_size=20).filter(lambda v: "\x00" not in v),
                       st.sampled_from(["-1", "0", "nan", "1e400", "9" * 400, "http://127.0.0.1:1", "BTCUSDT"]))
BOT_OPTIONS = ("--env", "--log-level", "--symbols", "--exchange-url", "--deadman-countdown", "--deadman-interval",
               "--metrics-port", "--metrics-addr", "--config")


def _clean_exit(result: Any) -> bool:
    return result.exception is None or isinstance(result.exception, SystemExit)


class TestCommandLines:
    @pytest.mark.parametrize("args", BAD_BOT_ARGS, ids=[" ".join(a)[:40] for a in BAD_BOT_ARGS])
    def test_bot_refuses_a_bad_command_line_with_exit_two(self, args: tuple[str, ...], tmp_path: Path,
                                                          built: Built, restore_root_logging: None) -> None:
        argv = [*args] if "--log-dir" in args else ["--log-dir", str(tmp_path / "logs"), *args]
        result = CliRunner().invoke(built.command, argv, env={"TRADING_ENV": "testnet"})
        assert _clean_exit(result), result.exception
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and ("error" in result.output.lower()), result.output
        assert built.bots == []

    @FUZZ
    @given(options=st.lists(st.tuples(st.sampled_from(BOT_OPTIONS), arg_values), max_size=3), environ=environments(),
           document=toml_documents())
    def test_bot_command_line_fuzz_exits_two_or_starts(self, options: list[tuple[str, str]], environ: dict[str, str],
                                                       document: bytes, tmp_path: Path, built: Built,
                                                       restore_root_logging: None) -> None:
        (tmp_path / "c.toml").write_bytes(document)
        argv = ["--log-dir", str(tmp_path / "logs"), "--exchange-url", "http://127.0.0.1:9"]
        for option, value in options:
            argv += [option, str(tmp_path / "c.toml") if option == "--config" else value]
        built.bots.clear()
        result = CliRunner().invoke(built.command, argv, env={"TRADING_ENV": "testnet", **environ})
        assert _clean_exit(result), f"{argv}: {result.exception!r}"
        assert "Traceback" not in result.output
        assert (result.exit_code, len(built.bots)) in ((2, 0), (0, 1)), (argv, environ, result.output)

    @FUZZ
    @given(document=toml_documents(), environ=environments(), strict=st.booleans())
    def test_validate_exits_zero_one_or_two_and_never_tracebacks(self, document: bytes, environ: dict[str, str],
                                                                 strict: bool, tmp_path: Path) -> None:
        path = tmp_path / "c.toml"
        path.write_bytes(document)
        args = ["validate", "--config", str(path)] + (["--strict"] if strict else [])
        result = CliRunner().invoke(cli, args, env=environ)
        assert _clean_exit(result), result.exception
        assert "Traceback" not in result.output
        assert result.exit_code in (0, 1, 2)
        if result.exit_code == 2:
            assert "error" in result.output.lower(), result.output


# -- exchange replies ------------------------------------------------------------------------------
HUGE = "9" * 5000
_HUGE_MARK = "__huge__"


def _mutate_json(data: Any, mutation: str, field: str) -> Any:
    def change(entry: Any) -> Any:
        if not isinstance(entry, dict) or field not in entry:
            return entry
        entry = dict(entry)
        if mutation == "drop":
            del entry[field]
        elif mutation == "wrong_type":
            entry[field] = {"value": entry[field]}
        elif mutation == "null":
            entry[field] = None
        elif mutation == "huge":
            entry[field] = _HUGE_MARK
        elif mutation == "huge_exponent":
            entry[field] = "1e400"
        elif mutation == "huge_decimal":  # within Decimal's precision, absurd as a size
            entry[field] = "100000000000000000000"
        elif mutation == "not_a_number":
            entry[field] = "NaN"
        return entry

    if isinstance(data, list):
        return [change(item) for item in data]
    return change(data)


@dataclass
class Mangle:
    """Mangle the reply of ``method path`` (``times`` replies, None = all) with ``mutation``."""

    method: str
    path: str
    mutation: str  # empty | html | null_body | wrong_container | drop | wrong_type | null | huge | huge_exponent | not_a_number
    field: str = ""
    times: int | None = 1

    def apply(self, status: int, body: bytes) -> tuple[int, str, bytes]:
        if self.mutation == "empty":
            return status, "application/json", b""
        if self.mutation == "html":
            return status, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        if self.mutation == "null_body":
            return status, "application/json", b"null"
        try:
            data = json.loads(body)
        except ValueError:
            return status, "application/json", body
        if self.mutation == "wrong_container":
            data = {"data": data} if isinstance(data, list) else [data]
        else:
            data = _mutate_json(data, self.mutation, self.field)
        text = json.dumps(data).replace(json.dumps(_HUGE_MARK), HUGE)
        return status, "application/json", text.encode()


class MutatingProxy:
    """A loopback HTTP proxy in front of ``upstream`` that mangles chosen replies (see ``Mangle``)."""

    def __init__(self, upstream: str, mangles: list[Mangle]) -> None:
        self.upstream = upstream
        self.mangles = mangles
        self.mangled: list[str] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.base_url = ""

    def __enter__(self) -> MutatingProxy:
        self._thread.start()
        assert self._ready.wait(10), "the proxy did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _stop(self) -> None:
        await self._runner.cleanup()
        await self._session.close()

    def _take(self, method: str, path: str) -> Mangle | None:
        with self._lock:
            for mangle in self.mangles:
                if mangle.method == method and path.endswith(mangle.path) and mangle.times != 0:
                    if mangle.times is not None:
                        mangle.times -= 1
                    self.mangled.append(f"{method} {path} {mangle.mutation} {mangle.field}")
                    return mangle
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("x-mbx-apikey", "content-type")}
        async with self._session.request(request.method, self.upstream + request.path_qs, data=body,
                                         headers=headers) as reply:
            status, content_type, payload = reply.status, reply.content_type, await reply.read()
        mangle = self._take(request.method, request.path)
        if mangle is not None:
            status, content_type, payload = mangle.apply(status, payload)
        return web.Response(status=status, body=payload, content_type=content_type)


ENDPOINT_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/fapi/v3/positionRisk"): ("positionAmt", "positionSide", "symbol", "markPrice"),
    ("GET", "/fapi/v1/positionSide/dual"): ("dualSidePosition",),
    ("GET", "/fapi/v1/exchangeInfo"): ("symbols", "rateLimits"),
    ("GET", "/fapi/v1/time"): ("serverTime",),
    ("GET", "/fapi/v1/openOrders"): ("orderId",),
    ("GET", "/fapi/v1/openAlgoOrders"): ("algoId",),
    ("DELETE", "/fapi/v1/allOpenOrders"): ("code",),
    ("DELETE", "/fapi/v1/algoOpenOrders"): ("code",),
    ("POST", "/fapi/v1/order"): ("executedQty", "status", "avgPrice", "orderId", "clientOrderId"),
    ("GET", "/fapi/v1/order"): ("executedQty", "status"),
}
BODY_MUTATIONS = ("empty", "html", "null_body", "wrong_container")
FIELD_MUTATIONS = ("drop", "wrong_type", "null", "huge", "huge_exponent", "huge_decimal", "not_a_number")


@st.composite
def mangles(draw: st.DrawFn) -> Mangle:
    method, path = draw(st.sampled_from(sorted(ENDPOINT_FIELDS)))
    mutation = draw(st.sampled_from(BODY_MUTATIONS + FIELD_MUTATIONS))
    field = draw(st.sampled_from(ENDPOINT_FIELDS[(method, path)])) if mutation in FIELD_MUTATIONS else ""
    return Mangle(method, path, mutation, field, draw(st.sampled_from([1, 2, None])))


LEGS = {"one-way": {("BTCUSDT", "BOTH"): "250.5", ("ETHUSDT", "BOTH"): "-1.5"},
        "hedge": {("BTCUSDT", "LONG"): "0.5", ("ETHUSDT", "SHORT"): "-1.5"}}
TIMEOUT_SECONDS = 2.0


async def _liquidate_through(proxy: MutatingProxy, sim: BinanceSimulator, audit_path: Path) -> Any:
    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    async with BinanceFuturesOrderManager(sim.api_key, sim.api_secret, base_url=proxy.base_url, request_timeout=1.0,
                                          sleep=no_wait, sync_sleep=lambda s: None) as adapter:
        with AuditLogger(audit_path) as audit:
            manager = LiquidationManager(LiquidationConfig(timeout_seconds=TIMEOUT_SECONDS, max_retries=2), adapter,
                                         audit, ["BTCUSDT", "ETHUSDT"], sleep=no_wait)
            started = asyncio.get_running_loop().time()
            result = await manager.execute_emergency_liquidation("hostile replies")
            return result, asyncio.get_running_loop().time() - started


class TestMalformedExchangeReplies:
    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(mode=st.sampled_from(sorted(LEGS)), mangled=st.lists(mangles(), min_size=1, max_size=3))
    @example(mode="one-way", mangled=[Mangle("GET", "/fapi/v3/positionRisk", "drop", "positionAmt", None)])
    @example(mode="one-way", mangled=[Mangle("GET", "/fapi/v3/positionRisk", "huge", "positionAmt", None)])
    @example(mode="one-way", mangled=[Mangle("GET", "/fapi/v3/positionRisk", "huge_exponent", "positionAmt", None)])
    @example(mode="one-way", mangled=[Mangle("GET", "/fapi/v3/positionRisk", "huge_decimal", "positionAmt", None)])
    @example(mode="one-way", mangled=[Mangle("GET", "/fapi/v3/positionRisk", "empty", "", None)])
    @example(mode="hedge", mangled=[Mangle("GET", "/fapi/v3/positionRisk", "drop", "symbol", None)])
    @example(mode="hedge", mangled=[Mangle("POST", "/fapi/v1/order", "huge", "executedQty", None)])
    @example(mode="one-way", mangled=[Mangle("POST", "/fapi/v1/order", "html", "", None)])
    def test_a_mangled_reply_is_a_failure_never_a_crash(self, mode: str, mangled: list[Mangle], tmp_path: Path) -> None:
        with BinanceSimulator() as sim:
            if mode == "hedge":
                sim.book.set_hedge_mode(True)
            for (symbol, side), amount in LEGS[mode].items():
                sim.book.set_position(symbol, amount, side)
            start = book_legs(sim.book)
            audit_path = tmp_path / f"audit-{id(mangled)}.jsonl"
            with MutatingProxy(sim.base_url, [Mangle(**vars(m)) for m in mangled]) as proxy:
                result, elapsed = asyncio.run(_liquidate_through(proxy, sim, audit_path))
                left_open = book_legs(sim.book)
                orders_open = sim.book.open_orders() + sim.book.open_algo_orders()
        problems = check_fills(start, sim.fill_log) + check_deadline(elapsed, TIMEOUT_SECONDS)
        problems += check_audit(audit_path).problems
        if result.state.value == "COMPLETED" and (left_open or orders_open):
            problems.append(f"I4: COMPLETED with {left_open} open after {proxy.mangled}")
        if len(left_open) > result.positions_failed:
            problems.append(f"I4: {left_open} left open, positions_failed={result.positions_failed} after {proxy.mangled}")
        assert not problems, "\n".join(problems)


class TestHugeNumbers:
    def test_a_size_needing_more_orders_than_a_close_may_send_is_refused_at_once(self) -> None:
        """Regression: planning 1e20 BTC in 120-BTC orders never ended (the event loop, and the deadline, hung)."""
        from harness.exchanges.binance.rules import MAX_ORDERS_PER_CLOSE, InvalidArgumentError, SymbolRules, plan_market_orders

        rules = SymbolRules("BTCUSDT", step_size=Decimal("0.001"), min_qty=Decimal("0.001"), max_qty=Decimal("120"))
        assert len(plan_market_orders(Decimal(120 * MAX_ORDERS_PER_CLOSE), rules).chunks) == MAX_ORDERS_PER_CLOSE
        for size in ("100000000000000000000", "1e400", str(120 * MAX_ORDERS_PER_CLOSE + 1)):
            with pytest.raises(InvalidArgumentError) as info:
                plan_market_orders(Decimal(size), rules)
            assert info.value.terminal

    def test_an_unreadable_position_row_is_an_error_never_flat(self) -> None:
        """Regression: a positionRisk row without positionAmt (or an empty body) was read as "no position"."""
        from harness.exchanges.binance.rules import parse_position_rows

        good = {"symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "0.010", "markPrice": "x"}
        assert parse_position_rows([good])[0].amount == Decimal("0.010")
        for reply in ({}, None, "<html>", [dict(good, positionAmt=None)], [{k: v for k, v in good.items() if k != "positionAmt"}],
                      [{k: v for k, v in good.items() if k != "symbol"}], [dict(good, positionSide="UP")], ["BTCUSDT"]):
            with pytest.raises(ValueError):
                parse_position_rows(reply)


# -- audit files -----------------------------------------------------------------------------------
def _valid_audit(path: Path) -> list[bytes]:
    path.unlink(missing_ok=True)  # one file per example: tmp_path outlives Hypothesis examples
    with AuditLogger(path) as audit:
        for cid in ("run-one", "run-two"):
            audit.log("LIQUIDATION_START", cid, {"reason": "test", "symbols": ["BTCUSDT"]})
            audit.log("ORDER_PLACED", cid, {"symbol": "BTCUSDT", "quantity": Decimal("0.010")})
            audit.log("LIQUIDATION_COMPLETE", cid, {"state": "COMPLETED", "duration_seconds": 0.5, "errors": []})
    return path.read_bytes().splitlines(keepends=True)


GARBAGE_LINES = (
    b"\x00\x00\x00\n", b"\xff\xfe\xfd\n", b"[" * 50000 + b"\n", b'{"n": ' + b"9" * 5000 + b"}\n", b"null\n",
    b"[]\n", b'"just a string"\n', b'{"event_type": 5, "timestamp": "x"}\n',
    b'{"timestamp": "9999-99-99", "event_type": "LIQUIDATION_START", "correlation_id": "c", "details": 5}\n',
    b'{"timestamp": "2026-01-01T00:00:00", "event_type": "LIQUIDATION_COMPLETE", "correlation_id": ["x"], '
    b'"details": {"duration_seconds": NaN, "errors": "oops", "positions_closed": "2"}}\n',
    b"{" * 3 + b"\n", b"\n", b" \t \n",
)


@st.composite
def corruptions(draw: st.DrawFn) -> tuple[str, int, bytes]:
    return (draw(st.sampled_from(["truncate", "insert", "overwrite"])), draw(st.integers(0, 10**6)),
            draw(st.one_of(st.sampled_from(GARBAGE_LINES), st.binary(max_size=80))))


class TestCorruptedAuditFile:
    @FUZZ
    @given(edits=st.lists(corruptions(), min_size=1, max_size=3))
    @example(edits=[("insert", 1, b"[" * 50000 + b"\n")])
    @example(edits=[("insert", 2, b'{"n": ' + b"9" * 5000 + b"}\n")])
    def test_readers_survive_any_corruption_and_keep_the_untouched_lines(
        self, edits: list[tuple[str, int, bytes]], tmp_path: Path
    ) -> None:
        path = tmp_path / "audit.jsonl"
        lines = _valid_audit(path)
        untouched = list(lines)
        for kind, where, junk in edits:
            index = where % (len(lines) + 1)
            if kind == "truncate":
                data = b"".join(lines)
                data = data[: where % (len(data) + 1)]
                lines = data.splitlines(keepends=True)
            elif kind == "insert":
                lines.insert(index, junk)
            elif lines:
                lines[index % len(lines)] = junk
        path.write_bytes(b"".join(lines))
        original = {line.rstrip(b"\n") for line in untouched}
        *complete, _last = path.read_bytes().split(b"\n")  # the last piece has no newline after it
        survivors = [json.loads(piece) for piece in complete if piece in original]
        log = read_audit(path)
        summary = summarize_audit(log)
        kept = [record.to_dict() for record in log.records]
        assert all(s in kept for s in survivors)
        assert summary.total_events == len(log.records) >= len(survivors)

    @settings(max_examples=100, deadline=None, derandomize=True, database=None)
    @given(cut=st.integers(0, 10**6))
    def test_a_file_cut_at_any_byte_loses_at_most_its_torn_last_line(self, cut: int, tmp_path_factory: Any) -> None:
        path = tmp_path_factory.mktemp("cut") / "audit.jsonl"
        lines = _valid_audit(path)
        data = b"".join(lines)
        kept = data[: cut % (len(data) + 1)]
        path.write_bytes(kept)
        whole = kept.count(b"\n")
        tail = kept.rsplit(b"\n", 1)[-1]
        # the last line lost only its newline (a tail ending in the details' "}" is still torn)
        cut_at_the_newline = tail + b"\n" in lines
        records = read_audit(path).records
        assert len(records) == whole + cut_at_the_newline  # every complete line, nothing from a torn one
        check = check_audit(path, crashed_runs=2)
        assert check.problems == [] or not whole, check.problems
        assert check.torn_lines == (0 if kept.endswith(b"\n") or not kept else 1)
