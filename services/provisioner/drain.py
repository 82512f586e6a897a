"""This replica's graceful exit on request ("kill my gateway").

The order is what lets the visitor's session carry on through another
replica (docs/architecture.md, "Kill my gateway"):

1. `/ready` fails at once, so the load balancer stops sending new requests
   and WebSockets here (on EKS: the readiness probe fails, the pod leaves the
   Service's endpoints and the load balancer controller deregisters it);
2. after `DRAIN_DELAY` seconds, time for that to happen, every gateway
   socket here closes with 1012 (service restart) and every pool feed ends,
   so the pages reconnect, through the load balancer, to another replica;
3. the process stops through uvicorn's graceful shutdown, as on the kubelet's
   SIGTERM (the Lease is handed back), but with exit status 0: a planned exit.
   Its container is restarted in place (`restartPolicy: Always`) and is
   routed to again once `/ready` passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

_CLOSE_GRACE = 0.5  # seconds for the close frames to go out before the exit


class ReplicaDrain:
    def __init__(
        self,
        *,
        delay: float,
        stop: Callable[[], None],
        on_closing: list[Callable[[], None]] | None = None,
    ) -> None:
        self.delay = delay
        self.draining = False  # /ready fails from here on
        self.closing = asyncio.Event()  # sockets close from here on
        self._on_closing = list(on_closing or [])
        self._stop = stop
        self._task: asyncio.Task[None] | None = None

    def on_closing(self, callback: Callable[[], None]) -> None:
        self._on_closing.append(callback)

    def begin(self, why: str) -> bool:
        """Start draining (once); False if this replica is draining already."""
        if self.draining:
            return False
        self.draining = True
        log.warning("replica_draining", extra={"why": why, "delay": self.delay})
        self._task = asyncio.create_task(self._run(), name="replica-drain")
        return True

    async def _run(self) -> None:
        await asyncio.sleep(self.delay)
        log.warning("replica_closing")
        self.closing.set()
        for callback in self._on_closing:
            try:
                callback()
            except Exception:
                log.exception("drain_callback_failed")
        await asyncio.sleep(_CLOSE_GRACE)
        self._stop()

    async def aclose(self) -> None:
        """At shutdown: a drain under way has nothing left to do."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
