"""The adapter's lean HTTP client (harness.exchanges.binance.wire) against scripted HTTP servers.

Each server here is a raw asyncio TCP server on 127.0.0.1 that answers with exact bytes, so the
client's parsing and connection handling are tested on the replies real exchanges and proxies
send: chunked bodies, ``Connection: close``, a pooled connection the peer closed, a reply cut off
mid-body, a 2xx that is not JSON, an HTML 502, a 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import ssl
from pathlib import Path
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

import pytest
from binance.exceptions import BinanceAPIException, BinanceRequestException

from harness.core.errors import AmbiguousExchangeError, RetryableExchangeError
from harness.exchanges.binance.errors import is_transport_error, to_exchange_error
from harness.exchanges.binance.wire import ROUTES, WireClient, WireConnectError, WireError, encode

SECRET = b"test-secret-0123456789"

Reply = Callable[[bytes, asyncio.StreamWriter, int], Awaitable[None]]


def response(status: int, body: bytes, *headers: str, reason: str = "OK") -> bytes:
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode().split("\r\n"):
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return head + body


class ScriptedServer:
    """Answers the n-th request on a connection with ``reply(request, writer, n)``; counts connections."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.base_events.Server | None = None
        self._accepted = asyncio.Condition()

    async def wait_for_connections(self, count: int, timeout: float = 10.0) -> None:
        """Until the server has accepted ``count`` connections (a client's connect can finish first)."""
        async with self._accepted:
            await asyncio.wait_for(self._accepted.wait_for(lambda: self.connections >= count), timeout)

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/fapi"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        async with self._accepted:
            self._accepted.notify_all()
        n = 0
        try:
            while True:
                request = await read_request(reader)
                self.requests.append(request)
                n += 1
                await self.reply(request, writer, n)
                await writer.drain()
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def client(url: str, **kwargs: object) -> WireClient:
    options: dict = {"recv_window_ms": 5000, "max_connections": 8, "keepalive_seconds": 60.0, **kwargs}
    return WireClient("test-key", SECRET, url, **options)


def ok_json(payload: object) -> Reply:
    async def reply(request: bytes, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(response(200, json.dumps(payload).encode(), "Content-Type: application/json"))
    return reply


async def test_signs_the_exact_body_it_sends_and_puts_post_parameters_in_a_form_body() -> None:
    async with ScriptedServer(ok_json({"orderId": 1})) as server:
        wire = client(server.url)
        try:
            reply = await wire.call("futures_create_order", {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET",
                                                             "quantity": "0.010", "reduceOnly": "true"}, idempotent=False)
        finally:
            await wire.close()
    assert reply == {"orderId": 1}
    head, body = server.requests[0].split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /fapi/v1/order HTTP/1.1\r\n")
    assert b"\r\nX-MBX-APIKEY: test-key\r\n" in head
    assert b"Content-Type: application/x-www-form-urlencoded" in head
    text = body.decode()
    unsigned, signature = text.rsplit("&signature=", 1)
    assert signature == hmac.new(SECRET, unsigned.encode(), hashlib.sha256).hexdigest()
    fields = dict(parse_qsl(text))
    assert fields["symbol"] == "BTCUSDT" and fields["quantity"] == "0.010" and fields["recvWindow"] == "5000"
    assert fields["timestamp"].isdigit()


async def test_get_parameters_go_in_the_query_string_and_unsigned_calls_carry_no_signature() -> None:
    async with ScriptedServer(ok_json({"serverTime": 1})) as server:
        wire = client(server.url)
        try:
            await wire.call("futures_time", {}, idempotent=True)
            await wire.call("futures_get_open_orders", {"symbol": "ETHUSDT"}, idempotent=True)
        finally:
            await wire.close()
    assert server.requests[0].startswith(b"GET /fapi/v1/time HTTP/1.1\r\n")
    line = server.requests[1].split(b"\r\n", 1)[0].decode()
    assert line.startswith("GET /fapi/v1/openOrders?symbol=ETHUSDT&timestamp=") and "&signature=" in line
    assert server.connections == 1, "the second request must reuse the kept-alive connection"


def test_batch_orders_are_json_then_percent_encoded_and_the_signature_covers_the_encoded_form() -> None:
    wire = client("http://127.0.0.1:9/fapi")
    raw = wire.build("futures_place_batch_order", {"batchOrders": [{"symbol": "BTCUSDT", "quantity": "1"}]})
    body = raw.split(b"\r\n\r\n", 1)[1].decode()
    assert body.startswith("batchOrders=%5B%7B%22symbol%22%3A%22BTCUSDT%22")
    unsigned, signature = body.rsplit("&signature=", 1)
    assert signature == hmac.new(SECRET, unsigned.encode(), hashlib.sha256).hexdigest()
    assert json.loads(dict(parse_qsl(body))["batchOrders"]) == [{"symbol": "BTCUSDT", "quantity": "1"}]


def test_encode_escapes_what_is_not_plain_and_drops_none() -> None:
    assert encode({"a": "x y&z", "b": None, "c": True, "d": 5}) == "a=x%20y%26z&c=true&d=5"


def test_conditional_orders_are_left_to_python_binance() -> None:
    assert not WireClient.supports("futures_create_order", {"type": "STOP_MARKET"})
    assert WireClient.supports("futures_create_order", {"type": "MARKET"})
    assert not WireClient.supports("futures_account_balance", {})
    assert set(ROUTES) >= {"futures_cancel_all_open_orders", "futures_cancel_all_algo_open_orders"}


async def test_a_chunked_reply_is_reassembled_across_writes() -> None:
    async def reply(request: bytes, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n")
        await writer.drain()
        writer.write(b"7\r\n{\"a\": [\r\n")
        await writer.drain()
        writer.write(b"5\r\n1, 2]\r\n1\r\n}\r\n0\r\n\r\n")

    async with ScriptedServer(reply) as server:
        wire = client(server.url)
        try:
            first = await wire.call("futures_ping", {}, idempotent=True)
            second = await wire.call("futures_ping", {}, idempotent=True)
        finally:
            await wire.close()
    assert first == second == {"a": [1, 2]}
    assert server.connections == 1


async def test_connection_close_is_honoured_and_the_next_request_opens_a_new_connection() -> None:
    async def reply(request: bytes, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(response(200, b"{}", "Connection: close"))
        await writer.drain()
        writer.close()

    async with ScriptedServer(reply) as server:
        wire = client(server.url)
        try:
            assert await wire.call("futures_ping", {}, idempotent=True) == {}
            assert await wire.call("futures_ping", {}, idempotent=True) == {}
        finally:
            await wire.close()
    assert server.connections == 2


async def test_a_pooled_connection_the_peer_closed_is_retried_once_for_an_idempotent_call_only() -> None:
    async def reply(request: bytes, writer: asyncio.StreamWriter, n: int) -> None:
        if n == 1:
            writer.write(response(200, b"{}"))
        else:  # the peer drops an idle keep-alive connection just as the next request arrives
            writer.transport.abort()

    async with ScriptedServer(reply) as server:
        wire = client(server.url)
        try:
            await wire.call("futures_ping", {}, idempotent=True)
            assert await wire.call("futures_ping", {}, idempotent=True) == {}  # resent on a fresh connection
            assert server.connections == 2
            with pytest.raises(WireError) as caught:  # an order is never resent blindly: it may have executed
                await wire.call("futures_create_order", {"symbol": "BTCUSDT", "type": "MARKET"}, idempotent=False)
        finally:
            await wire.close()
    mapped = to_exchange_error(caught.value, operation="futures_create_order", symbol="BTCUSDT", idempotent=False)
    assert isinstance(mapped, AmbiguousExchangeError), mapped


async def test_a_reply_cut_off_mid_body_is_a_wire_error_never_a_partial_json() -> None:
    async def reply(request: bytes, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"orderId\": 1")
        await writer.drain()
        writer.transport.abort()

    async with ScriptedServer(reply) as server:
        wire = client(server.url)
        try:
            with pytest.raises(WireError, match="connection lost before the reply was complete"):
                await wire.call("futures_get_order", {"symbol": "BTCUSDT"}, idempotent=True)
        finally:
            await wire.close()


async def test_error_replies_raise_what_python_binance_raises() -> None:
    replies = [
        response(400, b'{"code":-2022,"msg":"ReduceOnly Order is rejected."}', reason="Bad Request"),
        response(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "Content-Type: text/html", reason="Bad Gateway"),
        response(429, b'{"code":-1003,"msg":"Too many requests"}', "Retry-After: 7", "X-MBX-USED-WEIGHT-1M: 2400",
                 reason="Too Many Requests"),
        response(200, b"not json"),
    ]

    async def reply(request: bytes, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(replies[n - 1])

    seen: list[tuple[str | None, int]] = []
    async with ScriptedServer(reply) as server:
        wire = client(server.url, observe=lambda headers, status: seen.append((headers.get("x-mbx-used-weight-1m"), status)))
        errors = []
        try:
            for _ in replies:
                with pytest.raises((BinanceAPIException, BinanceRequestException)) as caught:
                    await wire.call("futures_ping", {}, idempotent=True)
                errors.append(caught.value)
        finally:
            await wire.close()
    reduce_only, bad_gateway, limited, garbage = errors
    assert (reduce_only.code, reduce_only.status_code) == (-2022, 400)
    assert bad_gateway.code == 0 and bad_gateway.status_code == 502
    assert "502 Bad Gateway" in str(to_exchange_error(bad_gateway, operation="x", symbol=None, idempotent=True))
    mapped = to_exchange_error(limited, operation="x", symbol=None, idempotent=True)
    assert isinstance(mapped, RetryableExchangeError) and mapped.retry_after == 7.0
    assert isinstance(garbage, BinanceRequestException)
    assert seen[2] == ("2400", 429), "every reply's headers reach the limiter, case-insensitively"
    assert all(is_transport_error(e) for e in errors)


async def test_refused_connection_is_never_sent() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    wire = client(f"http://127.0.0.1:{port}/fapi")
    with pytest.raises(WireConnectError) as caught:
        await wire.call("futures_create_order", {"symbol": "BTCUSDT", "type": "MARKET"}, idempotent=False)
    mapped = to_exchange_error(caught.value, operation="futures_create_order", symbol="BTCUSDT", idempotent=False)
    assert isinstance(mapped, RetryableExchangeError) and not isinstance(mapped, AmbiguousExchangeError)
    assert wire.open_connections == 0


async def test_a_cancelled_call_drops_its_connection_and_frees_its_slot() -> None:
    answered = asyncio.Event()

    async def reply(request: bytes, writer: asyncio.StreamWriter, n: int) -> None:
        if n == 1 and server.connections == 1:
            await asyncio.Event().wait()  # never answers the first request
        writer.write(response(200, b"{}"))
        answered.set()

    async with ScriptedServer(reply) as server:
        wire = client(server.url, max_connections=1)
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await wire.call("futures_ping", {}, idempotent=True)
            assert wire.open_connections == 0
            assert await wire.call("futures_ping", {}, idempotent=True) == {}
        finally:
            await wire.close()
    assert answered.is_set() and server.connections == 2


async def test_max_connections_bounds_the_pool() -> None:
    gate = asyncio.Event()
    full = asyncio.Event()
    busy = 0
    peak = 0

    async def reply(request: bytes, writer: asyncio.StreamWriter, n: int) -> None:
        nonlocal busy, peak
        busy += 1
        peak = max(peak, busy)
        if busy == 3:
            full.set()
        await gate.wait()
        busy -= 1
        writer.write(response(200, b"{}"))

    async with ScriptedServer(reply) as server:
        wire = client(server.url, max_connections=3)
        try:
            calls = [asyncio.ensure_future(wire.call("futures_ping", {}, idempotent=True)) for _ in range(7)]
            await full.wait()
            gate.set()
            assert await asyncio.gather(*calls) == [{}] * 7
        finally:
            await wire.close()
    assert peak == 3 and server.connections == 3


async def test_prewarmed_connections_carry_the_burst_that_follows() -> None:
    async with ScriptedServer(ok_json({})) as server:
        wire = client(server.url, max_connections=8)
        try:
            assert wire.prewarm(4) == 4
            assert wire.prewarm(4) == 0, "already opening 4: nothing more to start"
            await asyncio.gather(*list(wire._warming))
            await server.wait_for_connections(4)
            assert server.connections == 4 and server.requests == []  # handshakes only, no request
            assert await asyncio.gather(*(wire.call("futures_ping", {}, idempotent=True) for _ in range(4))) == [{}] * 4
        finally:
            await wire.close()
    assert server.connections == 4, "the burst must use the prewarmed connections, not open new ones"


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files), made for this test."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_https_verifies_the_certificate_and_then_speaks_http_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    scripted = ScriptedServer(ok_json({"serverTime": 7}))
    server = await asyncio.start_server(scripted._serve, "127.0.0.1", 0, ssl=server_tls)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/fapi"
    try:
        untrusting = client(url)  # the system's trust store does not know this certificate
        with pytest.raises(WireConnectError, match="certificate"):
            await untrusting.call("futures_time", {}, idempotent=True)
        trusting = client(url, ssl_context=ssl.create_default_context(cafile=str(cert)))
        try:
            assert await trusting.call("futures_time", {}, idempotent=True) == {"serverTime": 7}
            assert await trusting.call("futures_time", {}, idempotent=True) == {"serverTime": 7}
        finally:
            await trusting.close()
    finally:
        server.close()
    assert scripted.connections == 1, "the TLS connection is kept alive and reused"
    assert scripted.requests[0].startswith(b"GET /fapi/v1/time HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_a_malformed_header_line_is_refused_never_half_read() -> None:
    async def reply(request: bytes, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nthis line has no colon\r\n\r\n{}")

    async with ScriptedServer(reply) as server:
        wire = client(server.url)
        try:
            with pytest.raises(WireError, match="malformed reply header: 'this line has no colon'"):
                await wire.call("futures_ping", {}, idempotent=True)
            assert wire.open_connections == 0, "a connection out of step is dropped"
        finally:
            await wire.close()


async def test_a_reply_without_length_runs_until_the_peer_closes_and_the_connection_is_not_reused() -> None:
    async def reply(request: bytes, writer: asyncio.StreamWriter, n: int) -> None:  # e.g. a load balancer's 502 page
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html>502 Bad ")
        await writer.drain()
        writer.write(b"Gateway</html>")
        await writer.drain()
        writer.close()

    async with ScriptedServer(reply) as server:
        wire = client(server.url)
        try:
            for _ in range(2):
                with pytest.raises(BinanceAPIException) as caught:
                    await wire.call("futures_ping", {}, idempotent=True)
                assert caught.value.status_code == 502 and caught.value.response.text == "<html>502 Bad Gateway</html>"
        finally:
            await wire.close()
    assert server.connections == 2
