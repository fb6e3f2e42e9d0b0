"""The bench's "where the time goes" puts each profiled function under the right kind (the adapter's
own package is also named binance/: it must not be counted as python-binance)."""

from __future__ import annotations

import pytest

from harness.bench._profile import _category

SITE = "/venv/lib/python3.11/site-packages"


@pytest.mark.parametrize(("filename", "function", "kind"), [
    ("/repo/harness/exchanges/binance/wire.py", "build", "HTTP client (the adapter's wire transport)"),
    ("/repo/harness/exchanges/binance/session.py", "_send", "engine + adapter + limiter"),
    ("/repo/harness/core/manager.py", "_cancel", "engine + adapter + limiter"),
    ("/repo/harness/core/audit.py", "_redact", "audit log"),
    (f"{SITE}/binance/async_client.py", "_request", "python-binance (other)"),
    (f"{SITE}/aiohttp/client.py", "_request", "aiohttp HTTP client"),
    ("~", "<method 'poll' of 'select.epoll' objects>", "waiting for the network (epoll)"),
])
def test_profile_kinds(filename: str, function: str, kind: str) -> None:
    assert _category(filename, function) == kind
