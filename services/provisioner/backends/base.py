"""The backend contract shared by the local and Kubernetes backends.

Sessions are addressed by their key (the hash of the session id, see
`sessions.session_key`): backends never see the id itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from services.provisioner.errors import SessionNotFound


@dataclass(frozen=True, kw_only=True)
class PodInfo:
    name: str
    node: str
    started_at: float  # epoch seconds
    phase: str = "Running"
    ready: bool = True


@dataclass(frozen=True, kw_only=True)
class SessionInfo:
    key: str
    pod: PodInfo | None
    replacements: int
    created_at: float
    expires_at: float
    last_active: float


@dataclass(frozen=True, kw_only=True)
class Claim:
    session: SessionInfo
    pod: PodInfo
    warm: bool


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """Where the gateway connects for a session's current pod."""

    url: str
    pod: str


@dataclass(frozen=True, kw_only=True)
class PoolStatus:
    warm: int
    starting: int
    assigned: int
    target: int
    capacity: int


class EventKind(StrEnum):
    POD_KILLED = "pod_killed"
    POD_REPLACED = "pod_replaced"
    POD_READY = "pod_ready"
    SESSION_ENDED = "session_ended"


@dataclass(frozen=True, kw_only=True)
class SessionEvent:
    kind: EventKind
    pod: str
    at: float  # epoch seconds
    reason: str = ""  # for SESSION_ENDED: an EndReason value


class Backend(Protocol):
    """What the API and gateway need from wherever pods run.

    Errors: SessionNotFound for unknown keys, LimitExceeded at capacity,
    BackendUnavailable when the pod platform cannot be reached.
    """

    async def start(self) -> None:
        """Open clients and start background loops (pool refill, reaping)."""
        ...

    async def aclose(self) -> None:
        """Stop loops; the local backend also stops every child process."""
        ...

    def ready(self) -> bool:
        """True when claims can be served (platform reachable, caches synced)."""
        ...

    async def claim(self, key: str, *, now: float, expires_at: float) -> Claim:
        """Assign a Ready pod to a new session: warm if one is free, else cold."""
        ...

    async def get(self, key: str) -> SessionInfo: ...

    async def kill(self, key: str) -> PodInfo:
        """Delete the session's pod; a replacement follows (returns the killed pod)."""
        ...

    async def release(self, key: str, reason: str = "deleted") -> None:
        """End the session and delete its pod."""
        ...

    async def touch(self, key: str, now: float) -> None:
        """Record WebSocket activity (the idle timeout counts from the last touch)."""
        ...

    async def endpoint(self, key: str, *, avoid: str = "", patience: float = 0.0) -> Endpoint:
        """Wait until the session's current pod is Ready and return where to reach it.

        While that pod is `avoid` (one the gateway just lost), wait up to
        `patience` seconds for another before returning it anyway.
        """
        ...

    async def pool(self) -> PoolStatus: ...

    def subscribe(
        self, key: str
    ) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[SessionEvent]]:
        """Pod lifecycle events of one session, as a queue, while the context is open."""
        ...


async def wait_endpoint(
    current: Callable[[], Awaitable[tuple[Endpoint | None, asyncio.Event]]],
    *,
    avoid: str,
    patience: float,
) -> Endpoint:
    """The waiting part of `Backend.endpoint`, shared by the backends.

    `current()` returns the Ready endpoint (or None) and the event set at the
    next change of the session; it raises SessionNotFound once it has ended.
    """
    deadline = time.monotonic() + patience
    while True:
        endpoint, changed = await current()
        left = deadline - time.monotonic()
        if endpoint is not None and (endpoint.pod != avoid or left <= 0):
            return endpoint
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(left if endpoint is not None else None):
                await changed.wait()


class EndedSessions:
    """Recently ended sessions and why, so a late request learns the reason (bounded)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._reasons: dict[str, str] = {}

    def add(self, key: str, reason: str) -> None:
        self._reasons[key] = reason
        if len(self._reasons) > self.limit:
            self._reasons.pop(next(iter(self._reasons)))

    def check(self, key: str) -> None:
        """Raise SessionNotFound, with the reason, if `key` is known to have ended."""
        reason = self._reasons.get(key)
        if reason is not None:
            raise SessionNotFound(f"the session has ended ({reason})", reason=reason)


class EventHub:
    """Fan-out of per-session events to the gateways subscribed to them."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[SessionEvent]]] = {}

    def publish(self, key: str, event: SessionEvent) -> None:
        for queue in self._queues.get(key, ()):
            queue.put_nowait(event)

    def emit(self, key: str, kind: EventKind, pod: str, *, at: float, reason: str = "") -> None:
        self.publish(key, SessionEvent(kind=kind, pod=pod, at=at, reason=reason))

    @contextlib.asynccontextmanager
    async def subscribe(self, key: str) -> AsyncIterator[asyncio.Queue[SessionEvent]]:
        queue: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._queues.setdefault(key, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._queues.get(key)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._queues[key]
