"""What node autoscaling may do to the pool's pods, as the provisioner marks them.

A session's pod carries ``karpenter.sh/do-not-disrupt: "true"`` (Karpenter leaves
its node alone), from either claim path and after a kill; a warm pod never does.
A claim whose pod no node takes is shed with 429, never queued. Karpenter itself
runs in tests/autoscaling; here the marks and answers are checked on their own.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.support.polling import wait_for
from tests.support.servers import new_session

from .rig import BOTH_MODES, ECHO_TEMPLATE, Rig
from .test_backend import ASSIGNED, is_ready, pods, replicasets, warm_members

DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"


def protected(pod: Any) -> bool:
    return (pod.metadata.annotations or {}).get(DO_NOT_DISRUPT) == "true"


def session_pods(api: client.ApiClient, namespace: str) -> list[Any]:
    slots = [rs.metadata.name for rs in replicasets(api, namespace, ASSIGNED)]
    return [p for slot in slots for p in pods(api, namespace, f"slot={slot}")]


def warm_pods(api: client.ApiClient, namespace: str) -> list[Any]:
    slots = [member.metadata.name for member in warm_members(api, namespace)]
    return [p for slot in slots for p in pods(api, namespace, f"slot={slot}")]


@BOTH_MODES
def test_claimed_pods_are_protected_and_warm_pods_are_not(rig: Rig, api: client.ApiClient) -> None:
    server = rig.start(POOL_SIZE="3")
    server.wait_pool(3)
    assert not any(protected(p) for p in warm_pods(api, rig.namespace))
    session = new_session(server)
    assert session["warm"] is True
    core = client.CoreV1Api(api)
    wait_for(
        "the claimed pod to be marked",  # just after the answer, off the claim's path
        lambda: protected(core.read_namespaced_pod(session["pod"]["name"], rig.namespace)),
    )
    (rs,) = replicasets(api, rig.namespace, ASSIGNED)
    template_annotations = rs.spec.template.metadata.annotations or {}
    assert template_annotations.get(DO_NOT_DISRUPT) == "true"

    killed = httpx.delete(server.url + f"/session/{session['session_id']}/pod")
    assert killed.status_code == 202
    replacement = wait_for(
        "the replacement pod",
        lambda: [
            p
            for p in session_pods(api, rig.namespace)
            if p.metadata.name != session["pod"]["name"] and is_ready(p)
        ],
    )[0]
    assert protected(replacement)
    server.wait_pool(3)
    assert not any(protected(p) for p in warm_pods(api, rig.namespace))


@BOTH_MODES
async def test_cold_claims_start_protected_pods(rig: Rig, api: client.ApiClient) -> None:
    server = rig.start(POOL_SIZE="1", CLAIM_TIMEOUT="20")
    server.wait_pool(1)
    async with server.aclient() as http:
        replies = await asyncio.gather(*(http.post("/session") for _ in range(4)))
    assert [r.status_code for r in replies] == [201] * 4, [r.text for r in replies]
    assert any(not r.json()["warm"] for r in replies)  # more claims at once than warm pods
    claimed = {r.json()["pod"]["name"] for r in replies}
    found = {p.metadata.name: p for p in session_pods(api, rig.namespace)}
    assert claimed <= found.keys()
    assert all(protected(found[name]) for name in claimed)


# ReplicaSet members only: SESSION_END=recycle is refused with POOL_MEMBERS=pods.
@pytest.mark.parametrize("rig", ["replicasets"], indirect=True)
def test_a_recycled_member_is_warm_again_unprotected(rig: Rig, api: client.ApiClient) -> None:
    # The recycled member must be the pool's only one, else it is trimmed as excess.
    # One start a quarter hour, but the claim gives one back (the refill follows
    # demand): that refill's member is deleted here, and nothing replaces it.
    server = rig.start(POOL_SIZE="1", SESSION_END="recycle", REFILL_PER_SECOND="0.001")
    server.wait_pool(1)
    session = new_session(server)
    (rs,) = replicasets(api, rig.namespace, ASSIGNED)
    (refilled,) = wait_for("the claim's refill", lambda: warm_members(api, rig.namespace))
    apps = client.AppsV1Api(api)
    apps.delete_namespaced_replica_set(refilled.metadata.name, rig.namespace)
    assert httpx.delete(server.url + f"/session/{session['session_id']}").status_code == 204
    fresh = wait_for(
        "a fresh warm pod in the recycled ReplicaSet",
        lambda: [
            p
            for p in pods(api, rig.namespace, f"slot={rs.metadata.name}")
            if p.metadata.name != session["pod"]["name"] and is_ready(p)
        ],
    )
    assert not protected(fresh[0])


def _unschedulable_rig(rig: Rig) -> None:
    """Echo pods that no node takes (as when node autoscaling is at its limit)."""
    template = copy.deepcopy(ECHO_TEMPLATE)
    template["spec"]["nodeSelector"] = {"pingpod.dev/no-such-node": "true"}
    rig.template.write_text(json.dumps(template))


@BOTH_MODES
def test_a_claim_whose_pod_finds_no_node_is_shed(rig: Rig, api: client.ApiClient) -> None:
    _unschedulable_rig(rig)
    # The claim's own budget runs out first: 429 pool_empty, retry in a second.
    server = rig.start(POOL_SIZE="1", CLAIM_TIMEOUT="1", COLD_START_TIMEOUT="20")
    shed = httpx.post(server.url + "/session", timeout=30)
    assert shed.status_code == 429, shed.text
    assert shed.json()["error"] == "pool_empty"
    assert shed.headers["Retry-After"] == "1"
    # The pod's start time runs out first: still capacity, not a failure (no 503).
    other = rig.start(POOL_SIZE="1", CLAIM_TIMEOUT="20", COLD_START_TIMEOUT="1")
    full = httpx.post(other.url + "/session", timeout=30)
    assert full.status_code == 429, full.text
    assert full.json()["error"] == "at_capacity"
    assert full.headers["Retry-After"] == "10"
    # Neither left a claim behind: the pool's warm member is all there is.
    wait_for("no assigned ReplicaSet", lambda: not replicasets(api, rig.namespace, ASSIGNED))
