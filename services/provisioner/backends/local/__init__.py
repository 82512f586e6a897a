"""The local backend: each "pod" is an echo-server child process on 127.0.0.1.

`driver` keeps the pool, the sessions and crash replacement; `process` spawns,
watches and stops the children; `probe` asks them for /health; `models` holds
the pod and session records.
"""

from __future__ import annotations

from services.provisioner.backends.local.driver import MAX_STARTS, LocalDriver
from services.provisioner.backends.local.models import LocalPod

__all__ = ["MAX_STARTS", "LocalDriver", "LocalPod"]
