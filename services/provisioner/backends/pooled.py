"""The pool's asyncio adapter: one Backend for every driver.

`PoolCore` decides (capacity, cold-start bound, refill, trim, reaping) and
`SessionEvents` says what happened to sessions; this runs them against a
`Driver` on the event loop. The claim path lives here, once
(docs/architecture.md, "Claim protocol").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from services.provisioner.backends.base import (
    Claim,
    Driver,
    Endpoint,
    NodeBrief,
    PodInfo,
    PoolMember,
    SessionInfo,
)
from services.provisioner.backends.events import SessionEvent, SessionEvents
from services.provisioner.backends.tasks import Tasks
from services.provisioner.errors import BackendUnavailable, ProvisionerError, SessionNotFound
from services.provisioner.metrics import Metrics
from services.provisioner.pool import PoolCore, PoolStatus
from services.provisioner.sessions import EndReason

log = logging.getLogger(__name__)

M = TypeVar("M")
_STOP_GRACE = 3.0


class PooledBackend(Generic[M]):
    def __init__(
        self,
        driver: Driver[M],
        *,
        core: PoolCore,
        events: SessionEvents,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.driver = driver
        self.core = core
        self.events = events
        self.metrics = metrics
        self.clock = clock
        self._tasks = Tasks()
        self._wake = asyncio.Event()
        self._running = False
        # Members this replica's claims are writing to (by identity: a driver's members
        # need not be hashable). A concurrent claim here skips them: it would only lose.
        self._claiming: set[int] = set()
        events.on_claim = self._claimed
        events.on_member_ready = core.member_ready

    def _claimed(self) -> None:
        self.core.claimed(time.monotonic())
        self._wake.set()  # the target may grow: refill now, not at the next tick

    # lifecycle

    async def start(self) -> None:
        await self.driver.open()
        self._running = True
        self._tasks.spawn(self._loop())

    async def aclose(self) -> None:
        self._running = False
        await self._tasks.close(_STOP_GRACE)
        await self.driver.close()

    def ready(self) -> bool:
        return self._running and self.driver.ready()

    # sessions

    def replicas(self) -> int:
        return self.driver.replicas()

    async def claim(self, key: str, *, now: float, expires_at: float) -> Claim:
        """A Ready pod for the session, or an error within the claim's time budget.

        Past `MAX_COLD_STARTS` waiting claims, or once `CLAIM_TIMEOUT` has gone by,
        the answer is 429 `pool_empty`: claims are shed, never queued.
        """
        began = time.monotonic()
        if not self._running:
            raise BackendUnavailable("the provisioner is shutting down")
        if not self.driver.ready():
            raise BackendUnavailable(self.driver.unready_detail)
        self.core.check_capacity(self.driver.assigned())
        candidates = [member for member, ready in self.driver.warm() if ready]
        random.shuffle(candidates)  # replicas claiming at once rarely pick the same one
        for member in candidates:
            if time.monotonic() - began >= self.core.claim_timeout:
                break  # out of time: each lost race cost a round trip (shed below)
            if id(member) in self._claiming:
                continue
            self._claiming.add(id(member))
            try:
                claim = await self.driver.claim_warm(member, key, now=now, expires_at=expires_at)
            finally:
                self._claiming.discard(id(member))
            if claim is not None:
                self._wake.set()
                return claim
            self.metrics.rejections.labels("claim_conflict").inc()
        budget = self.core.cold_budget(time.monotonic() - began)
        if budget <= 0:
            raise self.core.cold_too_slow()
        self.core.begin_cold()
        if self.core.max_starts is not None:
            self._wake.set()  # the next pass starts the pod this claim waits for
        try:
            claim = await self.driver.claim_cold(key, now=now, expires_at=expires_at, budget=budget)
        except TimeoutError:
            raise self.core.cold_too_slow() from None
        finally:
            self.core.end_cold()
        self._wake.set()
        return claim

    async def get(self, key: str) -> SessionInfo:
        self.events.ended.check(key)
        return await self.driver.info(key)

    async def kill(self, key: str) -> PodInfo:
        self.events.ended.check(key)
        pod = await self.driver.kill(key)
        self.metrics.kills.inc()
        log.info("pod_killed", extra={"session": key[:12], "pod": pod.name})
        return pod

    async def release(self, key: str, reason: str = EndReason.DELETED) -> None:
        self.events.ended.check(key)
        pod = await self.driver.end(key, reason)
        self.events.session_ended(key, reason, pod)
        self.metrics.sessions_ended.labels(reason).inc()
        log.info("session_ended", extra={"session": key[:12], "reason": reason})
        self._wake.set()

    async def touch(self, key: str, now: float) -> None:
        self.events.ended.check(key)
        await self.driver.touch(key, now)

    async def endpoint(self, key: str) -> Endpoint | None:
        self.events.ended.check(key)
        return await self.driver.endpoint(key)

    async def pool(self) -> PoolStatus:
        # Every replica follows demand (claims seen in the watch), not only the one that refills.
        self.core.update_target(time.monotonic())
        return self._status()

    def subscribe(
        self, key: str
    ) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[SessionEvent]]:
        return self.events.subscribe(key)

    def pool_pods(self) -> list[PoolMember]:
        return self.driver.pool_pods()

    def pool_nodes(self) -> list[NodeBrief]:
        return self.driver.pool_nodes()

    def pool_changed(self) -> asyncio.Event:
        return self.driver.pool_changed()

    async def drain_gateway(self, key: str) -> None:
        self.events.ended.check(key)
        await self.driver.drain_gateway(key, self.clock())
        log.info("gateway_drain_requested", extra={"session": key[:12]})

    # the pool

    def _status(self) -> PoolStatus:
        warm = self.driver.warm()
        ready = sum(1 for _, is_ready in warm if is_ready)
        return self.core.status(
            ready=ready, unready=len(warm) - ready, assigned=self.driver.assigned()
        )

    async def _loop(self) -> None:
        while self._running:
            try:
                if await self.driver.leading():
                    await self._reconcile()
            except ProvisionerError as exc:
                log.warning("reconcile_failed", extra={"error": exc.detail})
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.driver.tick):
                    await self._wake.wait()

    async def _reconcile(self) -> None:
        await self._reap()
        self.core.update_target(time.monotonic())
        status = self._status()
        for _ in range(self.core.refill(status, time.monotonic())):
            self._tasks.spawn(self._start_member())
        for member in self.core.trim(status, self.driver.warm()):
            try:
                await self.driver.delete_member(member)
            except ProvisionerError as exc:
                log.warning("trim_failed", extra={"error": exc.detail})

    async def _reap(self) -> None:
        for key, reason in self.core.expired(self.driver.sessions(), self.clock()):
            try:
                await self.release(key, reason)
            except SessionNotFound:
                pass  # it ended meanwhile
            except ProvisionerError as exc:
                log.warning(
                    "reap_failed",
                    extra={"session": key[:12], "reason": reason, "error": exc.detail},
                )

    async def _start_member(self) -> None:
        try:
            await self.driver.start_member()
        except ProvisionerError as exc:
            log.warning("refill_failed", extra={"error": exc.detail})
        finally:
            self.core.refilled()
