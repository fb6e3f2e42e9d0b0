"""The HTTP face's one-pass parameter parser reads a request exactly as the stdlib and Binance do.

``_parse_into`` replaced ``parse_qsl`` (twice per request) plus a separate pass that cut the
``signature`` out of the signed payload; these tests hold it to the old definitions on crafted and
random query strings, so the simulator is no more lenient (or strict) than before.
"""

from __future__ import annotations

import random
from urllib.parse import parse_qsl

import pytest

from harness.exchanges.sim._auth import signature_payloads
from harness.exchanges.sim._http import _parse_into

CRAFTED = [
    "",
    "symbol=BTCUSDT&side=SELL&timestamp=1&signature=ab12",
    "signature=ab12&symbol=BTCUSDT",
    "symbol=BTCUSDT&signature=ab12&timestamp=1",
    "signature=one&signature=two",
    "a=1&&b=2&",
    "&&",
    "flag&x=",
    "=value&name=",
    "a=1=2",
    "batchOrders=%5B%7B%22symbol%22%3A%22BTCUSDT%22%7D%5D&signature=ff",
    "q=a+b&r=%2B&s=%ZZ&t=%e2%82%ac",
    "sig%6Eature=decoded-name&signature=real",
    "xsignature=1&signature=2",
    "a=1&xsignature=2",
    "signature=",
    "name=%C3%A9t%C3%A9&signature=00",
    "a=%&b=%%",
]


def _reference(raw: str) -> tuple[dict[str, str], str]:
    return dict(parse_qsl(raw, keep_blank_values=True)), signature_payloads(raw, "")[0]


def _parsed(raw: str) -> tuple[dict[str, str], str]:
    params: dict[str, str] = {}
    payload = _parse_into(raw, params)
    return params, payload


@pytest.mark.parametrize("raw", CRAFTED)
def test_crafted_strings_parse_and_unsign_as_the_stdlib_does(raw: str) -> None:
    params, payload = _parsed(raw)
    expected_params, expected_payload = _reference(raw)
    assert list(params.items()) == list(expected_params.items())
    assert payload == expected_payload


def test_random_strings_parse_and_unsign_as_the_stdlib_does() -> None:
    rng = random.Random(13)
    alphabet = ["a", "b", "=", "&", "%", "2", "B", "+", "signature", "signature=", "&signature=", "%3D", "%26", "é"]
    for _ in range(5000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 14)))
        assert _parsed(raw) == _reference(raw), raw


def test_later_values_win_and_keep_the_first_position() -> None:
    params: dict[str, str] = {}
    _parse_into("a=1&b=2", params)
    _parse_into("b=3&c=4", params)  # the query string after the body: it wins, as on Binance
    assert list(params.items()) == [("a", "1"), ("b", "3"), ("c", "4")]
