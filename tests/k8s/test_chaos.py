"""Chaos on the real control plane: a provisioner replica SIGKILLed under live
sessions, the API server stopped under live sessions, and, after each, no
orphan in the pool: every ReplicaSet is warm or a live session's, every pod
belongs to one of them, and every live session still has its ReplicaSet.

Clients behave like the page (tests/k8s/pinger.py): ping at 10 Hz once the
gateway says `upstream_ready`, reconnect on close or error, to the next
replica. The data path goes to a real local echo server (kwok pods have fake
IPs; see tests/k8s/rig.py)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from kubernetes import client

from scripts.controlplane import ControlPlane
from services.provisioner.sessions import session_key
from tests.support.polling import eventually
from tests.support.servers import new_session

from .pinger import Pinger
from .rig import Rig

pytestmark = pytest.mark.k8s

OUTAGE_SECONDS = 10.0


# -- the pool as the API server sees it ------------------------------------------------------


def live_objects(api: client.ApiClient, namespace: str) -> tuple[list[Any], list[Any]]:
    """The pool's ReplicaSets and pods that are not being deleted."""
    # Any: the client's models make every field optional.
    sets: Any = client.AppsV1Api(api).list_namespaced_replica_set(
        namespace, label_selector="app.kubernetes.io/name=echo"
    )
    pods: Any = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="slot")
    return (
        [rs for rs in sets.items if rs.metadata.deletion_timestamp is None],
        [pod for pod in pods.items if pod.metadata.deletion_timestamp is None],
    )


def orphans(api: client.ApiClient, namespace: str, live: set[str], pool_size: int) -> list[str]:
    """What does not belong: ReplicaSets neither warm nor a live session's, pods of no
    ReplicaSet but the bare warm ones (POOL_MEMBERS=pods), a ReplicaSet without exactly
    one pod, a live session without its ReplicaSet, a pool bigger than POOL_SIZE."""
    sets, pods = live_objects(api, namespace)
    problems: list[str] = []
    assigned: set[str] = set()
    warm = 0
    for rs in sets:
        labels = rs.metadata.labels or {}
        state, session = labels.get("pool.state"), labels.get("session")
        if state == "warm" and session is None:
            warm += 1
        elif state == "assigned" and session in live:
            assigned.add(session)
        else:
            problems.append(f"ReplicaSet {rs.metadata.name}: {state}, session {session}")
    names = {rs.metadata.name for rs in sets}
    bare = [
        pod
        for pod in pods
        if pod.metadata.labels["slot"] not in names
        and pod.metadata.labels.get("pool.state") == "warm"
        and not any(ref.controller for ref in pod.metadata.owner_references or [])
    ]
    warm += len(bare)
    per_set = Counter(pod.metadata.labels["slot"] for pod in pods if pod not in bare)
    problems += [
        f"{n} pods of no ReplicaSet ({slot})" for slot, n in per_set.items() if slot not in names
    ]
    problems += [f"ReplicaSet {name}: {per_set[name]} pods" for name in names if per_set[name] != 1]
    problems += [f"session {key[:12]} has no ReplicaSet" for key in live - assigned]
    if warm > pool_size:
        problems.append(f"{warm} warm members, more than POOL_SIZE {pool_size}")
    return problems


def assert_no_orphans(
    api: client.ApiClient, namespace: str, live: set[str], pool_size: int, timeout: float = 30
) -> None:
    """Once the controllers have settled (a replacement pod may be on its way)."""
    deadline = time.monotonic() + timeout
    while problems := orphans(api, namespace, live, pool_size):
        if time.monotonic() > deadline:
            pytest.fail(f"orphans in the pool after {timeout:.0f}s: {problems}")
        time.sleep(0.2)


def start_pinging(
    sessions: list[dict[str, Any]], replicas: list[str]
) -> tuple[list[Pinger], asyncio.Event, list[asyncio.Task[None]]]:
    pingers = [Pinger(s["session_id"], s["ws_url"], replicas) for s in sessions]
    stop = asyncio.Event()
    return pingers, stop, [asyncio.create_task(p.run(stop)) for p in pingers]


async def stop_pinging(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    stop.set()
    await asyncio.gather(*tasks)


# -- the tests ----------------------------------------------------------------------------------


async def test_sessions_survive_a_killed_replica(rig: Rig, api: client.ApiClient) -> None:
    pool = 10
    env = {
        "POOL_SIZE": str(pool),
        "WS_PER_IP": "100",
        "MAX_COLD_STARTS": "30",
        "CLAIM_TIMEOUT": "30",  # a claim that finds the pool empty waits: all 20 are needed
        "POOL_HEADROOM": "0",  # the pool stays at POOL_SIZE: the orphan check counts on it
    }
    a, b = rig.start(**env), rig.start(**env)
    a.wait_pool(pool)
    b.wait_pool(pool)
    sessions = [new_session(a if i % 2 else b) for i in range(20)]
    live = {session_key(s["session_id"]) for s in sessions}
    pingers, stop, tasks = start_pinging(sessions, [a.ws, b.ws])
    try:
        await eventually(
            lambda: all(p.pongs_via(a.ws) for p in pingers),
            "pongs through replica A on every session",
            timeout=30,
        )
        a.proc.kill()
        await asyncio.to_thread(a.proc.wait)
        killed = time.monotonic()
        await eventually(
            lambda: all(len(p.pongs_via(b.ws, killed)) >= 10 for p in pingers),
            "every session to ping through replica B",
            timeout=60,
        )
    finally:
        await stop_pinging(stop, tasks)

    for pinger in pingers:
        assert pinger.replica == b.ws, pinger.failures
        first = pinger.pongs_via(b.ws)[0].at
        # Once through B, no ping is lost (the last ones may still be on their way).
        assert pinger.lost(first, time.monotonic() - 1) == []
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as http:
        for session in sessions:
            status = await http.get(f"/session/{session['session_id']}")
            assert status.status_code == 200, status.text
            assert status.json()["pod"]["name"] == session["pod"]["name"]
    assert_no_orphans(api, rig.namespace, live, pool)

    async with httpx.AsyncClient(base_url=b.url, timeout=30) as http:
        for session in sessions:
            assert (await http.delete(f"/session/{session['session_id']}")).status_code == 204
    assert_no_orphans(api, rig.namespace, set(), pool)


async def test_api_server_outage_keeps_sessions_and_refuses_claims(
    rig: Rig, api: client.ApiClient, control_plane: ControlPlane
) -> None:
    pool = 4
    server = rig.start(POOL_SIZE=str(pool), WS_PER_IP="100", CLAIM_TIMEOUT="30", POOL_HEADROOM="0")
    server.wait_pool(pool)
    sessions = [new_session(server) for _ in range(10)]
    live = {session_key(s["session_id"]) for s in sessions}
    pingers, stop, tasks = start_pinging(sessions, [server.ws])
    refusals: list[httpx.Response] = []
    reads: list[httpx.Response] = []  # GET /session and DELETE /session/{id}/pod meanwhile
    try:
        await eventually(
            lambda: all(p.pongs for p in pingers), "pongs on every session", timeout=30
        )
        await asyncio.to_thread(control_plane.stop_component, "kube-apiserver", 0)
        down = time.monotonic()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
                while time.monotonic() - down < OUTAGE_SECONDS:
                    refusals.append(await http.post("/session"))
                    if len(refusals) == 2:
                        sid = sessions[1]["session_id"]
                        reads.append(await http.get(f"/session/{sid}"))
                        reads.append(await http.delete(f"/session/{sid}/pod"))
                    await asyncio.sleep(0.5)
        finally:
            up = time.monotonic()
            await asyncio.to_thread(control_plane.start_component, "kube-apiserver")
        await eventually(
            lambda: httpx.get(server.url + "/ready").status_code == 200,
            "the provisioner ready again (watch caches resynced)",
            timeout=60,
        )
        during = {p.session_id: len([x for x in p.pongs if down <= x.at <= up]) for p in pingers}
        lost = {p.session_id: p.lost(down, up - 1) for p in pingers}

        # New claims work again, and the caches follow the API once more: a kill made
        # now shows in GET /session as the ReplicaSet controller's replacement.
        fresh = new_session(server)
        live.add(session_key(fresh["session_id"]))
        victim = sessions[0]
        killed = httpx.delete(server.url + f"/session/{victim['session_id']}/pod")
        assert killed.status_code == 202, killed.text

        def replaced() -> bool:
            pod = httpx.get(server.url + f"/session/{victim['session_id']}").json()["pod"]
            return bool(pod) and pod["name"] != victim["pod"]["name"] and pod["ready"]

        # The controllers' own watches come back on client-go's back-off (up to 30 s
        # after a 10 s outage), so the replacement itself may take that long.
        await eventually(replaced, "the replacement pod, seen through the watch", timeout=90)
        after = time.monotonic()
        await eventually(
            lambda: all(p.pongs_via(server.ws, after) for p in pingers),
            "pongs on every session after the outage",
            timeout=30,
        )
    finally:
        await stop_pinging(stop, tasks)

    assert len(refusals) >= OUTAGE_SECONDS  # one claim every half second or so
    for response in refusals:
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["error"] == "backend_unavailable" and body["detail"], body
    # A session is still shown from the watch cache; a kill needs the API: 503.
    shown, kill = reads
    assert shown.status_code == 200, shown.text
    assert shown.json()["pod"]["name"] == sessions[1]["pod"]["name"]
    assert kill.status_code == 503 and kill.json()["error"] == "backend_unavailable", kill.text
    # The data path never needed the API: pongs all through the outage, none lost.
    assert all(count >= OUTAGE_SECONDS * 5 for count in during.values()), during
    assert all(not seqs for seqs in lost.values()), lost
    assert_no_orphans(api, rig.namespace, live, pool)
