"""The Kubernetes backend: sessions on ReplicaSets of one echo pod (`driver`).

The driver wires the modules beside it: `client` (credentials, the pod
template), `api` (transport and writes), `cache` and `view` (watch caches and
what they mean), `claim` (the claim protocol), `lease` and `leader` (the
Lease holder's pool writes), `objects` and `podview` (object shapes).
"""

from __future__ import annotations

from services.provisioner.backends.kubernetes.driver import KubernetesDriver

__all__ = ["KubernetesDriver"]
