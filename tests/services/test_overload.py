"""Overload: claims are answered (201, or 429 with Retry-After), never queued, and
the local backend never has more than `MAX_STARTS` pod starts in flight, all of
them started off the event loop. Behaviour only: the latencies are
`bench.overload`'s business."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest

from services.provisioner.backends import make_backend
from services.provisioner.backends.base import Claim
from services.provisioner.backends.local import MAX_STARTS, LocalDriver, LocalPod
from services.provisioner.backends.pooled import PooledBackend
from services.provisioner.errors import LimitExceeded
from services.provisioner.metrics import Metrics
from services.provisioner.settings import Settings
from tests.support.polling import eventually
from tests.support.servers import StartProvisioner

NOW = 1_800_000_000.0


async def test_a_flood_of_claims_is_answered_201_or_429_never_queued(
    start_provisioner: StartProvisioner,
) -> None:
    server = start_provisioner(
        POOL_SIZE="2",
        MAX_COLD_STARTS="2",
        MAX_SESSIONS="200",
        REFILL_PER_SECOND="50",
        RATE_LIMIT_PER_MINUTE="1000000",
        RATE_LIMIT_BURST="100000",
        CLAIM_TIMEOUT="1.5",
    )
    server.wait_pool(2)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=server.url, timeout=10, limits=limits) as client:
        sends = []
        for _ in range(100):  # 50 claims a second for 2 s, whatever the answers
            sends.append(asyncio.create_task(client.post("/session")))
            await asyncio.sleep(0.02)
        replies = await asyncio.gather(*sends)  # a time-out would raise here
        statuses = sorted({r.status_code for r in replies})
        assert statuses == [201, 429], [r.text for r in replies if r.status_code >= 500][:3]
        for reply in replies:
            if reply.status_code == 429:
                assert int(reply.headers["Retry-After"]) >= 1
                body = reply.json()
                assert set(body) == {"error", "detail"} and body["error"] == "pool_empty"
        claimed = [r.json() for r in replies if r.status_code == 201]
        assert len({b["pod"]["name"] for b in claimed}) == len(claimed)
        for body in claimed:
            assert (await client.delete(f"/session/{body['session_id']}")).status_code == 204


@contextlib.asynccontextmanager
async def local_backend(**overrides: Any) -> AsyncIterator[PooledBackend[LocalPod]]:
    settings = Settings(**{"backend": "local", **overrides})
    backend = cast(PooledBackend[LocalPod], make_backend(settings, Metrics(), clock=lambda: NOW))
    await backend.start()
    try:
        yield backend
    finally:
        await backend.aclose()


async def test_pod_starts_in_flight_never_pass_the_bound_and_run_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = {
        "pool_size": 6,
        "refill_per_second": 1000.0,
        "max_cold_starts": 4,
        "max_sessions": 100,
        "claim_timeout": 0.5,
    }
    async with local_backend(**settings) as backend:
        driver = backend.driver
        assert isinstance(driver, LocalDriver)

        async def full() -> bool:
            return (await backend.pool()).warm == 6

        await eventually(full, "a full pool")
        spawned_on: list[threading.Thread] = []
        popen = driver._popen

        def recording(name: str) -> Any:
            spawned_on.append(threading.current_thread())
            return popen(name)

        monkeypatch.setattr(driver, "_popen", recording)
        in_flight: list[int] = []
        refilling: list[int] = []
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                in_flight.append(driver.starting)
                refilling.append(backend.core.refilling)
                await asyncio.sleep(0.005)

        sampler = asyncio.create_task(sample())
        keys = (f"{n:040x}" for n in range(10**6))
        outcomes: list[Claim | BaseException] = []
        for _ in range(4):  # waves of claims against a pool of 6
            wave = [backend.claim(next(keys), now=NOW, expires_at=NOW + 900) for _ in range(15)]
            outcomes += await asyncio.gather(*wave, return_exceptions=True)
        claims = [o for o in outcomes if isinstance(o, Claim)]
        for c in claims[:4]:  # kills: the replacements take start places too
            await backend.kill(c.session.key)
        await eventually(full, "the pool to refill")
        stop.set()
        await sampler

        shed = [o for o in outcomes if isinstance(o, LimitExceeded)]
        assert len(claims) + len(shed) == len(outcomes)  # nothing else: no 5xx, no hang
        assert claims and shed
        assert {(e.code, e.retry_after) for e in shed} == {("pool_empty", 1)}
        assert len({c.pod.name for c in claims}) == len(claims)
        assert 1 <= driver.most_starting <= MAX_STARTS
        assert max(in_flight) <= MAX_STARTS and max(refilling) <= MAX_STARTS
        assert spawned_on and threading.main_thread() not in spawned_on
