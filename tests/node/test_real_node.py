"""A real node on the test control plane: kubelet, containerd and runc run real pods on a
bridge of this machine beside kwok's fake nodes, traffic has no way off the machine,
the kernel's settings stay as found, and ``down`` leaves nothing behind."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from scripts.controlplane import CONTAINERD, NODE, ControlPlane, ControlPlaneError
from scripts.controlplane.flags import SERVICE_CIDR
from scripts.controlplane.loopback import Endpoint
from scripts.controlplane.node import (
    BRIDGE,
    NODE_IP,
    NODE_LABEL,
    NODE_NAME,
    NODE_SUBNET,
    PAUSE_IMAGE,
)
from scripts.controlplane.node.host import node_cgroups
from tests.support.polling import wait_for

from .conftest import ROOT, RealCluster, controlplane_cli
from .hoststate import HostState

pytestmark = pytest.mark.node


def pause_replica_set(name: str) -> dict[str, Any]:
    """One pod of the pause image on the real node, as restricted as the echo pods."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {NODE_LABEL[0]: NODE_LABEL[1]},
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 1,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65535,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "pause",
                            "image": PAUSE_IMAGE,
                            "imagePullPolicy": "Never",
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


def ready_pods(api: Endpoint, namespace: str, app: str) -> list[dict[str, Any]]:
    pods = api.json("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector=app%3D{app}")
    return [
        p
        for p in pods["items"]
        if "deletionTimestamp" not in p["metadata"]
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    ]


def sandbox_pid(pod_uid: str) -> int:
    """The pid of the pod's pause process (its network namespace's holder), from the
    node's cgroups."""
    for root in node_cgroups():
        for procs in root.rglob(f"pod{pod_uid}/*/cgroup.procs"):
            for pid in procs.read_text().split():
                if Path(f"/proc/{pid}/comm").read_text().strip() == "pause":
                    return int(pid)
    raise AssertionError(f"no pause process for pod {pod_uid} in {node_cgroups()}")


def test_up_prints_the_admin_kubeconfig_last(real_cluster: RealCluster) -> None:
    last = Path(real_cluster.up_output[-1])
    assert last == real_cluster.cp.kubeconfig
    assert json.loads(last.read_text())["kind"] == "Config"


def test_the_real_node_is_ready_beside_the_kwok_nodes(api: Endpoint) -> None:
    nodes = {n["metadata"]["name"]: n for n in api.json("GET", "/api/v1/nodes")["items"]}
    real = nodes[NODE_NAME]
    assert real["metadata"]["labels"][NODE_LABEL[0]] == NODE_LABEL[1]
    assert "kwok.x-k8s.io/node" not in real["metadata"].get("annotations", {})
    info = real["status"]["nodeInfo"]
    assert info["kubeletVersion"] == NODE.version
    assert info["containerRuntimeVersion"] == f"containerd://{CONTAINERD.version.removeprefix('v')}"
    internal = {a["address"] for a in real["status"]["addresses"] if a["type"] == "InternalIP"}
    assert internal == {NODE_IP}
    fakes = [n for name, n in nodes.items() if name != NODE_NAME]
    assert fakes, "the kwok nodes are still there"
    for node in [real, *fakes]:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", node["metadata"]["name"]


def test_a_pod_runs_on_the_real_node_and_is_replaced(api: Endpoint) -> None:
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    api.json("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    try:
        api.json(
            "POST", f"/apis/apps/v1/namespaces/{namespace}/replicasets", pause_replica_set("pause")
        )
        first = wait_for("a Ready pause pod", lambda: ready_pods(api, namespace, "pause"), 60)[0]
        assert first["spec"]["nodeName"] == NODE_NAME
        pod_ip = ipaddress.ip_address(first["status"]["podIP"])
        assert pod_ip in ipaddress.ip_network(NODE_SUBNET)

        api.json("DELETE", f"/api/v1/namespaces/{namespace}/pods/{first['metadata']['name']}")
        replacement = wait_for(
            "the ReplicaSet's replacement, Ready",
            lambda: [
                p
                for p in ready_pods(api, namespace, "pause")
                if p["metadata"]["uid"] != first["metadata"]["uid"]
            ],
            60,
        )[0]
        assert replacement["spec"]["nodeName"] == NODE_NAME
        pid = sandbox_pid(replacement["metadata"]["uid"])
        routes = json.loads(
            subprocess.run(
                ["nsenter", "-t", str(pid), "-n", "ip", "-j", "route"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        # Only the pod subnet (on the bridge) and the service range (via the node): no
        # default route, so nothing a pod sends can leave this machine.
        assert sorted((r["dst"], r.get("gateway")) for r in routes) == sorted(
            [(NODE_SUBNET, None), (SERVICE_CIDR, NODE_IP)]
        )
    finally:
        api.json("DELETE", f"/api/v1/namespaces/{namespace}")


def test_images_build_imports_into_the_running_node(real_cluster: RealCluster) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.images", "build", "--dir", str(real_cluster.cp.dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("imported into the real node") for line in lines)
    refs = dict(line.removeprefix("image ").split("=", 1) for line in lines[-2:])
    assert list(refs) == ["echo", "provisioner"]
    node = real_cluster.cp.node
    assert node is not None
    assert set(refs.values()) <= set(node.images())


def test_traffic_has_no_way_off_this_machine(real_cluster: RealCluster) -> None:
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "0"
    assert Path("/proc/sys/net/ipv4/conf/all/forwarding").read_text().strip() == "0"
    # The bridge holds only the pods' veths: no physical interface is enslaved to it.
    links = json.loads(
        subprocess.run(
            ["ip", "-d", "-j", "link"], capture_output=True, text=True, check=True
        ).stdout
    )
    ports = [link for link in links if link.get("master") == BRIDGE]
    assert all(link.get("linkinfo", {}).get("info_kind") == "veth" for link in ports), ports
    # The host routes the pod subnet to the bridge only.
    route = subprocess.run(
        ["ip", "-j", "route", "show", NODE_SUBNET], capture_output=True, text=True, check=True
    ).stdout
    assert [r["dev"] for r in json.loads(route)] == [BRIDGE]
    # No source NAT but kube-proxy's, which masquerades only packets it has marked
    # (Service traffic, delivered on this machine: forwarding is off).
    nat = subprocess.run(
        ["iptables-save", "-t", "nat"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    snat = [r for r in nat if "-j MASQUERADE" in r or "-j SNAT" in r]
    assert snat and all(r.startswith("-A KUBE-POSTROUTING ") for r in snat), snat
    postrouting = [r for r in nat if r.startswith("-A KUBE-POSTROUTING ")]
    assert "! --mark 0x4000/0x4000 -j RETURN" in postrouting[0], postrouting


def test_a_second_real_node_is_refused_and_the_first_keeps_running(
    api: Endpoint, tmp_path: Path
) -> None:
    with pytest.raises(ControlPlaneError, match="already exists"):
        ControlPlane.start(tmp_path / "second", real_node=True, timeout=120)
    # The refused start undid only its own parts: the first node's bridge and pods stay.
    assert Path(f"/sys/class/net/{BRIDGE}").exists()
    node = api.json("GET", f"/api/v1/nodes/{NODE_NAME}")
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"
    assert node_cgroups()[0].exists()


def test_kernel_settings_stay_as_found(real_cluster: RealCluster) -> None:
    assert HostState.read().sysctls == real_cluster.before.sysctls


def test_down_leaves_nothing_behind(real_cluster: RealCluster) -> None:
    state_dir = real_cluster.cp.dir
    proc = controlplane_cli("down", "--dir", str(state_dir), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not state_dir.exists()
    after = HostState.read()
    assert real_cluster.before.differences(after) == {}
