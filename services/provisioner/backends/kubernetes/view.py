"""What the watch caches say about the pool, and what their changes mean.

The caches fill `replicaset_store` and `pod_store` (on the event loop); this
keeps the indexes the driver reads (session -> ReplicaSet, slot -> pods) and
reports what it sees of session pods to `SessionEvents`: a pod deleted,
terminating or on a lost node, a new pod in the ReplicaSet, that pod Ready,
the ReplicaSet gone. Every replica sees the same changes in the same watch,
whichever replica made them.
"""

from __future__ import annotations

import asyncio
import time

from services.common.wire import NODE_LOST
from services.provisioner.backends.base import PodInfo, SessionInfo
from services.provisioner.backends.events import SessionEvents
from services.provisioner.backends.kubernetes import objects as ko
from services.provisioner.pool import SessionTimes
from services.provisioner.sessions import EndReason

Obj = ko.Obj


class PoolView:
    def __init__(self, events: SessionEvents) -> None:
        self.events = events
        self.replicaset_store: dict[str, Obj] = {}
        self.pod_store: dict[str, Obj] = {}
        self.node_store: dict[str, Obj] = {}  # every node of the cluster (the node strip)
        self.changed = asyncio.Event()
        self._by_session: dict[str, str] = {}
        self._pods_by_slot: dict[str, set[str]] = {}
        # For the adaptive target: changes after the first list are news, not history.
        self.counting = False
        self._new_members: dict[str, float] = {}  # warm slot -> monotonic time first seen
        # Sessions this replica is ending, by ReplicaSet: their pods' deletion is the end
        # itself, not a kill (the pod watch may show it before the ReplicaSet watch does).
        self.ending: set[str] = set()

    # reads

    def replicasets(self) -> list[Obj]:
        return [rs for rs in self.replicaset_store.values() if not ko.terminating(rs)]

    def _in_state(self, state: str) -> list[Obj]:
        return [rs for rs in self.replicasets() if ko.labels(rs).get(ko.STATE_LABEL) == state]

    def pods(self, slot: str) -> list[Obj]:
        """The member's pods, its retired ones (a session's, before recycling) excepted."""
        names = self._pods_by_slot.get(slot, set())
        rs = self.replicaset_store.get(slot)
        retired = ko.retired_pods(rs) if rs else set()
        return [self.pod_store[n] for n in names - retired if n in self.pod_store]

    def current_pod(self, slot: str) -> Obj | None:
        return ko.current_pod(self.pods(slot))

    def stale_retired(self) -> list[str]:
        """Retired pods that are not terminating: their delete did not happen (say, the
        replica that recycled the member died between its patch and its delete)."""
        stale = []
        for slot, names in self._pods_by_slot.items():
            rs = self.replicaset_store.get(slot)
            if rs is None:
                continue
            for name in ko.retired_pods(rs) & names:
                pod = self.pod_store.get(name)
                if pod is not None and not ko.terminating(pod):
                    stale.append(name)
        return stale

    def warm(self) -> list[tuple[Obj, bool]]:
        """Warm ReplicaSets and bare warm pods, each with whether its pod is Ready."""
        members = [(rs, self._ready(rs)) for rs in self._in_state(ko.WARM)]
        return members + [(pod, ko.pod_ready(pod)) for pod in self._bare_pods(ko.WARM)]

    def _bare_pods(self, state: str) -> list[Obj]:
        """Pods no controller owns, in `state`, that are no ReplicaSet's (POOL_MEMBERS=pods)."""
        return [
            pod
            for name, pod in self.pod_store.items()
            if ko.labels(pod).get(ko.STATE_LABEL) == state
            and ko.bare(pod)
            and not ko.terminating(pod)
            and name not in self.replicaset_store
        ]

    def strays(self) -> list[str]:
        """Claimed bare pods with no ReplicaSet: their claim's create did not happen."""
        return [ko.name_of(pod) for pod in self._bare_pods(ko.ASSIGNED)]

    def _ready(self, rs: Obj) -> bool:
        """Claimable: its pod is Ready, and so says the ReplicaSet's status. The controller
        writes that status just after the pod turns Ready; until the cache has it, a claim's
        resourceVersion precondition would fail against the status write, not a rival."""
        pod = self.current_pod(ko.name_of(rs))
        return pod is not None and ko.pod_ready(pod) and ko.replicaset_ready(rs)

    def assigned(self) -> int:
        return len(self._in_state(ko.ASSIGNED))

    def sessions(self) -> list[SessionTimes]:
        return [
            SessionTimes(
                key=ko.labels(rs)[ko.SESSION_LABEL],
                expires_at=ko.annotation_float(rs, ko.EXPIRES_AT),
                last_active=ko.annotation_float(rs, ko.LAST_ACTIVE),
            )
            for rs in self._in_state(ko.ASSIGNED)
            if ko.labels(rs).get(ko.SESSION_LABEL)
        ]

    def find(self, key: str) -> Obj | None:
        """The session's ReplicaSet in the cache."""
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

    def on_node(self, kind: str, node: Obj, previous: Obj | None) -> None:
        """A node came, changed or went: only the pool feed's node strip cares."""
        self.notify()

    def on_replicaset(self, kind: str, rs: Obj, previous: Obj | None) -> None:
        name = ko.name_of(rs)
        key = ko.labels(rs).get(ko.SESSION_LABEL)
        if kind == "DELETED" or not key:
            self.ending.discard(name)
        if kind == "DELETED":
            self._new_members.pop(name, None)
            if key:
                pod = self.current_pod(name)
                self._ended(key, name, rs, ko.name_of(pod) if pod else "")
        else:
            was = ko.labels(previous).get(ko.SESSION_LABEL) if previous else None
            if was and was != key:  # recycled: the session ended, the member is warm again
                self._ended(was, name, rs, min(ko.retired_pods(rs), default=""))
            if key:
                if self.counting and key not in self._by_session:
                    self.events.claimed()
                self._by_session[key] = name
            elif kind == "ADDED" and self.counting:
                self._new_members[name] = time.monotonic()
        self.notify()

    def _ended(self, key: str, name: str, rs: Obj, pod: str) -> None:
        if self._by_session.get(key) != name:
            return
        del self._by_session[key]
        reason = ko.annotation(rs, ko.END_REASON) or EndReason.DELETED
        self.events.session_ended(key, reason, pod)

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
        if key and slot not in self.ending:
            self._session_pod(key, kind, pod, previous)
        if kind == "ADDED" and self.counting and ko.labels(pod).get(ko.STATE_LABEL) == ko.WARM:
            self._new_members[slot] = time.monotonic()  # a bare warm pod: a new member
        self._time_new_member(slot, kind, pod)
        if kind == "DELETED":
            self.events.pod_gone(name)
        self.notify()

    def _time_new_member(self, slot: str, kind: str, pod: Obj) -> None:
        """Time-to-Ready of a warm member seen created: from its ReplicaSet (or bare
        pod) to a Ready pod."""
        asked = self._new_members.get(slot)
        if asked is None or not (kind == "DELETED" or ko.pod_ready(pod)):
            return
        del self._new_members[slot]
        if kind != "DELETED":
            self.events.member_ready(time.monotonic() - asked)

    def _session_pod(self, key: str, kind: str, pod: Obj, previous: Obj | None) -> None:
        name = ko.name_of(pod)
        # A pod on a lost node is as good as gone: say so before its eviction.
        lost = ko.node_lost(pod)
        if kind == "DELETED" or ko.terminating(pod) or lost:
            self.events.pod_going(key, name, reason=NODE_LOST if lost else "")
        elif kind == "ADDED":
            self.events.pod_added(key, name)
        if ko.pod_ready(pod) and not (previous is not None and ko.pod_ready(previous)):
            self.events.pod_ready(key, name)
