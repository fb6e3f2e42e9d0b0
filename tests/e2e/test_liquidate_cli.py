"""``liquidation-harness liquidate``, the panic button, through its public CLI against embedded exchanges:
a dry run sends no mutating request, production refuses without confirmation, a fleet with one hung
exchange flattens the others inside the deadline, and bad fleet files are refused naming the entry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from harness.cli import cli
from harness.exchanges import target as target_module
from harness.exchanges.sim import BinanceSimulator

KEY_VARS = ("BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_TESTNET_API_KEY", "BINANCE_TESTNET_API_SECRET",
            "BINANCE_DEMO_API_KEY", "BINANCE_DEMO_API_SECRET", "TRADING_ENV", "EMERGENCY_LIQUIDATION_DISABLED")
TIMEOUT = 2.0
#: the bound the command enforces on every account: its deadline plus run.GRACE_SECONDS (0.4), with slack
BOUND = TIMEOUT + 0.5


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIQUIDATION_TIMEOUT_SECONDS", str(TIMEOUT))


def seed(sim: BinanceSimulator) -> None:
    """A long, a short, a regular and an algo order (on symbols with positions)."""
    sim.set_position("BTCUSDT", "0.010")
    sim.set_position("ETHUSDT", "-0.5")
    sim.place_order("BTCUSDT", "BUY", "LIMIT", "0.01", "20000", time_in_force="GTC")
    sim.place_algo_order("ETHUSDT", "BUY", "STOP_MARKET", trigger_price="4000", close_position=True)


def is_flat(sim: BinanceSimulator) -> bool:
    book = sim.book
    return not book.positions() and not book.open_orders() and not book.open_algo_orders()


def mutating(sim: BinanceSimulator) -> list[str]:
    return [f"{r.method} {r.path}" for r in sim.request_log if r.method != "GET"]


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["liquidate", *args], env=env, catch_exceptions=False)


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def sim() -> Iterator[BinanceSimulator]:
    with BinanceSimulator() as exchange:
        seed(exchange)
        yield exchange


def test_dry_run_reads_the_account_and_changes_nothing(sim: BinanceSimulator, tmp_path: Path) -> None:
    before = (sim.book.positions(), len(sim.book.open_orders()), len(sim.book.open_algo_orders()))
    result = invoke(["--exchange-url", sim.base_url, "--dry-run", "--log-dir", str(tmp_path)],
                    {"BINANCE_TESTNET_API_KEY": sim.api_key, "BINANCE_TESTNET_API_SECRET": sim.api_secret})
    assert result.exit_code == 0, result.output
    table = result.output.split("DRY RUN")[1]
    assert "close   BTCUSDT  BOTH     SELL  MARKET 0.01 reduce-only" in table
    assert "close   ETHUSDT  BOTH     BUY   MARKET 0.5" in table
    assert "cancel  BTCUSDT  regular  BUY   LIMIT" in table
    assert "cancel  ETHUSDT  algo     BUY   STOP_MARKET" in table and "close-position @ 4000" in table
    assert sim.request_log, "the dry run read the account"
    assert mutating(sim) == []
    assert (sim.book.positions(), len(sim.book.open_orders()), len(sim.book.open_algo_orders())) == before
    assert not (tmp_path / "liquidation-result.json").exists()


def test_one_account_flattened_with_reason_in_audit_trail_and_result_file(sim: BinanceSimulator, tmp_path: Path) -> None:
    result = invoke(["--exchange-url", sim.base_url, "--log-dir", str(tmp_path), "--reason", "bot host unreachable"],
                    {"BINANCE_TESTNET_API_KEY": sim.api_key, "BINANCE_TESTNET_API_SECRET": sim.api_secret})
    assert result.exit_code == 0, result.output
    assert is_flat(sim)
    assert "1 of 1 account(s) flat" in result.output
    assert "COMPLETED orders cancelled    2  positions closed   2/2" in result.output  # a plain progress line
    events = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["event_type"] == "LIQUIDATION_START")
    assert start["details"]["reason"] == "bot host unreachable"
    requested = next(e for e in events if e["event_type"] == "LIQUIDATE_REQUESTED")
    assert requested["details"]["reason"] == "bot host unreachable"
    assert sim.api_key not in (tmp_path / "audit.jsonl").read_text()
    written = json.loads((tmp_path / "liquidation-result.json").read_text())
    assert written["result"]["state"] == "COMPLETED"
    assert written["result"]["positions_closed"] == 2 and written["result"]["orders_cancelled"] == 2
    assert written["metrics"]["executions_by_state"]["COMPLETED"] == 1


def test_scope_leaves_other_symbols_alone_and_lists_them(sim: BinanceSimulator, tmp_path: Path) -> None:
    result = invoke(["--exchange-url", sim.base_url, "--log-dir", str(tmp_path), "--symbols", "BTCUSDT"],
                    {"BINANCE_TESTNET_API_KEY": sim.api_key, "BINANCE_TESTNET_API_SECRET": sim.api_secret})
    assert result.exit_code == 0, result.output
    assert sim.book.position_amount("BTCUSDT") == 0 and not sim.book.open_orders("BTCUSDT")
    assert sim.book.position_amount("ETHUSDT") == -0.5 and sim.book.open_algo_orders("ETHUSDT")
    assert "out of scope (--symbols BTCUSDT), left alone:" in result.output
    assert "position ETHUSDT BOTH -0.5" in result.output


def test_production_without_yes_and_without_a_terminal_refuses_and_sends_nothing(
        sim: BinanceSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # production's URL points at the simulator, so a request, had one been sent, would show in its log
    monkeypatch.setattr(target_module, "PRODUCTION_ROOT_URL", sim.base_url)
    env = {"BINANCE_API_KEY": sim.api_key, "BINANCE_API_SECRET": sim.api_secret}
    refused = invoke(["--env", "production", "--log-dir", str(tmp_path)], env)
    assert refused.exit_code == 2
    assert "production" in refused.output and "--yes" in refused.output
    assert sim.request_log == []
    assert not (tmp_path / "audit.jsonl").exists()

    confirmed = invoke(["--env", "production", "--yes", "--log-dir", str(tmp_path)], env)
    assert confirmed.exit_code == 0, confirmed.output
    assert is_flat(sim)
    assert "production" in confirmed.output


def test_missing_keys_are_a_usage_error_naming_the_variables(sim: BinanceSimulator, tmp_path: Path) -> None:
    result = invoke(["--exchange-url", sim.base_url, "--log-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "BINANCE_TESTNET_API_KEY" in result.output
    assert sim.request_log == []


def test_testnet_flag_needs_the_testnet_keys_not_a_testnet_environment(tmp_path: Path) -> None:
    result = invoke(["--testnet", "--log-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "BINANCE_TESTNET_API_KEY and BINANCE_TESTNET_API_SECRET must be set" in result.output


def fleet_file(path: Path, sims: list[BinanceSimulator], env: dict[str, str]) -> Path:
    tables = []
    for index, exchange in enumerate(sims):
        name = f"acct{index:02d}"
        env[f"{name.upper()}_KEY"], env[f"{name.upper()}_SECRET"] = exchange.api_key, exchange.api_secret
        tables.append(f'[[account]]\nname = "{name}"\ntarget = "{exchange.base_url}"\n'
                      f'key_var = "{name.upper()}_KEY"\nsecret_var = "{name.upper()}_SECRET"\n')
    path.write_text("\n".join(tables))
    return path


def test_fleet_of_ten_with_one_hung_exchange_flattens_the_other_nine_inside_the_deadline(tmp_path: Path) -> None:
    with ExitStack() as stack:
        sims = [stack.enter_context(BinanceSimulator()) for _ in range(10)]
        for exchange in sims:
            seed(exchange)
        hung = sims[3]
        hung.faults.hang()  # every request to it waits, unanswered, until the simulator stops
        env: dict[str, str] = {}
        accounts = fleet_file(tmp_path / "fleet.toml", sims, env)
        started = time.monotonic()
        result = invoke(["--accounts", str(accounts), "--log-dir", str(tmp_path / "logs"), "--json"], env)
        elapsed = time.monotonic() - started
        flat = [is_flat(exchange) for exchange in sims]
    assert result.exit_code == 1, result.output
    assert elapsed <= BOUND + 0.5, f"the fleet took {elapsed:.2f}s"  # + command start-up
    summary = json_lines(result.output)[-1]
    assert summary["type"] == "summary" and summary["flat"] is False
    by_name = {a["account"]: a for a in summary["accounts"]}
    for index, exchange_flat in enumerate(flat):
        account = by_name[f"acct{index:02d}"]
        assert account["duration_seconds"] <= BOUND, account
        if index == 3:
            assert account["state"] in ("PARTIAL", "FAILED")
            assert not exchange_flat
        else:
            assert account["state"] == "COMPLETED", account
            assert account["duration_seconds"] < TIMEOUT
            assert exchange_flat
            assert account["positions_closed"] == 2 and account["orders_cancelled"] == 2
            assert account["metrics"]["executions_by_state"]["COMPLETED"] == 1
        assert (tmp_path / "logs" / f"acct{index:02d}" / "audit.jsonl").exists()
        assert (tmp_path / "logs" / f"acct{index:02d}" / "liquidation-result.json").exists()
    assert any(line["type"] == "progress" for line in json_lines(result.output))


def test_fleet_dry_run_sends_no_mutating_request_to_any_account(tmp_path: Path) -> None:
    with BinanceSimulator() as one, BinanceSimulator() as two:
        seed(one)
        env: dict[str, str] = {}
        accounts = fleet_file(tmp_path / "fleet.toml", [one, two], env)
        result = invoke(["--accounts", str(accounts), "--dry-run", "--log-dir", str(tmp_path / "logs")], env)
        assert result.exit_code == 0, result.output
        assert mutating(one) == [] and mutating(two) == []
        assert one.request_log and two.request_log
        assert "acct01   -       -        -        -     already flat: nothing to do" in result.output
        assert not is_flat(one)


BAD_FILES = {
    "missing-variable": ('[[account]]\nname = "alpha"\ntarget = "testnet"\nkey_var = "NOT_SET_ANYWHERE_KEY"\n'
                         'secret_var = "ALPHA_SECRET"\n', "account[1] 'alpha'.key_var", "NOT_SET_ANYWHERE_KEY"),
    "duplicate-name": ('[[account]]\nname = "alpha"\ntarget = "testnet"\nkey_var = "ALPHA_KEY"\nsecret_var = "ALPHA_SECRET"\n'
                       '[[account]]\nname = "alpha"\ntarget = "testnet"\nkey_var = "ALPHA_KEY"\nsecret_var = "ALPHA_SECRET"\n',
                       "account[2] 'alpha'.name", "a name used once"),
    "unknown-field": ('[[account]]\nname = "alpha"\ntarget = "testnet"\nkey_var = "ALPHA_KEY"\nsecret_var = "ALPHA_SECRET"\n'
                      'leverage = 5\n', "account[1] 'alpha'.leverage", "known fields"),
    "key-literal": ('[[account]]\nname = "alpha"\ntarget = "testnet"\n'
                    'key_var = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"\n'
                    'secret_var = "ALPHA_SECRET"\n', "account[1] 'alpha'.key_var", "keys never go in the file"),
    "api-key-field": ('[[account]]\nname = "alpha"\ntarget = "testnet"\nkey_var = "ALPHA_KEY"\nsecret_var = "ALPHA_SECRET"\n'
                      'api_key = "abcdef123456"\n', "account[1] 'alpha'.api_key", "keys never go in the file"),
    "testnet-vars-for-production": ('[[account]]\nname = "alpha"\ntarget = "production"\n'
                                    'key_var = "BINANCE_TESTNET_API_KEY"\nsecret_var = "ALPHA_SECRET"\n',
                                    "account[1] 'alpha'.key_var", "belongs to another kind"),
    "bad-target": ('[[account]]\nname = "alpha"\ntarget = "mainnet"\nkey_var = "ALPHA_KEY"\nsecret_var = "ALPHA_SECRET"\n',
                   "account[1] 'alpha'.target", "production, testnet, demo or an exchange URL"),
    "missing-field": ('[[account]]\nname = "alpha"\ntarget = "testnet"\nkey_var = "ALPHA_KEY"\n',
                      "account[1] 'alpha'.secret_var", "required"),
    "no-accounts": ('[accounts]\nname = "alpha"\n', "accounts", "[[account]] tables"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_fleet_files_are_refused_with_exit_2_naming_entry_and_field(case: str, tmp_path: Path) -> None:
    text, entry, allowed = BAD_FILES[case]
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    env = {"ALPHA_KEY": "a" * 64, "ALPHA_SECRET": "b" * 64, "BINANCE_TESTNET_API_KEY": "c" * 64}
    result = invoke(["--accounts", str(path), "--log-dir", str(tmp_path / "logs")], env)
    assert result.exit_code == 2, result.output
    assert entry in result.output and allowed in result.output
    assert "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A" not in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("transport", ["python-binance", "wire"])
def test_binance_transport_switches_the_http_client_and_a_bad_value_sends_nothing(
        sim: BinanceSimulator, tmp_path: Path, transport: str) -> None:
    keys = {"BINANCE_TESTNET_API_KEY": sim.api_key, "BINANCE_TESTNET_API_SECRET": sim.api_secret}
    refused = invoke(["--exchange-url", sim.base_url, "--log-dir", str(tmp_path / "bad")],
                     {**keys, "BINANCE_TRANSPORT": "curl"})
    assert refused.exit_code == 2 and "BINANCE_TRANSPORT='curl'" in refused.output and "python-binance" in refused.output
    assert sim.request_log == [] and not is_flat(sim)
    result = invoke(["--exchange-url", sim.base_url, "--log-dir", str(tmp_path / "ok")],
                    {**keys, "BINANCE_TRANSPORT": transport})
    assert result.exit_code == 0, result.output
    assert is_flat(sim)
