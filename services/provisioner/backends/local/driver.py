"""Local driver: each "pod" is a real echo-server child process on 127.0.0.1.

It keeps the Kubernetes driver's contract without a cluster: warm members,
a cold start when there are none, and when a session's process dies a
replacement takes over the same session at once (what the ReplicaSet
controller does for a pod). Children die with the provisioner: SIGTERM on
shutdown, and the kernel's parent-death signal if it crashes.

A start costs this machine about a core for a fraction of a second (a Python
interpreter importing uvicorn), so at most `MAX_STARTS` run at once, and a
cold claim waits for the pool's next Ready pod instead of starting one of its
own. Processes are started on a thread and their exit is watched through a
pidfd: nothing blocking runs on the event loop (`process`; the readiness
probe: `probe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

from services.provisioner.backends.base import (
    Claim,
    Endpoint,
    NodeBrief,
    PodInfo,
    PoolMember,
    SessionInfo,
)
from services.provisioner.backends.events import SessionEvents
from services.provisioner.backends.local.models import LocalPod, LocalSession, machine_node
from services.provisioner.backends.local.probe import health_ok
from services.provisioner.backends.local.process import (
    Child,
    kill_after,
    kill_orphan,
    popen_echo,
    send,
    stop_all,
)
from services.provisioner.backends.tasks import Tasks
from services.provisioner.errors import BackendUnavailable, PodNotRunning, SessionNotFound
from services.provisioner.pool import SessionTimes
from services.provisioner.settings import Settings

log = logging.getLogger(__name__)

_STOP_GRACE = 3.0
MAX_STARTS = 2  # echo servers starting at once (spawned, not yet Ready or failed)


class LocalDriver:
    tick = 0.2
    unready_detail = "the local backend is not running"
    max_starts: int | None = MAX_STARTS

    def __init__(
        self,
        *,
        events: SessionEvents,
        cold_start_timeout: float,
        node: str | None = None,
        python: str = sys.executable,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.events = events
        self.cold_start_timeout = cold_start_timeout
        self.host = socket.gethostname()
        self.node = node or self.host  # the node strip's one node, and every pod's
        self.python = python
        self.clock = clock
        self.started_at = clock()
        self._warm: deque[LocalPod] = deque()
        self._waiting: deque[asyncio.Future[LocalPod]] = deque()  # cold claims, oldest first
        self._pods: set[LocalPod] = set()
        self._sessions: dict[str, LocalSession] = {}
        self._tasks = Tasks()
        self._names = itertools.count()
        self._open = False
        self._slots = asyncio.Semaphore(MAX_STARTS)
        # Spawning threads live as long as the driver: a child's parent-death signal
        # follows the thread that forked it.
        self._spawner = ThreadPoolExecutor(max_workers=MAX_STARTS, thread_name_prefix="spawn")
        self.starting = 0  # starts in flight (holding a slot)
        self.most_starting = 0  # the most ever in flight at once
        self._changed = asyncio.Event()

    @classmethod
    def from_settings(
        cls, settings: Settings, events: SessionEvents, *, clock: Callable[[], float] = time.time
    ) -> LocalDriver:
        return cls(events=events, cold_start_timeout=settings.cold_start_timeout, clock=clock)

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False  # from now on a dead pod is not replaced
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(BackendUnavailable("the provisioner is shutting down"))
        await stop_all([pod.proc for pod in self._pods], _STOP_GRACE)
        await self._tasks.close(_STOP_GRACE)
        # A start still under way finishes first, so that its process is stopped too
        # (by `_spawn`, or by `kill_orphan` once its done callback runs).
        await asyncio.to_thread(self._spawner.shutdown, wait=True, cancel_futures=True)
        await asyncio.sleep(0)

    def ready(self) -> bool:
        return self._open

    async def leading(self) -> bool:
        return True  # one process, one leader

    def replicas(self) -> int:
        return 1  # the local backend's pods are this process's children: one replica

    # listing

    def warm(self) -> list[tuple[LocalPod, bool]]:
        # Pods join the warm pool only once Ready; one that dies there is skipped.
        return [(pod, pod.ready) for pod in self._warm if pod.alive]

    def assigned(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[SessionTimes]:
        return [
            SessionTimes(key=s.key, expires_at=s.expires_at, last_active=s.last_active)
            for s in self._sessions.values()
            if s.pod is not None
        ]

    def pool_pods(self) -> list[PoolMember]:
        """Every echo process this driver runs, from its own process table."""
        return [
            PoolMember(pod=pod.name, state=pod.state, created=pod.created_at) for pod in self._pods
        ]

    def pool_nodes(self) -> list[NodeBrief]:
        """This machine, the one node, with every echo process it runs."""
        return [machine_node(self.node, pods=len(self._pods), since=self.started_at)]

    def pool_changed(self) -> asyncio.Event:
        return self._changed

    def _notify(self) -> None:
        """A member appeared, changed state or went: wake whoever waits on `changed()`."""
        self._changed.set()
        self._changed = asyncio.Event()

    # members

    async def start_member(self) -> None:
        asked = time.monotonic()
        pod = await self._start_ready_pod()
        if pod is None:
            raise BackendUnavailable("a pool pod did not become Ready")
        self.events.member_ready(time.monotonic() - asked)
        self._deliver(pod)

    def _deliver(self, pod: LocalPod) -> None:
        """A Ready free pod goes to the oldest waiting cold claim, else to the warm pool."""
        if not self._open:
            self._stop(pod)
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(pod)
                return
        self._warm.append(pod)

    async def delete_member(self, member: LocalPod) -> None:
        if member in self._warm:
            self._warm.remove(member)
            self._stop(member)

    async def claim_warm(
        self, member: LocalPod, key: str, *, now: float, expires_at: float
    ) -> Claim | None:
        if member not in self._warm or not (member.alive and member.ready):
            return None
        self._warm.remove(member)
        session = self._reserve(key, now=now, expires_at=expires_at)
        return self._attach(session, member, warm=True)

    async def claim_cold(self, key: str, *, now: float, expires_at: float, budget: float) -> Claim:
        """Wait, at most `budget` seconds, for the next pod the pool makes Ready.

        The refill counts waiting claims as demand (`PoolCore.demand`); a claim that
        gives up leaves its place, and the pod started for it goes to the next one.
        """
        session = self._reserve(key, now=now, expires_at=expires_at)  # before any await
        waiter: asyncio.Future[LocalPod] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(budget):
                pod = await waiter
        except BaseException:
            with contextlib.suppress(ValueError):
                self._waiting.remove(waiter)
            if self._sessions.get(key) is session:
                del self._sessions[key]
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._deliver(waiter.result())  # it came just as the claim gave up
            raise
        if session.ended or not self._open:
            self._sessions.pop(key, None)
            self._deliver(pod)
            raise BackendUnavailable("the session ended before its pod was Ready")
        return self._attach(session, pod, warm=False)

    # sessions

    async def info(self, key: str) -> SessionInfo:
        return self._session(key).info(self.node)

    async def kill(self, key: str) -> PodInfo:
        session = self._session(key)
        pod = session.pod
        if pod is None or not pod.alive:
            raise PodNotRunning()
        self.events.pod_going(key, pod.name)  # like a deletionTimestamp: going from now on
        pod.stopping = True
        send(pod.proc, signal.SIGKILL)
        self._notify()
        return pod.info(self.node)

    async def end(self, key: str, reason: str) -> str:
        session = self._session(key)
        del self._sessions[key]
        session.ended = True
        if session.pod is None:
            return ""
        self._stop(session.pod)
        return session.pod.name

    async def touch(self, key: str, now: float) -> None:
        session = self._session(key)
        session.last_active = max(session.last_active, now)

    async def endpoint(self, key: str) -> Endpoint | None:
        pod = self._session(key).pod
        if pod is not None and pod.ready and pod.alive:
            return Endpoint(url=f"ws://127.0.0.1:{pod.port}/ws", pod=pod.name)
        return None

    async def drain_gateway(self, key: str, now: float) -> None:
        self._session(key)
        self.events.gateway_drain(key)  # one process: every gateway is here

    # internals

    def _session(self, key: str) -> LocalSession:
        session = self._sessions.get(key)
        if session is None:
            raise SessionNotFound()
        return session

    def _reserve(self, key: str, *, now: float, expires_at: float) -> LocalSession:
        if key in self._sessions:
            raise BackendUnavailable("session key collision")
        session = LocalSession(key=key, created_at=now, expires_at=expires_at, last_active=now)
        self._sessions[key] = session
        return session

    def _attach(self, session: LocalSession, pod: LocalPod, *, warm: bool) -> Claim:
        self.events.claimed()
        pod.session = session.key
        session.pod = pod
        self._notify()
        return Claim(session=session.info(self.node), pod=pod.info(self.node), warm=warm)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """One of the `MAX_STARTS` places for a start (spawn until Ready or failed)."""
        async with self._slots:
            self.starting += 1
            self.most_starting = max(self.most_starting, self.starting)
            try:
                yield
            finally:
                self.starting -= 1

    def _popen(self, name: str) -> tuple[subprocess.Popen[bytes], int]:
        """On a spawning thread: an echo server on a socket bound here (no port race)."""
        return popen_echo(python=self.python, name=name, node=self.node)

    async def _spawn(self, created: float | None = None) -> LocalPod:
        """Start an echo-server process, off the event loop (call it holding a slot).

        `created`: when the pod was asked for (default: now, as it is scheduled).
        """
        scheduled = self.clock()
        name = f"echo-{secrets.token_hex(3)}-{next(self._names)}"
        loop = asyncio.get_running_loop()
        started = loop.run_in_executor(self._spawner, self._popen, name)
        try:
            popen, port = await asyncio.shield(started)
        except asyncio.CancelledError:
            # Cancelled while the thread starts it: the process is ours to stop all the same.
            started.add_done_callback(kill_orphan)
            raise
        if not self._open:  # closed while it started: nobody will stop it later
            kill_orphan(started)
            raise BackendUnavailable("the provisioner is shutting down")
        pod = LocalPod(
            name=name,
            port=port,
            proc=Child(popen, loop),
            created_at=scheduled if created is None else created,
            scheduled_at=scheduled,
            started_at=self.clock(),
        )
        self._pods.add(pod)
        self._tasks.spawn(self._watch(pod))
        self._notify()
        return pod

    async def _probe(self, pod: LocalPod) -> bool:
        """Ready = GET /health answers 200 (it queues on the socket until the server is up)."""
        return await health_ok(pod.port, self.cold_start_timeout) and pod.alive

    async def _start_ready_pod(self) -> LocalPod | None:
        created = self.clock()
        async with self._slot():
            pod = await self._spawn(created)
            if await self._probe(pod):
                self._mark_ready(pod)
                return pod
        self._stop(pod)
        return None

    def _mark_ready(self, pod: LocalPod) -> None:
        pod.ready = True
        pod.ready_at = self.clock()
        self._notify()

    def _stop(self, pod: LocalPod) -> None:
        pod.session = None
        if pod.alive:
            pod.stopping = True
            send(pod.proc, signal.SIGTERM)
            self._tasks.spawn(kill_after(pod.proc, _STOP_GRACE))
        self._notify()

    async def _watch(self, pod: LocalPod) -> None:
        """Like the ReplicaSet controller: a session's dead pod is replaced at once."""
        await pod.proc.wait()
        self._pods.discard(pod)
        pod.ready = False
        self._notify()
        session = self._sessions.get(pod.session) if pod.session else None
        if session is not None and session.pod is pod and self._open:
            self.events.pod_going(session.key, pod.name)  # a crash is announced here
        self.events.pod_gone(pod.name)
        if session is None or session.pod is not pod or not self._open:
            return
        if session.failures:
            # A pod that keeps dying gets a growing pause, like a crash loop back-off.
            await asyncio.sleep(min(5.0, 0.1 * 2**session.failures))
        await self._replace(session)

    async def _replace(self, session: LocalSession) -> None:
        created = self.clock()
        async with self._slot():  # at most one waits per session
            if session.ended or not self._open:
                return
            new = await self._spawn(created)
            if session.ended or not self._open:
                self._stop(new)
                return
            new.session = session.key
            session.pod = new
            session.replacements += 1
            self.events.pod_added(session.key, new.name)
            log.info("pod_replaced", extra={"session": session.key[:12], "pod": new.name})
            ok = await self._probe(new)
        if ok and session.pod is new and not session.ended:
            self._mark_ready(new)
            session.failures = 0
            self.events.pod_ready(session.key, new.name)
        elif new.alive and session.pod is new:
            session.failures += 1
            send(new.proc, signal.SIGKILL)
