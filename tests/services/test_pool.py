"""The pool's rules and their adapter, without sockets or a cluster: `PoolCore`
with plain numbers, `SessionEvents`, and `PooledBackend` over an in-memory
driver with a fake clock."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from services.provisioner.backends.base import (
    Claim,
    Endpoint,
    MemberState,
    PodInfo,
    PoolMember,
    SessionInfo,
)
from services.provisioner.backends.events import EventKind, SessionEvent, SessionEvents
from services.provisioner.backends.pooled import PooledBackend
from services.provisioner.backends.tasks import Tasks
from services.provisioner.errors import LimitExceeded, SessionNotFound
from services.provisioner.metrics import Metrics
from services.provisioner.pool import Demand, PoolCore, SessionTimes
from services.provisioner.sessions import EndReason


def core(**overrides: float) -> PoolCore:
    settings = {
        "pool_size": 4,
        "max_sessions": 10,
        "refill_per_second": 2,
        "idle_timeout": 60,
        "max_cold_starts": 2,
    }
    return PoolCore(**{**settings, **overrides})  # type: ignore[arg-type]


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


# SessionEvents


async def test_session_events_announce_once_and_time_the_replacement() -> None:
    metrics = Metrics()
    events = SessionEvents(metrics, clock=lambda: 7.0)
    async with events.subscribe("k") as queue:
        events.pod_going("k", "p1")
        events.pod_going("k", "p1")  # seen again (terminating, then deleted): once
        events.pod_gone("p1")
        events.pod_added("k", "p2")
        events.pod_ready("k", "p2")
        events.session_ended("k", EndReason.IDLE, "p2")
        events.session_ended("k", EndReason.DELETED)  # the watch sees our own delete: once
        seen = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [(e.kind, e.pod) for e in seen] == [
        (EventKind.POD_KILLED, "p1"),
        (EventKind.POD_REPLACED, "p2"),
        (EventKind.POD_READY, "p2"),
        (EventKind.SESSION_ENDED, "p2"),
    ]
    assert seen[-1].reason == "idle" and seen[-1].at == 7.0
    assert metrics.registry.get_sample_value("pingpod_replacement_seconds_count") == 1
    with pytest.raises(SessionNotFound) as info:
        events.ended.check("k")
    assert info.value.reason == "idle"


def test_ended_memory_is_bounded() -> None:
    events = SessionEvents(Metrics())
    events.ended.limit = 2
    for key in ("a", "b", "c"):
        events.session_ended(key, EndReason.DELETED)
    assert "a" not in events.ended and "c" in events.ended


# PooledBackend over an in-memory driver


@dataclass(eq=False)
class Member:
    name: str
    ready: bool = True
    stolen: bool = False  # another replica claims it first


class FakeDriver:
    tick = 0.01
    unready_detail = "not synced"
    max_starts: int | None = None

    def __init__(self, events: SessionEvents) -> None:
        self.events = events
        self.members: list[Member] = []
        self.times: dict[str, SessionTimes] = {}
        self.cold_gate = asyncio.Event()
        self.started = 0

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def ready(self) -> bool:
        return True

    async def leading(self) -> bool:
        return True

    def replicas(self) -> int:
        return 1

    def warm(self) -> list[tuple[Member, bool]]:
        return [(m, m.ready) for m in self.members]

    def assigned(self) -> int:
        return len(self.times)

    def sessions(self) -> list[SessionTimes]:
        return list(self.times.values())

    async def start_member(self) -> None:
        self.started += 1
        self.members.append(Member(f"m{self.started}"))

    async def delete_member(self, member: Member) -> None:
        self.members.remove(member)

    async def claim_warm(
        self, member: Member, key: str, *, now: float, expires_at: float
    ) -> Claim | None:
        self.members.remove(member)
        if member.stolen:
            return None
        return self._claim(key, member.name, now, expires_at, warm=True)

    async def claim_cold(self, key: str, *, now: float, expires_at: float, budget: float) -> Claim:
        self.times[key] = SessionTimes(key=key, expires_at=expires_at, last_active=now)
        try:
            async with asyncio.timeout(budget):
                await self.cold_gate.wait()
        except TimeoutError:
            self.times.pop(key, None)
            raise
        return self._claim(key, "cold", now, expires_at, warm=False)

    def _claim(self, key: str, pod: str, now: float, expires_at: float, *, warm: bool) -> Claim:
        self.times[key] = SessionTimes(key=key, expires_at=expires_at, last_active=now)
        info = PodInfo(name=pod, node="n", started_at=now)
        session = SessionInfo(
            key=key,
            pod=info,
            replacements=0,
            created_at=now,
            expires_at=expires_at,
            last_active=now,
        )
        return Claim(session=session, pod=info, warm=warm)

    async def info(self, key: str) -> SessionInfo:
        raise NotImplementedError

    async def kill(self, key: str) -> PodInfo:
        raise NotImplementedError

    async def end(self, key: str, reason: str) -> str:
        if self.times.pop(key, None) is None:
            raise SessionNotFound()
        return "pod-of-" + key

    async def touch(self, key: str, now: float) -> None:
        times = self.times[key]
        self.times[key] = SessionTimes(key=key, expires_at=times.expires_at, last_active=now)

    async def endpoint(self, key: str) -> Endpoint | None:
        return None

    def pool_pods(self) -> list[PoolMember]:
        return [
            PoolMember(
                pod=m.name, state=MemberState.WARM if m.ready else MemberState.STARTING, created=0
            )
            for m in self.members
        ]

    def pool_changed(self) -> asyncio.Event:
        return asyncio.Event()

    async def drain_gateway(self, key: str, now: float) -> None:
        self.events.gateway_drain(key)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pooled(**overrides: float) -> tuple[PooledBackend[Member], FakeDriver, Clock]:
    clock = Clock()
    metrics = Metrics()
    events = SessionEvents(metrics, clock=clock)
    driver = FakeDriver(events)
    backend = PooledBackend(
        driver, core=core(**overrides), events=events, metrics=metrics, clock=clock
    )
    return backend, driver, clock


def sample(backend: PooledBackend[Member], name: str, **labels: str) -> float | None:
    return backend.metrics.registry.get_sample_value(name, labels)


async def eventually(probe: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        for _ in itertools.count():
            if probe():
                return
            await asyncio.sleep(0.01)


async def next_event(queue: asyncio.Queue[SessionEvent]) -> SessionEvent:
    return await asyncio.wait_for(queue.get(), 10)


async def test_claims_take_warm_members_skip_stolen_ones_then_go_cold() -> None:
    backend, driver, _ = pooled(pool_size=0, max_cold_starts=1)
    driver.members = [Member("a", stolen=True), Member("b", ready=False)]
    await backend.start()
    try:
        driver.cold_gate.set()
        claim = await backend.claim("k1", now=1.0, expires_at=10.0)
        assert (claim.pod.name, claim.warm) == ("cold", False)
        # "a" was claimed by another replica first
        assert sample(backend, "pingpod_rejections_total", reason="claim_conflict") == 1
        driver.members.append(Member("c"))
        claim = await backend.claim("k2", now=1.0, expires_at=10.0)
        assert (claim.pod.name, claim.warm) == ("c", True)
    finally:
        await backend.aclose()


async def test_cold_claims_past_the_bound_are_shed() -> None:
    backend, driver, _ = pooled(pool_size=0, max_cold_starts=1)
    await backend.start()
    try:
        first = asyncio.create_task(backend.claim("k1", now=1.0, expires_at=10.0))
        await asyncio.sleep(0)
        with pytest.raises(LimitExceeded) as info:
            await backend.claim("k2", now=1.0, expires_at=10.0)
        assert info.value.code == "pool_empty"
        driver.cold_gate.set()
        assert (await first).warm is False
        driver.cold_gate.clear()
        third = asyncio.create_task(backend.claim("k3", now=1.0, expires_at=10.0))
        await asyncio.sleep(0)
        assert backend.core.cold == 1  # the bound is free again, and taken by k3
        driver.cold_gate.set()
        await third
    finally:
        await backend.aclose()


async def test_a_cold_claim_past_its_budget_is_shed_not_queued() -> None:
    backend, driver, _ = pooled(pool_size=0, max_cold_starts=1, claim_timeout=0.05)
    await backend.start()
    try:
        with pytest.raises(LimitExceeded) as info:
            await backend.claim("k1", now=1.0, expires_at=10.0)
        assert (info.value.code, info.value.retry_after) == ("pool_empty", 1)
        assert (backend.core.cold, driver.assigned()) == (0, 0)  # nothing left behind
        driver.cold_gate.set()
        assert (await backend.claim("k2", now=1.0, expires_at=10.0)).warm is False
    finally:
        await backend.aclose()


async def test_capacity_counts_sessions() -> None:
    backend, driver, _ = pooled(pool_size=0, max_sessions=1)
    driver.cold_gate.set()
    await backend.start()
    try:
        await backend.claim("k1", now=1.0, expires_at=10.0)
        with pytest.raises(LimitExceeded) as info:
            await backend.claim("k2", now=1.0, expires_at=10.0)
        assert info.value.code == "at_capacity"
        await backend.release("k1")
        await backend.claim("k2", now=1.0, expires_at=10.0)
    finally:
        await backend.aclose()


async def test_the_loop_fills_the_pool_and_trims_it() -> None:
    backend, driver, _ = pooled(pool_size=3, refill_per_second=1000)
    await backend.start()
    try:
        await eventually(lambda: len(driver.members) >= 3)
        assert (await backend.pool()).warm == 3
        assert driver.started == 3
        driver.members += [Member("x", ready=False), Member("y")]
        await eventually(lambda: len(driver.members) <= 3)
        assert "x" not in [m.name for m in driver.members]  # not Ready: trimmed first
        assert driver.started == 3
    finally:
        await backend.aclose()


async def test_idle_and_expired_sessions_are_reaped_with_their_reason() -> None:
    backend, driver, clock = pooled(pool_size=0, idle_timeout=60)
    driver.cold_gate.set()
    await backend.start()
    try:
        await backend.claim("idle", now=clock(), expires_at=clock() + 900)
        await backend.claim("old", now=clock(), expires_at=clock() + 100)
        async with backend.subscribe("idle") as idle, backend.subscribe("old") as old:
            clock.now += 30
            await backend.touch("old", clock())
            clock.now += 31  # "idle" has been idle for 61 s; "old" for 31 s
            ended = await next_event(idle)
            assert (ended.kind, ended.reason, ended.pod) == (
                EventKind.SESSION_ENDED,
                "idle",
                "pod-of-idle",
            )
            assert old.empty()
            clock.now += 40  # past "old"'s lifetime
            ended = await next_event(old)
            assert (ended.kind, ended.reason) == (EventKind.SESSION_ENDED, "expired")
        for key, reason in (("idle", "idle"), ("old", "expired")):
            with pytest.raises(SessionNotFound) as info:
                await backend.get(key)
            assert info.value.reason == reason
        assert sample(backend, "pingpod_sessions_ended_total", reason="idle") == 1
    finally:
        await backend.aclose()


async def test_failed_background_tasks_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def boom() -> None:
        raise RuntimeError("boom")

    tasks = Tasks()
    with caplog.at_level(logging.ERROR):
        tasks.spawn(boom())
        for _ in range(10):  # the task runs, then its done callback
            await asyncio.sleep(0)
    assert any(r.message == "task_failed" and r.exc_info for r in caplog.records)
