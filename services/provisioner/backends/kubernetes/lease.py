"""Leader election on a coordination.k8s.io/v1 Lease.

Only the holder refills the pool and reaps expired sessions, so replicas do
not race each other creating ReplicaSets. Acquire and renew are updates with
the Lease's resourceVersion as a precondition: of two replicas, one wins.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)
TIMEOUT = 10  # seconds, per API request


class LeaderLease:
    def __init__(
        self,
        api: client.CoordinationV1Api,
        *,
        namespace: str,
        name: str,
        identity: str,
        duration: float,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.is_leader = False

    def step(self) -> bool:
        """Acquire or renew (blocking). Returns whether this replica now leads."""
        try:
            self.is_leader = self._step(datetime.now(UTC))
        except ApiException as exc:
            if exc.status != 409:
                log.warning("lease_error", extra={"status": exc.status})
            self.is_leader = False
        return self.is_leader

    def _step(self, now: datetime) -> bool:
        try:
            lease = self.api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            return self._create(now)
        spec = lease.spec or client.V1LeaseSpec()
        renewed = spec.renew_time
        held_for = timedelta(seconds=spec.lease_duration_seconds or self.duration)
        expired = renewed is None or renewed + held_for < now
        if spec.holder_identity not in (self.identity, None, "") and not expired:
            return False
        if spec.holder_identity != self.identity:
            spec.holder_identity = self.identity
            spec.acquire_time = now
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
            log.info("lease_acquired", extra={"lease": self.name, "identity": self.identity})
        spec.renew_time = now
        spec.lease_duration_seconds = max(1, round(self.duration))
        lease.spec = spec
        # The read's resourceVersion rides along: a concurrent writer makes this a 409.
        self.api.replace_namespaced_lease(
            self.name, self.namespace, lease, _request_timeout=TIMEOUT
        )
        return True

    def _create(self, now: datetime) -> bool:
        lease = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.name),
            spec=client.V1LeaseSpec(
                holder_identity=self.identity,
                lease_duration_seconds=max(1, round(self.duration)),
                acquire_time=now,
                renew_time=now,
                lease_transitions=0,
            ),
        )
        self.api.create_namespaced_lease(self.namespace, lease, _request_timeout=TIMEOUT)
        log.info("lease_acquired", extra={"lease": self.name, "identity": self.identity})
        return True

    def release(self) -> None:
        """Hand the Lease back at shutdown so another replica takes over at once."""
        if not self.is_leader:
            return
        try:
            lease = self.api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=TIMEOUT
            )
            if lease.spec and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                lease.spec.renew_time = None
                self.api.replace_namespaced_lease(
                    self.name, self.namespace, lease, _request_timeout=TIMEOUT
                )
        except ApiException as exc:
            log.warning("lease_release_failed", extra={"status": exc.status})
        self.is_leader = False
