"""Session events derived from watch changes, without a cluster."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.provisioner.backends.base import MemberState
from services.provisioner.backends.events import EventKind, SessionEvents
from services.provisioner.backends.kubernetes import objects as ko
from services.provisioner.backends.kubernetes import podview
from services.provisioner.backends.kubernetes.cache import WatchCache
from services.provisioner.backends.kubernetes.view import PoolView
from services.provisioner.errors import SessionNotFound
from services.provisioner.metrics import Metrics

KEY = "ab" * 20
TEMPLATE: dict[str, Any] = {"spec": {"containers": [{"name": "echo", "image": "echo:1"}]}}


def pod(name: str, slot: str, *, ready: bool, deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {"slot": slot}}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status = "True" if ready else "False"
    return {
        "metadata": metadata,
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": status}]},
    }


def assigned(name: str) -> dict[str, Any]:
    session = ko.assignment(KEY, now=1.0, expires_at=100.0)
    return ko.pool_replicaset(TEMPLATE, name=name, session=session)


def add(view: PoolView, kind: str, obj: dict[str, Any], *, store: dict[str, Any]) -> None:
    previous = store.get(obj["metadata"]["name"])
    store[obj["metadata"]["name"]] = obj
    handler = view.on_pod if store is view.pod_store else view.on_replicaset
    handler(kind, obj, previous)


async def test_kill_replace_ready_then_end() -> None:
    view = PoolView(SessionEvents(Metrics(), clock=lambda: 5.0))
    async with view.events.subscribe(KEY) as events:
        add(view, "ADDED", assigned("echo-a"), store=view.replicaset_store)
        first = pod("echo-a-1", "echo-a", ready=True)
        add(view, "ADDED", first, store=view.pod_store)
        assert view.find(KEY) is view.replicaset_store["echo-a"]
        current = view.current_pod("echo-a")
        assert current is not None
        assert ko.name_of(current) == "echo-a-1"
        events.get_nowait()  # the first pod was "added" too
        events.get_nowait()  # and became Ready

        add(
            view,
            "MODIFIED",
            pod("echo-a-1", "echo-a", ready=True, deleting=True),
            store=view.pod_store,
        )
        add(view, "ADDED", pod("echo-a-2", "echo-a", ready=False), store=view.pod_store)
        view.pod_store.pop("echo-a-1")
        view.on_pod("DELETED", first, first)  # deleted after being announced: no second event
        add(view, "MODIFIED", pod("echo-a-2", "echo-a", ready=True), store=view.pod_store)
        seen = [(e.kind, e.pod) for e in (events.get_nowait() for _ in range(3))]
        assert seen == [
            (EventKind.POD_KILLED, "echo-a-1"),
            (EventKind.POD_REPLACED, "echo-a-2"),
            (EventKind.POD_READY, "echo-a-2"),
        ]
        assert events.empty()

        rs = view.replicaset_store.pop("echo-a")
        rs["metadata"]["annotations"][ko.END_REASON] = "idle"
        view.on_replicaset("DELETED", rs, rs)
        ended = events.get_nowait()
        assert (ended.kind, ended.reason) == (EventKind.SESSION_ENDED, "idle")
    assert view.find(KEY) is None
    with pytest.raises(SessionNotFound) as info:
        view.events.ended.check(KEY)
    assert info.value.reason == "idle"


def test_warm_lists_unassigned_with_readiness() -> None:
    view = PoolView(SessionEvents(Metrics()))
    status = {"readyReplicas": 1, "observedGeneration": 1}
    for name, ready in (("echo-w1", True), ("echo-w2", False), ("echo-w3", True)):
        rs = ko.pool_replicaset(TEMPLATE, name=name)
        rs["metadata"]["generation"] = 1
        if name != "echo-w3":  # its pod is Ready, but the controller has not said so yet
            rs["status"] = status
        add(view, "ADDED", rs, store=view.replicaset_store)
        add(view, "ADDED", pod(f"{name}-x", name, ready=ready), store=view.pod_store)
    add(view, "ADDED", assigned("echo-s"), store=view.replicaset_store)
    assert sorted((ko.name_of(rs), ready) for rs, ready in view.warm()) == [
        ("echo-w1", True),
        ("echo-w2", False),
        ("echo-w3", False),
    ]
    assert view.assigned() == 1
    assert [s.key for s in view.sessions()] == [KEY]


def test_cache_keeps_our_own_writes_and_deletes_over_a_lagging_watch() -> None:
    changes: list[tuple[str, str]] = []
    loop = asyncio.new_event_loop()  # not run: `_apply` is what the watch thread hands it
    cache = WatchCache(
        kind="replicasets",
        list_fn=lambda *args, **kwargs: None,
        namespace="ns",
        label_selector="",
        loop=loop,
        on_change=lambda kind, obj, previous: changes.append((kind, version(obj))),
        on_sync=lambda: None,
    )

    def rs(rv: str, **annotations: str) -> dict[str, Any]:
        return {"metadata": {"name": "echo-a", "resourceVersion": rv, "annotations": annotations}}

    def version(obj: dict[str, Any]) -> str:
        return obj["metadata"]["resourceVersion"]

    try:
        cache._apply("ADDED", rs("4"))
        cache.put(rs("6", **{ko.END_REASON: "idle"}))  # our write, ahead of the watch
        cache._apply("MODIFIED", rs("5"))  # the watch catching up: older, ignored
        assert ko.annotation(cache.objects["echo-a"], ko.END_REASON) == "idle"
        cache.forget("echo-a")  # our delete
        assert "echo-a" not in cache.objects
        cache._apply("MODIFIED", rs("6"))  # late events of what we deleted
        cache._apply("DELETED", rs("7"))
        assert "echo-a" not in cache.objects
        cache._apply("ADDED", rs("8"))  # the name is free again once the watch saw it go
        assert changes == [
            ("ADDED", "4"),
            ("MODIFIED", "6"),
            ("DELETED", "6"),  # the reason is in what the view is told
            ("ADDED", "8"),
        ]
    finally:
        loop.close()


def on_lost_node(name: str, slot: str) -> dict[str, Any]:
    """What the node lifecycle controller leaves of a Ready pod on a node gone silent."""
    lost = pod(name, slot, ready=False)
    lost["status"]["conditions"].append({"type": "ContainersReady", "status": "True"})
    return lost


async def test_a_pod_on_a_lost_node_is_announced_killed_once_then_replaced() -> None:
    view = PoolView(SessionEvents(Metrics(), clock=lambda: 5.0))
    async with view.events.subscribe(KEY) as events:
        add(view, "ADDED", assigned("echo-a"), store=view.replicaset_store)
        add(view, "ADDED", pod("echo-a-1", "echo-a", ready=True), store=view.pod_store)
        for _ in range(2):  # added, Ready
            events.get_nowait()

        add(view, "MODIFIED", on_lost_node("echo-a-1", "echo-a"), store=view.pod_store)
        killed = events.get_nowait()
        assert (killed.kind, killed.pod, killed.reason) == (
            EventKind.POD_KILLED,
            "echo-a-1",
            "node_lost",
        )
        # Not claimable, not the gateway's endpoint, shown as going on the pool grid.
        current = view.current_pod("echo-a")
        assert current is not None and not ko.pod_ready(current)
        tiles = podview.members(view.replicaset_store, view.pod_store)
        assert [(t.pod, t.state) for t in tiles] == [("echo-a-1", MemberState.TERMINATING)]

        # Its eviction later: said already, nothing more. Then the replacement.
        evicted = on_lost_node("echo-a-1", "echo-a")
        evicted["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:30Z"
        add(view, "MODIFIED", evicted, store=view.pod_store)
        add(view, "ADDED", pod("echo-a-2", "echo-a", ready=False), store=view.pod_store)
        add(view, "MODIFIED", pod("echo-a-2", "echo-a", ready=True), store=view.pod_store)
        seen = [(e.kind, e.pod, e.reason) for e in (events.get_nowait() for _ in range(2))]
        assert seen == [
            (EventKind.POD_REPLACED, "echo-a-2", ""),
            (EventKind.POD_READY, "echo-a-2", ""),
        ]
        assert events.empty()


async def test_a_pod_whose_node_comes_back_is_ready_again_and_may_die_again() -> None:
    view = PoolView(SessionEvents(Metrics(), clock=lambda: 5.0))
    async with view.events.subscribe(KEY) as events:
        add(view, "ADDED", assigned("echo-a"), store=view.replicaset_store)
        add(view, "ADDED", pod("echo-a-1", "echo-a", ready=True), store=view.pod_store)
        for _ in range(2):  # added, Ready
            events.get_nowait()
        add(view, "MODIFIED", on_lost_node("echo-a-1", "echo-a"), store=view.pod_store)
        add(view, "MODIFIED", on_lost_node("echo-a-1", "echo-a"), store=view.pod_store)
        add(view, "MODIFIED", pod("echo-a-1", "echo-a", ready=True), store=view.pod_store)
        add(
            view,
            "MODIFIED",
            pod("echo-a-1", "echo-a", ready=True, deleting=True),
            store=view.pod_store,
        )
        seen = [(e.kind, e.reason) for e in (events.get_nowait() for _ in range(3))]
        assert seen == [
            (EventKind.POD_KILLED, "node_lost"),
            (EventKind.POD_READY, ""),  # the gateway reconnects to it
            (EventKind.POD_KILLED, ""),  # and a kill later is news again
        ]
        assert events.empty()


def bare_pod(name: str, *, ready: bool, state: str = ko.WARM) -> dict[str, Any]:
    made = ko.warm_pod(TEMPLATE, name=name)
    made["metadata"]["labels"][ko.STATE_LABEL] = state
    made["status"] = pod(name, name, ready=ready)["status"]
    return made


def test_bare_warm_pods_are_members_until_a_replicaset_of_their_name_comes() -> None:
    view = PoolView(SessionEvents(Metrics()))
    add(view, "ADDED", bare_pod("echo-p1", ready=True), store=view.pod_store)
    add(view, "ADDED", bare_pod("echo-p2", ready=False), store=view.pod_store)
    owned = bare_pod("echo-p3", ready=True)  # a controller's pod is never a bare member
    owned["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "controller": True}]
    add(view, "ADDED", owned, store=view.pod_store)
    assert sorted((ko.name_of(p), ready) for p, ready in view.warm()) == [
        ("echo-p1", True),
        ("echo-p2", False),
    ]
    assert all(ko.is_pod(p) for p, _ in view.warm())
    states = {m.pod: m.state for m in podview.members(view.replicaset_store, view.pod_store)}
    assert states == {
        "echo-p1": MemberState.WARM,
        "echo-p2": MemberState.STARTING,
        "echo-p3": MemberState.TERMINATING,  # its ReplicaSet is gone
    }

    # Claimed: the pod says so, and until its ReplicaSet comes it is a stray.
    add(view, "MODIFIED", bare_pod("echo-p1", ready=True, state=ko.ASSIGNED), store=view.pod_store)
    assert [ko.name_of(p) for p, _ in view.warm()] == ["echo-p2"]
    assert view.strays() == ["echo-p1"]
    states = {m.pod: m.state for m in podview.members(view.replicaset_store, view.pod_store)}
    assert states["echo-p1"] == MemberState.ASSIGNED
    add(view, "ADDED", assigned("echo-p1"), store=view.replicaset_store)
    assert view.strays() == []
    assert view.find(KEY) is view.replicaset_store["echo-p1"]
    current = view.current_pod("echo-p1")
    assert current is not None
    assert ko.name_of(current) == "echo-p1"
