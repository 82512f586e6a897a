"""A real Kubernetes control plane on loopback: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, and kwok playing the kubelets of fake nodes.

Everything lives in one state directory: PKI, kubeconfigs, etcd data, a log file
per component and ``state.json`` (ports and pids), which lets another process
(``python -m scripts.controlplane down``) find and stop the cluster.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from scripts.gobuild import Log

from . import build, kubeconfig, procs
from .components import ETCD, K8S, KWOK, cache_root
from .launch import ControlPlaneError, Launcher, free_ports
from .loopback import LOOPBACK, Endpoint, HttpError
from .node import NODE_DIR, NODE_PROCESSES, RealNode
from .startup import Startup, node_names

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

__all__ = ["ControlPlane", "ControlPlaneError", "default_dir"]

STATE_FILE = "state.json"
# One loopback port each (etcd-peer: etcd's peer URL, unused by a one-member cluster).
PORT_NAMES = ("etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# Stop order: the real node and the API clients first, then the API server, etcd last.
STOP_ORDER = (
    ("kwok", "kube-scheduler", "kube-controller-manager", *NODE_PROCESSES),
    ("kube-apiserver",),
    ("etcd",),
)


def _quiet(_: str) -> None:
    pass


def default_dir() -> Path:
    return cache_root() / "cluster"


def _state_dir(directory: Path | str | None) -> Path:
    return Path(directory).expanduser().resolve() if directory else default_dir()


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
    # False: upstream defaults for etcd's fsync and the controller manager's client
    # rate and workers, as a managed cluster runs them (what benchmarks use).
    tuned: bool = True
    # The real node (kubelet, containerd) beside the fake ones, if started with one.
    node: RealNode | None = None
    _launcher: Launcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._launcher = Launcher(
            log_dir=self.log_dir,
            refs=self.procs,
            die_with_parent=self.owned,
            on_spawn=self.save_state,
        )

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
        return f"https://{LOOPBACK}:{self.ports['kube-apiserver']}"

    def admin(self, timeout: float = 10.0) -> Endpoint:
        """A JSON client for the API server with admin credentials."""
        return Endpoint(
            LOOPBACK,
            self.ports["kube-apiserver"],
            ca=self.ca_file,
            cert=self.pki_dir / "admin.crt",
            key=self.pki_dir / "admin.key",
            timeout=timeout,
        )

    @property
    def kubeconfig_dir(self) -> Path:
        """Every other kubeconfig: the components' and those of :meth:`kubeconfig_for_token`."""
        return self.dir / "kubeconfigs"

    @property
    def etcd_data_dir(self) -> Path:
        return self.dir / "etcd-data"

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
        tuned: bool = True,
        real_node: bool = False,
        log: Log = _quiet,
    ) -> ControlPlane:
        """Start a fresh control plane in ``directory`` and wait until it is usable.

        ``real_node``: also one real node (``scripts.controlplane.node``), which
        changes the host (a bridge, cgroups, mounts) until :meth:`stop` undoes it.

        Owned by this process unless ``detach``: stopped by ``with``/:meth:`stop`, at
        interpreter exit, and by the kernel if this process dies. ``keep_dir`` keeps the
        state directory (logs) after stopping.
        """
        path = _state_dir(directory)
        cls._clear_dir(path)
        cp = cls(
            dir=path,
            ports=dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True)),
            nodes=node_names(nodes),
            owned=not detach,
            keep_dir=keep_dir,
            tuned=tuned,
            node=RealNode(NODE_DIR) if real_node else None,
        )
        started = time.monotonic()
        try:
            Startup(cp, cp._launcher, started + timeout, log).run()
        except BaseException as exc:
            report = cp._launcher.log_tails()
            cp.stop(remove=False)
            if isinstance(exc, ControlPlaneError | build.BuildError | HttpError | OSError):
                raise ControlPlaneError(f"{exc}\nstate and logs kept in {path}\n{report}") from exc
            raise
        log(f"control plane ready in {time.monotonic() - started:.1f}s: {cp.server}")
        if cp.owned:
            atexit.register(cp._stop_at_exit)
        return cp

    @classmethod
    def _clear_dir(cls, path: Path) -> None:
        """An empty, owner-only ``path``; stops what a previous run left behind, if stopped."""
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

    @classmethod
    def attach(cls, directory: Path | str | None = None) -> ControlPlane:
        """Handle on a control plane started elsewhere (e.g. by ``up``), from its state file."""
        path = _state_dir(directory)
        try:
            state = json.loads((path / STATE_FILE).read_text())
        except FileNotFoundError:
            raise ControlPlaneError(f"no control plane state in {path}") from None
        return cls(
            dir=path,
            ports={k: int(v) for k, v in state["ports"].items()},
            nodes=list(state["nodes"]),
            procs=[procs.ProcRef.from_json(p) for p in state["procs"]],
            node=RealNode.from_json(state["node"]) if state.get("node") else None,
        )

    def running(self) -> bool:
        return self._launcher.any_running()

    def stop(self, *, remove: bool | None = None) -> list[str]:
        """Stop every component (SIGTERM, then SIGKILL); returns those that needed SIGKILL.

        Removes the state directory when ``remove`` (default: unless ``keep_dir``).
        """
        killed = self._launcher.stop(STOP_ORDER)
        atexit.unregister(self._stop_at_exit)
        if self.node is not None:
            # Before any file goes: the node's mounts live under its directory.
            for note in self.node.teardown():
                self._log_stop(note)
        if remove is None:
            remove = not self.keep_dir
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            # The data is worthless after a stop; the logs are what is worth keeping.
            shutil.rmtree(self.etcd_data_dir, ignore_errors=True)
        return killed

    def _log_stop(self, note: str) -> None:
        with (self.log_dir / "teardown.log").open("a") as out:
            out.write(note + "\n")

    # -- add-ons and one component at a time (chaos tests) ----------------------------------

    def run_component(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        """Start another process beside the cluster's own (an add-on such as Karpenter):
        logged to ``logs/<name>.log``, listed in the state file, stopped before the others."""
        self._launcher.spawn(name, argv, env)

    def component_running(self, name: str) -> bool:
        return any(ref.name == name and self._launcher.running(ref) for ref in self.procs)

    def log_tail(self, name: str, lines: int = 25) -> str:
        try:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop_component(self, name: str, grace: float = 10.0) -> None:
        """Stop one running component (SIGTERM, then SIGKILL after ``grace`` seconds; 0
        is a crash); the others keep running."""
        self._launcher.stop_one(name, grace)

    def start_component(self, name: str, timeout: float = 60.0) -> None:
        """Start a component stopped by :meth:`stop_component` again, with the same flags,
        ports and certificates, and wait until it answers (the API server: ``/readyz``)."""
        self._launcher.respawn(name)
        deadline = time.monotonic() + timeout
        if name == "kube-apiserver":
            api = self.admin(timeout=5.0)
            self._launcher.wait("kube-apiserver /readyz", deadline, lambda: api.ok("/readyz"))
        elif name == "etcd":
            etcd = Endpoint(LOOPBACK, self.ports["etcd"])
            self._launcher.wait("etcd /health", deadline, lambda: etcd.ok("/health"))

    @contextlib.contextmanager
    def stopped(self, name: str, grace: float = 10.0) -> Iterator[None]:
        """``with cp.stopped("kube-apiserver"):`` the component is down inside, and
        started again (and ready) on the way out, whatever happened inside."""
        self.stop_component(name, grace)
        try:
            yield
        finally:
            self.start_component(name)

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

    # -- state ------------------------------------------------------------------------------

    def save_state(self) -> None:
        """Write ``state.json``: what :meth:`attach` (and so ``down``) needs."""
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "ports": self.ports,
            "nodes": self.nodes,
            "procs": [ref.to_json() for ref in self.procs],
            "node": self.node.to_json() if self.node is not None else None,
            "versions": {c.name: c.version for c in (ETCD, K8S, KWOK)},
        }
        tmp = self.dir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.dir / STATE_FILE)

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
            self.kubeconfig_dir / f"token-{namespace}-{digest}.kubeconfig",
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
