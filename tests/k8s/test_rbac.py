"""The provisioner's Role and its node reader (infra/rbac.py) against the real
RBAC authorizer: what the backend needs is allowed (the backend tests run
under it), and nothing else is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from infra.rbac import NODE_RULES, PROVISIONER_RULES, SERVICE_ACCOUNT_NAME
from scripts.controlplane import ControlPlane

from .rig import grant_provisioner_role

pytestmark = pytest.mark.k8s

ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]


@pytest.fixture
def provisioner_api(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> Iterator[client.ApiClient]:
    grant_provisioner_role(api, namespace)
    token = control_plane.service_account_token(namespace, SERVICE_ACCOUNT_NAME, create=True)
    with control_plane.api_client(control_plane.kubeconfig_for_token(token, namespace)) as sa:
        yield sa


def allowed(api: client.ApiClient, namespace: str, group: str, resource: str, verb: str) -> bool:
    review: Any = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": namespace,
                "group": group,
                "resource": resource,
                "verb": verb,
            }
        },
    }
    answer = client.AuthorizationV1Api(api).create_self_subject_access_review(review)
    assert answer.status is not None
    return bool(answer.status.allowed)


def test_exactly_the_listed_verbs_are_allowed(
    provisioner_api: client.ApiClient, namespace: str
) -> None:
    for rule in PROVISIONER_RULES:
        group, resource = rule["apiGroups"][0], rule["resources"][0]
        for verb in ALL_VERBS:
            expected = verb in rule["verbs"]
            got = allowed(provisioner_api, namespace, group, resource, verb)
            assert got == expected, f"{verb} {group}/{resource}: allowed={got}"


def test_pool_members_pods_adds_pod_create_only(
    control_plane: ControlPlane, api: client.ApiClient, namespace: str
) -> None:
    grant_provisioner_role(api, namespace, "pods")
    token = control_plane.service_account_token(namespace, SERVICE_ACCOUNT_NAME, create=True)
    with control_plane.api_client(control_plane.kubeconfig_for_token(token, namespace)) as sa:
        (pods,) = (r for r in PROVISIONER_RULES if r["resources"] == ["pods"])
        for verb in ALL_VERBS:
            expected = verb in pods["verbs"] or verb == "create"
            assert allowed(sa, namespace, "", "pods", verb) == expected, verb
        assert not allowed(sa, namespace, "", "pods/exec", "create")


def test_nodes_are_read_only_and_nothing_else_cluster_wide(
    provisioner_api: client.ApiClient,
) -> None:
    # Cluster-scoped: the review names no namespace.
    (rule,) = NODE_RULES
    for verb in ALL_VERBS:
        expected = verb in rule["verbs"]
        assert allowed(provisioner_api, "", "", "nodes", verb) == expected, verb
    assert rule["verbs"] == ["list", "watch"]
    for verb in ALL_VERBS:
        for group, resource in [
            ("", "nodes/status"),
            ("", "nodes/proxy"),
            ("", "namespaces"),
            ("", "persistentvolumes"),
            ("", "pods"),  # in every namespace
            ("rbac.authorization.k8s.io", "clusterroles"),
            ("karpenter.sh", "nodeclaims"),
        ]:
            assert not allowed(provisioner_api, "", group, resource, verb), (verb, resource)


@pytest.mark.parametrize(
    ("group", "resource"),
    [
        ("", "secrets"),
        ("", "configmaps"),
        ("", "services"),
        ("", "pods/exec"),
        ("apps", "deployments"),
        ("apps", "replicasets/scale"),
        ("batch", "jobs"),
        ("rbac.authorization.k8s.io", "roles"),
    ],
)
def test_nothing_else_in_the_namespace(
    provisioner_api: client.ApiClient, namespace: str, group: str, resource: str
) -> None:
    for verb in ALL_VERBS:
        assert not allowed(provisioner_api, namespace, group, resource, verb), (verb, resource)


def status_of(call: Any, *args: Any, **kwargs: Any) -> int:
    with pytest.raises(ApiException) as info:
        call(*args, **kwargs)
    return int(info.value.status or 0)


def test_the_token_is_refused_for_real(
    provisioner_api: client.ApiClient, api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(provisioner_api)
    apps = client.AppsV1Api(provisioner_api)
    assert status_of(core.list_namespaced_secret, namespace) == 403
    assert status_of(core.read_namespaced_secret, "any", namespace) == 403
    assert status_of(core.read_node, "kwok-node-0") == 403
    assert status_of(core.patch_node, "kwok-node-0", {"metadata": {"labels": {"x": "y"}}}) == 403
    assert status_of(core.list_namespace) == 403
    assert status_of(core.list_pod_for_all_namespaces) == 403
    assert status_of(core.delete_collection_namespaced_pod, namespace) == 403
    pod: Any = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sneaky"},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/x:1"}]},
    }
    assert status_of(core.create_namespaced_pod, namespace, pod) == 403
    # Another namespace is out of reach even for what the Role allows here.
    other = f"{namespace}-other"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=other))
    )
    try:
        assert status_of(apps.list_namespaced_replica_set, other) == 403
        assert status_of(core.list_namespaced_pod, other) == 403
    finally:
        client.CoreV1Api(api).delete_namespace(other)
    # And what it allows works with the same token.
    assert apps.list_namespaced_replica_set(namespace).items == []
    nodes = {n.metadata.name for n in core.list_node().items if n.metadata is not None}
    assert {"kwok-node-0", "kwok-node-1"} <= nodes
