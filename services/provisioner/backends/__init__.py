"""Pod backends: where a session's echo server runs.

Every backend is a `pooled.PooledBackend`, the pool's rules written once, over
a driver: `local.LocalDriver` runs each "pod" as a child process on
127.0.0.1, `kubernetes.KubernetesDriver` runs ReplicaSets of one pod.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from services.provisioner.backends.base import Backend
from services.provisioner.backends.events import SessionEvents
from services.provisioner.backends.pooled import PooledBackend
from services.provisioner.metrics import Metrics
from services.provisioner.pool import PoolCore
from services.provisioner.settings import Settings


def make_backend(
    settings: Settings, metrics: Metrics, *, clock: Callable[[], float] = time.time
) -> Backend:
    """The backend `settings.backend` names (Kubernetes credentials: see `kubernetes.client`)."""
    events = SessionEvents(metrics, clock=clock)
    if settings.backend == "kubernetes":
        from services.provisioner.backends.kubernetes import KubernetesDriver

        kube = KubernetesDriver.from_settings(settings, events)
        core = PoolCore.from_settings(settings, max_starts=kube.max_starts)
        return PooledBackend(kube, core=core, events=events, metrics=metrics, clock=clock)
    from services.provisioner.backends.local import LocalDriver

    local = LocalDriver.from_settings(settings, events, clock=clock)
    core = PoolCore.from_settings(settings, max_starts=local.max_starts)
    return PooledBackend(local, core=core, events=events, metrics=metrics, clock=clock)
