"""Accounts liquidated together share the per-IP weight budget and keep their own order limits
(``AccountLimiter`` over one ``ip_limiter``), on a manual clock."""

from __future__ import annotations

import pytest

from harness.exchanges.binance import BinanceFuturesOrderManager
from harness.exchanges.binance.limiter import AccountLimiter, Limit, RequestLimiter, ip_limiter
from tests.support.clock import ManualClock

LIMITS = (Limit("weight", 60.0, 100), Limit("orders", 10.0, 5))


def pair() -> tuple[AccountLimiter, AccountLimiter, RequestLimiter, ManualClock]:
    clock = ManualClock()
    ip = ip_limiter(LIMITS, headroom=1.0, clock=clock)
    return (AccountLimiter(ip, LIMITS, headroom=1.0, clock=clock), AccountLimiter(ip, LIMITS, headroom=1.0, clock=clock),
            ip, clock)


def test_weight_used_by_one_account_queues_the_other() -> None:
    one, two, ip, _ = pair()
    assert one.reserve(90, 0) == 0
    assert two.reserve(10, 0) == 0
    assert two.reserve(5, 0) == pytest.approx(60.0)  # the IP's 100 per minute is used up by both together
    assert ip.stats()["weight"] == 105


def test_order_limits_stay_per_account() -> None:
    one, two, _, _ = pair()
    for _ in range(5):
        assert one.reserve(0, 1) == 0
    assert one.reserve(0, 1) == pytest.approx(10.0)  # its own 5 orders per 10 s
    assert two.reserve(0, 1) == 0  # the other account's orders are not counted against it


def test_one_accounts_queueing_never_delays_another() -> None:
    one, two, _, _ = pair()
    for _ in range(6):
        one.reserve(1, 1)  # the sixth order waits 10 s for its own order window
    assert two.reserve(1, 0) == 0


def test_weight_the_exchange_reports_is_learned_for_every_account() -> None:
    one, two, _, _ = pair()
    one.observe({"X-MBX-USED-WEIGHT-1M": "100"})  # another process on this IP used the budget
    assert two.reserve(1, 0) == pytest.approx(60.0)


def test_exchange_info_limits_configure_the_shared_part_for_all() -> None:
    one, two, ip, _ = pair()
    one.configure([{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 10},
                   {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300}])
    assert ip.limits == (Limit("weight", 60.0, 10),)
    assert Limit("weight", 60.0, 10) in two.limits


def test_an_account_limiter_is_not_a_valid_shared_limiter() -> None:
    one, _, _, _ = pair()
    with pytest.raises(TypeError, match="shared per-IP RequestLimiter"):
        AccountLimiter(one)  # type: ignore[arg-type]


def test_the_adapter_takes_a_shared_weight_limiter() -> None:
    ip = ip_limiter()
    managers = [BinanceFuturesOrderManager("k" * 64, "s" * 64, base_url="http://127.0.0.1:1", weight_limiter=ip)
                for _ in range(2)]
    limiters = [m._session.limiter for m in managers]
    assert all(isinstance(limiter, AccountLimiter) and limiter.ip is ip for limiter in limiters)
    assert limiters[0] is not limiters[1]
