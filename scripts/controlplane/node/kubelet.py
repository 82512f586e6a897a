"""kubelet and kube-proxy for the real node: their configuration files and command lines.

**Kernel settings stay as found.** kubelet wants six sysctls at its own values
(``pkg/kubelet/cm/container_manager_linux.go``, ``setupKernelTunables``): it
rewrites them, or with ``protectKernelDefaults`` refuses to start when they
differ. This machine's differ, and they are the machine's, not the test's. So
kubelet runs with ``protectKernelDefaults: true`` in a mount namespace of its
own where the differing ``/proc/sys`` files are read-only bind mounts holding
kubelet's values: it reads what it expects, can write nothing, and the host
keeps its settings. The kubelet directory is a shared mount, so what kubelet
mounts for pods (projected tokens, ConfigMaps) is seen by runc on the host.

kube-proxy (iptables mode) keeps its hands off the kernel too: conntrack sizes
and timeouts at 0 (leave as they are), no ``route_localnet`` (NodePorts not on
loopback), NodePorts only on the node's bridge address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.controlplane.flags import SERVICE_CIDR

from .hostnet import NODE_IP, NODE_SUBNET

NODE_NAME = "real-node-0"
NODE_LABEL = ("pingpod.dev/node", "real")
CGROUP_ROOT = "/pingpod-node"
# kubelet's expected values (utilsysctl constants used by setupKernelTunables).
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": 1,
    "vm/panic_on_oom": 0,
    "kernel/panic": 10,
    "kernel/panic_on_oops": 1,
    "kernel/keys/root_maxkeys": 1000000,
    "kernel/keys/root_maxbytes": 25000000,
}


@dataclass(frozen=True)
class NodeFiles:
    """Where kubelet and kube-proxy keep their files, under the node's directory."""

    dir: Path

    @property
    def kubelet_root(self) -> Path:
        return self.dir / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.dir / "pod-logs"

    @property
    def kubelet_config(self) -> Path:
        return self.dir / "kubelet-config.json"

    @property
    def proxy_config(self) -> Path:
        return self.dir / "kube-proxy-config.json"

    @property
    def sysctl_view(self) -> Path:
        return self.dir / "sysctl-view"


def sysctls_to_mask() -> dict[str, int]:
    """kubelet's expected sysctls that differ on this machine."""
    differ: dict[str, int] = {}
    for name, want in KUBELET_SYSCTLS.items():
        have = int(Path("/proc/sys", name).read_text().split()[0])
        if have != want:
            differ[name] = want
    return differ


def kubelet_config(
    files: NodeFiles,
    *,
    runtime_endpoint: str,
    ca: Path,
    serving_cert: Path,
    serving_key: Path,
    port: int,
    healthz_port: int,
) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # Listens on the bridge's address only: the API server (port-forward, logs)
        # reaches it there; nothing beyond this machine does.
        "address": NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(serving_cert),
        "tlsPrivateKeyFile": str(serving_key),
        "containerRuntimeEndpoint": runtime_endpoint,
        # This VM: cgroup v1 and no systemd as PID 1.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "cgroupRoot": CGROUP_ROOT,
        "cgroupsPerQOS": True,
        "protectKernelDefaults": True,
        # kube-proxy makes the iptables chains this node needs (and removes them on
        # `--cleanup`); kubelet's own copies would outlive it.
        "makeIPTablesUtilChains": False,
        # Without CAP_SYS_RESOURCE kubelet cannot lower its own OOM score.
        "oomScoreAdj": 0,
        "failSwapOn": False,
        "podLogsDir": str(files.pod_logs),
        "clusterDomain": "cluster.local",
        "resolvConf": "/etc/resolv.conf",
        "serializeImagePulls": False,
        "maxPods": 110,
        # A test node on a shared disk: evict only when really short.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # Pod status reaches the API server as soon as it changes.
        "nodeStatusUpdateFrequency": "10s",
    }


def write_kubelet_config(files: NodeFiles, config: dict[str, Any]) -> None:
    files.dir.mkdir(parents=True, exist_ok=True)
    files.kubelet_config.write_text(json.dumps(config, indent=2) + "\n")


def kubelet_argv(
    kubelet: Path, files: NodeFiles, *, kubeconfig: Path, masked: dict[str, int]
) -> list[str]:
    """kubelet in its own mount namespace, with ``masked`` sysctls shown at kubelet's values."""
    files.sysctl_view.mkdir(parents=True, exist_ok=True)
    binds: list[str] = []
    for name, value in sorted(masked.items()):
        view = files.sysctl_view / name.replace("/", ".")
        view.write_text(f"{value}\n")
        target = Path("/proc/sys", name)
        binds.append(f"mount --bind {view} {target} && mount -o remount,bind,ro {target}")
    # The namespace starts as a copy of the host's: the kubelet directory (a shared
    # mount, see RealNode) keeps propagating both ways; /proc's new binds stay here.
    script = " && ".join([*binds, 'exec "$@"'])
    return [
        "unshare",
        "--mount",
        "--propagation=unchanged",
        "--",
        "/bin/sh",
        "-c",
        script,
        "kubelet",
        str(kubelet),
        f"--config={files.kubelet_config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={files.kubelet_root}",
        f"--cert-dir={files.kubelet_root / 'pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_IP}",
        f"--node-labels={NODE_LABEL[0]}={NODE_LABEL[1]}",
        "--v=1",
    ]


def proxy_config(
    files: NodeFiles, *, kubeconfig: Path, healthz_port: int, metrics_port: int
) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "hostnameOverride": NODE_NAME,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "clusterCIDR": NODE_SUBNET,
        "nodePortAddresses": [f"{NODE_IP}/32"],
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
        # 0: leave the kernel's conntrack table size and timeouts as they are.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
    }


def write_proxy_config(files: NodeFiles, config: dict[str, Any]) -> None:
    files.proxy_config.write_text(json.dumps(config, indent=2) + "\n")


def proxy_argv(kube_proxy: Path, files: NodeFiles) -> list[str]:
    return [str(kube_proxy), f"--config={files.proxy_config}", "--v=1"]


def proxy_cleanup_argv(kube_proxy: Path) -> list[str]:
    """kube-proxy's own removal of every rule and chain it made (iptables and nftables)."""
    return [str(kube_proxy), "--cleanup", "--v=1"]


__all__ = [
    "CGROUP_ROOT",
    "NODE_LABEL",
    "NODE_NAME",
    "SERVICE_CIDR",
    "NodeFiles",
    "kubelet_argv",
    "kubelet_config",
    "proxy_argv",
    "proxy_cleanup_argv",
    "proxy_config",
    "sysctls_to_mask",
    "write_kubelet_config",
    "write_proxy_config",
]
