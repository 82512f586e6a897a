"""The test control plane behaves like a real cluster where the session model relies
on it: scheduling onto (fake) nodes, ReplicaSet self-healing, garbage collection,
ServiceAccount tokens and RBAC."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from scripts.controlplane import K8S, ControlPlane
from tests.support.polling import wait_for

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]


def replica_set(name: str) -> client.V1ReplicaSet:
    labels = {"app.kubernetes.io/name": "echo", "slot": name}
    return client.V1ReplicaSet(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1ReplicaSetSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"slot": name}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    # Never pulled: kwok plays the kubelet.
                    containers=[client.V1Container(name="echo", image="registry.invalid/echo:1")],
                    automount_service_account_token=False,
                ),
            ),
        ),
    )


def is_ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"]["deletion_timestamp"] is not None or pod["status"]["phase"] != "Running":
        return False
    conditions = pod["status"]["conditions"] or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def ready_pod(core: client.CoreV1Api, namespace: str, slot: str) -> dict[str, Any] | None:
    """The slot's Ready pod, as a plain dict (the typed models make every field optional)."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"slot={slot}").items
    return next((p.to_dict() for p in pods if is_ready(p.to_dict())), None)


def test_api_server_reports_the_built_version(api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    assert info.git_version == K8S.version
    assert info.git_version.startswith("v1.36.")
    assert (info.major, info.minor) == ("1", "36")


def test_fake_nodes_are_ready_arm64(api: client.ApiClient, control_plane: ControlPlane) -> None:
    items = client.CoreV1Api(api).list_node(label_selector="type=kwok").items
    nodes = [n.to_dict() for n in items]
    assert sorted(n["metadata"]["name"] for n in nodes) == sorted(control_plane.nodes)
    for node in nodes:
        assert node["metadata"]["labels"]["kubernetes.io/arch"] == "arm64"
        assert node["status"]["node_info"]["architecture"] == "arm64"
        assert int(node["status"]["allocatable"]["pods"]) >= 110
        ready = [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready == ["True"]


def test_replicaset_pod_runs_and_is_ready_on_a_kwok_node(
    api: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_replica_set(namespace, replica_set("slot-a"))
    pod = wait_for(
        "the ReplicaSet's pod to be Running and Ready", lambda: ready_pod(core, namespace, "slot-a")
    )
    labels = core.read_node(pod["spec"]["node_name"]).to_dict()["metadata"]["labels"]
    assert labels["type"] == "kwok"
    assert labels["kubernetes.io/arch"] == "arm64"
    assert pod["status"]["pod_ip"]
    assert pod["metadata"]["owner_references"][0]["kind"] == "ReplicaSet"


def test_deleted_pod_is_replaced_by_the_replicaset(api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_replica_set(namespace, replica_set("slot-b"))
    first = wait_for("the first pod", lambda: ready_pod(core, namespace, "slot-b"))

    first_name, first_uid = first["metadata"]["name"], first["metadata"]["uid"]
    core.delete_namespaced_pod(first_name, namespace)

    def replacement() -> dict[str, Any] | None:
        pod = ready_pod(core, namespace, "slot-b")
        return pod if pod is not None and pod["metadata"]["uid"] != first_uid else None

    second = wait_for("a Ready replacement pod", replacement)
    assert second["metadata"]["name"] != first_name

    def first_gone() -> bool:
        try:
            core.read_namespaced_pod(first_name, namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for("the deleted pod to disappear", first_gone)


def test_service_account_token_is_limited_by_rbac(
    api: client.ApiClient, control_plane: ControlPlane, namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
            ],
        ),
    )
    token = control_plane.service_account_token(namespace, "reader", create=True)
    kubeconfig = control_plane.kubeconfig_for_token(token, namespace)

    with control_plane.api_client(kubeconfig) as sa_api:
        review = client.AuthenticationV1Api(sa_api).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
        username = review.to_dict()["status"]["user_info"]["username"]
        assert username == f"system:serviceaccount:{namespace}:reader"

        core = client.CoreV1Api(sa_api)
        assert core.list_namespaced_pod(namespace).items == []

        forbidden = [
            lambda: core.list_namespaced_secret(namespace),
            lambda: core.list_namespaced_pod("default"),
            lambda: core.delete_collection_namespaced_pod(namespace),
            lambda: client.AppsV1Api(sa_api).list_namespaced_replica_set(namespace),
        ]
        for call in forbidden:
            with pytest.raises(ApiException) as denied:
                call()
            assert denied.value.status == 403

    bogus = control_plane.kubeconfig_for_token(token[:-8] + "AAAAAAAA", namespace)
    with control_plane.api_client(bogus) as bad_api, pytest.raises(ApiException) as refused:
        client.CoreV1Api(bad_api).list_namespaced_pod(namespace)
    assert refused.value.status == 401


def test_deleting_the_replicaset_collects_its_pod(api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_replica_set(namespace, replica_set("slot-c"))
    wait_for("the pod", lambda: ready_pod(core, namespace, "slot-c"))

    apps.delete_namespaced_replica_set(
        "slot-c", namespace, body=client.V1DeleteOptions(propagation_policy="Background")
    )
    wait_for(
        "the garbage collector to remove the pod",
        lambda: not core.list_namespaced_pod(namespace, label_selector="slot=slot-c").items,
        timeout=30.0,
    )
    with pytest.raises(ApiException) as gone:
        apps.read_namespaced_replica_set("slot-c", namespace)
    assert gone.value.status == 404


def test_cli_up_env_down_leaves_nothing_running(tmp_path: Path) -> None:
    state_dir = tmp_path / "cluster"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scripts.controlplane", *args, "--dir", str(state_dir)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )

    try:
        up = cli("up", "--nodes", "1")
        assert up.returncode == 0, up.stderr
        kubeconfig = Path(up.stdout.strip().splitlines()[-1])
        assert kubeconfig.is_file()
        state = json.loads((state_dir / "state.json").read_text())
        pids = [p["pid"] for p in state["procs"]]
        assert len(pids) == 5

        env = cli("env")
        assert env.returncode == 0, env.stderr
        assert env.stdout.strip() == f"export KUBECONFIG={kubeconfig}"
    finally:
        down = cli("down")
    assert down.returncode == 0, down.stderr
    assert not state_dir.exists()
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        # Gone, or a zombie waiting for init to reap it.
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
