"""Per-address limits hold for the deployment, whatever the live replica count:
2 and 3 provisioner replicas (real processes, Kubernetes backend) behind the
round-robin proxy that plays the ALB (tests/k8s/lb.py). Each replica spends
its share of the budget (services/common/ratelimit.py), counting its live peers
from their Leases (services/provisioner/backends/kubernetes/roster.py)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import wait_for
from tests.services.helpers import Server

from .lb import RoundRobinProxy
from .rig import Rig

pytestmark = pytest.mark.k8s

BURST, PER_MINUTE, WS_PER_IP = 6, 6, 4


def replicas_seen(server: Server) -> int:
    text = httpx.get(server.url + "/metrics", timeout=5).text
    match = re.search(r"^pingpod_provisioner_replicas (\S+)$", text, re.MULTILINE)
    return int(float(match.group(1))) if match else 0


@contextlib.contextmanager
def deployment(rig: Rig, count: int, **env: str) -> Iterator[RoundRobinProxy]:
    servers = [rig.start(POOL_SIZE="2", **env) for _ in range(count)]
    for server in servers:
        wait_for(f"{count} live replicas", lambda s=server: replicas_seen(s) == count, timeout=30)
    proxy = RoundRobinProxy([s.port for s in servers]).start()
    try:
        yield proxy
    finally:
        proxy.stop()
        for server in servers:
            server.stop()


@pytest.mark.parametrize("count", [2, 3])
def test_one_address_gets_the_claim_budget_of_the_deployment(rig: Rig, count: int) -> None:
    env = {"RATE_LIMIT_BURST": str(BURST), "RATE_LIMIT_PER_MINUTE": str(PER_MINUTE)}
    with deployment(rig, count, **env) as proxy, httpx.Client(base_url=proxy.url) as http:
        started = time.monotonic()
        answers = [http.post("/session", timeout=30) for _ in range(4 * BURST)]
        elapsed = time.monotonic() - started
        limited = [
            a for a in answers if a.status_code == 429 and a.json()["error"] == "rate_limited"
        ]
        granted = len(answers) - len(limited)
        for answer in answers:
            if answer.status_code == 201:
                http.delete(f"/session/{answer.json()['session_id']}", timeout=30)
    budget = BURST + PER_MINUTE / 60 * elapsed
    print(f"replicas={count} granted={granted} budget={budget:.1f} elapsed={elapsed:.1f}s")
    assert limited, "the address was never limited"
    # Each replica rounds its share down to whole claims (at most one lost per replica),
    # and a replica's share is never below one claim.
    assert budget - count < granted <= budget + count - 1


@pytest.mark.parametrize("count", [2, 3])
async def test_one_address_gets_the_websockets_of_the_deployment(rig: Rig, count: int) -> None:
    with deployment(rig, count, WS_PER_IP=str(WS_PER_IP)) as proxy:
        async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as http:
            sessions = [(await http.post("/session")).json() for _ in range(2 * WS_PER_IP)]
            async with contextlib.AsyncExitStack() as stack:
                opened, refusals = 0, []
                for session in sessions:
                    try:
                        await stack.enter_async_context(connect(proxy.ws + session["ws_url"]))
                        opened += 1
                    except InvalidStatus as exc:
                        refusals.append(exc.response.status_code)
            for session in sessions:
                await http.delete(f"/session/{session['session_id']}")
    print(f"replicas={count} opened={opened} refused={len(refusals)}")
    assert refusals and set(refusals) == {429}, "the address was never limited"
    # Each replica allows its share rounded up: at most one more per replica but the first.
    assert WS_PER_IP <= opened <= WS_PER_IP + count - 1
