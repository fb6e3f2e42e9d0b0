"""liquidation-result.json is the same document with or without orjson (the 'speed' extra)."""

from __future__ import annotations

import json
import sys
from decimal import Decimal

import pytest

from harness.bot import shell


def test_the_result_json_is_the_same_with_and_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("orjson")
    value = {"result": {"state": "COMPLETED", "qty": Decimal("0.010"), "symbols": {"BTCUSDT": [1, 2.5, None, True]}},
             "metrics": {"executions_by_state": {"COMPLETED": 1}, 3: "non-str key"}}
    fast = shell._pretty_json(value)
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson now raises ImportError
    plain = shell._pretty_json(value)
    assert json.loads(fast) == json.loads(plain)
    assert json.loads(plain)["result"]["qty"] == "0.010"
    assert fast.startswith('{\n  "result"') and plain.startswith('{\n  "result"')
