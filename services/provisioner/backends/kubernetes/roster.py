"""How many provisioner replicas serve right now: a Lease per replica.

Each replica renews a coordination.k8s.io/v1 Lease of its own (labelled with
the leader Lease's name) and lists its peers' Leases; the live count is the
number not expired. It replaces a replica count fixed at deploy time, which an
autoscaler would make wrong: "kill my gateway" is offered from two live
replicas, and per-address budgets are shared across them.

A replica that stops hands its Lease back (delete); one that crashed leaves it to
expire, and any replica deletes Leases long expired. Costs per replica: one
PATCH and one LIST every third of the Lease duration.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from services.provisioner.backends.kubernetes.api import KubeApi, unavailable
from services.provisioner.errors import BackendUnavailable

log = logging.getLogger(__name__)
TIMEOUT = 10  # seconds, per API request
ROSTER_LABEL = "pingpod.dev/provisioner-roster"
# A crashed replica's Lease is deleted once it is this many durations past expiry.
_COLLECT_AFTER = 4


def _micro_time(at: datetime) -> str:
    # MicroTime must carry the fraction (RFC3339Micro); isoformat drops it at .000000.
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def replica_lease_name(roster: str, identity: str) -> str:
    """A DNS-safe Lease name for a replica, whatever its identity's characters."""
    return f"{roster}-replica-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


class ReplicaRoster:
    def __init__(
        self,
        api: client.CoordinationV1Api,
        *,
        namespace: str,
        roster: str,
        identity: str,
        duration: float,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.roster = roster
        self.identity = identity
        self.duration = duration
        self.name = replica_lease_name(roster, identity)
        self.count = 1  # this replica alone, until the first list says otherwise
        self._counted = float("-inf")

    async def keep(self, api: KubeApi, *, every: float) -> None:
        """Renew and recount through `api` when `every` seconds have passed since the last."""
        if time.monotonic() - self._counted < every:
            return
        try:
            await api.call(self.step)
        except ApiException as exc:  # a 403 or 409: the count stays as it was
            log.warning("replica_count_failed", extra={"error": unavailable(exc).detail})
            return
        except BackendUnavailable as exc:
            log.warning("replica_count_failed", extra={"error": exc.detail})
            return
        self._counted = time.monotonic()

    def step(self) -> int:
        """Renew this replica's Lease and count the live ones (blocking)."""
        now = datetime.now(UTC)
        self._renew(now)
        leases = self.api.list_namespaced_lease(
            self.namespace, label_selector=f"{ROSTER_LABEL}={self.roster}", _request_timeout=TIMEOUT
        )
        live = 0
        for lease in leases.items:
            overdue = self._overdue(lease, now)
            if overdue <= 0:
                live += 1
            elif (
                overdue > _COLLECT_AFTER * self.duration and lease.metadata and lease.metadata.name
            ):
                self._collect(lease.metadata.name)
        self.count = max(1, live)  # this replica serves, even if its renewal raced the list
        return self.count

    def _overdue(self, lease: client.V1Lease, now: datetime) -> float:
        """Seconds past the Lease's expiry (negative while it is live)."""
        spec = lease.spec
        if spec is None or spec.renew_time is None:
            return float("inf")
        held_for = timedelta(seconds=spec.lease_duration_seconds or self.duration)
        return (now - (spec.renew_time + held_for)).total_seconds()

    def _renew(self, now: datetime) -> None:
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.duration)),
            "renewTime": _micro_time(now),
        }
        try:
            self.api.patch_namespaced_lease(
                self.name,
                self.namespace,
                {"spec": spec},
                _content_type="application/merge-patch+json",
                _preload_content=False,  # the answer is not read: no model to build
                _request_timeout=TIMEOUT,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            # The client takes API-shaped dicts as bodies; its stubs only name the models.
            body: Any = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "labels": {ROSTER_LABEL: self.roster}},
                "spec": {**spec, "acquireTime": _micro_time(now)},
            }
            self.api.create_namespaced_lease(
                self.namespace, body, _preload_content=False, _request_timeout=TIMEOUT
            )
            log.info("replica_joined", extra={"lease": self.name, "identity": self.identity})

    def _collect(self, name: str) -> None:
        try:
            self.api.delete_namespaced_lease(name, self.namespace, _request_timeout=TIMEOUT)
            log.info("replica_lease_collected", extra={"lease": name})
        except ApiException as exc:
            if exc.status != 404:  # another replica collected it first
                raise

    def leave(self) -> None:
        """Delete this replica's Lease at shutdown, so peers count it out at once."""
        try:
            self.api.delete_namespaced_lease(self.name, self.namespace, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("replica_leave_failed", extra={"status": exc.status})
        self.count = 1
