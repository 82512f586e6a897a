"""Pod backends: where a session's echo server runs.

`local` runs each "pod" as a child process on 127.0.0.1; `kubernetes` runs
ReplicaSets of one pod. Both satisfy `base.Backend`.
"""

from __future__ import annotations

from services.provisioner.backends.base import Backend
from services.provisioner.metrics import Metrics
from services.provisioner.settings import Settings


def make_backend(settings: Settings, metrics: Metrics) -> Backend:
    if settings.backend == "kubernetes":
        from services.provisioner.backends.kubernetes import KubernetesBackend

        return KubernetesBackend.from_settings(settings, metrics)
    from services.provisioner.backends.local import LocalBackend

    return LocalBackend.from_settings(settings, metrics)
