"""Bringing a fresh control plane up, in dependency order.

Credentials first; then each component once what it needs answers (etcd, the API
server, its clients); then the fake nodes, and readiness as the tests need it: every
component healthy, the default ServiceAccount there, every node Ready.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

from scripts.gobuild import Log

from . import build, flags, kubeconfig, pki
from .components import CONTAINERD, ETCD, K8S, KWOK, NODE
from .launch import Launcher, free_ports
from .loopback import LOOPBACK, Endpoint, HttpError
from .node import NODE_IP, RealNode, ensure_pause_image


class Cluster(Protocol):
    """What a start needs of the cluster it brings up (``cluster.ControlPlane``): its
    layout, ports and state file. A protocol, so this module does not import that one."""

    dir: Path
    ports: dict[str, int]
    nodes: list[str]
    tuned: bool
    node: RealNode | None

    @property
    def pki_dir(self) -> Path: ...
    @property
    def kubeconfig(self) -> Path: ...
    @property
    def kubeconfig_dir(self) -> Path: ...
    @property
    def etcd_data_dir(self) -> Path: ...
    @property
    def ca_file(self) -> Path: ...
    @property
    def server(self) -> str: ...
    def admin(self, timeout: float = 10.0) -> Endpoint: ...
    def save_state(self) -> None: ...


ADMIN_USER = "kubernetes-admin"
NODE_PREFIX = "kwok-node-"
NODES_PATH = "/api/v1/nodes"
NODE_LABELS = flags.KWOK_NODE_LABELS
NODE_SELECTOR = flags.KWOK_NODE_SELECTOR


def node_names(count: int) -> list[str]:
    return [f"{NODE_PREFIX}{i}" for i in range(count)]


def fake_node(name: str) -> dict[str, Any]:
    """A Graviton-like arm64 node; kwok fills in conditions and addresses."""
    resources = {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "20Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/arch": "arm64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "node.kubernetes.io/instance-type": "m7g.xlarge",
                **NODE_LABELS,
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
        },
        # Nodes are the one kind whose status is accepted on create (kubelets register so).
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "nodeInfo": {"architecture": "arm64", "operatingSystem": "linux"},
        },
    }


def node_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def register_nodes(api: Endpoint, names: Iterable[str]) -> None:
    """Create the Node objects (those already there are left alone)."""
    for name in names:
        status, text = api.raw("POST", NODES_PATH, fake_node(name))
        if status not in (201, 409):
            raise HttpError(status, "POST", NODES_PATH, text)


def all_nodes_ready(api: Endpoint, names: Iterable[str]) -> bool:
    items = api.json("GET", f"{NODES_PATH}?{urlencode({'labelSelector': NODE_SELECTOR})}")["items"]
    ready = {n["metadata"]["name"] for n in items if node_ready(n)}
    return ready >= set(names)


@dataclass
class Startup:
    """One start of ``cp``: its processes go through ``launcher``; every wait ends at
    ``deadline`` (a ``time.monotonic()`` value)."""

    cp: Cluster
    launcher: Launcher
    deadline: float
    log: Log

    def run(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start every component in dependency order, each once what it needs answers."""
        bins = build.cluster_binaries()
        node = self.cp.node
        pause = ensure_pause_image(self.log) if node is not None else None
        certs = pki.generate(self.cp.pki_dir)
        self.cp.save_state()
        node_certs = None
        if node is not None:
            node_certs = node.prepare(certs.ca, free_ports(4), self.cp.save_state)
        self._write_kubeconfigs(certs)
        self.log(f"starting etcd {ETCD.version}, kubernetes {K8S.version}, kwok {KWOK.version}")
        self._start_etcd(bins["etcd"])
        self._start_apiserver(bins["kube-apiserver"], certs, node_certs)
        self._start_api_clients(bins, certs)
        if node is not None and node_certs is not None and pause is not None:
            self.log(
                f"starting a real node: containerd {CONTAINERD.version}, kubelet {NODE.version}"
            )
            node.launch(
                self.launcher,
                server=self.cp.server,
                api_port=self.cp.ports["kube-apiserver"],
                ca=certs.ca,
                certs=node_certs,
                pause_archive=pause,
                deadline=self.deadline,
                log=self.log,
            )

    def wait_ready(self) -> None:
        """Nodes registered, every component healthy, and what tests rely on in place."""
        cp, wait = self.cp, self.launcher.wait
        api = cp.admin(timeout=5.0)
        t0 = time.monotonic()
        register_nodes(api, cp.nodes)
        kcm = Endpoint(LOOPBACK, cp.ports["kube-controller-manager"], ca=cp.ca_file)
        sched = Endpoint(LOOPBACK, cp.ports["kube-scheduler"], ca=cp.ca_file)
        wait("kube-controller-manager /healthz", self.deadline, lambda: kcm.ok("/healthz"))
        wait("kube-scheduler /readyz", self.deadline, lambda: sched.ok("/readyz"))
        wait(
            "the default service account (serviceaccount controller)",
            self.deadline,
            lambda: api.ok("/api/v1/namespaces/default/serviceaccounts/default"),
        )
        wait(
            f"Ready kwok nodes {', '.join(cp.nodes)}",
            self.deadline,
            lambda: all_nodes_ready(api, cp.nodes),
        )
        node = cp.node
        if node is not None:
            wait(
                "the real node Ready (kubelet, containerd, CNI)",
                self.deadline,
                lambda: node.ready(api),
            )
        self.log(f"all components ready after {time.monotonic() - t0:.1f}s")

    def _component_kubeconfig(self, name: str) -> Path:
        return self.cp.kubeconfig_dir / f"{name}.kubeconfig"

    def _write_kubeconfigs(self, certs: pki.Pki) -> None:
        """The admin's kubeconfig, and one per API client with its own client certificate."""

        def write(path: Path, user: str, pair: pki.KeyPair) -> None:
            kubeconfig.write(
                path,
                server=self.cp.server,
                ca=certs.ca.cert,
                user_name=user,
                user=kubeconfig.client_cert_user(pair.cert, pair.key),
            )

        write(self.cp.kubeconfig, ADMIN_USER, certs.admin)
        for name, pair in (
            ("kube-controller-manager", certs.controller_manager),
            ("kube-scheduler", certs.scheduler),
            ("kwok", certs.kwok),
        ):
            write(self._component_kubeconfig(name), name, pair)

    def _start_etcd(self, binary: Path) -> None:
        ports = self.cp.ports
        self.launcher.spawn(
            "etcd",
            flags.etcd(
                binary,
                data_dir=self.cp.etcd_data_dir,
                client_port=ports["etcd"],
                peer_port=ports["etcd-peer"],
                tuned=self.cp.tuned,
            ),
        )
        # The API server would start anyway and retry, but a log full of refused
        # connections hides real problems.
        etcd = Endpoint(LOOPBACK, ports["etcd"])
        self.launcher.wait("etcd /health", self.deadline, lambda: etcd.ok("/health"))

    def _start_apiserver(
        self, binary: Path, certs: pki.Pki, node_certs: pki.NodeCerts | None
    ) -> None:
        self.launcher.spawn(
            "kube-apiserver",
            flags.kube_apiserver(
                binary,
                etcd_port=self.cp.ports["etcd"],
                port=self.cp.ports["kube-apiserver"],
                cert_dir=self.cp.pki_dir,
                certs=certs,
                node=node_certs,
                advertise=NODE_IP if node_certs is not None else None,
            ),
        )
        # The clients start once the API server is ready: kube-controller-manager exits
        # when the bootstrap RBAC roles are not there yet.
        api = self.cp.admin(timeout=5.0)
        t0 = time.monotonic()
        self.launcher.wait("kube-apiserver /readyz", self.deadline, lambda: api.ok("/readyz"))
        self.log(f"kube-apiserver ready after {time.monotonic() - t0:.1f}s")

    def _start_api_clients(self, bins: dict[str, Path], certs: pki.Pki) -> None:
        """kube-controller-manager, kube-scheduler and kwok, which need only the API server."""
        for name, argv in (
            ("kube-controller-manager", flags.kube_controller_manager),
            ("kube-scheduler", flags.kube_scheduler),
        ):
            self.launcher.spawn(
                name,
                argv(
                    bins[name],
                    kubeconfig=self._component_kubeconfig(name),
                    port=self.cp.ports[name],
                    certs=certs,
                    tuned=self.cp.tuned,
                ),
            )
        kwok_home = self.cp.dir / "kwok-home"
        kwok_home.mkdir()
        self.launcher.spawn(
            "kwok",
            flags.kwok(bins["kwok"], kubeconfig=self._component_kubeconfig("kwok")),
            # kwok also reads ~/.kwok/kwok.yaml when it exists: keep a user's file out.
            env={**os.environ, "HOME": str(kwok_home)},
        )
