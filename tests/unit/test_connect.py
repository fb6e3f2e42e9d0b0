"""harness.connect: clients pointed where the bot-under-test contract's environment says."""

from __future__ import annotations

import pytest

from harness.connect import ccxt_exchange, ccxt_options, futures_client, target_from_env
from harness.core.errors import ConfigError
from harness.exchanges.sim import BinanceSimulator
from harness.exchanges.sim.ccxt_urls import ccxt_fapi_urls
from harness.exchanges.target import TESTNET_ROOT_URL, TargetKind

KEYS = {"BINANCE_TESTNET_API_KEY": "k" * 16, "BINANCE_TESTNET_API_SECRET": "s" * 16}


class TestTarget:
    def test_exchange_url_wins_and_fapi_is_stripped(self) -> None:
        target = target_from_env({"LIQUIDATION_EXCHANGE_URL": "http://127.0.0.1:9123/fapi", "TRADING_ENV": "production"})
        assert (target.kind, target.root_url) == (TargetKind.CUSTOM, "http://127.0.0.1:9123")

    def test_without_url_the_environment_decides(self) -> None:
        target = target_from_env({"TRADING_ENV": "testnet"})
        assert (target.kind, target.root_url) == (TargetKind.TESTNET, TESTNET_ROOT_URL)

    def test_bad_url_names_the_variable_field(self) -> None:
        with pytest.raises(ConfigError, match="exchange_url='ftp://x'"):
            target_from_env({"LIQUIDATION_EXCHANGE_URL": "ftp://x"})


class TestFuturesClient:
    def test_sync_client_talks_to_the_embedded_exchange(self) -> None:
        with BinanceSimulator() as sim:
            env = {"LIQUIDATION_EXCHANGE_URL": sim.base_url, "BINANCE_TESTNET_API_KEY": sim.api_key,
                   "BINANCE_TESTNET_API_SECRET": sim.api_secret}
            sim.set_position("BTCUSDT", "0.010")
            client = futures_client(environ=env)
            try:
                assert client.FUTURES_URL == sim.base_url + "/fapi"
                rows = client.futures_position_information(symbol="BTCUSDT")
                assert rows[0]["positionAmt"] == "0.01"
            finally:
                client.close_connection()

    async def test_async_client_talks_to_the_embedded_exchange(self) -> None:
        async with BinanceSimulator() as sim:
            env = {"LIQUIDATION_EXCHANGE_URL": sim.base_url, "BINANCE_TESTNET_API_KEY": sim.api_key,
                   "BINANCE_TESTNET_API_SECRET": sim.api_secret}
            client = futures_client(async_=True, environ=env)
            try:
                assert client.FUTURES_URL == sim.base_url + "/fapi"
                assert "serverTime" in await client.futures_time()
            finally:
                await client.close_connection()

    def test_missing_key_names_the_variable(self) -> None:
        with pytest.raises(ConfigError, match="BINANCE_TESTNET_API_SECRET"):
            futures_client(environ={"LIQUIDATION_EXCHANGE_URL": "http://127.0.0.1:1",
                                    "BINANCE_TESTNET_API_KEY": "k" * 16})


class TestCcxt:
    def test_options_reuse_the_simulator_overrides(self) -> None:
        options = ccxt_options({"LIQUIDATION_EXCHANGE_URL": "http://127.0.0.1:9123", **KEYS})
        assert options["urls"]["api"] == ccxt_fapi_urls("http://127.0.0.1:9123")
        assert (options["apiKey"], options["secret"]) == (KEYS["BINANCE_TESTNET_API_KEY"], KEYS["BINANCE_TESTNET_API_SECRET"])
        assert options["enableRateLimit"] is False  # the embedded exchange: no client-side throttling

    def test_a_real_venue_keeps_ccxt_rate_limiting(self) -> None:
        options = ccxt_options({"TRADING_ENV": "testnet", **KEYS})
        assert options["enableRateLimit"] is True
        assert options["urls"]["api"]["fapiPrivate"] == TESTNET_ROOT_URL + "/fapi/v1"

    def test_exchange_loads_usdm_markets_from_the_embedded_exchange(self) -> None:
        pytest.importorskip("ccxt")
        with BinanceSimulator() as sim:
            exchange = ccxt_exchange({"LIQUIDATION_EXCHANGE_URL": sim.base_url, "BINANCE_TESTNET_API_KEY": sim.api_key,
                                      "BINANCE_TESTNET_API_SECRET": sim.api_secret})
            assert "BTC/USDT:USDT" in exchange.load_markets()
            assert all(r.path.startswith("/fapi/") for r in sim.request_log)
