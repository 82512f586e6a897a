"""Local backend: each "pod" is a real echo-server child process on 127.0.0.1.

It keeps the Kubernetes backend's contract without a cluster: a warm pool kept
full in the background, a cold path when it is empty, and when a session's
process dies a replacement takes over the same session at once (what the
ReplicaSet controller does for a pod). Children die with the provisioner:
SIGTERM on shutdown, and the kernel's parent-death signal if it crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path

from services.common.ratelimit import TokenBucket
from services.provisioner.backends.base import (
    Claim,
    EndedSessions,
    Endpoint,
    EventHub,
    EventKind,
    PodInfo,
    PoolStatus,
    SessionEvent,
    SessionInfo,
    wait_endpoint,
)
from services.provisioner.errors import (
    BackendUnavailable,
    LimitExceeded,
    PodNotRunning,
    SessionNotFound,
)
from services.provisioner.metrics import Metrics
from services.provisioner.pool import max_pods, pods_to_start, pool_empty_error
from services.provisioner.sessions import EndReason, end_reason
from services.provisioner.settings import Settings

log = logging.getLogger(__name__)

_ROOT = Path(__file__).resolve().parents[3]
_STOP_GRACE = 3.0


@dataclass(eq=False, kw_only=True)
class LocalPod:
    name: str
    port: int
    proc: asyncio.subprocess.Process
    started_at: float
    ready: bool = False
    session: str | None = None
    killed: bool = False

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def info(self, node: str) -> PodInfo:
        phase = "Running" if self.alive else "Terminated"
        return PodInfo(
            name=self.name,
            node=node,
            started_at=self.started_at,
            phase=phase,
            ready=self.ready and self.alive,
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
    died_at: float | None = None  # monotonic time the current pod died, until replaced
    failures: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        """Wake everyone waiting for a change of pod or state."""
        self.changed.set()
        self.changed = asyncio.Event()


class LocalBackend:
    def __init__(
        self,
        *,
        pool_size: int,
        max_sessions: int,
        refill_per_second: float,
        idle_timeout: float,
        cold_start_timeout: float,
        metrics: Metrics,
        max_cold_starts: int = 8,
        node: str | None = None,
        python: str = sys.executable,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pool_size = pool_size
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.cold_start_timeout = cold_start_timeout
        self.max_cold_starts = max_cold_starts
        self.metrics = metrics
        self.node = node or f"local-{socket.gethostname()}"
        self.python = python
        self.clock = clock
        self._refill_bucket = TokenBucket(rate=refill_per_second, burst=max(1, pool_size))
        self._warm: deque[LocalPod] = deque()
        self._starting = 0
        self._cold = 0  # cold starts under way for claims
        self._pods: set[LocalPod] = set()
        self._sessions: dict[str, LocalSession] = {}
        self._ended = EndedSessions()
        self._hub = EventHub()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._names = itertools.count()
        self._running = False

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics) -> LocalBackend:
        return cls(
            pool_size=settings.pool_size,
            max_sessions=settings.max_sessions,
            refill_per_second=settings.refill_per_second,
            idle_timeout=settings.session_idle_timeout,
            cold_start_timeout=settings.cold_start_timeout,
            max_cold_starts=settings.max_cold_starts,
            metrics=metrics,
        )

    # lifecycle

    async def start(self) -> None:
        self._running = True
        self._spawn_task(self._refill_loop())
        self._spawn_task(self._reap_loop())

    async def aclose(self) -> None:
        self._running = False
        for task in list(self._tasks):
            task.cancel()
        pods = list(self._pods)
        for pod in pods:
            with contextlib.suppress(ProcessLookupError):
                pod.proc.terminate()
        if pods:
            _, pending = await asyncio.wait(
                [asyncio.ensure_future(p.proc.wait()) for p in pods], timeout=_STOP_GRACE
            )
            for pod in pods:
                if pod.alive:
                    with contextlib.suppress(ProcessLookupError):
                        pod.proc.kill()
            for task in pending:
                await task
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=_STOP_GRACE)

    def ready(self) -> bool:
        return self._running

    # the contract

    async def claim(self, key: str, *, now: float, expires_at: float) -> Claim:
        if not self._running:
            raise BackendUnavailable("the provisioner is shutting down")
        if len(self._sessions) >= self.max_sessions:
            raise LimitExceeded(
                "at_capacity",
                f"all {self.max_sessions} session slots are in use; try again shortly",
                retry_after=5,
            )
        if key in self._sessions:
            raise BackendUnavailable("session key collision")
        if not self._warm_count() and self._cold >= self.max_cold_starts:
            raise pool_empty_error()
        session = LocalSession(key=key, created_at=now, expires_at=expires_at, last_active=now)
        self._sessions[key] = session  # reserve the slot before any await
        pod = self._take_warm()
        warm = pod is not None
        if pod is None:
            self._starting += 1
            self._cold += 1
            try:
                pod = await self._start_ready_pod()
            finally:
                self._cold -= 1
            if pod is None or session.ended:
                self._sessions.pop(key, None)
                if pod is not None:
                    self._stop(pod)
                raise BackendUnavailable("could not start a pod for the session")
        pod.session = key
        session.pod = pod
        session.notify()
        self._wake.set()
        return Claim(session=self._info(session), pod=pod.info(self.node), warm=warm)

    async def get(self, key: str) -> SessionInfo:
        return self._info(self._session(key))

    async def kill(self, key: str) -> PodInfo:
        session = self._session(key)
        pod = session.pod
        if pod is None or not pod.alive:
            raise PodNotRunning()
        pod.killed = True
        session.died_at = time.monotonic()
        self._hub.emit(key, EventKind.POD_KILLED, pod.name, at=self.clock())
        self.metrics.kills.inc()
        log.info("pod_killed", extra={"session": key[:12], "pod": pod.name})
        with contextlib.suppress(ProcessLookupError):
            pod.proc.send_signal(signal.SIGKILL)
        return pod.info(self.node)

    async def release(self, key: str, reason: str = EndReason.DELETED) -> None:
        session = self._session(key)
        del self._sessions[key]
        self._ended.add(key, reason)
        session.ended = True
        session.notify()
        self._hub.emit(
            key,
            EventKind.SESSION_ENDED,
            session.pod.name if session.pod else "",
            at=self.clock(),
            reason=reason,
        )
        if session.pod is not None:
            self._stop(session.pod)
        self._wake.set()
        self.metrics.sessions_ended.labels(reason).inc()
        log.info("session_ended", extra={"session": key[:12], "reason": reason})

    async def touch(self, key: str, now: float) -> None:
        session = self._session(key)
        session.last_active = max(session.last_active, now)

    async def endpoint(self, key: str, *, avoid: str = "", patience: float = 0.0) -> Endpoint:
        async def current() -> tuple[Endpoint | None, asyncio.Event]:
            session = self._session(key)
            pod = session.pod
            if pod is not None and pod.ready and pod.alive:
                return Endpoint(url=f"ws://127.0.0.1:{pod.port}/ws", pod=pod.name), session.changed
            return None, session.changed

        return await wait_endpoint(current, avoid=avoid, patience=patience)

    async def pool(self) -> PoolStatus:
        warm = self._warm_count()
        return PoolStatus(
            warm=warm,
            starting=self._starting,
            assigned=len(self._sessions),
            target=self.pool_size,
            capacity=self.max_sessions,
        )

    def subscribe(
        self, key: str
    ) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[SessionEvent]]:
        return self._hub.subscribe(key)

    # internals

    def _session(self, key: str) -> LocalSession:
        session = self._sessions.get(key)
        if session is None:
            self._ended.check(key)
            raise SessionNotFound()
        return session

    def _info(self, session: LocalSession) -> SessionInfo:
        return SessionInfo(
            key=session.key,
            pod=session.pod.info(self.node) if session.pod else None,
            replacements=session.replacements,
            created_at=session.created_at,
            expires_at=session.expires_at,
            last_active=session.last_active,
        )

    def _warm_count(self) -> int:
        # Pods join the warm pool only once Ready; one that dies there is skipped.
        return sum(1 for pod in self._warm if pod.alive)

    def _take_warm(self) -> LocalPod | None:
        while self._warm:
            pod = self._warm.popleft()
            if pod.alive and pod.ready:
                return pod
        return None

    def _spawn_task(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spawn(self) -> LocalPod:
        """Start an echo-server process on a socket bound here, so no port race is possible."""
        name = f"echo-{secrets.token_hex(3)}-{next(self._names)}"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.listen(256)
            port = sock.getsockname()[1]
            env = {
                **os.environ,
                "LISTEN_FD": str(sock.fileno()),
                "POD_NAME": name,
                "NODE_NAME": self.node,
                "ECHO_PARENT_PID": str(os.getpid()),
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(_ROOT),
            }
            proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "services.echo",
                env=env,
                cwd=_ROOT,
                pass_fds=(sock.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                # Out of the terminal's process group: Ctrl-C stops the provisioner, which
                # then stops its pods, instead of racing it (the pods would be "replaced").
                start_new_session=True,
            )
        finally:
            sock.close()
        pod = LocalPod(name=name, port=port, proc=proc, started_at=self.clock())
        self._pods.add(pod)
        self._spawn_task(self._watch(pod))
        return pod

    async def _probe(self, pod: LocalPod) -> bool:
        """Ready = GET /health answers 200 (it queues on the socket until the server is up)."""
        try:
            async with asyncio.timeout(self.cold_start_timeout):
                reader, writer = await asyncio.open_connection("127.0.0.1", pod.port)
                try:
                    writer.write(b"GET /health HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
                    status = await reader.readline()
                finally:
                    writer.close()
        except (OSError, TimeoutError):
            return False
        return status.startswith(b"HTTP/1.1 200") and pod.alive

    async def _start_ready_pod(self) -> LocalPod | None:
        """Start a pod and wait until Ready. The caller has counted it in `_starting`."""
        try:
            pod = await self._spawn()
            if await self._probe(pod):
                pod.ready = True
                return pod
            self._stop(pod)
            return None
        finally:
            self._starting -= 1

    async def _fill_one(self) -> None:
        pod = await self._start_ready_pod()
        if pod is not None:
            if self._running:
                self._warm.append(pod)
            else:
                self._stop(pod)

    async def _refill_loop(self) -> None:
        while self._running:
            self._wake.clear()
            now = time.monotonic()
            n = pods_to_start(
                warm=self._warm_count(),
                starting=self._starting,
                assigned=len(self._sessions),
                target=self.pool_size,
                max_pods=max_pods(max_sessions=self.max_sessions, pool_size=self.pool_size),
                budget=self._refill_bucket.available(now),
            )
            for _ in range(n):
                self._refill_bucket.take(now)
                self._starting += 1  # counted at once so the next pass sees it
                self._spawn_task(self._fill_one())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await self._wake.wait()

    async def _reap_loop(self) -> None:
        while self._running:
            now = self.clock()
            for key, session in list(self._sessions.items()):
                reason = end_reason(
                    now=now,
                    expires_at=session.expires_at,
                    last_active=session.last_active,
                    idle_timeout=self.idle_timeout,
                )
                if reason is not None and session.pod is not None:
                    with contextlib.suppress(SessionNotFound):
                        await self.release(key, reason)
            await asyncio.sleep(min(1.0, self.idle_timeout / 4))

    def _stop(self, pod: LocalPod) -> None:
        pod.session = None
        if pod.alive:
            with contextlib.suppress(ProcessLookupError):
                pod.proc.terminate()
            self._spawn_task(self._kill_later(pod))

    async def _kill_later(self, pod: LocalPod) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_STOP_GRACE):
                await pod.proc.wait()
                return
        with contextlib.suppress(ProcessLookupError):
            pod.proc.kill()

    async def _watch(self, pod: LocalPod) -> None:
        """Like the ReplicaSet controller: a session's dead pod is replaced at once."""
        await pod.proc.wait()
        self._pods.discard(pod)
        pod.ready = False
        key = pod.session
        session = self._sessions.get(key) if key else None
        if session is None or session.pod is not pod or not self._running:
            return
        now = self.clock()
        if not pod.killed:
            session.died_at = time.monotonic()
            self._hub.emit(key or "", EventKind.POD_KILLED, pod.name, at=now)
        session.notify()
        if session.failures:
            # A pod that keeps dying gets a growing pause, like a crash loop back-off.
            await asyncio.sleep(min(5.0, 0.1 * 2**session.failures))
        await self._replace(session)

    async def _replace(self, session: LocalSession) -> None:
        new = await self._spawn()
        if session.ended or not self._running:
            self._stop(new)
            return
        new.session = session.key
        session.pod = new
        session.replacements += 1
        self._hub.emit(session.key, EventKind.POD_REPLACED, new.name, at=self.clock())
        log.info("pod_replaced", extra={"session": session.key[:12], "pod": new.name})
        if await self._probe(new) and session.pod is new and not session.ended:
            new.ready = True
            session.failures = 0
            if session.died_at is not None:
                self.metrics.replacement_seconds.observe(time.monotonic() - session.died_at)
                session.died_at = None
            self._hub.emit(session.key, EventKind.POD_READY, new.name, at=self.clock())
            session.notify()
        elif new.alive and session.pod is new:
            session.failures += 1
            with contextlib.suppress(ProcessLookupError):
                new.proc.kill()
