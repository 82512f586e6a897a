"""The Lease holder's side of the pool loop: refill, trim and reap.

`PooledBackend` runs the loop and `PoolCore` decides; this keeps the
Lease (renewed every third of its duration) so that only one replica acts,
and makes the pool's writes: create a warm ReplicaSet (or, with
POOL_MEMBERS=pods, a bare pod from this client's own request budget), delete
one unless a claim took it first, and sweep the pods nobody holds. Reaping
ends sessions through the backend's release.
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
    def __init__(
        self, api: KubeApi, lease: LeaderLease, *, template: Obj, bare_pods: bool = False
    ) -> None:
        self.api = api
        self.lease = lease
        self.template = template
        self.bare_pods = bare_pods  # POOL_MEMBERS=pods: warm members are pods we create
        self.renew_every = max(0.5, lease.duration / 3)
        self._renewed = float("-inf")
        self._stale_since: dict[str, float] = {}  # retired pods still alive, first seen
        self._stray_since: dict[str, float] = {}  # claimed bare pods without a ReplicaSet

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
            if self.bare_pods:
                await self.api.create_pod(ko.warm_pod(self.template, name=ko.slot_name()))
            else:
                await self.api.create_rs(ko.pool_replicaset(self.template, name=ko.slot_name()))
        except ApiException as exc:  # e.g. 403 at the namespace's quota
            raise unavailable(exc) from exc

    async def delete_member(self, member: Obj) -> None:
        """Delete a warm ReplicaSet or bare pod; the resourceVersion precondition loses
        to a claim."""
        name, version = ko.name_of(member), member["metadata"]["resourceVersion"]
        try:
            if ko.is_pod(member):
                await self.api.delete_pod(name, version=version)
            else:
                await self.api.delete_rs(name, version=version)
        except ApiException as exc:
            if exc.status not in (404, 409):  # gone already, or claimed meanwhile
                raise unavailable(exc) from exc

    async def sweep_retired(self, stale: set[str], grace: float = 5.0) -> None:
        """Delete retired pods still alive `grace` seconds after they were first seen so
        (the recycling replica died between its patch and its delete)."""
        self._stale_since = await self._sweep(stale, self._stale_since, grace)

    async def sweep_strays(self, strays: set[str], grace: float = 30.0) -> None:
        """Delete claimed bare pods that still have no ReplicaSet after `grace` seconds
        (a claim's write timed out but landed, or its replica died before the create).
        The grace outlasts a claim's own create (`CLAIM_TIMEOUT`)."""
        self._stray_since = await self._sweep(strays, self._stray_since, grace)

    async def _sweep(
        self, pods: set[str], seen: dict[str, float], grace: float
    ) -> dict[str, float]:
        now = time.monotonic()
        seen = {pod: seen.get(pod, now) for pod in pods}
        for pod, since in list(seen.items()):
            if now - since >= grace:
                try:
                    await self.api.delete_pod(pod)
                except ApiException as exc:
                    if exc.status != 404:
                        raise unavailable(exc) from exc
                del seen[pod]
        return seen
