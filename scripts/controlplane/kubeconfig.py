"""Write kubeconfig files (as JSON, which every kubeconfig reader accepts as YAML)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def client_cert_user(cert: Path, key: Path) -> dict[str, str]:
    # Embedded, so the file stays valid wherever it is copied.
    return {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)}


def token_user(token: str) -> dict[str, str]:
    return {"token": token}


def write(
    path: Path,
    *,
    server: str,
    ca: Path,
    user_name: str,
    user: dict[str, str],
    namespace: str = "default",
    cluster_name: str = "pingpod-local",
) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
            }
        ],
        "users": [{"name": user_name, "user": user}],
        "contexts": [
            {
                "name": cluster_name,
                "context": {"cluster": cluster_name, "user": user_name, "namespace": namespace},
            }
        ],
        "current-context": cluster_name,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # Credentials inside: owner-only from the first byte.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(config, out, indent=2)
        out.write("\n")
    return path
