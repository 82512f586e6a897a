"""A real Kubernetes control plane on loopback: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, and kwok playing the kubelets of fake nodes.

Everything lives in one state directory: PKI, kubeconfigs, etcd data, a log file
per component and ``state.json`` (ports and pids), which lets another process
(``python -m scripts.controlplane down``) find and stop the cluster.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import build, kubeconfig, pki, procs
from .components import ETCD, K8S, KWOK, KWOK_STAGES, cache_root
from .loopback import Endpoint, HttpError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

STATE_FILE = "state.json"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
NODE_PREFIX = "kwok-node-"
# Stop order: API clients first, then the API server, etcd last.
STOP_ORDER = (("kwok", "kube-scheduler", "kube-controller-manager"), ("kube-apiserver",), ("etcd",))
LOG_TAIL_LINES = 25

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class ControlPlaneError(RuntimeError):
    """Startup failed or the cluster is in an unexpected state; the message carries log tails."""


def default_dir() -> Path:
    return cache_root() / "cluster"


def _free_ports(count: int) -> list[int]:
    # Hold every socket until all are chosen, so the ports are distinct.
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


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
                "type": "kwok",
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


def _node_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclass
class ControlPlane:
    """Handle on a running control plane: :meth:`start` one (a context manager) or
    :meth:`attach` to one started elsewhere."""

    dir: Path
    ports: dict[str, int]
    nodes: list[str]
    procs: list[procs.ProcRef] = field(default_factory=list)
    owned: bool = False
    keep_dir: bool = False
    _popen: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    # -- paths and endpoints ----------------------------------------------------------------

    @property
    def pki_dir(self) -> Path:
        return self.dir / "pki"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (client certificate in group system:masters)."""
        return self.dir / "admin.kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.pki_dir / "ca.crt"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['kube-apiserver']}"

    def admin(self, timeout: float = 10.0) -> Endpoint:
        """A JSON client for the API server with admin credentials."""
        return Endpoint(
            "127.0.0.1",
            self.ports["kube-apiserver"],
            ca=self.ca_file,
            cert=self.pki_dir / "admin.crt",
            key=self.pki_dir / "admin.key",
            timeout=timeout,
        )

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        directory: Path | str | None = None,
        *,
        nodes: int = 2,
        timeout: float = 120.0,
        detach: bool = False,
        keep_dir: bool = False,
        log: Log = _quiet,
    ) -> ControlPlane:
        """Start a fresh control plane in ``directory`` and wait until it is usable.

        Owned by this process unless ``detach``: stopped by ``with``/:meth:`stop`, at
        interpreter exit, and by the kernel if this process dies. ``keep_dir`` keeps the
        state directory (logs) after stopping.
        """
        path = Path(directory).expanduser().resolve() if directory else default_dir()
        if (path / STATE_FILE).is_file():
            previous = cls.attach(path)
            if previous.running():
                raise ControlPlaneError(
                    f"a control plane is already running in {path}; stop it first "
                    f"(python -m scripts.controlplane down --dir {path})"
                )
            previous.stop(remove=False)
        if path.exists():
            # Only ever delete what a previous run left behind.
            if any(path.iterdir()) and not (path / STATE_FILE).is_file():
                raise ControlPlaneError(f"{path} is not empty and holds no control plane state")
            shutil.rmtree(path)
        path.mkdir(parents=True)
        path.chmod(0o700)

        names = ("etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
        node_names = [f"{NODE_PREFIX}{i}" for i in range(nodes)]
        cp = cls(
            dir=path,
            ports=dict(zip(names, _free_ports(len(names)), strict=True)),
            nodes=node_names,
            owned=not detach,
            keep_dir=keep_dir,
        )
        started = time.monotonic()
        try:
            cp._launch(started + timeout, log)
            cp._wait_ready(started + timeout, log)
        except BaseException as exc:
            report = cp._diagnose()
            cp.stop(remove=False)
            if isinstance(exc, ControlPlaneError | build.BuildError | HttpError | OSError):
                raise ControlPlaneError(f"{exc}\nstate and logs kept in {path}\n{report}") from exc
            raise
        log(f"control plane ready in {time.monotonic() - started:.1f}s: {cp.server}")
        if cp.owned:
            atexit.register(cp._stop_at_exit)
        return cp

    @classmethod
    def attach(cls, directory: Path | str | None = None) -> ControlPlane:
        """Handle on a control plane started elsewhere (e.g. by ``up``), from its state file."""
        path = Path(directory).expanduser().resolve() if directory else default_dir()
        try:
            state = json.loads((path / STATE_FILE).read_text())
        except FileNotFoundError:
            raise ControlPlaneError(f"no control plane state in {path}") from None
        return cls(
            dir=path,
            ports={k: int(v) for k, v in state["ports"].items()},
            nodes=list(state["nodes"]),
            procs=[procs.ProcRef.from_json(p) for p in state["procs"]],
        )

    def running(self) -> bool:
        return any([self._running(ref) for ref in self.procs])

    def stop(self, *, remove: bool | None = None) -> list[str]:
        """Stop every component (SIGTERM, then SIGKILL); returns those that needed SIGKILL.

        Removes the state directory when ``remove`` (default: unless ``keep_dir``).
        """
        by_name = {ref.name: ref for ref in self.procs}
        groups = [[by_name[n] for n in group if n in by_name] for group in STOP_ORDER]
        known = {n for group in STOP_ORDER for n in group}
        groups.insert(0, [ref for ref in self.procs if ref.name not in known])
        killed = procs.stop(groups, running=self._running)
        atexit.unregister(self._stop_at_exit)
        if remove is None:
            remove = not self.keep_dir
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            # The data is worthless after a stop; the logs are what is worth keeping.
            shutil.rmtree(self.dir / "etcd-data", ignore_errors=True)
        return killed

    def _running(self, ref: procs.ProcRef) -> bool:
        """Reaps our own children; falls back to /proc for processes started elsewhere."""
        popen = self._popen.get(ref.name)
        if popen is not None and popen.pid == ref.pid:
            return popen.poll() is None
        return procs.alive(ref)

    def _stop_at_exit(self) -> None:
        if self.running():
            self.stop()

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- startup ----------------------------------------------------------------------------

    def _save_state(self) -> None:
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "ports": self.ports,
            "nodes": self.nodes,
            "procs": [ref.to_json() for ref in self.procs],
            "versions": {c.name: c.version for c in (ETCD, K8S, KWOK)},
        }
        tmp = self.dir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.dir / STATE_FILE)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        popen, ref = procs.spawn(
            name, argv, self.log_dir / f"{name}.log", env=env, die_with_parent=self.owned
        )
        self._popen[name] = popen
        self.procs.append(ref)
        # Recorded before waiting, so `down` can clean up even a start that hangs.
        self._save_state()

    def _launch(self, deadline: float, log: Log) -> None:
        bins = {
            "etcd": build.binary(ETCD, "etcd"),
            "kube-apiserver": build.binary(K8S, "kube-apiserver"),
            "kube-controller-manager": build.binary(K8S, "kube-controller-manager"),
            "kube-scheduler": build.binary(K8S, "kube-scheduler"),
            "kwok": build.binary(KWOK, "kwok"),
        }
        certs = pki.generate(self.pki_dir)
        self._save_state()
        server = self.server

        def component_kubeconfig(name: str, pair: pki.KeyPair) -> str:
            path = self.dir / "kubeconfigs" / f"{name}.kubeconfig"
            kubeconfig.write(
                path,
                server=server,
                ca=certs.ca.cert,
                user_name=name,
                user=kubeconfig.client_cert_user(pair.cert, pair.key),
            )
            return str(path)

        kubeconfig.write(
            self.kubeconfig,
            server=server,
            ca=certs.ca.cert,
            user_name="kubernetes-admin",
            user=kubeconfig.client_cert_user(certs.admin.cert, certs.admin.key),
        )
        kcm_kubeconfig = component_kubeconfig("kube-controller-manager", certs.controller_manager)
        sched_kubeconfig = component_kubeconfig("kube-scheduler", certs.scheduler)
        kwok_kubeconfig = component_kubeconfig("kwok", certs.kwok)

        etcd_url = f"http://127.0.0.1:{self.ports['etcd']}"
        peer_url = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        log(f"starting etcd {ETCD.version}, kubernetes {K8S.version}, kwok {KWOK.version}")
        self._spawn(
            "etcd",
            [
                str(bins["etcd"]),
                "--name=pingpod",
                f"--data-dir={self.dir / 'etcd-data'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=pingpod={peer_url}",
                "--initial-cluster-state=new",
                # Disposable test data: skipping fsync makes every API write much faster.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        # The API server would start anyway and retry, but a log full of refused
        # connections hides real problems.
        etcd = Endpoint("127.0.0.1", self.ports["etcd"])
        self._wait("etcd /health", deadline, lambda: etcd.ok("/health"))
        self._spawn(
            "kube-apiserver",
            [
                str(bins["kube-apiserver"]),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.ports['kube-apiserver']}",
                f"--cert-dir={self.pki_dir}",
                f"--tls-cert-file={certs.apiserver.cert}",
                f"--tls-private-key-file={certs.apiserver.key}",
                f"--client-ca-file={certs.ca.cert}",
                "--authorization-mode=Node,RBAC",
                f"--requestheader-client-ca-file={certs.front_proxy_ca.cert}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={certs.front_proxy_client.cert}",
                f"--proxy-client-key-file={certs.front_proxy_client.key}",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={certs.sa_pub}",
                f"--service-account-signing-key-file={certs.sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # A loopback address is not a valid Endpoints IP; nothing in-cluster needs it.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
            ],
        )
        # The clients start once the API server is ready: kube-controller-manager exits
        # when the bootstrap RBAC roles are not there yet.
        api = self.admin(timeout=5.0)
        t0 = time.monotonic()
        self._wait("kube-apiserver /readyz", deadline, lambda: api.ok("/readyz"))
        log(f"kube-apiserver ready after {time.monotonic() - t0:.1f}s")
        self._spawn(
            "kube-controller-manager",
            [
                str(bins["kube-controller-manager"]),
                f"--kubeconfig={kcm_kubeconfig}",
                f"--authentication-kubeconfig={kcm_kubeconfig}",
                f"--authorization-kubeconfig={kcm_kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['kube-controller-manager']}",
                f"--tls-cert-file={certs.controller_manager_serving.cert}",
                f"--tls-private-key-file={certs.controller_manager_serving.key}",
                "--controllers=*",
                "--use-service-account-credentials=true",
                f"--root-ca-file={certs.ca.cert}",
                f"--service-account-private-key-file={certs.sa_key}",
                f"--cluster-signing-cert-file={certs.ca.cert}",
                f"--cluster-signing-key-file={certs.ca.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # One instance per cluster: no need to wait for a lease.
                "--leader-elect=false",
                # The default client rate (20 QPS) makes the ReplicaSet and garbage
                # collector controllers the bottleneck of a pool under load.
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--concurrent-replicaset-syncs=20",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(bins["kube-scheduler"]),
                f"--kubeconfig={sched_kubeconfig}",
                f"--authentication-kubeconfig={sched_kubeconfig}",
                f"--authorization-kubeconfig={sched_kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['kube-scheduler']}",
                f"--tls-cert-file={certs.scheduler_serving.cert}",
                f"--tls-private-key-file={certs.scheduler_serving.key}",
                "--leader-elect=false",
                "--profiling=false",
                "--v=1",
            ],
        )
        kwok_home = self.dir / "kwok-home"
        kwok_home.mkdir()
        self._spawn(
            "kwok",
            [
                str(bins["kwok"]),
                f"--kubeconfig={kwok_kubeconfig}",
                f"--config={KWOK_STAGES}",
                "--manage-all-nodes=true",
                f"--cidr={POD_CIDR}",
                "--node-ip=127.0.0.1",
                # Node Leases are the heartbeat the node lifecycle controller watches.
                "--node-lease-duration-seconds=40",
            ],
            # kwok also reads ~/.kwok/kwok.yaml when it exists: keep a user's file out.
            env={**os.environ, "HOME": str(kwok_home)},
        )

    def _check_alive(self) -> None:
        for ref in self.procs:
            if not self._running(ref):
                raise ControlPlaneError(f"{ref.name} exited during startup")

    def _wait(self, what: str, deadline: float, check: Callable[[], bool]) -> None:
        while True:
            self._check_alive()
            if check():
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def _wait_ready(self, deadline: float, log: Log) -> None:
        api = self.admin(timeout=5.0)
        t0 = time.monotonic()
        for name in self.nodes:
            status, text = api.raw("POST", "/api/v1/nodes", fake_node(name))
            if status not in (201, 409):
                raise HttpError(status, "POST", "/api/v1/nodes", text)

        def nodes_ready() -> bool:
            items = api.json("GET", "/api/v1/nodes?labelSelector=type%3Dkwok")["items"]
            ready = {n["metadata"]["name"] for n in items if _node_ready(n)}
            return ready >= set(self.nodes)

        kcm = Endpoint("127.0.0.1", self.ports["kube-controller-manager"], ca=self.ca_file)
        sched = Endpoint("127.0.0.1", self.ports["kube-scheduler"], ca=self.ca_file)
        self._wait("kube-controller-manager /healthz", deadline, lambda: kcm.ok("/healthz"))
        self._wait("kube-scheduler /readyz", deadline, lambda: sched.ok("/readyz"))
        self._wait(
            "the default service account (serviceaccount controller)",
            deadline,
            lambda: api.ok("/api/v1/namespaces/default/serviceaccounts/default"),
        )
        self._wait(f"Ready kwok nodes {', '.join(self.nodes)}", deadline, nodes_ready)
        log(f"all components ready after {time.monotonic() - t0:.1f}s")

    def _diagnose(self) -> str:
        """The tail of every component log, for error messages."""
        parts: list[str] = []
        for ref in self.procs:
            path = self.log_dir / f"{ref.name}.log"
            state = "running" if self._running(ref) else "exited"
            try:
                lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            except OSError:
                lines = ["(no log)"]
            parts.append(f"--- {ref.name} ({state}), {path}:\n" + "\n".join(lines))
        return "\n".join(parts)

    # -- credentials ------------------------------------------------------------------------

    def create_service_account(self, namespace: str, name: str) -> None:
        """Create a ServiceAccount (no error if it exists)."""
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts"
        status, text = self.admin().raw("POST", path, body)
        if status not in (201, 409):
            raise HttpError(status, "POST", path, text)

    def service_account_token(
        self,
        namespace: str,
        name: str,
        *,
        expiration_seconds: int = 3600,
        audiences: list[str] | None = None,
        create: bool = False,
    ) -> str:
        """A bound token for ``namespace/name`` from the TokenRequest API."""
        if create:
            self.create_service_account(namespace, name)
        spec: dict[str, Any] = {"expirationSeconds": expiration_seconds}
        if audiences is not None:
            spec["audiences"] = audiences
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
        return str(self.admin().json("POST", path, body)["status"]["token"])

    def kubeconfig_for_token(self, token: str, namespace: str = "default") -> Path:
        """A kubeconfig that authenticates with ``token``, defaulting to ``namespace``."""
        digest = hashlib.sha256(token.encode()).hexdigest()[:12]
        return kubeconfig.write(
            self.dir / "kubeconfigs" / f"token-{namespace}-{digest}.kubeconfig",
            server=self.server,
            ca=self.ca_file,
            user_name=f"token-{digest}",
            user=kubeconfig.token_user(token),
            namespace=namespace,
        )

    def api_client(self, kubeconfig_path: Path | None = None) -> ApiClient:
        """A kubernetes-client ApiClient (admin unless another kubeconfig is given)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(kubeconfig_path or self.kubeconfig))
