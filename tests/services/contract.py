"""The backend contract: what every backend does, whatever runs its pods.

`BackendContract` holds the tests; a test module subclasses it once per
backend and provides the `backends` fixture (a `Backends`):
tests/services/test_contract.py for the local backend,
tests/k8s/test_contract.py for the Kubernetes backend on the test control
plane. Each backend is built as the provisioner builds it (`make_backend`
from `Settings`), in this process, with a clock the tests move: expiry needs
no sleeping.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from services.provisioner.backends import make_backend
from services.provisioner.backends.base import Backend
from services.provisioner.backends.events import EventKind, SessionEvent
from services.provisioner.errors import LimitExceeded, SessionNotFound
from services.provisioner.metrics import Metrics
from services.provisioner.settings import Settings

WAIT = 60  # seconds: generous, for a loaded machine; nothing here is a timing assertion
KEYS = (f"{n:040x}" for n in itertools.count(0xC0FFEE))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backends:
    """Starts backends of one kind with settings overrides; all are closed at teardown."""

    settings: dict[str, Any]  # what this kind needs (backend, namespace, ...)
    clock: FakeClock = field(default_factory=FakeClock)
    started: list[Backend] = field(default_factory=list)

    async def start(self, **overrides: Any) -> Backend:
        defaults = {
            "pool_size": 1,
            "refill_per_second": 50.0,
            "max_cold_starts": 8,
            "claim_timeout": WAIT / 2,  # a cold start on a loaded machine; shedding has a test
        }
        settings = Settings(**{**defaults, **self.settings, **overrides})
        backend = make_backend(settings, Metrics(), clock=self.clock)
        self.started.append(backend)
        await backend.start()
        await eventually(backend.ready)
        return backend

    async def close(self) -> None:
        for backend in self.started:
            await backend.aclose()


async def eventually(probe: Callable[[], Any], what: str = "the condition") -> None:
    """Poll `probe` (sync or async) until it is truthy; fail after WAIT seconds."""
    try:
        async with asyncio.timeout(WAIT):
            for _ in itertools.count():
                value = probe()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def warm(backend: Backend, n: int = 1) -> None:
    async def enough() -> bool:
        return (await backend.pool()).warm >= n

    await eventually(enough, f"{n} warm pods")


async def claim(backend: Backend, clock: FakeClock, lifetime: float = 900) -> str:
    key = next(KEYS)
    await backend.claim(key, now=clock(), expires_at=clock() + lifetime)
    return key


async def next_event(events: asyncio.Queue[SessionEvent]) -> SessionEvent:
    return await asyncio.wait_for(events.get(), WAIT)


class BackendContract:
    async def test_claim_gives_a_ready_pod(self, backends: Backends) -> None:
        backend = await backends.start()
        await warm(backend)
        key = next(KEYS)
        now = backends.clock()
        claim = await backend.claim(key, now=now, expires_at=now + 900)
        assert claim.warm and claim.pod.ready
        info = await backend.get(key)
        assert info.pod is not None and info.pod.name == claim.pod.name
        assert (info.created_at, info.expires_at, info.replacements) == (now, now + 900, 0)
        endpoint = await backend.endpoint(key)
        assert endpoint is not None and endpoint.pod == claim.pod.name
        assert (await backend.pool()).assigned == 1
        with pytest.raises(SessionNotFound):
            await backend.get(next(KEYS))

    async def test_kill_is_replaced_and_events_come_in_order(self, backends: Backends) -> None:
        backend = await backends.start()
        await warm(backend)
        key = await claim(backend, backends.clock)
        async with backend.subscribe(key) as events:
            killed = await backend.kill(key)
            seen = [await next_event(events) for _ in range(3)]
            assert [(e.kind, e.pod == killed.name) for e in seen] == [
                (EventKind.POD_KILLED, True),
                (EventKind.POD_REPLACED, False),
                (EventKind.POD_READY, False),
            ]
            replacement = seen[1].pod
            assert seen[2].pod == replacement
            info = await backend.get(key)
            assert info.pod is not None and (info.pod.name, info.pod.ready) == (replacement, True)
            assert info.replacements == 1
            endpoint = await backend.endpoint(key)
            assert endpoint is not None and endpoint.pod == replacement

            await backend.release(key)
            ended = await next_event(events)
            assert (ended.kind, ended.reason) == (EventKind.SESSION_ENDED, "deleted")
        for op in (backend.get, backend.kill, backend.release):
            with pytest.raises(SessionNotFound) as info:
                await op(key)
            assert info.value.reason == "deleted"

    async def test_end_frees_the_slot(self, backends: Backends) -> None:
        backend = await backends.start(pool_size=1)
        key = await claim(backend, backends.clock)
        await backend.release(key)

        async def freed() -> bool:
            return (await backend.pool()).assigned == 0

        await eventually(freed, "the ended session's slot")

    async def test_idle_session_is_reaped(self, backends: Backends) -> None:
        backend = await backends.start(session_idle_timeout=60)
        key = await claim(backend, backends.clock)
        async with backend.subscribe(key) as events:
            backends.clock.now += 30
            await backend.touch(key, backends.clock())
            backends.clock.now += 59  # 59 s since the touch: still alive
            await backend.get(key)
            backends.clock.now += 2
            ended = await next_event(events)
        assert (ended.kind, ended.reason) == (EventKind.SESSION_ENDED, "idle")
        with pytest.raises(SessionNotFound) as info:
            await backend.get(key)
        assert info.value.reason == "idle"

    async def test_lifetime_ends_an_active_session(self, backends: Backends) -> None:
        backend = await backends.start(session_idle_timeout=60)
        key = await claim(backend, backends.clock, lifetime=100)
        async with backend.subscribe(key) as events:
            for _ in range(3):  # active all along
                backends.clock.now += 40
                await backend.touch(key, backends.clock())
            ended = await next_event(events)
        assert (ended.kind, ended.reason) == (EventKind.SESSION_ENDED, "expired"), ended
        with pytest.raises(SessionNotFound) as info:
            await backend.touch(key, backends.clock())
        assert info.value.reason == "expired"

    async def test_capacity(self, backends: Backends) -> None:
        backend = await backends.start(max_sessions=2, pool_size=2)
        first = await claim(backend, backends.clock)
        await claim(backend, backends.clock)
        with pytest.raises(LimitExceeded) as info:
            await claim(backend, backends.clock)
        assert (info.value.code, info.value.retry_after) == ("at_capacity", 5)
        assert (await backend.pool()).capacity == 2
        await backend.release(first)
        await claim(backend, backends.clock)

    async def test_cold_start_bound(self, backends: Backends) -> None:
        backend = await backends.start(pool_size=0, max_cold_starts=1)
        now = backends.clock()
        keys = [next(KEYS) for _ in range(3)]
        outcomes = await asyncio.gather(
            *(backend.claim(key, now=now, expires_at=now + 900) for key in keys),
            return_exceptions=True,
        )
        shed = [o for o in outcomes if isinstance(o, LimitExceeded)]
        claims = [o for o in outcomes if not isinstance(o, BaseException)]
        assert [(e.code, e.retry_after) for e in shed] == [("pool_empty", 1)] * 2
        assert len(claims) == 1 and claims[0].warm is False and claims[0].pod.ready

    async def test_a_cold_claim_past_its_budget_is_shed(self, backends: Backends) -> None:
        backend = await backends.start(pool_size=0, claim_timeout=0.001)
        with pytest.raises(LimitExceeded) as info:
            await claim(backend, backends.clock)
        assert (info.value.code, info.value.retry_after) == ("pool_empty", 1)

        async def nothing_left() -> bool:
            return (await backend.pool()).assigned == 0

        await eventually(nothing_left, "the shed claim's session to be gone")
