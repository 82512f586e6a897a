"""What the API and gateway need from a backend, and what a backend needs
from a driver: the protocols and the data types they carry.

Sessions are addressed by their key (the hash of the session id, see
`sessions.session_key`): backends never see the id itself. Every backend is a
`pooled.PooledBackend` (the pool's rules, written once) over a `Driver`
(where pods run: child processes or ReplicaSets).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from services.provisioner.backends.events import SessionEvent
from services.provisioner.pool import PoolStatus, SessionTimes

M = TypeVar("M")


@dataclass(frozen=True, kw_only=True)
class PodPhases:
    """When a pod got through each step of its start, epoch seconds (None: not yet).

    Kubernetes records these times to the second (`resolution` 1.0): each is the
    start of the second it happened in. The local driver's are its own clock's.
    """

    created: float
    scheduled: float | None
    started: float | None  # containers (the process) started
    ready: float | None
    resolution: float


@dataclass(frozen=True, kw_only=True)
class PodInfo:
    name: str
    node: str
    started_at: float  # epoch seconds
    phase: str = "Running"
    ready: bool = True
    phases: PodPhases | None = None


class MemberState(StrEnum):
    """A pool pod as the page's pool grid shows it."""

    WARM = "warm"  # Ready and free
    STARTING = "starting"  # not Ready yet (free or a session's replacement)
    ASSIGNED = "assigned"  # Ready, a session's
    TERMINATING = "terminating"  # being deleted or stopped


@dataclass(frozen=True, kw_only=True)
class PoolMember:
    """One pool pod: its name and state, nothing of any session."""

    pod: str
    state: MemberState
    created: float  # epoch seconds, to keep the grid in creation order


class NodeState(StrEnum):
    """A node as the page's node strip shows it."""

    READY = "ready"  # takes pods
    NOT_READY = "not_ready"  # joining (not Ready yet) or lost (stopped answering)
    LEAVING = "leaving"  # being deleted or drained (Karpenter's disruption taint)


class CapacityType(StrEnum):
    """How the node is bought: spot capacity can be taken back at two minutes' notice."""

    SPOT = "spot"
    ON_DEMAND = "on-demand"
    UNKNOWN = "unknown"  # no capacity-type label (a node of neither Karpenter nor EKS)


# What each value means, for the API document (the page's generated types carry them).
NODE_STATE_MEANINGS: dict[NodeState, str] = {
    NodeState.READY: "Ready: takes pods",
    NodeState.NOT_READY: "not Ready: joining (not reported yet) or lost (stopped answering)",
    NodeState.LEAVING: "being removed: deleted, cordoned, or chosen by Karpenter to go",
}
CAPACITY_MEANINGS: dict[CapacityType, str] = {
    CapacityType.SPOT: "spot capacity: cheaper, and the cloud may take it back at 2 min notice",
    CapacityType.ON_DEMAND: "on-demand: kept until the cluster removes it (locally: this machine)",
    CapacityType.UNKNOWN: "neither Karpenter's nor EKS's capacity-type label is on the node",
}


@dataclass(frozen=True, kw_only=True)
class NodeBrief:
    """One node: what it is and how many of the pool's pods it holds, nothing of sessions."""

    name: str
    instance_type: str
    capacity_type: CapacityType
    state: NodeState
    pods: int  # pool and session pods on it (the provisioner's own)
    created: float  # epoch seconds, to keep the strip in creation order


@dataclass(frozen=True, kw_only=True)
class SessionInfo:
    key: str
    pod: PodInfo | None
    replacements: int
    created_at: float
    expires_at: float
    last_active: float


@dataclass(frozen=True, kw_only=True)
class Claim:
    session: SessionInfo
    pod: PodInfo
    warm: bool


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """Where the gateway connects for a session's current pod."""

    url: str
    pod: str


class Backend(Protocol):
    """What the API and gateway need from wherever pods run.

    Errors: SessionNotFound for unknown keys (with the reason once ended),
    LimitExceeded at capacity, BackendUnavailable when the pod platform
    cannot be reached.
    """

    async def start(self) -> None:
        """Open clients and start the background loop (refill, trim, reaping)."""
        ...

    async def aclose(self) -> None:
        """Stop the loop; the local backend also stops every child process."""
        ...

    def ready(self) -> bool:
        """True when claims can be served (platform reachable, caches synced)."""
        ...

    def replicas(self) -> int:
        """Provisioner replicas serving now, this one included (at least 1)."""
        ...

    async def claim(self, key: str, *, now: float, expires_at: float) -> Claim:
        """Assign a Ready pod to a new session: warm if one is free, else cold."""
        ...

    async def get(self, key: str) -> SessionInfo: ...

    async def kill(self, key: str) -> PodInfo:
        """Delete the session's pod; a replacement follows (returns the killed pod)."""
        ...

    async def release(self, key: str, reason: str = "deleted") -> None:
        """End the session and delete its pod."""
        ...

    async def touch(self, key: str, now: float) -> None:
        """Record WebSocket activity (the idle timeout counts from the last touch)."""
        ...

    async def endpoint(self, key: str) -> Endpoint | None:
        """Where to reach the session's current pod, or None while it is not Ready.

        It does not wait: the session's `pod_ready` event says when to ask again.
        """
        ...

    async def pool(self) -> PoolStatus: ...

    def subscribe(
        self, key: str
    ) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[SessionEvent]]:
        """Pod lifecycle events of one session, as a queue, while the context is open."""
        ...

    def pool_pods(self) -> list[PoolMember]:
        """Every pool pod with its state, from the backend's own view (no API call)."""
        ...

    def pool_nodes(self) -> list[NodeBrief]:
        """The nodes, each with its count of pool pods, from the backend's own view."""
        ...

    def pool_changed(self) -> asyncio.Event:
        """An event set at the next change of `pool_pods()` or `pool_nodes()`: take it
        before reading them."""
        ...

    async def drain_gateway(self, key: str) -> None:
        """Ask the replica whose gateway holds the session's WebSocket to drain and exit.

        The request reaches that replica as the session's `gateway_drain` event,
        whichever replica was asked.
        """
        ...


class Driver(Protocol[M]):
    """Where pool members run: start, delete, claim and list them.

    A member is a warm pod's handle (`M`). Drivers report what they observe
    of session pods to the `SessionEvents` they were given. Session keys reach
    a driver only once the ended-session memory has been checked; a driver
    raises SessionNotFound for keys it does not know.
    """

    tick: float  # seconds between reconcile passes

    @property
    def unready_detail(self) -> str:
        """Why claims fail while `ready()` is False."""
        ...

    # Pod starts the driver runs at once, or None when starts cost it nothing to
    # speak of (the cluster runs them). With a bound, `claim_cold` starts no pod of
    # its own: it waits for the next member `start_member` makes Ready.
    max_starts: int | None

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def ready(self) -> bool: ...

    async def leading(self) -> bool:
        """Whether this replica refills, trims and reaps now."""
        ...

    def replicas(self) -> int:
        """Provisioner replicas serving now, as last counted (no API call)."""
        ...

    def warm(self) -> list[tuple[M, bool]]:
        """The free pool members, each with whether its pod is Ready."""
        ...

    def assigned(self) -> int:
        """Sessions, including claims under way."""
        ...

    def sessions(self) -> list[SessionTimes]:
        """Sessions with a pod, for reaping."""
        ...

    async def start_member(self) -> None:
        """Add one member to the pool (raises ProvisionerError if it cannot)."""
        ...

    async def delete_member(self, member: M) -> None:
        """Remove a free member, unless a claim took it meanwhile."""
        ...

    async def claim_warm(
        self, member: M, key: str, *, now: float, expires_at: float
    ) -> Claim | None:
        """Assign `member` to the session; None if another claim took it first."""
        ...

    async def claim_cold(self, key: str, *, now: float, expires_at: float, budget: float) -> Claim:
        """A new pod for the session, once Ready; TimeoutError after `budget` seconds.

        On TimeoutError nothing of the session is left behind.
        """
        ...

    async def info(self, key: str) -> SessionInfo: ...

    async def kill(self, key: str) -> PodInfo: ...

    async def end(self, key: str, reason: str) -> str:
        """Delete the session and its pod; returns the pod's name ("" if none)."""
        ...

    async def touch(self, key: str, now: float) -> None: ...

    async def endpoint(self, key: str) -> Endpoint | None: ...

    def pool_pods(self) -> list[PoolMember]:
        """Every pool pod with its state (warm, starting, assigned, terminating)."""
        ...

    def pool_nodes(self) -> list[NodeBrief]:
        """The nodes pool pods may run on, each with its count of them."""
        ...

    def pool_changed(self) -> asyncio.Event:
        """Set at the next change of `pool_pods()` or `pool_nodes()` (a new event after
        each change)."""
        ...

    async def drain_gateway(self, key: str, now: float) -> None:
        """Have `SessionEvents.gateway_drain` reach every replica for this session."""
        ...
