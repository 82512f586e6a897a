"""`SessionEvents`, and `PooledBackend` over an in-memory driver with a fake
clock (tests/support/fakepool.py): the claim path, the bounds, the refill
loop, the reaper."""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.provisioner.backends.events import EventKind, SessionEvent, SessionEvents
from services.provisioner.backends.pooled import PooledBackend
from services.provisioner.backends.tasks import Tasks
from services.provisioner.errors import LimitExceeded, SessionNotFound
from services.provisioner.metrics import Metrics
from services.provisioner.sessions import EndReason
from tests.support.fakepool import Member, pooled
from tests.support.polling import eventually

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


def sample(backend: PooledBackend[Member], name: str, **labels: str) -> float | None:
    return backend.metrics.registry.get_sample_value(name, labels)


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


async def test_concurrent_claims_in_one_replica_do_not_race_for_a_member() -> None:
    backend, driver, _ = pooled(pool_size=4)  # a full pool: no trim, no refill under way
    driver.members = [Member(f"m{i}") for i in range(4)]
    driver.claim_delay = 0.01  # both claims are writing at once
    await backend.start()
    try:
        claims = await asyncio.gather(
            *(backend.claim(f"k{i}", now=1.0, expires_at=10.0) for i in range(3))
        )
        assert all(c.warm for c in claims)
        assert len({c.pod.name for c in claims}) == 3
        # Each claim wrote once: none tried a member a sibling was writing to.
        assert driver.claim_writes == 3
        assert sample(backend, "pingpod_rejections_total", reason="claim_conflict") is None
    finally:
        await backend.aclose()


async def test_lost_races_stop_at_the_claim_timeout() -> None:
    backend, driver, _ = pooled(pool_size=40, max_sessions=50, claim_timeout=0.05)
    driver.members = [Member(f"m{i}", stolen=True) for i in range(40)]
    driver.claim_delay = 0.01  # every write loses, after its round trip
    await backend.start()
    try:
        with pytest.raises(LimitExceeded) as info:
            await backend.claim("k", now=1.0, expires_at=10.0)
        assert info.value.code == "pool_empty"
        # It gave up when its time was out, not after trying all 40 members.
        assert 1 <= driver.claim_writes < 40
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
