"""The Kubernetes backend against the real control plane.

Every provisioner here is a real process that authenticates with a
ServiceAccount token bound to the Role from infra/rbac.py, so these tests
also show that the Role is enough for everything the backend does.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
import yaml
from kubernetes import client
from websockets.asyncio.client import connect

from scripts.controlplane import ControlPlane
from scripts.controlplane import kubeconfig as kubeconfigs
from tests.support.polling import wait_for
from tests.support.servers import new_session
from tests.support.wsclient import until

from .rig import BOTH_MODES, Rig, TcpProxy

pytestmark = [pytest.mark.k8s, BOTH_MODES]

WARM = "pool.state=warm"
ASSIGNED = "pool.state=assigned"


def replicasets(api: client.ApiClient, namespace: str, selector: str) -> list[Any]:
    items = client.AppsV1Api(api).list_namespaced_replica_set(namespace, label_selector=selector)
    return [rs for rs in items.items if rs.metadata and rs.metadata.deletion_timestamp is None]


def pods(api: client.ApiClient, namespace: str, selector: str = "slot") -> list[Any]:
    return client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items


def warm_members(api: client.ApiClient, namespace: str) -> list[Any]:
    """Warm ReplicaSets, or (POOL_MEMBERS=pods) warm bare pods: the pool's free members."""
    bare = [p for p in pods(api, namespace, WARM) if not p.metadata.owner_references]
    live = [p for p in bare if p.metadata.deletion_timestamp is None]
    return replicasets(api, namespace, WARM) + live


def is_ready(pod: Any) -> bool:
    conditions = pod.status.conditions or []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    return pod.status.phase == "Running" and ready and pod.metadata.deletion_timestamp is None


def test_pool_fills_with_ready_members(rig: Rig, api: client.ApiClient) -> None:
    server = rig.start(POOL_SIZE="4")
    server.wait_pool(4)
    wait_for("4 warm members", lambda: len(warm_members(api, rig.namespace)) == 4)
    for member in warm_members(api, rig.namespace):
        if rig.members == "pods":  # a bare pod, its own slot, no controller yet
            assert member.metadata.labels["slot"] == member.metadata.name
            assert not member.metadata.owner_references
            owned = [member]
        else:
            assert member.spec.replicas == 1
            slot = member.spec.selector.match_labels["slot"]
            assert slot == member.metadata.name
            owned = pods(api, rig.namespace, f"slot={slot}")
        assert member.metadata.labels["app.kubernetes.io/name"] == "echo"
        assert len(owned) == 1
        assert is_ready(owned[0])
        assert owned[0].spec.node_name.startswith("kwok-")
        assert owned[0].spec.automount_service_account_token is False


def test_lowering_the_pool_size_trims_warm_members(rig: Rig, api: client.ApiClient) -> None:
    first = rig.start(POOL_SIZE="5")
    first.wait_pool(5)
    first.stop()
    rig.start(POOL_SIZE="2")
    wait_for(
        "the pool to shrink to 2 warm members",
        lambda: len(warm_members(api, rig.namespace)) <= 2,
    )
    assert len(warm_members(api, rig.namespace)) == 2  # the excess only, not below


async def test_two_replicas_never_hand_out_a_pod_twice(rig: Rig, api: client.ApiClient) -> None:
    env = {
        "POOL_SIZE": "12",
        "MAX_SESSIONS": "60",
        "WS_PER_IP": "100",
        "MAX_COLD_STARTS": "50",
        "CLAIM_TIMEOUT": "60",  # every claim waits for its pod here: uniqueness is the point
    }
    first, second = rig.start(**env), rig.start(**env)
    first.wait_pool(12)
    second.wait_pool(12)
    async with httpx.AsyncClient(timeout=60) as http:
        replies = await asyncio.gather(
            *(http.post((first if i % 2 else second).url + "/session") for i in range(50))
        )
    assert [r.status_code for r in replies] == [201] * 50, [r.text for r in replies][:3]
    bodies = [r.json() for r in replies]
    assert len({b["pod"]["name"] for b in bodies}) == 50
    assigned = replicasets(api, rig.namespace, ASSIGNED)
    assert len(assigned) == 50
    assert len({rs.metadata.labels["session"] for rs in assigned}) == 50
    # Racing claims met the resourceVersion precondition and moved on to other candidates.
    conflicts = 0.0
    for server in (first, second):
        for line in httpx.get(server.metrics_url).text.splitlines():
            if line.startswith('pingpod_rejections_total{reason="claim_conflict"}'):
                conflicts += float(line.split()[-1])
    assert conflicts > 0


async def test_kill_three_times_follows_the_replicaset(rig: Rig, api: client.ApiClient) -> None:
    server = rig.start()
    session = new_session(server)
    sid, pod = session["session_id"], session["pod"]["name"]
    async with connect(server.ws + session["ws_url"]) as ws:
        ready = await until(ws, lambda f: f.get("event") == "upstream_ready")
        assert ready["pod"] == pod
        for kill in range(1, 4):
            killed = httpx.delete(server.url + f"/session/{sid}/pod")
            assert killed.status_code == 202
            assert killed.json()["killed"] == pod
            ready = await until(
                ws, lambda f, old=pod: f.get("event") == "upstream_ready" and f["pod"] != old
            )
            pod = ready["pod"]
            status = httpx.get(server.url + f"/session/{sid}").json()
            assert status["pod"]["name"] == pod
            assert status["pod"]["ready"] is True
            assert status["replacements"] == kill
            owner = client.CoreV1Api(api).read_namespaced_pod(pod, rig.namespace).metadata
            assert owner is not None
            assert owner.owner_references is not None
            assert owner.owner_references[0].kind == "ReplicaSet"
            pong = await until(ws, lambda f: f.get("type") == "pong")
            assert pong["pod"] == "local-echo"  # the data path is live again


async def test_restart_loses_no_session(rig: Rig) -> None:
    first = rig.start()
    session = new_session(first)
    sid = session["session_id"]
    first.stop()
    second = rig.start()
    status = httpx.get(second.url + f"/session/{sid}")
    assert status.status_code == 200
    assert status.json()["pod"]["name"] == session["pod"]["name"]
    async with connect(second.ws + session["ws_url"]) as ws:
        ready = await until(ws, lambda f: f.get("event") == "upstream_ready")
        assert ready["pod"] == session["pod"]["name"]
    assert httpx.delete(second.url + f"/session/{sid}").status_code == 204


def test_idle_session_is_deleted_with_its_pod(rig: Rig, api: client.ApiClient) -> None:
    server = rig.start(SESSION_IDLE_TIMEOUT="2")
    session = new_session(server)
    slot = replicasets(api, rig.namespace, ASSIGNED)[0].metadata.name
    wait_for(
        "the idle session's ReplicaSet and pod to go",
        lambda: (
            not replicasets(api, rig.namespace, ASSIGNED)
            and not pods(api, rig.namespace, f"slot={slot}")
        ),
        timeout=20,
    )
    gone = httpx.get(server.url + f"/session/{session['session_id']}")
    assert gone.status_code == 404


async def test_lifetime_ends_an_active_session(rig: Rig, api: client.ApiClient) -> None:
    server = rig.start(SESSION_MAX_LIFETIME="4", SESSION_IDLE_TIMEOUT="60")
    session = new_session(server)
    async with connect(server.ws + session["ws_url"]) as ws:
        await until(ws, lambda f: f.get("event") == "session_expiring", timeout=10)
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(ws.recv(), 15)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 4408
    wait_for("no assigned ReplicaSet", lambda: not replicasets(api, rig.namespace, ASSIGNED))
    assert warm_members(api, rig.namespace)  # the pool lives on


def test_sessions_that_expired_while_no_provisioner_ran_are_reaped(
    rig: Rig, api: client.ApiClient
) -> None:
    first = rig.start(SESSION_MAX_LIFETIME="2")
    new_session(first)
    new_session(first)
    first.stop()
    expired = {rs.metadata.name for rs in replicasets(api, rig.namespace, ASSIGNED)}
    assert len(expired) == 2
    time.sleep(2.5)  # both expire while nothing runs
    rig.start(SESSION_MAX_LIFETIME="2")
    wait_for(
        "expired sessions to be reaped",
        lambda: (
            not replicasets(api, rig.namespace, ASSIGNED)
            and all(is_ready(p) for p in pods(api, rig.namespace))
        ),
        timeout=20,
    )
    left = replicasets(api, rig.namespace, "app.kubernetes.io/name=echo")
    assert not expired & {rs.metadata.name for rs in left}


def test_api_outage_gives_503_and_recovers(rig: Rig, control_plane: ControlPlane) -> None:
    proxy = TcpProxy(control_plane.ports["kube-apiserver"])
    proxy.start()
    token_config = json.loads(json.dumps(_read_yaml(rig.kubeconfig)))
    token = token_config["users"][0]["user"]["token"]
    via_proxy = kubeconfigs.write(
        rig.tmp / "proxy.kubeconfig",
        server=f"https://127.0.0.1:{proxy.port}",
        ca=control_plane.ca_file,
        user_name="provisioner",
        user=kubeconfigs.token_user(token),
        namespace=rig.namespace,
    )
    server = rig.start(KUBECONFIG=str(via_proxy))
    server.wait_pool(3)
    proxy.cut()
    wait_for(
        "/ready to report the outage",
        lambda: httpx.get(server.url + "/ready").status_code == 503,
    )
    refused = httpx.post(server.url + "/session")
    assert refused.status_code == 503
    assert refused.json()["error"] == "backend_unavailable"
    assert "Kubernetes" in refused.json()["detail"]
    proxy.start()
    wait_for(
        "/ready after the API returns",
        lambda: httpx.get(server.url + "/ready").status_code == 200,
        timeout=30,
    )
    assert httpx.post(server.url + "/session").status_code == 201


def _read_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())
