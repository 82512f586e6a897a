"""agent-sandbox v1.0.1, built from source, on the test control plane: its controller
runs with its own ServiceAccount and binds claims from its warm pool (warm) or with a
new Sandbox (cold), through the client `bench.peers` measures it with."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client

from bench.k8s import TEMPLATE
from bench.sandboxload import SandboxPool
from scripts.controlplane import ControlPlane
from scripts.controlplane import agentsandbox as sandbox
from tests.support.polling import WAIT, wait_for


@pytest.fixture
def new_pool(
    control_plane: ControlPlane, agent_sandbox: sandbox.AgentSandbox
) -> Iterator[Callable[[int], SandboxPool]]:
    """A SandboxWarmPool of the given size in a namespace of its own, deleted afterwards."""
    namespaces: list[str] = []

    def make(size: int) -> SandboxPool:
        namespaces.append(f"peers-{uuid.uuid4().hex[:8]}")
        pool = SandboxPool(control_plane, namespaces[-1], agent_sandbox, Counter())
        pool.create(size, TEMPLATE)
        return pool

    yield make
    for namespace in namespaces:
        control_plane.admin().raw("DELETE", f"/api/v1/namespaces/{namespace}")


def test_controller_runs_as_its_own_service_account(
    control_plane: ControlPlane, agent_sandbox: sandbox.AgentSandbox
) -> None:
    with control_plane.api_client(agent_sandbox.kubeconfig) as api:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        review = client.AuthenticationV1Api(api).create_self_subject_review(body)  # pyright: ignore[reportArgumentType]
    assert review.status is not None and review.status.user_info is not None
    user = review.status.user_info
    assert user.username == "system:serviceaccount:agent-sandbox-system:agent-sandbox-controller"
    assert "system:masters" not in (user.groups or [])


def test_claim_on_a_full_pool_is_warm_and_the_pool_refills(
    new_pool: Callable[[int], SandboxPool],
) -> None:
    pool = new_pool(2)
    wait_for("a full warm pool", lambda: pool.warm() == 2, WAIT)
    load = asyncio.run(pool.claims(rate=1, seconds=1))
    assert dict(load.outcomes) == {"warm": 1}
    assert load.answered[0] <= load.ready[0]

    # The claim was deleted once Ready: its Sandbox and pod go, a new member comes.
    def refilled() -> bool:
        return pool.warm() == 2 and not pool.leftovers(2)

    wait_for("the pool refilled, the claim gone", refilled, WAIT)


def test_claim_on_an_empty_pool_starts_cold(new_pool: Callable[[int], SandboxPool]) -> None:
    pool = new_pool(0)
    load = asyncio.run(pool.claims(rate=1, seconds=1))
    assert dict(load.outcomes) == {"cold": 1}
    wait_for("the claim, its Sandbox and pod gone", lambda: not pool.leftovers(0), WAIT)
