"""One table of Binance codes (harness.exchanges.codes), read the same way by both faces, and the
exception tree (harness.core.errors)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from binance.exceptions import BinanceAPIException

from harness.core.errors import (
    AmbiguousExchangeError,
    ExchangeError,
    HarnessError,
    InvalidArgumentError,
    RetryableExchangeError,
    TerminalExchangeError,
    is_terminal,
)
from harness.exchanges.binance.errors import to_exchange_error
from harness.exchanges.binance.rules import to_decimal
from harness.exchanges.codes import CODES, CodeClass, codes_in
from harness.exchanges.sim.memory import RETRYABLE_HERE_TERMINAL_THERE, exchange_error

EXPECTED = {
    CodeClass.TERMINAL: TerminalExchangeError,
    CodeClass.NOT_FOUND: TerminalExchangeError,
    CodeClass.RETRYABLE: RetryableExchangeError,
    CodeClass.AMBIGUOUS: AmbiguousExchangeError,
}


class _Reply:
    """What python-binance keeps of an HTTP reply (status, headers, body)."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}
        self.text = f'{{"code": {code}, "msg": "{msg}"}}'


def _adapter_class(code: int, *, idempotent: bool) -> type[ExchangeError]:
    exc = BinanceAPIException(_Reply(400, code, CODES[code].message), 400, _Reply(400, code, "").text)
    return type(to_exchange_error(exc, operation="futures_create_order", symbol="BTCUSDT", idempotent=idempotent))


def _memory_class(code: int) -> type[ExchangeError]:
    return type(exchange_error(code, CODES[code].message, status=400, symbol="BTCUSDT"))


class TestOneTable:
    def test_every_code_has_one_class_a_name_and_a_message(self) -> None:
        assert len({entry.name for entry in CODES.values()}) == len(CODES)
        assert all(entry.message and entry.code < 0 and entry.code == code for code, entry in CODES.items())
        classes = [codes_in(klass) for klass in CodeClass]
        assert sum(map(len, classes)) == len(CODES) and frozenset().union(*classes) == set(CODES)

    def test_the_codes_the_faces_disagreed_on_are_decided_with_a_reason(self) -> None:
        for code in (-2022, -4061):
            assert CODES[code].klass is CodeClass.TERMINAL and "resubmit" in CODES[code].why
        assert CODES[-4116].klass is CodeClass.AMBIGUOUS

    @pytest.mark.parametrize("code", sorted(CODES))
    def test_the_adapter_maps_each_order_error_as_the_table_says(self, code: int) -> None:
        assert _adapter_class(code, idempotent=False) is EXPECTED[CODES[code].klass]

    @pytest.mark.parametrize("code", sorted(CODES))
    def test_the_in_process_face_agrees_except_where_it_says_so(self, code: int) -> None:
        expected = RetryableExchangeError if code in RETRYABLE_HERE_TERMINAL_THERE else EXPECTED[CODES[code].klass]
        assert _memory_class(code) is expected

    def test_the_in_process_faces_differences_are_few_and_in_the_table(self) -> None:
        assert RETRYABLE_HERE_TERMINAL_THERE == {-2022, -4061}
        assert RETRYABLE_HERE_TERMINAL_THERE <= set(CODES)
        listed = {code for code in CODES if _memory_class(code) is not EXPECTED[CODES[code].klass]}
        assert listed == RETRYABLE_HERE_TERMINAL_THERE

    def test_for_a_read_the_adapter_retries_what_would_be_ambiguous_for_an_order(self) -> None:
        assert _adapter_class(-1006, idempotent=True) is RetryableExchangeError
        assert _adapter_class(-1006, idempotent=False) is AmbiguousExchangeError


class TestInvalidArgumentError:
    def test_it_is_a_terminal_harness_error_and_still_a_value_error(self) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            to_decimal("ten", name="quantity")
        error = info.value
        assert isinstance(error, TerminalExchangeError) and isinstance(error, HarnessError)
        assert isinstance(error, ValueError) and is_terminal(error)
        assert "quantity='ten'" in str(error)

    def test_except_harness_error_catches_it(self) -> None:
        caught: list[BaseException] = []
        try:
            to_decimal(Decimal("NaN"), name="quantity")
        except HarnessError as exc:
            caught.append(exc)
        assert [type(e) for e in caught] == [InvalidArgumentError]

    def test_the_adapter_package_exports_the_core_class(self) -> None:
        from harness.exchanges.binance import InvalidArgumentError as exported
        from harness.exchanges.binance.rules import InvalidArgumentError as from_rules

        assert exported is from_rules is InvalidArgumentError
