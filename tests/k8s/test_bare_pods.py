"""POOL_MEMBERS=pods on the test control plane: what only that design does (the
contract, kills and races run in both modes elsewhere). A claimed warm pod is
adopted by the session's ReplicaSet of the same name, with no second pod, and
marked the session's; a claimed pod that no ReplicaSet holds is swept by the
Lease holder."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes import client

from services.provisioner.backends.kubernetes import objects as ko
from tests.support.polling import wait_for
from tests.support.servers import new_session

from .rig import Rig
from .test_backend import ASSIGNED, pods, replicasets, warm_members

pytestmark = pytest.mark.parametrize("rig", ["pods"], indirect=True)


def test_a_claimed_warm_pod_is_adopted_by_its_session_s_replicaset(
    rig: Rig, api: client.ApiClient
) -> None:
    server = rig.start(POOL_SIZE="2")
    server.wait_pool(2)
    warm = {p.metadata.name for p in warm_members(api, rig.namespace)}
    assert len(warm) == 2
    assert not replicasets(api, rig.namespace, "app.kubernetes.io/name=echo")
    session = new_session(server)
    assert session["warm"] is True
    name = session["pod"]["name"]
    assert name in warm
    (rs,) = replicasets(api, rig.namespace, ASSIGNED)
    assert rs.metadata.name == name
    assert rs.spec.selector.match_labels == {"slot": name}

    def owner() -> str:
        refs = client.CoreV1Api(api).read_namespaced_pod(name, rig.namespace).metadata
        assert refs is not None
        owners = [r.name for r in refs.owner_references or [] if r.controller]
        return owners[0] if owners else ""

    wait_for("the ReplicaSet to adopt the claimed pod", lambda: owner() == name)
    assert [p.metadata.name for p in pods(api, rig.namespace, f"slot={name}")] == [name]

    def marked() -> bool:  # just after the answer: the session's, and not to be disrupted
        meta = client.CoreV1Api(api).read_namespaced_pod(name, rig.namespace).metadata
        assert meta is not None
        labels, notes = meta.labels or {}, meta.annotations or {}
        return labels.get(ko.STATE_LABEL) == ko.ASSIGNED and notes.get(ko.DO_NOT_DISRUPT) == "true"

    wait_for("the claimed pod to be marked the session's", marked)


def test_a_claimed_pod_without_a_replicaset_is_swept(rig: Rig, api: client.ApiClient) -> None:
    template: dict[str, Any] = json.loads(rig.template.read_text())
    # The client accepts API-shaped dicts as bodies; its stubs only name the models.
    stray: Any = ko.warm_pod(copy.deepcopy(template), name="echo-straystray")
    # As a claimed pod whose session ended before its ReplicaSet adopted it, and whose
    # own delete never came (the ending replica died between the two).
    stray["metadata"]["labels"] |= {ko.STATE_LABEL: ko.ASSIGNED, ko.SESSION_LABEL: "ab" * 20}
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(rig.namespace, stray)
    server = rig.start(POOL_SIZE="1")
    server.wait_pool(1)
    assert "echo-straystray" not in {p.metadata.name for p in warm_members(api, rig.namespace)}

    def swept() -> bool:
        found = pods(api, rig.namespace, "slot=echo-straystray")
        return not found or found[0].metadata.deletion_timestamp is not None

    wait_for("the Lease holder to delete the stray pod", swept, timeout=60)
    assert len(warm_members(api, rig.namespace)) == 1  # the pool itself untouched
