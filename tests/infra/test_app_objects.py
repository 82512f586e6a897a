"""The App's Kubernetes objects, in both stacks: RBAC, pods' security, template, policies."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.provisioner import TEMPLATE_HASH_ANNOTATION
from infra.rbac import NODE_RULES, POOL_MEMBERS, node_reader, provisioner_role, provisioner_rules
from infra.settings import AppSettings
from infra.workload import (
    APP_UID,
    QUOTA_MARGIN_PODS,
    TEMPLATE_FILE,
    quota_hard,
    restricted_container_security,
    restricted_pod_security,
)
from tests.infra.harness import StackRun, run_stack
from tests.infra.render import app_objects, echo_replicaset, echo_template


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in by_kind(objects, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, [o["metadata"]["name"] for o in found])
    return found[0]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in ("Deployment", "ReplicaSet"):
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_role_is_exactly_the_shared_rules(objects: list[dict[str, Any]]) -> None:
    role = one(objects, "Role")
    namespace = role["metadata"]["namespace"]
    assert role == {**provisioner_role(namespace), "metadata": role["metadata"]}
    assert role["rules"] == provisioner_rules(POOL_MEMBERS)


def test_the_one_cluster_scoped_grant_is_reading_nodes(objects: list[dict[str, Any]]) -> None:
    """The node strip's ClusterRole: list and watch nodes, bound to the provisioner only."""
    role = one(objects, "ClusterRole")
    binding = one(objects, "ClusterRoleBinding")
    namespace = one(objects, "Role")["metadata"]["namespace"]
    expected_role, expected_binding = node_reader(namespace)
    assert (
        role["rules"]
        == NODE_RULES
        == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]}]
    )
    assert "namespace" not in role["metadata"] and "namespace" not in binding["metadata"]
    assert role["metadata"]["name"] == expected_role["metadata"]["name"]
    assert binding["roleRef"] == expected_binding["roleRef"]
    assert binding["subjects"] == expected_binding["subjects"]


def test_role_has_no_wildcards_and_no_extra_powers(objects: list[dict[str, Any]]) -> None:
    for rule in one(objects, "Role")["rules"]:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule
        assert "resourceNames" not in rule
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])
        assert not {"secrets", "configmaps", "pods/exec", "roles", "rolebindings"} & set(
            rule["resources"]
        )
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in one(objects, "Role")["rules"]:
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                granted.setdefault((g, r), set()).update(rule["verbs"])
    assert granted == {
        ("apps", "replicasets"): {"list", "watch", "create", "patch", "delete"},
        # create: the Lease holder makes the warm pods (POOL_MEMBERS=pods)
        ("", "pods"): {"list", "watch", "create", "patch", "delete"},
        ("coordination.k8s.io", "leases"): {"get", "list", "create", "update", "patch", "delete"},
    }


def test_role_binding_binds_the_provisioner_account(objects: list[dict[str, Any]]) -> None:
    binding = one(objects, "RoleBinding")
    account = one(objects, "ServiceAccount")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": one(objects, "Role")["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]
    deployment = one(objects, "Deployment")
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    )


def test_every_container_non_root_restricted_with_resources(objects: list[dict[str, Any]]) -> None:
    specs = dict(pod_specs(objects))
    assert set(specs) == {"provisioner", "echo-example"}
    for name, spec in specs.items():
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, name
            assert security["runAsUser"] >= 10000, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}, (name, kind)
            assert container["livenessProbe"] and container["readinessProbe"], name


def test_security_contexts_are_the_shared_restricted_ones(objects: list[dict[str, Any]]) -> None:
    specs = dict(pod_specs(objects))
    provisioner, echo = specs["provisioner"], specs["echo-example"]
    assert provisioner["securityContext"] == {**restricted_pod_security(), "fsGroup": APP_UID}
    assert echo["securityContext"] == restricted_pod_security()
    for spec in (provisioner, echo):
        for container in spec["containers"]:
            assert container["securityContext"] == restricted_container_security()


def test_provisioner_deployment(stack_run: StackRun, objects: list[dict[str, Any]]) -> None:
    deployment = one(objects, "Deployment", "provisioner")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels == {
        "app.kubernetes.io/name": "provisioner",
        "app.kubernetes.io/part-of": "pingpod",
    }
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["ports"] == [
        {"name": "http", "containerPort": 8000, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ]
    keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    env = env_of(container)
    assert env["BACKEND"] == "kubernetes"
    assert env["NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["FORWARDED_ALLOW_IPS"] == "*"
    assert (env["PORT"], env["METRICS_PORT"]) == ("8000", "9090")
    assert env["ECHO_POD_TEMPLATE"] == "/etc/pingpod/echo-pod.json"
    for key in ("POOL_SIZE", "MAX_SESSIONS", "SESSION_IDLE_TIMEOUT", "SESSION_MAX_LIFETIME"):
        assert int(env[key]) > 0, key
    if stack_run.stack == "prod":
        assert deployment["spec"]["replicas"] == 2
        assert env["ALLOWED_ORIGINS"] == "https://pingpod.example.com"
    else:
        assert env["ALLOWED_ORIGINS"] == "http://localhost:8000,http://127.0.0.1:8000"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert (
        volumes[mounts["/etc/pingpod"]]["configMap"]["name"]
        == one(objects, "ConfigMap")["metadata"]["name"]
    )


def test_echo_pod_template(stack_run: StackRun, objects: list[dict[str, Any]]) -> None:
    template = echo_template(objects)
    assert template["metadata"]["labels"] == {
        "app.kubernetes.io/name": "echo",
        "app.kubernetes.io/part-of": "pingpod",
    }
    spec = template["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    (container,) = spec["containers"]
    assert container["image"] == stack_run.outputs["echoImage"]
    assert container["ports"] == [{"name": "ws", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
    env = env_of(container)
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    if stack_run.stack == "prod":
        assert spec["nodeSelector"] == {"kubernetes.io/arch": "arm64"}
    else:
        assert "nodeSelector" not in spec
    # Evicted 30 s (nodeLostSeconds) after its node is lost, not the API server's 300 s.
    # (prod's also tolerate the session nodes' taint: tests/infra/test_autoscaling.py.)
    assert [t for t in spec["tolerations"] if t["effect"] == "NoExecute"] == [
        {
            "key": f"node.kubernetes.io/{taint}",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 30,
        }
        for taint in ("not-ready", "unreachable")
    ]


@pytest.mark.parametrize("stack", ["prod", "local"])
def test_node_lost_seconds_sets_the_echo_pods_tolerations(stack: str) -> None:
    objects = app_objects(run_stack(stack, {"nodeLostSeconds": 12}))
    for spec in (
        echo_template(objects)["spec"],
        echo_replicaset(objects)["spec"]["template"]["spec"],
    ):
        seconds = {
            t["key"]: t["tolerationSeconds"]
            for t in spec["tolerations"]
            if t["effect"] == "NoExecute"
        }
        assert seconds == {"node.kubernetes.io/not-ready": 12, "node.kubernetes.io/unreachable": 12}


def test_no_node_selector_on_the_provisioner_by_default(objects: list[dict[str, Any]]) -> None:
    spec = one(objects, "Deployment", "provisioner")["spec"]["template"]["spec"]
    assert "nodeSelector" not in spec


def test_empty_node_selector_changes_nothing(stack_run: StackRun) -> None:
    # Set to {} explicitly, as `pulumi config set --path` leaves it after its last
    # entry is removed: the objects are those of the default, byte for byte.
    explicit = app_objects(run_stack(stack_run.stack, {"nodeSelector": {}}))
    assert explicit == app_objects(stack_run)
    assert one(explicit, "ConfigMap")["data"] == one(app_objects(stack_run), "ConfigMap")["data"]


@pytest.mark.parametrize("stack", ["prod", "local"])
def test_node_selector_pins_the_provisioner_and_echo_pods(stack: str) -> None:
    selector = {"pingpod.dev/node": "real", "disktype": "ssd"}
    objects = app_objects(run_stack(stack, {"nodeSelector": selector}))
    provisioner = one(objects, "Deployment", "provisioner")["spec"]["template"]["spec"]
    # The provisioner gets the stack's selector alone, never echoArm64Only's arch.
    assert provisioner["nodeSelector"] == selector
    # Echo pods: the selector, plus kubernetes.io/arch where echoArm64Only is true (prod).
    arch = {"kubernetes.io/arch": "arm64"} if stack == "prod" else {}
    echo = echo_template(objects)["spec"]
    assert echo["nodeSelector"] == {**selector, **arch}
    # And so does every pool member the provisioner makes from the template.
    replicaset = echo_replicaset(objects)
    assert replicaset["spec"]["template"]["spec"]["nodeSelector"] == {**selector, **arch}


def test_echo_template_change_rolls_the_provisioner(objects: list[dict[str, Any]]) -> None:
    configmap = one(objects, "ConfigMap")
    annotations = one(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    text = configmap["data"][TEMPLATE_FILE]
    assert annotations[TEMPLATE_HASH_ANNOTATION] == hashlib.sha256(text.encode()).hexdigest()[:16]
    json.loads(text)


def test_network_policies_admit_only_the_provisioner(objects: list[dict[str, Any]]) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(objects, "NetworkPolicy")}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    echo = policies["echo"]
    assert echo["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "echo"}}
    assert echo["policyTypes"] == ["Ingress", "Egress"]
    assert echo["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "provisioner"}}}],
            "ports": [{"port": 8080, "protocol": "TCP"}],
        }
    ]
    assert echo.get("egress", []) == []
    provisioner = {"matchLabels": {"app.kubernetes.io/name": "provisioner"}}
    # The public port from wherever the cluster routes it; nothing else from there.
    assert policies["provisioner"] == {
        "podSelector": provisioner,
        "policyTypes": ["Ingress"],
        "ingress": [{"ports": [{"port": 8000, "protocol": "TCP"}]}],
    }
    # The metrics port from the monitoring namespace alone (its name label, set by
    # the API server), whether or not monitoring is on.
    assert policies["provisioner-metrics"] == {
        "podSelector": provisioner,
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                        }
                    }
                ],
                "ports": [{"port": 9090, "protocol": "TCP"}],
            }
        ],
    }
    assert set(policies) == {"default-deny-ingress", "echo", "provisioner", "provisioner-metrics"}


def test_quota_caps_pods_cpu_and_memory(stack_run: StackRun, objects: list[dict[str, Any]]) -> None:
    hard = one(objects, "ResourceQuota")["spec"]["hard"]
    env = env_of(one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0])
    # The most provisioners there can be: the HorizontalPodAutoscaler's maximum.
    replicas = one(objects, "HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    sessions, pool = int(env["MAX_SESSIONS"]), int(env["POOL_SIZE"])
    assert int(hard["pods"]) == sessions + pool + replicas + 1 + QUOTA_MARGIN_PODS
    assert set(hard) == {"pods", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}


@pytest.mark.parametrize(
    ("sessions", "pool", "replicas", "pods"), [(100, 4, 2, 117), (10, 2, 1, 24)]
)
def test_quota_arithmetic(sessions: int, pool: int, replicas: int, pods: int) -> None:
    settings = AppSettings(
        namespace="pingpod",
        pool_size=pool,
        max_sessions=sessions,
        session_idle_timeout=60,
        session_max_lifetime=600,
        provisioner_replicas=replicas,
        allowed_origins=(),
        echo_arm64_only=False,
    )
    hard = quota_hard(settings)
    assert hard["pods"] == str(pods)
    echo, prov = sessions + pool + QUOTA_MARGIN_PODS, replicas + 1
    assert hard["requests.memory"] == f"{echo * 32 + prov * 128}Mi"
    assert hard["limits.cpu"] == f"{echo * 1000 + prov * 1000}m"


def test_service_pdb_and_binding(stack_run: StackRun, objects: list[dict[str, Any]]) -> None:
    service = one(objects, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    # The public port alone: the metrics port is in no Service, so neither the
    # ALB (its TargetGroupBinding names this Service's port) nor a port-forward
    # to the Service reaches it.
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    bindings = by_kind(objects, "TargetGroupBinding")
    assert len(bindings) == (1 if stack_run.stack == "prod" else 0)
    for binding in bindings:
        assert binding["spec"]["serviceRef"] == {"name": service["metadata"]["name"], "port": 8000}


def test_namespace_enforces_restricted_pod_security(objects: list[dict[str, Any]]) -> None:
    namespace = one(objects, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objects:
        # Cluster-scoped: the namespace itself, and the node strip's read-only grant.
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == namespace["metadata"]["name"], obj["kind"]
