"""Session events, produced the same way for every backend.

A driver reports what it observes of a session's pods: one going (deleted,
terminating, or lost with its node), one added, one turning Ready, and the
session ending. `SessionEvents` decides what that means (docs/architecture.md,
"Gateway and events"): each pod's death is announced once, whoever saw it
first; the time from a death to the next Ready pod is the replacement time;
an ending is announced once and remembered, so a late request learns why.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum

from services.provisioner.errors import SessionNotFound
from services.provisioner.metrics import Metrics


class EventKind(StrEnum):
    POD_KILLED = "pod_killed"
    POD_REPLACED = "pod_replaced"
    POD_READY = "pod_ready"
    SESSION_ENDED = "session_ended"
    GATEWAY_DRAIN = "gateway_drain"  # drain the replica holding this session's socket


@dataclass(frozen=True, kw_only=True)
class SessionEvent:
    kind: EventKind
    pod: str
    at: float  # epoch seconds
    # SESSION_ENDED: an EndReason value; POD_KILLED: why the cluster took it (wire.NODE_LOST)
    reason: str = ""


class EndedSessions:
    """Recently ended sessions and why (bounded: the oldest are forgotten)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._reasons: dict[str, str] = {}

    def add(self, key: str, reason: str) -> None:
        self._reasons[key] = reason
        if len(self._reasons) > self.limit:
            self._reasons.pop(next(iter(self._reasons)))

    def __contains__(self, key: str) -> bool:
        return key in self._reasons

    def check(self, key: str) -> None:
        """Raise SessionNotFound, with the reason, if `key` is known to have ended."""
        reason = self._reasons.get(key)
        if reason is not None:
            raise SessionNotFound(f"the session has ended ({reason})", reason=reason)


class EventHub:
    """Fan-out of per-session events to the gateways subscribed to them."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[SessionEvent]]] = {}

    def emit(self, key: str, event: SessionEvent) -> None:
        for queue in self._queues.get(key, ()):
            queue.put_nowait(event)

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


class SessionEvents:
    """Observations of session pods in, session events out (see the module doc)."""

    def __init__(self, metrics: Metrics, *, clock: Callable[[], float] = time.time) -> None:
        self.metrics = metrics
        self.clock = clock
        self.hub = EventHub()
        self.ended = EndedSessions()
        self._announced: set[str] = set()  # pods whose death was published
        self._died: dict[str, float] = {}  # session key -> monotonic time its pod went
        # Pool demand signals for the adaptive target; the backend connects them.
        self.on_claim: Callable[[], None] = lambda: None
        self.on_member_ready: Callable[[float], None] = lambda seconds: None

    def claimed(self) -> None:
        """A session took a pool member (on any replica, as far as the driver can see)."""
        self.on_claim()

    def member_ready(self, seconds: float) -> None:
        """A new pool member became Ready `seconds` after its start was asked for."""
        self.on_member_ready(seconds)

    def subscribe(
        self, key: str
    ) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[SessionEvent]]:
        return self.hub.subscribe(key)

    def pod_going(self, key: str, pod: str, *, reason: str = "") -> None:
        """The session's pod is deleted, terminating or lost with its node (reported as
        often as seen); `reason` says why, when it was not deleted on request."""
        if pod in self._announced:
            return
        self._announced.add(pod)
        self._died.setdefault(key, time.monotonic())
        self._emit(key, EventKind.POD_KILLED, pod, reason)

    def pod_gone(self, pod: str) -> None:
        """The pod no longer exists at all: nothing more will be said of it."""
        self._announced.discard(pod)

    def pod_added(self, key: str, pod: str) -> None:
        self._emit(key, EventKind.POD_REPLACED, pod)

    def pod_ready(self, key: str, pod: str) -> None:
        """The session's pod turned Ready (once per pod, or again once its node is back)."""
        self._announced.discard(pod)  # alive after all: its next death is news
        died = self._died.pop(key, None)
        if died is not None:
            self.metrics.replacement_seconds.observe(time.monotonic() - died)
        self._emit(key, EventKind.POD_READY, pod)

    def session_ended(self, key: str, reason: str, pod: str = "") -> None:
        if key in self.ended:
            return
        self.ended.add(key, reason)
        self._died.pop(key, None)
        self._emit(key, EventKind.SESSION_ENDED, pod, reason)

    def gateway_drain(self, key: str) -> None:
        """Someone asked for the session's gateway to restart (seen by every replica)."""
        self._emit(key, EventKind.GATEWAY_DRAIN, "")

    def _emit(self, key: str, kind: EventKind, pod: str, reason: str = "") -> None:
        self.hub.emit(key, SessionEvent(kind=kind, pod=pod, at=self.clock(), reason=reason))
