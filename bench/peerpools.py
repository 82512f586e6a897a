"""The two warm pools `bench.peers` compares, behind one shape: how many members are
warm, claims at a rate, whether a phase's objects are all gone, and the processes
that do the system's own work.

pingpod's side is a provisioner (Kubernetes backend) run with its ServiceAccount's
token and the Role the stack gives it; agent-sandbox's is in ``bench.sandboxload``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from bench.overload import CLIENT_TIMEOUT, claims
from infra.rbac import (
    POOL_MEMBERS,
    SERVICE_ACCOUNT_NAME,
    node_reader,
    provisioner_role,
    provisioner_role_binding,
)
from scripts.controlplane import ControlPlane
from scripts.controlplane.apply import apply

# Requests this benchmark makes to watch a phase (not part of any claim cycle),
# by "VERB resource" as `bench.cycle.api_counts` keys them.
Counted = Counter[str]
REFUSED = ("429", "503")


@dataclass
class Load:
    """What the claims of one phase got: ms from sending a claim to its answer (ours:
    the 201; theirs: bound) and to Ready, for every served claim; outcomes by name."""

    answered: list[float] = field(default_factory=list)
    ready: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def served(self) -> int:
        return self.outcomes["warm"] + self.outcomes["cold"]

    @property
    def refused(self) -> int:
        return sum(self.outcomes[name] for name in REFUSED)

    @property
    def errors(self) -> int:
        return self.outcomes.total() - self.served - self.refused


class Pool(Protocol):
    def warm(self) -> int: ...

    async def claims(self, rate: float, seconds: float) -> Load: ...

    def leftovers(self, size: int) -> str:
        """What of the phase's claims is still there ("" once only the pool is left)."""
        ...

    def controller_pid(self) -> int:
        """The process that does the system's own work (not the control plane's)."""
        ...


def count(cp: ControlPlane, path: str, counted: Counted) -> int:
    """Objects at a list ``path``, terminating ones included."""
    counted[f"LIST {path.rsplit('/', 1)[1]}"] += 1
    return len(cp.admin(timeout=30.0).json("GET", path)["items"])


def provisioner_credential(
    cp: ControlPlane, namespace: str, *, pool_members: str = POOL_MEMBERS
) -> Path:
    """The provisioner's ServiceAccount with the stack's Role (for POOL_MEMBERS
    `pool_members`) and node reader, as a kubeconfig."""
    role = provisioner_role(namespace, pool_members=pool_members)
    apply(cp, [role, provisioner_role_binding(namespace), *node_reader(namespace)])
    token = cp.service_account_token(namespace, SERVICE_ACCOUNT_NAME, create=True)
    return cp.kubeconfig_for_token(token, namespace)


class PingpodPool:
    """A running provisioner's pool (members: bare pods, or ReplicaSets of one pod)."""

    def __init__(self, cp: ControlPlane, namespace: str, base: str, pid: int, counted: Counted):
        self.cp, self.namespace, self.base, self.pid = cp, namespace, base, pid
        self.counted = counted

    def warm(self) -> int:
        return int(httpx.get(self.base + "/pool", timeout=CLIENT_TIMEOUT).json()["warm"])

    async def claims(self, rate: float, seconds: float) -> Load:
        answers = await claims(self.base, rate, seconds)
        served = answers.by_status.get("warm", []) + answers.by_status.get("cold", [])
        outcomes = Counter({name: len(values) for name, values in answers.by_status.items()})
        # The 201 comes once the pod is Ready: answered and Ready are the same moment.
        return Load(answered=list(served), ready=list(served), outcomes=outcomes)

    def leftovers(self, size: int) -> str:
        base = f"/api/v1/namespaces/{self.namespace}"
        pods = count(self.cp, f"{base}/pods", self.counted)
        sets = count(
            self.cp, f"/apis/apps/v1/namespaces/{self.namespace}/replicasets", self.counted
        )
        return "" if pods <= size and sets <= size else f"pods={pods} replicasets={sets}"

    def controller_pid(self) -> int:
        return self.pid
