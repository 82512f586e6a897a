"""One real node beside kwok's fake ones: containerd + runc, kubelet, kube-proxy, CNI.

``prepare`` runs before the API server starts (the bridge the API server
advertises, the node's certificates, the host state to restore); ``launch``
after it (the relay, containerd, the pause image, kubelet, kube-proxy);
``wait_ready`` until the Node is Ready; ``teardown`` after every process has
stopped, and from another process too (``down``): it works from the recorded
state alone.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.controlplane import build, kubeconfig, pki
from scripts.controlplane.components import CONTAINERD, NODE
from scripts.controlplane.launch import Launcher
from scripts.controlplane.loopback import Endpoint
from scripts.gobuild import Log

from . import host, hostnet, kubelet, runtime
from .errors import NodeError

# Processes a real node adds; stopped with the control plane's API clients.
PROCESSES = ("kube-proxy", "kubelet", "containerd", "apiserver-relay")
NODE_DIR = host.NODE_DIR


@dataclass
class RealNode:
    """The real node of the control plane whose state directory holds ``dir``."""

    dir: Path
    # What the host looked like before: restored (or checked) by teardown.
    ip_forward: str = ""
    absent_paths: list[str] = field(default_factory=list)
    tables: list[list[str]] = field(default_factory=list)
    chains: list[list[str]] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    # Set once this node holds the machine's one bridge: from then on, and only then,
    # the host is this node's to restore (a start that found another node touches nothing).
    claimed: bool = False

    @property
    def runtime(self) -> runtime.RuntimePaths:
        return runtime.RuntimePaths(self.dir / "containerd")

    @property
    def files(self) -> kubelet.NodeFiles:
        return kubelet.NodeFiles(self.dir)

    @property
    def pki_dir(self) -> Path:
        return self.dir / "pki"

    def to_json(self) -> dict[str, Any]:
        return {
            "dir": str(self.dir),
            "ip_forward": self.ip_forward,
            "absent_paths": self.absent_paths,
            "tables": self.tables,
            "chains": self.chains,
            "ports": self.ports,
            "claimed": self.claimed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RealNode:
        return cls(
            dir=Path(data["dir"]),
            ip_forward=str(data["ip_forward"]),
            absent_paths=list(data["absent_paths"]),
            tables=[list(t) for t in data["tables"]],
            chains=[list(c) for c in data["chains"]],
            ports={k: int(v) for k, v in data["ports"].items()},
            claimed=bool(data.get("claimed")),
        )

    # -- start ------------------------------------------------------------------------------

    def prepare(self, ca: pki.KeyPair, ports: list[int], save: Callable[[], None]) -> pki.NodeCerts:
        """Record the host as found, then make the bridge, cgroups and certificates."""
        for tool in ("unshare", "mount", "ip", "nft", "iptables", "socat", "runc"):
            if shutil.which(tool) is None:
                raise NodeError(f"a real node needs `{tool}` (see mk/k8s.mk: node-tools)")
        self.ip_forward = hostnet.ip_forward()
        self.absent_paths = host.absent_paths()
        self.tables = hostnet.Tables.now().to_json()
        self.chains = hostnet.chains()
        self.ports = dict(
            zip(
                ("kubelet", "kubelet-healthz", "proxy-healthz", "proxy-metrics"), ports, strict=True
            )
        )
        # The bridge is the claim on the machine: creating it fails if another node has it.
        hostnet.create_bridge()
        self.claimed = True
        save()  # from here on, teardown knows what to undo
        shutil.rmtree(self.dir, ignore_errors=True)  # a crashed run's, never a live one's
        self.dir.mkdir(parents=True, mode=0o700)
        host.create_cgroups()
        host.make_shared_mount(self.files.kubelet_root)
        return pki.node_certs(self.pki_dir, ca, kubelet.NODE_NAME, hostnet.NODE_IP)

    def launch(
        self,
        launcher: Launcher,
        *,
        server: str,
        api_port: int,
        ca: pki.KeyPair,
        certs: pki.NodeCerts,
        pause_archive: Path,
        deadline: float,
        log: Log,
    ) -> None:
        socat = shutil.which("socat") or "socat"
        launcher.spawn("apiserver-relay", hostnet.relay_argv(socat, api_port))
        self._start_containerd(launcher, deadline)
        t0 = time.monotonic()
        self.import_image(pause_archive)
        log(f"pause image imported in {time.monotonic() - t0:.1f}s")
        self._start_kubelet(launcher, server=server, ca=ca, certs=certs)
        self._start_proxy(launcher, server=server, ca=ca, certs=certs)

    def _start_containerd(self, launcher: Launcher, deadline: float) -> None:
        conf_dir = self.dir / "cni" / "net.d"
        hostnet.write_cni_config(conf_dir, self.dir / "cni" / "ipam")
        runtime.write_config(self.runtime, cni_conf_dir=conf_dir)
        launcher.spawn(
            "containerd",
            runtime.containerd_argv(build.binary(CONTAINERD, "containerd"), self.runtime),
            # The shim is found on PATH, next to containerd.
            env={"PATH": f"{CONTAINERD.bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        launcher.wait("containerd's socket", deadline, self.runtime.socket.exists)

    def _kubeconfig(self, name: str, server: str, ca: pki.KeyPair, pair: pki.KeyPair) -> Path:
        return kubeconfig.write(
            self.dir / f"{name}.kubeconfig",
            server=server,
            ca=ca.cert,
            user_name=name,
            user=kubeconfig.client_cert_user(pair.cert, pair.key),
        )

    def _start_kubelet(
        self, launcher: Launcher, *, server: str, ca: pki.KeyPair, certs: pki.NodeCerts
    ) -> None:
        files = self.files
        config = kubelet.kubelet_config(
            files,
            runtime_endpoint=self.runtime.endpoint,
            ca=ca.cert,
            serving_cert=certs.kubelet_serving.cert,
            serving_key=certs.kubelet_serving.key,
            port=self.ports["kubelet"],
            healthz_port=self.ports["kubelet-healthz"],
        )
        kubelet.write_kubelet_config(files, config)
        argv = kubelet.kubelet_argv(
            build.binary(NODE, "kubelet"),
            files,
            kubeconfig=self._kubeconfig("kubelet", server, ca, certs.kubelet),
            masked=kubelet.sysctls_to_mask(),
        )
        launcher.spawn("kubelet", argv)

    def _start_proxy(
        self, launcher: Launcher, *, server: str, ca: pki.KeyPair, certs: pki.NodeCerts
    ) -> None:
        config = kubelet.proxy_config(
            self.files,
            kubeconfig=self._kubeconfig("kube-proxy", server, ca, certs.kube_proxy),
            healthz_port=self.ports["proxy-healthz"],
            metrics_port=self.ports["proxy-metrics"],
        )
        kubelet.write_proxy_config(self.files, config)
        launcher.spawn(
            "kube-proxy", kubelet.proxy_argv(build.binary(NODE, "kube-proxy"), self.files)
        )

    def import_image(self, archive: Path) -> None:
        """Put an image archive (``scripts.images``) where kubelet finds it: no registry."""
        runtime.import_image(build.binary(CONTAINERD, "ctr"), self.runtime, archive)

    def images(self) -> list[str]:
        return runtime.list_images(build.binary(CONTAINERD, "ctr"), self.runtime)

    def ready(self, api: Endpoint) -> bool:
        status, text = api.raw("GET", f"/api/v1/nodes/{kubelet.NODE_NAME}")
        if status != 200:
            return False
        node = json.loads(text)
        conditions = node.get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    # -- stop -------------------------------------------------------------------------------

    def teardown(self) -> list[str]:
        """Undo everything on the host; the processes must be stopped already. Returns
        notes on what was found and removed (for the log)."""
        notes: list[str] = []
        if not self.claimed:
            return notes  # another node held the machine: nothing here is ours
        killed = host.kill_cgroup_processes()
        if killed:
            notes.append(f"killed {killed} container processes")
        shims = host.kill_shims(self.runtime.socket)
        if shims:
            notes.append(f"killed {shims} shims")
        host.unmount_all(self.dir)
        host.remove_cgroups()
        kube_proxy = NODE.binary("kube-proxy")
        if kube_proxy.is_file():
            hostnet.run(*kubelet.proxy_cleanup_argv(kube_proxy), check=False)
        chains = hostnet.delete_new_chains(self.chains)
        if chains:
            notes.append(f"deleted iptables chains {', '.join(chains)}")
        gone = hostnet.delete_new_tables(hostnet.Tables.from_json(self.tables))
        if gone:
            notes.append(f"deleted nftables tables {', '.join(gone)}")
        hostnet.delete_bridge()
        shutil.rmtree(self.dir, ignore_errors=True)
        notes += [f"removed {p}" for p in host.remove_paths(self.absent_paths)]
        if self.ip_forward and hostnet.ip_forward() != self.ip_forward:
            # Never expected: nothing here writes it. Put it back and say so.
            hostnet.IP_FORWARD.write_text(self.ip_forward + "\n")
            notes.append(f"IP forwarding was changed; restored to {self.ip_forward}")
        return notes
