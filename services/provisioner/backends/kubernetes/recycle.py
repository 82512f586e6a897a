"""Ending a session by recycling its ReplicaSet (SESSION_END=recycle).

One merge PATCH, with the cached resourceVersion as precondition (so an end
that lost a race never touches the member's next session), then the session's
pods are deleted and the ReplicaSet controller starts a fresh, warm one.
"""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from services.provisioner.backends.kubernetes import objects as ko
from services.provisioner.backends.kubernetes.api import KubeApi, unavailable
from services.provisioner.backends.kubernetes.view import PoolView
from services.provisioner.errors import BackendUnavailable

Obj = ko.Obj


async def recycle(
    api: KubeApi, view: PoolView, rs: Obj, key: str, reason: str, attempts: int = 3
) -> str:
    """Return the session's ReplicaSet to the pool with a new pod; the ended pod's name."""
    for _ in range(attempts):
        name = ko.name_of(rs)
        pods = view.pods(name)
        current = ko.current_pod(pods)
        retired = sorted(ko.name_of(p) for p in pods)
        version = rs["metadata"]["resourceVersion"]
        patch = {
            "metadata": {"resourceVersion": version, **ko.release(reason, retired)},
            "spec": ko.pod_protection(False),  # the next pod is warm
        }
        try:
            await api.patch_rs(name, patch)
        except ApiException as exc:
            if exc.status == 404:
                return ""
            if exc.status != 409:
                raise unavailable(exc) from exc
            # Changed since the cache saw it: is it still this session's?
            fresh = await api.session_rs(key)
            if fresh is None:
                return ""  # ended by another replica meanwhile
            rs = fresh
            continue
        for pod in pods:
            if not ko.terminating(pod):
                try:
                    await api.delete_pod(ko.name_of(pod))
                except ApiException as exc:
                    if exc.status != 404:
                        raise unavailable(exc) from exc
        return ko.name_of(current) if current else ""
    raise BackendUnavailable("the session's ReplicaSet kept changing; try again")
