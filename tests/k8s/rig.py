"""Provisioners with the Kubernetes backend, run as real processes against the
test control plane under a ServiceAccount bound to the App component's Role."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from infra.rbac import SERVICE_ACCOUNT_NAME, node_reader, provisioner_role, provisioner_role_binding
from infra.workload import node_lost_tolerations
from scripts.controlplane import ControlPlane
from scripts.servers import free_port
from tests.support.servers import Server, start_server

# Seconds an echo pod stays on a lost node: the stack's nodeLostSeconds, shortened so
# that test_lost_node.py waits a few seconds rather than the stack's 30.
NODE_LOST_SECONDS = 3
# kwok plays the kubelet: the image is never pulled.
ECHO_TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app.kubernetes.io/part-of": "pingpod"}},
    "spec": {
        "automountServiceAccountToken": False,
        "containers": [
            {"name": "echo", "image": "registry.invalid/echo:1", "ports": [{"containerPort": 8080}]}
        ],
        "tolerations": node_lost_tolerations(NODE_LOST_SECONDS),
    },
}

_ids = count()

# POOL_MEMBERS: what a warm member is. A test module that exercises the contract runs
# in both modes with `pytestmark = BOTH_MODES`; other rigs use the default.
POOL_MEMBERS = ("replicasets", "pods")
BOTH_MODES = pytest.mark.parametrize("rig", POOL_MEMBERS, indirect=True)


@dataclass
class Rig:
    """A namespace made ready for provisioners, and the processes started in it."""

    cp: ControlPlane
    namespace: str
    kubeconfig: Path
    template: Path
    echo: Server
    tmp: Path
    members: str = "pods"  # POOL_MEMBERS
    servers: list[Server] = field(default_factory=list)

    def start(self, **env: str) -> Server:
        settings = {
            "BACKEND": "kubernetes",
            "KUBECONFIG": str(self.kubeconfig),
            "NAMESPACE": self.namespace,
            "ECHO_POD_TEMPLATE": str(self.template),
            # kwok pods have fake IPs: the data path goes to a real local echo server.
            "ECHO_URL_TEMPLATE": "ws://127.0.0.1:{port}/ws",
            "ECHO_PORT": str(self.echo.port),
            "POD_NAME": f"provisioner-{next(_ids)}",
            "LEASE_DURATION": "3",
            "POOL_SIZE": "3",
            "REFILL_PER_SECOND": "50",
            "RATE_LIMIT_PER_MINUTE": "60000",
            "RATE_LIMIT_BURST": "1000",
            "POOL_MEMBERS": self.members,
            **env,
        }
        server = start_server("services.provisioner", self.tmp, settings, "/ready", metrics=True)
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


def grant_provisioner_role(
    api: client.ApiClient, namespace: str, members: str = "replicasets"
) -> None:
    """The Role (for POOL_MEMBERS `members`) and the node reader from infra/rbac.py,
    bound to the provisioner's account."""
    rbac = client.RbacAuthorizationV1Api(api)
    # The client accepts API-shaped dicts as bodies; its stubs only name the models.
    role: Any = provisioner_role(namespace, pool_members=members)
    rbac.create_namespaced_role(namespace, role)
    binding: Any = provisioner_role_binding(namespace)
    rbac.create_namespaced_role_binding(namespace, binding)
    # The node strip's read-only ClusterRole, named for the namespace like the Pulumi
    # program's. Cluster-scoped, so it outlives the namespace in the throwaway cluster.
    cluster_role, cluster_binding = node_reader(namespace)
    rbac.create_cluster_role(cast(Any, cluster_role))
    rbac.create_cluster_role_binding(cast(Any, cluster_binding))


def make_rig(
    cp: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    tmp: Path,
    echo: Server,
    pod_template: dict[str, Any] | None = None,
    members: str = "replicasets",
) -> Rig:
    grant_provisioner_role(api, namespace, members)
    token = cp.service_account_token(namespace, SERVICE_ACCOUNT_NAME, create=True)
    template = tmp / "echo-pod.json"
    template.write_text(json.dumps(pod_template or ECHO_TEMPLATE))
    return Rig(
        cp=cp,
        namespace=namespace,
        kubeconfig=cp.kubeconfig_for_token(token, namespace),
        template=template,
        echo=echo,
        tmp=tmp,
        members=members,
    )


class TcpProxy:
    """A loopback TCP relay that can be cut and restored, to take the API away."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.port = free_port()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and reset every relayed connection."""
        with self._lock:
            if self._listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone would not.
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                downstream.close()
                continue
            with self._lock:
                self._conns += [downstream, upstream]
            for a, b in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
