"""Throwaway PKI for a test control plane, made with the openssl CLI (OpenSSL >= 3.0).

ECDSA P-256 for TLS (fast to generate); RSA for the service-account signing key,
which every token consumer understands.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LOOPBACK_SANS = ("IP:127.0.0.1", "DNS:localhost")
# The in-cluster names and the first service IP of --service-cluster-ip-range.
APISERVER_SANS = (
    *LOOPBACK_SANS,
    "IP:10.96.0.1",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: KeyPair
    apiserver: KeyPair
    controller_manager_serving: KeyPair
    scheduler_serving: KeyPair
    admin: KeyPair
    controller_manager: KeyPair
    scheduler: KeyPair
    kwok: KeyPair
    front_proxy_ca: KeyPair
    front_proxy_client: KeyPair
    sa_key: Path
    sa_pub: Path


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl CLI is needed to generate the test certificates")
    proc = subprocess.run([openssl, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def _ca(directory: Path, name: str = "ca") -> KeyPair:
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(pair.key), "-out", str(pair.cert), "-days", "3650",
        "-subj", f"/CN=pingpod-test-{name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )  # fmt: skip
    return pair


def _leaf(
    directory: Path,
    ca: KeyPair,
    name: str,
    subject: str,
    *,
    server_sans: tuple[str, ...] = (),
) -> KeyPair:
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    ext = ["-addext", "basicConstraints=critical,CA:FALSE"]
    ext += ["-addext", "keyUsage=critical,digitalSignature"]
    if server_sans:
        ext += ["-addext", "extendedKeyUsage=serverAuth"]
        ext += ["-addext", "subjectAltName=" + ",".join(server_sans)]
    else:
        ext += ["-addext", "extendedKeyUsage=clientAuth"]
    _openssl(
        "req", "-x509", "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(pair.key), "-out", str(pair.cert), "-days", "365",
        "-subj", subject, *ext,
    )  # fmt: skip
    return pair


@dataclass(frozen=True)
class NodeCerts:
    """A real node's credentials: kubelet's (client and serving), kube-proxy's, and the
    API server's client certificate for kubelet (logs, exec, port-forward)."""

    kubelet: KeyPair
    kubelet_serving: KeyPair
    kube_proxy: KeyPair
    apiserver_kubelet_client: KeyPair


def node_certs(directory: Path, ca: KeyPair, node_name: str, node_ip: str) -> NodeCerts:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    return NodeCerts(
        # The Node authorizer knows a kubelet by this name and group.
        kubelet=_leaf(directory, ca, "kubelet", f"/O=system:nodes/CN=system:node:{node_name}"),
        kubelet_serving=_leaf(
            directory,
            ca,
            "kubelet-serving",
            f"/CN={node_name}",
            server_sans=(f"IP:{node_ip}", f"DNS:{node_name}", *LOOPBACK_SANS),
        ),
        # Bound to the system:node-proxier role by the bootstrap policy.
        kube_proxy=_leaf(directory, ca, "kube-proxy", "/CN=system:kube-proxy"),
        apiserver_kubelet_client=_leaf(
            directory, ca, "apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver"
        ),
    )


def generate(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca = _ca(directory)
    # The aggregation layer's CA (as kubeadm sets it up): without it every delegating
    # component logs a missing requestheader CA bundle over and over.
    front_proxy_ca = _ca(directory, "front-proxy-ca")
    sa_key, sa_pub = directory / "sa.key", directory / "sa.pub"
    _openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(sa_key)
    )
    _openssl("pkey", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))
    return Pki(
        ca=ca,
        apiserver=_leaf(
            directory, ca, "apiserver", "/CN=kube-apiserver", server_sans=APISERVER_SANS
        ),
        controller_manager_serving=_leaf(
            directory, ca, "kcm-serving", "/CN=kube-controller-manager", server_sans=LOOPBACK_SANS
        ),
        scheduler_serving=_leaf(
            directory, ca, "scheduler-serving", "/CN=kube-scheduler", server_sans=LOOPBACK_SANS
        ),
        admin=_leaf(directory, ca, "admin", "/O=system:masters/CN=kubernetes-admin"),
        controller_manager=_leaf(
            directory, ca, "kube-controller-manager", "/CN=system:kube-controller-manager"
        ),
        scheduler=_leaf(directory, ca, "kube-scheduler", "/CN=system:kube-scheduler"),
        # kwok plays every kubelet: node status, leases and pod status across all nodes.
        kwok=_leaf(directory, ca, "kwok", "/O=system:masters/CN=kwok-controller"),
        front_proxy_ca=front_proxy_ca,
        front_proxy_client=_leaf(
            directory, front_proxy_ca, "front-proxy-client", "/CN=front-proxy-client"
        ),
        sa_key=sa_key,
        sa_pub=sa_pub,
    )


def serving_pair(directory: Path, ca: KeyPair, name: str, dns_names: tuple[str, ...]) -> KeyPair:
    """A serving certificate for an add-on's Service (its in-cluster names), signed by ``ca``."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    sans = tuple(f"DNS:{dns}" for dns in dns_names)
    return _leaf(directory, ca, name, f"/CN={dns_names[0]}", server_sans=sans)
