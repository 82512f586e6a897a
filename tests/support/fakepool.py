"""The pool's fakes, for unit tests of `PoolCore` and `PooledBackend` without
sockets or a cluster: a `PoolCore` with small numbers, an in-memory driver
whose members are plain objects, and a backend over both with a fake clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.provisioner.backends.base import (
    Claim,
    Endpoint,
    MemberState,
    NodeBrief,
    PodInfo,
    PoolMember,
    SessionInfo,
)
from services.provisioner.backends.events import SessionEvents
from services.provisioner.backends.pooled import PooledBackend
from services.provisioner.errors import SessionNotFound
from services.provisioner.metrics import Metrics
from services.provisioner.pool import PoolCore, SessionTimes
from tests.support.clock import FakeClock


def core(**overrides: float) -> PoolCore:
    """A `PoolCore` with small numbers; `overrides` set any of its options."""
    settings = {
        "pool_size": 4,
        "max_sessions": 10,
        "refill_per_second": 2,
        "idle_timeout": 60,
        "max_cold_starts": 2,
    }
    return PoolCore(**{**settings, **overrides})  # type: ignore[arg-type]


@dataclass(eq=False)
class Member:
    """A member of the fake pool: a name, and whether it is Ready."""

    name: str
    ready: bool = True
    stolen: bool = False  # another replica claims it first


class FakeDriver:
    """The driver protocol in memory: members are `Member`s, sessions their times,
    and a cold claim waits until the test sets `cold_gate`."""

    tick = 0.01
    unready_detail = "not synced"
    max_starts: int | None = None

    def __init__(self, events: SessionEvents) -> None:
        self.events = events
        self.members: list[Member] = []
        self.times: dict[str, SessionTimes] = {}
        self.cold_gate = asyncio.Event()
        self.started = 0
        self.claim_delay = 0.0  # seconds each claim write takes
        self.claim_writes = 0

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
        self.claim_writes += 1
        if self.claim_delay:
            await asyncio.sleep(self.claim_delay)  # a write's round trip
        if member not in self.members:
            return None  # another claim took it meanwhile
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

    def pool_nodes(self) -> list[NodeBrief]:
        return []

    def pool_changed(self) -> asyncio.Event:
        return asyncio.Event()

    async def drain_gateway(self, key: str, now: float) -> None:
        self.events.gateway_drain(key)


def pooled(**overrides: float) -> tuple[PooledBackend[Member], FakeDriver, FakeClock]:
    """A `PooledBackend` over a `FakeDriver` and `core(**overrides)`, on a clock the test moves."""
    clock = FakeClock(1000.0)
    metrics = Metrics()
    events = SessionEvents(metrics, clock=clock)
    driver = FakeDriver(events)
    backend = PooledBackend(
        driver, core=core(**overrides), events=events, metrics=metrics, clock=clock
    )
    return backend, driver, clock
