"""Per-address budgets shared by the live replicas (pure arithmetic, no sockets)."""

from __future__ import annotations

import pytest

from services.common.ratelimit import ConnectionCounter, KeyedLimiter


def granted(limiter: KeyedLimiter, shares: int, tries: int, now: float = 100.0) -> int:
    return sum(limiter.take("ip", now, shares=shares) == 0 for _ in range(tries))


@pytest.mark.parametrize(("shares", "each"), [(1, 6), (2, 3), (3, 2), (4, 1.5)])
def test_each_replica_spends_its_share_of_the_burst(shares: int, each: float) -> None:
    limiters = [KeyedLimiter(rate=0.1, burst=6) for _ in range(shares)]
    total = sum(granted(limiter, shares, 10) for limiter in limiters)
    # The deployment grants the configured burst, give or take each replica's rounding.
    assert total == int(each) * shares
    assert abs(total - 6) < shares
    assert all(granted(limiter, shares, 1) == 0 for limiter in limiters)  # spent


def test_a_replica_too_many_for_the_budget_still_grants_one() -> None:
    limiter = KeyedLimiter(rate=0.1, burst=2)
    assert granted(limiter, shares=3, tries=5) == 1


def test_the_rate_is_shared_too() -> None:
    limiter = KeyedLimiter(rate=1.0, burst=1)
    assert granted(limiter, shares=2, tries=1) == 1
    assert limiter.take("ip", 101.0, shares=2) > 0  # half a token a second here
    assert limiter.take("ip", 102.0, shares=2) == 0


def test_a_new_count_applies_from_then_on() -> None:
    limiter = KeyedLimiter(rate=0.001, burst=6)
    assert granted(limiter, shares=1, tries=2) == 2  # 4 left of 6
    assert granted(limiter, shares=2, tries=5) == 3  # capped to the new share of 3
    assert granted(limiter, shares=1, tries=5) == 0  # what was spent stays spent


@pytest.mark.parametrize(("shares", "cap"), [(1, 4), (2, 2), (3, 2), (5, 1)])
def test_connections_per_replica_are_the_limit_shared_rounded_up(shares: int, cap: int) -> None:
    counter = ConnectionCounter(4)
    assert sum(counter.acquire("ip", shares=shares) for _ in range(6)) == cap
