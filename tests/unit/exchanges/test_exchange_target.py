"""The one exchange target (harness.exchanges.target): resolution, URL rule, kinds and keys."""

from __future__ import annotations

import pytest
from binance.client import BaseClient

from harness.core.errors import ConfigError
from harness.exchanges.hosts import host_kind
from harness.exchanges.target import (
    DEMO_KEY_VARS,
    DEMO_ROOT_URL,
    PRODUCTION_KEY_VARS,
    PRODUCTION_ROOT_URL,
    TESTNET_KEY_VARS,
    TESTNET_ROOT_URL,
    Target,
    TargetKind,
    classify_url,
    require_credentials,
    resolve_target,
    root_url,
)


class TestResolveTarget:
    @pytest.mark.parametrize(("environment", "flags", "kind", "root", "key_vars"), [
        pytest.param("production", {}, TargetKind.PRODUCTION, PRODUCTION_ROOT_URL, PRODUCTION_KEY_VARS, id="production"),
        pytest.param("high-latency", {}, TargetKind.PRODUCTION, PRODUCTION_ROOT_URL, PRODUCTION_KEY_VARS, id="high-latency"),
        pytest.param("development", {}, TargetKind.TESTNET, TESTNET_ROOT_URL, TESTNET_KEY_VARS, id="development"),
        pytest.param("production", {"testnet": True}, TargetKind.TESTNET, TESTNET_ROOT_URL, TESTNET_KEY_VARS, id="testnet-flag"),
        pytest.param("testnet", {"demo": True}, TargetKind.DEMO, DEMO_ROOT_URL, DEMO_KEY_VARS, id="demo-flag"),
    ])
    def test_without_url_the_flags_then_the_environment_decide(self, environment: str, flags: dict, kind: TargetKind,
                                                               root: str, key_vars: tuple[str, str]) -> None:
        target = resolve_target(environment, **flags)
        assert (target.kind, target.root_url, target.key_vars, target.explicit) == (kind, root, key_vars, False)
        assert target.futures_url == root + "/fapi"

    @pytest.mark.parametrize(("url", "kind", "key_vars"), [
        pytest.param("https://demo-fapi.binance.com", TargetKind.DEMO, DEMO_KEY_VARS, id="demo-host"),
        pytest.param("https://testnet.binancefuture.com", TargetKind.TESTNET, TESTNET_KEY_VARS, id="testnet-host"),
        pytest.param("https://fapi.binance.com", TargetKind.PRODUCTION, PRODUCTION_KEY_VARS, id="production-host"),
        pytest.param("https://fapi.example.org", TargetKind.CUSTOM, TESTNET_KEY_VARS, id="unknown-host"),
        pytest.param("http://127.0.0.1:8080", TargetKind.CUSTOM, TESTNET_KEY_VARS, id="embedded"),
    ])
    def test_an_explicit_url_is_classified_by_host(self, url: str, kind: TargetKind, key_vars: tuple[str, str]) -> None:
        target = resolve_target("testnet", url)
        assert (target.kind, target.root_url, target.key_vars, target.explicit) == (kind, url, key_vars, True)
        assert classify_url(url) is kind

    @pytest.mark.parametrize("url", ["http://127.0.0.1:8080/fapi", "http://127.0.0.1:8080/fapi/",
                                     "http://127.0.0.1:8080/", "http://127.0.0.1:8080"])
    def test_a_trailing_fapi_is_accepted_and_stripped(self, url: str) -> None:
        target = resolve_target("testnet", url)
        assert (target.root_url, target.futures_url) == ("http://127.0.0.1:8080", "http://127.0.0.1:8080/fapi")
        assert root_url(url) == "http://127.0.0.1:8080"

    @pytest.mark.parametrize(("args", "field"), [
        pytest.param(("testnet", "https://fapi.binance.com", True), "exchange_url", id="production-url-with-testnet"),
        pytest.param(("testnet", "https://fapi.binance.com/fapi", False, True), "exchange_url", id="production-url-with-demo"),
        pytest.param(("testnet", None, True, True), "demo", id="testnet-and-demo"),
        pytest.param(("testnet", None, False, "yes"), "demo", id="demo-not-a-bool"),
        pytest.param(("staging",), "environment", id="unknown-environment"),
        pytest.param(("testnet", "ftp://127.0.0.1"), "exchange_url", id="not-http"),
        pytest.param(("testnet", "http://127.0.0.1:port"), "exchange_url", id="bad-port"),
        pytest.param(("testnet", "http://127.0.0.1:1 /fapi"), "exchange_url", id="whitespace"),
    ])
    def test_contradictions_and_malformed_urls_are_config_errors_naming_the_field(self, args: tuple, field: str) -> None:
        with pytest.raises(ConfigError) as info:
            resolve_target(*args)
        assert info.value.field == field

    def test_the_default_roots_are_python_binances_futures_urls(self) -> None:
        assert resolve_target("production").futures_url == BaseClient.FUTURES_URL.format("com")
        assert resolve_target("testnet").futures_url == BaseClient.FUTURES_TESTNET_URL
        assert resolve_target("testnet", demo=True).futures_url == BaseClient.FUTURES_DEMO_URL

    def test_the_target_is_frozen_and_describes_itself(self) -> None:
        target = resolve_target("testnet", demo=True)
        with pytest.raises(AttributeError):
            target.root_url = PRODUCTION_ROOT_URL  # type: ignore[misc]
        assert str(target) == target.describe() == "demo (https://demo-fapi.binance.com)"
        assert target == Target(TargetKind.DEMO, DEMO_ROOT_URL)


class TestHosts:
    @pytest.mark.parametrize(("url", "kind"), [
        ("demo-fapi.binance.com", "demo"), ("https://DEMO-FAPI.binance.com/fapi", "demo"),
        ("testnet.binancefuture.com", "testnet"), ("fapi.binance.com", "production"),
        ("https://api.binance.us", "production"), ("https://fapi.binance.example", "production"),
        ("http://127.0.0.1:9", "custom"),
    ])
    def test_host_kind(self, url: str, kind: str) -> None:
        assert host_kind(url) == kind


class TestRequireCredentials:
    def test_demo_credentials_come_from_the_demo_variables(self) -> None:
        environ = {DEMO_KEY_VARS[0]: "demo-key", DEMO_KEY_VARS[1]: "demo-secret",
                   TESTNET_KEY_VARS[0]: "testnet-key", TESTNET_KEY_VARS[1]: "testnet-secret"}
        assert require_credentials(resolve_target("testnet", demo=True), environ) == ("demo-key", "demo-secret")

    def test_missing_demo_credentials_name_both_variables(self) -> None:
        with pytest.raises(ConfigError) as info:
            require_credentials(resolve_target("testnet", demo=True), {TESTNET_KEY_VARS[0]: "k", TESTNET_KEY_VARS[1]: "s"})
        assert info.value.field == DEMO_KEY_VARS[0]
        assert DEMO_KEY_VARS[1] in str(info.value) and "demo" in str(info.value)
