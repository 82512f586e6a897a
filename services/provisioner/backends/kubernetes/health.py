"""Whether the Kubernetes API server answers.

A server that dies closes its sockets and the watches notice; one that hangs
(SIGSTOP, a wedged etcd, a partition that drops packets) keeps them open and
silent, and every request waits for its timeout. Silence alone proves nothing
(a quiet namespace, bookmarks a minute apart), so: when nothing has come from
the API for `quiet` seconds, ask it something cheap (`GET /version`) with a
`timeout`; if that fails the API is unhealthy until something answers again.
Readiness follows, so the load balancer and the claims stop counting on a
replica that cannot reach its state store (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from services.provisioner.errors import BackendUnavailable

log = logging.getLogger(__name__)


class ApiHealth:
    def __init__(
        self,
        probe: Callable[[float], Awaitable[object]],
        *,
        quiet: float = 2.0,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe = probe  # a cheap request, given its timeout in seconds
        self.quiet = quiet
        self.timeout = timeout
        self.clock = clock
        self.last_heard = clock()
        self._healthy = True
        self._task: asyncio.Task[None] | None = None

    def heard(self) -> None:
        """Something came from the API (a response, a watch event, a bookmark).

        Called from the API threads too: one float assignment, no lock needed.
        """
        self.last_heard = self.clock()
        self._healthy = True

    def healthy(self) -> bool:
        return self._healthy

    async def check(self) -> None:
        """One pass: probe if the API has been quiet for too long."""
        if self.clock() - self.last_heard < self.quiet:
            return
        try:
            # The thread pool may be full of requests that hang too: bound the wait here.
            async with asyncio.timeout(self.timeout + 0.5):
                await self.probe(self.timeout)
        except (BackendUnavailable, TimeoutError) as exc:
            if self._healthy:
                log.warning("api_unhealthy", extra={"error": str(exc) or "probe timed out"})
            self._healthy = False
            return
        if not self._healthy:
            log.info("api_healthy")
        self.heard()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.quiet / 4)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
