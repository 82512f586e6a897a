"""Pinned components and where their binaries are cached.

The versions live in one place: the wrapper Go modules under ``build/``. Each
binary directory is keyed by the module version, so bumping a version in a
go.mod builds into a fresh directory and older builds stay usable.
"""

from __future__ import annotations

from pathlib import Path

from scripts.gobuild import Component, Origin, cache_root, module_version

HERE = Path(__file__).resolve().parent
BUILD_MODULES = HERE / "build"
KWOK_STAGES = HERE / "kwok" / "stages.yaml"

__all__ = [
    "AGENT_SANDBOX",
    "AUTOSCALING_COMPONENTS",
    "COMPONENTS",
    "CONTAINERD",
    "ETCD",
    "K8S",
    "KARPENTER",
    "KWOK",
    "KWOK_STAGES",
    "METRICS_SERVER",
    "NODE",
    "NODE_COMPONENTS",
    "PEER_COMPONENTS",
    "cache_root",
    "module_version",
]


def _kubernetes_version_flags(origin: Origin) -> list[str]:
    # Without these every binary reports v0.0.0, and clients refuse or warn.
    major, minor = origin.version.lstrip("v").split(".")[:2]
    values = {
        "gitVersion": origin.version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "gitCommit": origin.commit,
        "buildDate": origin.time,
    }
    return [
        f"-X {pkg}.{key}={value}"
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in values.items()
        if value
    ]


def _etcd_version_flags(origin: Origin) -> list[str]:
    if not origin.commit:
        return []
    return [f"-X go.etcd.io/etcd/api/v3/version.GitSHA={origin.commit[:9]}"]


ETCD = Component(
    name="etcd",
    module="go.etcd.io/etcd/server/v3",
    module_dir=BUILD_MODULES / "etcd",
    binaries=(
        ("etcd", "go.etcd.io/etcd/server/v3"),
        ("etcdctl", "go.etcd.io/etcd/etcdctl/v3"),
    ),
    ldflags=_etcd_version_flags,
)
KWOK = Component(
    name="kwok",
    module="sigs.k8s.io/kwok",
    module_dir=BUILD_MODULES / "kwok",
    binaries=(("kwok", "sigs.k8s.io/kwok/cmd/kwok"),),
)
K8S = Component(
    name="k8s",
    module="k8s.io/kubernetes",
    module_dir=BUILD_MODULES / "k8s",
    binaries=tuple(
        (cmd, f"k8s.io/kubernetes/cmd/{cmd}")
        for cmd in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
    ),
    ldflags=_kubernetes_version_flags,
)
# A real node's binaries: the same k8s.io/kubernetes release in a wrapper module of
# its own, so that adding them left the control plane's cached build alone.
NODE = Component(
    name="k8s-node",
    module="k8s.io/kubernetes",
    module_dir=BUILD_MODULES / "node",
    binaries=tuple((cmd, f"k8s.io/kubernetes/cmd/{cmd}") for cmd in ("kubelet", "kube-proxy")),
    ldflags=_kubernetes_version_flags,
)


def _containerd_version_flags(origin: Origin) -> list[str]:
    pkg = "github.com/containerd/containerd/v2/version"
    flags = [
        f"-X {pkg}.Version={origin.version}",
        f"-X {pkg}.Package=github.com/containerd/containerd/v2",
    ]
    if origin.commit:
        flags.append(f"-X {pkg}.Revision={origin.commit}")
    return flags


# The container runtime behind the real node's kubelet (CRI), its runc shim, and ctr
# for importing images. Static (CGO off): no btrfs snapshotter, which nothing here uses.
CONTAINERD = Component(
    name="containerd",
    module="github.com/containerd/containerd/v2",
    module_dir=BUILD_MODULES / "containerd",
    binaries=tuple(
        (cmd, f"github.com/containerd/containerd/v2/cmd/{cmd}")
        for cmd in ("containerd", "containerd-shim-runc-v2", "ctr")
    ),
    ldflags=_containerd_version_flags,
)
# Karpenter with its kwok cloud provider: it turns pending pods into NodeClaims and Node
# objects (no machines), which our kwok then keeps Ready. v1.15.0 asks for go 1.26.9, newer
# than the Go on PATH may be, so this one build runs a toolchain fetched by version.
KARPENTER = Component(
    name="karpenter",
    module="sigs.k8s.io/karpenter",
    module_dir=BUILD_MODULES / "karpenter",
    binaries=(("karpenter-kwok", "sigs.k8s.io/karpenter/kwok"),),
    ldflags=lambda origin: [f"-X sigs.k8s.io/karpenter/pkg/operator.Version={origin.version}"],
    toolchain="go1.27.3",
    files=(
        *(
            f"kwok/charts/crds/{crd}.yaml"
            for crd in (
                "autoscaling.x-k8s.io_capacitybuffers",
                "karpenter.sh_nodeclaims",
                "karpenter.sh_nodeoverlays",
                "karpenter.sh_nodepools",
            )
        ),
        "kwok/apis/crds/karpenter.kwok.sh_kwoknodeclasses.yaml",
    ),
)
# agent-sandbox's controller (Sandbox, SandboxTemplate, SandboxWarmPool, SandboxClaim), the
# warm-pool system bench/peers.py measures beside ours; its CRDs and RBAC are kept with it.
AGENT_SANDBOX = Component(
    name="agent-sandbox",
    module="sigs.k8s.io/agent-sandbox",
    module_dir=BUILD_MODULES / "agent-sandbox",
    binaries=(
        ("agent-sandbox-controller", "sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller"),
    ),
    files=(
        "k8s/crds/agents.x-k8s.io_sandboxes.yaml",
        *(
            f"k8s/crds/extensions.agents.x-k8s.io_{plural}.yaml"
            for plural in ("sandboxclaims", "sandboxtemplates", "sandboxwarmpools")
        ),
        "k8s/rbac.generated.yaml",
        "k8s/extensions-rbac.generated.yaml",
    ),
)
# The resource metrics API (metrics.k8s.io) the HorizontalPodAutoscaler controller reads:
# it scrapes kubelets, so it serves figures only with a real node, where it runs as a pod
# (scripts/controlplane/metrics). Stamped as its release's Makefile does.
METRICS_SERVER = Component(
    name="metrics-server",
    module="sigs.k8s.io/metrics-server",
    module_dir=BUILD_MODULES / "metrics-server",
    binaries=(("metrics-server", "sigs.k8s.io/metrics-server/cmd/metrics-server"),),
    ldflags=lambda origin: [
        f"-X k8s.io/client-go/pkg/version.{key}={value}"
        for key, value in (
            ("gitVersion", origin.version),
            ("gitCommit", origin.commit),
            ("buildDate", origin.time),
        )
        if value
    ],
)
# Quick ones first, so a broken toolchain or proxy shows up before the long k8s build.
COMPONENTS: tuple[Component, ...] = (ETCD, KWOK, K8S)
# What a real node adds (``up --real-node``), and metrics-server, which needs one.
NODE_COMPONENTS: tuple[Component, ...] = (CONTAINERD, NODE, METRICS_SERVER)
# What the autoscaling tests add (node autoscaling on fake nodes).
AUTOSCALING_COMPONENTS: tuple[Component, ...] = (KARPENTER,)
# What the peer benchmark adds.
PEER_COMPONENTS: tuple[Component, ...] = (AGENT_SANDBOX,)


def versions() -> dict[str, str]:
    return {
        c.name: c.version
        for c in (*COMPONENTS, *NODE_COMPONENTS, *AUTOSCALING_COMPONENTS, *PEER_COMPONENTS)
    }
