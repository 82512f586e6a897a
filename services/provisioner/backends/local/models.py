"""The local driver's records: a pod (one echo process) and a session, each
read out as the backend's `PodInfo`, `SessionInfo` and pool-grid state; and
the machine itself as the one node of the node strip."""

from __future__ import annotations

import platform
from dataclasses import dataclass

from services.provisioner.backends.base import (
    CapacityType,
    MemberState,
    NodeBrief,
    NodeState,
    PodInfo,
    PodPhases,
    SessionInfo,
)
from services.provisioner.backends.local.process import Child


@dataclass(eq=False, kw_only=True)
class LocalPod:
    name: str
    port: int
    proc: Child
    # The local equivalents of a pod's start phases, epoch seconds: the driver
    # decided to start it (created), a start slot was free (scheduled: the slots
    # are this driver's scheduler), the process was spawned (started), and its
    # /health answered (ready).
    created_at: float
    scheduled_at: float
    started_at: float
    ready_at: float | None = None
    ready: bool = False
    stopping: bool = False  # signalled to stop; gone once the process has exited
    session: str | None = None

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    @property
    def state(self) -> MemberState:
        if self.stopping or not self.alive:
            return MemberState.TERMINATING
        if not self.ready:
            return MemberState.STARTING
        return MemberState.ASSIGNED if self.session else MemberState.WARM

    def info(self, node: str) -> PodInfo:
        phase = "Running" if self.alive else "Terminated"
        return PodInfo(
            name=self.name,
            node=node,
            started_at=self.started_at,
            phase=phase,
            ready=self.ready and self.alive,
            phases=PodPhases(
                created=self.created_at,
                scheduled=self.scheduled_at,
                started=self.started_at,
                ready=self.ready_at,
                resolution=0.001,
            ),
        )


@dataclass(eq=False, kw_only=True)
class LocalSession:
    key: str
    created_at: float
    expires_at: float
    last_active: float
    pod: LocalPod | None = None
    replacements: int = 0
    ended: bool = False
    failures: int = 0

    def info(self, node: str) -> SessionInfo:
        return SessionInfo(
            key=self.key,
            pod=self.pod.info(node) if self.pod else None,
            replacements=self.replacements,
            created_at=self.created_at,
            expires_at=self.expires_at,
            last_active=self.last_active,
        )


def machine_node(host: str, *, pods: int, since: float) -> NodeBrief:
    """This machine as a node: its host name, its architecture as the instance type.

    It is never taken back from under a session, which is what "on-demand"
    tells a visitor on the page (docs/architecture.md, "The pool feed").
    """
    return NodeBrief(
        name=host,
        instance_type=platform.machine() or "local",
        capacity_type=CapacityType.ON_DEMAND,
        state=NodeState.READY,
        pods=pods,
        created=since,
    )
