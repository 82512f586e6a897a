"""The Lease holder's side of the pool loop: refill, trim and reap.

`PooledBackend` runs the loop and `PoolCore` decides; this keeps the
Lease (renewed every third of its duration) so that only one replica acts,
and makes the pool's writes: create a warm ReplicaSet, delete one unless a
claim took it first. Reaping ends sessions through the backend's release.
"""

from __future__ import annotations

import logging
import time

from kubernetes.client.exceptions import ApiException

from services.provisioner.backends.kubernetes import objects as ko
from services.provisioner.backends.kubernetes.api import KubeApi, unavailable
from services.provisioner.backends.kubernetes.lease import LeaderLease
from services.provisioner.errors import BackendUnavailable

log = logging.getLogger(__name__)

Obj = ko.Obj


class Leader:
    def __init__(self, api: KubeApi, lease: LeaderLease, *, template: Obj) -> None:
        self.api = api
        self.lease = lease
        self.template = template
        self.renew_every = max(0.5, lease.duration / 3)
        self._renewed = float("-inf")
        self._stale_since: dict[str, float] = {}  # retired pods still alive, first seen

    @property
    def tick(self) -> float:
        return min(1.0, self.renew_every)

    async def leading(self) -> bool:
        """Acquire or renew the Lease when due; whether this replica holds it."""
        if time.monotonic() - self._renewed >= self.renew_every:
            try:
                await self.api.call(self.lease.step)
            except BackendUnavailable as exc:
                self.lease.is_leader = False
                log.warning("lease_renew_failed", extra={"error": exc.detail})
                return False
            self._renewed = time.monotonic()
        return self.lease.is_leader

    async def release(self) -> None:
        """Hand the Lease back at shutdown so another replica takes over at once."""
        try:
            await self.api.call(self.lease.release)
        except BackendUnavailable as exc:
            log.warning("lease_release_failed", extra={"error": exc.detail})

    async def start_member(self) -> None:
        try:
            await self.api.create_rs(ko.pool_replicaset(self.template, name=ko.slot_name()))
        except ApiException as exc:  # e.g. 403 at the namespace's quota
            raise unavailable(exc) from exc

    async def delete_member(self, rs: Obj) -> None:
        """Delete a warm ReplicaSet; the resourceVersion precondition loses to a claim."""
        try:
            await self.api.delete_rs(ko.name_of(rs), version=rs["metadata"]["resourceVersion"])
        except ApiException as exc:
            if exc.status not in (404, 409):  # gone already, or claimed meanwhile
                raise unavailable(exc) from exc

    async def sweep_retired(self, stale: set[str], grace: float = 5.0) -> None:
        """Delete retired pods still alive `grace` seconds after they were first seen so
        (the recycling replica died between its patch and its delete)."""
        now = time.monotonic()
        self._stale_since = {pod: self._stale_since.get(pod, now) for pod in stale}
        for pod, since in list(self._stale_since.items()):
            if now - since >= grace:
                try:
                    await self.api.delete_pod(pod)
                except ApiException as exc:
                    if exc.status != 404:
                        raise unavailable(exc) from exc
                del self._stale_since[pod]
