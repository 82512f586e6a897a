"""What the watch caches say about the pool, and what their changes mean.

The caches fill `replicaset_store` and `pod_store` (on the event loop); this
keeps the indexes the backend reads (session -> ReplicaSet, slot -> pods) and
turns changes into session events: a session's pod deleted is `pod_killed`,
a new pod in its ReplicaSet is `pod_replaced`, that pod Ready is `pod_ready`,
the ReplicaSet gone is `session_ended`. Every replica derives the same events
from the same watch, whichever replica made the change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from services.provisioner.backends import kube_objects as ko
from services.provisioner.backends.base import (
    EndedSessions,
    EventHub,
    EventKind,
    PodInfo,
    SessionInfo,
)
from services.provisioner.metrics import Metrics
from services.provisioner.sessions import EndReason

Obj = ko.Obj


class PoolView:
    def __init__(self, *, metrics: Metrics, clock: Callable[[], float] = time.time) -> None:
        self.metrics = metrics
        self.clock = clock
        self.hub = EventHub()
        self.replicaset_store: dict[str, Obj] = {}
        self.pod_store: dict[str, Obj] = {}
        self.changed = asyncio.Event()
        self._by_session: dict[str, str] = {}
        self._pods_by_slot: dict[str, set[str]] = {}
        self.ended = EndedSessions()
        self._killed: dict[str, float] = {}  # slot -> monotonic time its pod died
        self._announced: set[str] = set()  # pods whose death was already published

    # reads

    def replicasets(self) -> list[Obj]:
        return [rs for rs in self.replicaset_store.values() if not ko.terminating(rs)]

    def count(self, state: str) -> int:
        return sum(1 for rs in self.replicasets() if ko.labels(rs).get(ko.STATE_LABEL) == state)

    def current_pod(self, slot: str) -> Obj | None:
        names = self._pods_by_slot.get(slot, set())
        return ko.current_pod([self.pod_store[n] for n in names if n in self.pod_store])

    def warm_ready(self) -> list[Obj]:
        warm = []
        for rs in self.replicasets():
            if ko.labels(rs).get(ko.STATE_LABEL) != ko.WARM:
                continue
            pod = self.current_pod(ko.name_of(rs))
            if pod is not None and ko.pod_ready(pod):
                warm.append(rs)
        return warm

    def find(self, key: str) -> Obj | None:
        """The session's ReplicaSet in the cache; SessionNotFound if it is known to have ended."""
        self.ended.check(key)
        name = self._by_session.get(key)
        return self.replicaset_store.get(name) if name else None

    def info(self, rs: Obj) -> SessionInfo:
        pod = self.current_pod(ko.name_of(rs))
        return SessionInfo(
            key=ko.labels(rs).get(ko.SESSION_LABEL, ""),
            pod=self.pod_info(pod) if pod else None,
            replacements=int(ko.annotation_float(rs, ko.REPLACEMENTS)),
            created_at=ko.annotation_float(rs, ko.CREATED_AT),
            expires_at=ko.annotation_float(rs, ko.EXPIRES_AT),
            last_active=ko.annotation_float(rs, ko.LAST_ACTIVE),
        )

    @staticmethod
    def pod_info(pod: Obj) -> PodInfo:
        return PodInfo(
            name=ko.name_of(pod),
            node=(pod.get("spec") or {}).get("nodeName") or "",
            started_at=ko.pod_started_at(pod),
            phase=(pod.get("status") or {}).get("phase") or "Pending",
            ready=ko.pod_ready(pod),
        )

    # changes

    def notify(self) -> None:
        """Wake everyone waiting for a change (`changed` is replaced each time)."""
        self.changed.set()
        self.changed = asyncio.Event()

    def on_replicaset(self, kind: str, rs: Obj, previous: Obj | None) -> None:
        key = ko.labels(rs).get(ko.SESSION_LABEL)
        if kind == "DELETED":
            if key and self._by_session.get(key) == ko.name_of(rs):
                del self._by_session[key]
                reason = ko.annotation(rs, ko.END_REASON) or EndReason.DELETED
                self.ended.add(key, reason)
                self._publish(key, EventKind.SESSION_ENDED, "", reason)
            self._killed.pop(ko.name_of(rs), None)
        elif key:
            self._by_session[key] = ko.name_of(rs)
        self.notify()

    def on_pod(self, kind: str, pod: Obj, previous: Obj | None) -> None:
        name = ko.name_of(pod)
        slot = ko.labels(pod).get(ko.SLOT_LABEL, "")
        names = self._pods_by_slot.setdefault(slot, set())
        if kind == "DELETED":
            names.discard(name)
            if not names:
                del self._pods_by_slot[slot]
        else:
            names.add(name)
        rs = self.replicaset_store.get(slot)
        key = ko.labels(rs).get(ko.SESSION_LABEL) if rs else None
        if key:
            self._session_pod_event(key, slot, kind, pod, previous)
        if kind == "DELETED":
            self._announced.discard(name)
        self.notify()

    def _session_pod_event(
        self, key: str, slot: str, kind: str, pod: Obj, previous: Obj | None
    ) -> None:
        name = ko.name_of(pod)
        dying = kind == "DELETED" or ko.terminating(pod)
        if dying and name not in self._announced:
            self._announced.add(name)
            self._killed.setdefault(slot, time.monotonic())
            self._publish(key, EventKind.POD_KILLED, name)
        elif kind == "ADDED" and not dying:
            self._publish(key, EventKind.POD_REPLACED, name)
        if ko.pod_ready(pod) and not (previous is not None and ko.pod_ready(previous)):
            died = self._killed.pop(slot, None)
            if died is not None:
                self.metrics.replacement_seconds.observe(time.monotonic() - died)
            self._publish(key, EventKind.POD_READY, name)

    def _publish(self, key: str, kind: EventKind, pod: str, reason: str = "") -> None:
        self.hub.emit(key, kind, pod, at=self.clock(), reason=reason)
