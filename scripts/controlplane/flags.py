"""The command line of each component: what the test control plane runs, flag by flag.

Plain functions of paths, ports and certificates; ``cluster.py`` decides when each
one starts and what it waits for.
"""

from __future__ import annotations

from pathlib import Path

from .components import KWOK_STAGES
from .loopback import LOOPBACK
from .pki import KeyPair, NodeCerts, Pki

SERVICE_CIDR = "10.96.0.0/16"
# kwok's fake pods take their (never routed) addresses here; a real node's pods
# are in 10.244.128.0/24 (node/hostnet.py), outside it.
POD_CIDR = "10.244.0.0/17"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
ETCD_MEMBER = "pingpod"
# What tells kwok's fake nodes apart, and the label selector that finds them.
KWOK_NODE_LABELS = {"type": "kwok"}
KWOK_NODE_SELECTOR = ",".join(f"{key}={value}" for key, value in KWOK_NODE_LABELS.items())
# How often kube-controller-manager's HorizontalPodAutoscaler controller acts (tuned).
HPA_SYNC_PERIOD = "5s"


def loopback_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}"


def etcd(
    binary: Path, *, data_dir: Path, client_port: int, peer_port: int, tuned: bool = True
) -> list[str]:
    """``tuned=False`` leaves out the one flag that trades durability for speed."""
    client_url, peer_url = loopback_url(client_port), loopback_url(peer_port)
    return [
        str(binary),
        f"--name={ETCD_MEMBER}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster={ETCD_MEMBER}={peer_url}",
        "--initial-cluster-state=new",
        # Disposable test data: skipping fsync makes every API write much faster.
        *(["--unsafe-no-fsync"] if tuned else []),
        "--log-level=warn",
    ]


def kube_apiserver(
    binary: Path,
    *,
    etcd_port: int,
    port: int,
    cert_dir: Path,
    certs: Pki,
    node: NodeCerts | None = None,
    advertise: str | None = None,
) -> list[str]:
    """``node`` and ``advertise``: with a real node, the API server talks to its kubelet
    (logs, port-forward) and the `kubernetes` Service points at ``advertise`` (the
    node's bridge address, relayed to loopback), which pods can reach."""
    if node is None or advertise is None:
        real_node: list[str] = [
            f"--advertise-address={LOOPBACK}",
            # A loopback address is not a valid Endpoints IP; nothing in-cluster needs it.
            "--endpoint-reconciler-type=none",
        ]
    else:
        real_node = [
            f"--advertise-address={advertise}",
            f"--kubelet-client-certificate={node.apiserver_kubelet_client.cert}",
            f"--kubelet-client-key={node.apiserver_kubelet_client.key}",
            f"--kubelet-certificate-authority={certs.ca.cert}",
            # The node's address, never its name: nothing resolves it here.
            "--kubelet-preferred-address-types=InternalIP",
            # An aggregated API (metrics-server, a pod on the node) is reached at its
            # endpoint's pod IP over the bridge, not through a Service IP from the host.
            "--enable-aggregator-routing=true",
        ]
    return [
        str(binary),
        f"--etcd-servers={loopback_url(etcd_port)}",
        f"--bind-address={LOOPBACK}",
        *real_node,
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
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
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]


def _api_client(binary: Path, kubeconfig: Path, port: int, serving: KeyPair) -> list[str]:
    """What kube-controller-manager and kube-scheduler share: one kubeconfig for the
    API and for delegated authn/authz, and a loopback HTTPS port for their health."""
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={port}",
        f"--tls-cert-file={serving.cert}",
        f"--tls-private-key-file={serving.key}",
    ]


def kube_controller_manager(
    binary: Path, *, kubeconfig: Path, port: int, certs: Pki, tuned: bool = True
) -> list[str]:
    """``tuned=False`` keeps the upstream client rate, ReplicaSet worker count and
    HorizontalPodAutoscaler period."""
    return [
        *_api_client(binary, kubeconfig, port, certs.controller_manager_serving),
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
        *(
            [
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--concurrent-replicaset-syncs=20",
                # The HPA reads metrics every 5 s (upstream: 15 s): a test sees it act sooner.
                f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_PERIOD}",
            ]
            if tuned
            else []
        ),
        "--profiling=false",
        "--v=1",
    ]


def kube_scheduler(
    binary: Path, *, kubeconfig: Path, port: int, certs: Pki, tuned: bool = True
) -> list[str]:
    return [
        *_api_client(binary, kubeconfig, port, certs.scheduler_serving),
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]


def kwok(binary: Path, *, kubeconfig: Path) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--config={KWOK_STAGES}",
        # Only the fake nodes: a real node's kubelet owns its own status and pods.
        f"--manage-nodes-with-label-selector={KWOK_NODE_SELECTOR}",
        f"--cidr={POD_CIDR}",
        f"--node-ip={LOOPBACK}",
        # Node Leases are the heartbeat the node lifecycle controller watches.
        "--node-lease-duration-seconds=40",
    ]
