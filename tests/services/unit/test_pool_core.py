"""The pool's rules with plain numbers: `PoolCore` (capacity, the cold-start bound,
refill, trim, expiry) and `Demand`, the adaptive target."""

from __future__ import annotations

import pytest

from services.provisioner.errors import LimitExceeded
from services.provisioner.pool import Demand, SessionTimes
from services.provisioner.sessions import EndReason
from tests.support.fakepool import core

# PoolCore


def test_capacity() -> None:
    pool = core(max_sessions=2)
    pool.check_capacity(1)
    with pytest.raises(LimitExceeded) as info:
        pool.check_capacity(2)
    assert (info.value.code, info.value.retry_after) == ("at_capacity", 5)


def test_cold_start_bound() -> None:
    pool = core(max_cold_starts=2)
    pool.begin_cold()
    pool.begin_cold()
    with pytest.raises(LimitExceeded) as info:
        pool.begin_cold()
    assert (info.value.code, info.value.retry_after) == ("pool_empty", 1)
    pool.end_cold()
    pool.begin_cold()  # a finished cold start frees its place
    assert pool.cold == 2


# the adaptive target


def burst(demand: Demand, *, rate: float, seconds: float, start: float = 0.0) -> float:
    """Claims at `rate` per second for `seconds`; returns the time of the last one."""
    t = start
    for i in range(int(rate * seconds)):
        t = start + i / rate
        demand.claimed(t)
        demand.update(t)
    return t


def test_target_is_the_base_without_demand_and_a_lone_claim_does_not_move_it() -> None:
    demand = Demand(base=4, cap=50)
    assert demand.update(0.0) == 4
    demand.ready_after(0.3)
    demand.claimed(1.0)
    assert demand.update(1.0) == 4


def test_target_follows_rate_times_time_to_ready_with_headroom() -> None:
    demand = Demand(base=4, cap=100, window=2.0, headroom=2.0, ready_seconds=0.5)
    end = burst(demand, rate=40, seconds=4)
    # The weighted rate is close to 40/s after two time constants: 4 + 40 x 0.5 x 2.
    assert demand.rate(end) == pytest.approx(40, rel=0.15)
    assert 4 + 34 <= demand.target <= 4 + 40
    quick = Demand(base=4, cap=100, headroom=2.0, ready_seconds=0.5)
    burst(quick, rate=50, seconds=1)
    assert quick.target >= 4 + 15  # within the first second, a burst is seen


def test_target_is_capped() -> None:
    demand = Demand(base=4, cap=10, ready_seconds=2.0)
    burst(demand, rate=100, seconds=2)
    assert demand.target == 10


def test_target_grows_at_once_and_shrinks_by_one_per_interval() -> None:
    demand = Demand(base=4, cap=100, ready_seconds=0.5, shrink_every=2.0)
    end = burst(demand, rate=40, seconds=3)
    peak = demand.target
    # Demand stops: one member fewer per 2 s, never below the base.
    targets = [demand.update(end + 2.0 * (i + 1)) for i in range(peak)]
    assert targets[:3] == [peak - 1, peak - 2, peak - 3]
    assert targets[-1] == 4 and min(targets) == 4


def test_time_to_ready_is_a_moving_average() -> None:
    demand = Demand(base=0, cap=100, ready_seconds=1.0)
    for _ in range(30):
        demand.ready_after(0.2)
    assert demand.ready_seconds == pytest.approx(0.2, abs=0.01)


def test_core_refills_to_the_adaptive_target() -> None:
    pool = core(pool_size=2, max_sessions=50, refill_per_second=1000)
    pool.member_ready(0.5)
    for i in range(40):
        pool.claimed(i / 20)
    target = pool.update_target(2.0)
    assert target > 2
    status = pool.status(ready=2, unready=0, assigned=0)
    assert status.target == target
    assert pool.refill(status, 2.0) == target - 2


def test_refill_counts_starts_until_they_finish_and_keeps_the_rate() -> None:
    pool = core(pool_size=4, refill_per_second=2)
    status = pool.status(ready=0, unready=0, assigned=0)
    assert pool.refill(status, mono=100.0) == 4  # a burst of pool_size
    status = pool.status(ready=0, unready=0, assigned=0)
    assert status.starting == 4  # asked for, not yet a member: counted
    assert pool.refill(status, mono=100.0) == 0
    for _ in range(4):
        pool.refilled()
    status = pool.status(ready=1, unready=0, assigned=3)  # three were claimed at once
    assert pool.refill(status, mono=100.0) == 0  # the burst is spent
    assert pool.refill(status, mono=101.0) == 2  # 2 per second
    assert pool.refill(pool.status(ready=1, unready=0, assigned=3), mono=101.0) == 0


def test_each_claim_gives_the_refill_one_start_back() -> None:
    pool = core(pool_size=4, refill_per_second=0.5, headroom=0.0)
    assert pool.refill(pool.status(ready=0, unready=0, assigned=0), mono=100.0) == 4
    for _ in range(4):
        pool.refilled()
    for _ in range(3):  # three claims empty the pool faster than REFILL_PER_SECOND fills it
        pool.claimed(100.0)
    # Replaced at the rate they were taken, not at 0.5 a second.
    assert pool.refill(pool.status(ready=1, unready=0, assigned=3), mono=100.0) == 3
    for _ in range(3):
        pool.refilled()
    assert pool.refill(pool.status(ready=4, unready=0, assigned=3), mono=100.0) == 0  # full


def test_refill_never_has_more_than_max_starts_in_flight() -> None:
    pool = core(pool_size=10, refill_per_second=100, max_starts=2)
    assert pool.refill(pool.status(ready=0, unready=0, assigned=0), mono=1.0) == 2
    assert pool.refill(pool.status(ready=0, unready=0, assigned=0), mono=1.0) == 0  # no queue
    pool.refilled()
    assert pool.refill(pool.status(ready=1, unready=0, assigned=0), mono=1.0) == 1
    assert pool.refilling == 2


def test_with_a_start_bound_waiting_cold_claims_are_refill_demand() -> None:
    pool = core(pool_size=0, max_sessions=2, refill_per_second=100, max_starts=2)
    pool.begin_cold()
    # the waiting claim is a session without a pod: it does not count against the cost cap
    assert pool.refill(pool.status(ready=0, unready=0, assigned=1), mono=1.0) == 1
    assert pool.trim(pool.status(ready=0, unready=0, assigned=1), []) == []
    pool.begin_cold()
    assert pool.refill(pool.status(ready=0, unready=0, assigned=2), mono=2.0) == 1
    assert pool.refill(pool.status(ready=0, unready=0, assigned=2), mono=3.0) == 0  # 2 in flight
    # without a bound (Kubernetes) a cold claim starts its own pod: no refill demand
    unbounded = core(pool_size=0, refill_per_second=100)
    unbounded.begin_cold()
    assert unbounded.refill(unbounded.status(ready=0, unready=0, assigned=1), mono=1.0) == 0


def test_a_start_for_a_claim_that_gave_up_trims_no_ready_member() -> None:
    pool = core(pool_size=1, refill_per_second=100, max_starts=2)
    assert pool.refill(pool.status(ready=0, unready=0, assigned=0), mono=1.0) == 1
    pool.begin_cold()
    assert pool.refill(pool.status(ready=0, unready=0, assigned=1), mono=2.0) == 1
    pool.end_cold()  # the claim gave up; both starts go on
    pool.refilled()  # the first joined the pool
    assert pool.trim(pool.status(ready=1, unready=0, assigned=0), [("a", True)]) == []
    pool.refilled()  # the second too: now one is too many
    assert pool.trim(pool.status(ready=2, unready=0, assigned=0), [("a", True), ("b", True)]) == [
        "a"
    ]


def test_cold_budget() -> None:
    pool = core(claim_timeout=1.5)
    assert pool.cold_budget(0.5) == 1.0
    shed = pool.cold_too_slow()
    assert (shed.code, shed.retry_after) == ("pool_empty", 1)


def test_refill_never_passes_the_cost_cap() -> None:
    pool = core(pool_size=4, max_sessions=10, refill_per_second=100)
    status = pool.status(ready=0, unready=0, assigned=12)
    assert pool.refill(status, mono=1.0) == 2  # max_sessions + pool_size pods in all


def test_status() -> None:
    pool = core(pool_size=4, max_sessions=10)
    pool.refill(pool.status(ready=0, unready=0, assigned=0), mono=1.0)
    status = pool.status(ready=2, unready=1, assigned=5)
    assert (status.warm, status.starting, status.assigned) == (2, 1 + 4, 5)
    assert (status.target, status.capacity) == (4, 10)


def test_trim_takes_the_excess_not_ready_first() -> None:
    pool = core(pool_size=2)
    warm = [("a", True), ("b", False), ("c", True), ("d", False)]
    status = pool.status(ready=2, unready=2, assigned=0)
    assert pool.trim(status, warm) == ["b", "d"]
    status = pool.status(ready=2, unready=0, assigned=9)
    assert pool.trim(status, [("a", True), ("c", True)]) == []


def test_expired() -> None:
    pool = core(idle_timeout=10)
    sessions = [
        SessionTimes(key="live", expires_at=100, last_active=45),
        SessionTimes(key="idle", expires_at=100, last_active=40),
        SessionTimes(key="old", expires_at=50, last_active=49),
    ]
    assert pool.expired(sessions, now=50) == [("idle", EndReason.IDLE), ("old", EndReason.EXPIRED)]
