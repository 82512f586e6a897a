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
pidfd: nothing blocking runs on the event loop.
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
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from services.provisioner.backends.base import (
    Claim,
    Endpoint,
    MemberState,
    PodInfo,
    PodPhases,
    PoolMember,
    SessionInfo,
)
from services.provisioner.backends.events import SessionEvents
from services.provisioner.backends.tasks import Tasks
from services.provisioner.errors import BackendUnavailable, PodNotRunning, SessionNotFound
from services.provisioner.pool import SessionTimes
from services.provisioner.settings import Settings

log = logging.getLogger(__name__)

_ROOT = Path(__file__).resolve().parents[3]
_STOP_GRACE = 3.0
MAX_STARTS = 2  # echo servers starting at once (spawned, not yet Ready or failed)


class Child:
    """A child process started off the event loop; its exit is awaited without a thread
    where the kernel offers a pidfd (Linux 5.3+), else on a thread of its own."""

    def __init__(self, popen: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self.popen = popen
        self.pid = popen.pid
        self._loop = loop
        self._exited = asyncio.Event()
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):
            threading.Thread(target=self._wait_on_thread, daemon=True).start()
        else:
            loop.add_reader(self._pidfd, self._reap)

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def _reap(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self.popen.wait()  # it has exited: this only collects the status
        self._exited.set()

    def _wait_on_thread(self) -> None:
        self.popen.wait()
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._exited.set)

    async def wait(self) -> int | None:
        await self._exited.wait()
        return self.popen.returncode

    def send_signal(self, sig: signal.Signals) -> None:
        self.popen.send_signal(sig)  # a no-op once the process has been collected


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
        self.node = node or f"local-{socket.gethostname()}"
        self.python = python
        self.clock = clock
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
        pods = list(self._pods)
        for pod in pods:
            _signal(pod, signal.SIGTERM)
        if pods:
            waits = [asyncio.ensure_future(p.proc.wait()) for p in pods]
            _, pending = await asyncio.wait(waits, timeout=_STOP_GRACE)
            for pod in pods:
                if pod.alive:
                    _signal(pod, signal.SIGKILL)
            for task in pending:
                await task
        await self._tasks.close(_STOP_GRACE)
        # A start still under way finishes first, so that its process is stopped too
        # (by `_spawn`, or by `_orphan` once its done callback runs).
        await asyncio.to_thread(self._spawner.shutdown, wait=True, cancel_futures=True)
        await asyncio.sleep(0)

    def ready(self) -> bool:
        return self._open

    async def leading(self) -> bool:
        return True  # one process, one leader

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
        _signal(pod, signal.SIGKILL)
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
            popen = subprocess.Popen(
                [self.python, "-m", "services.echo"],
                env=env,
                cwd=_ROOT,
                pass_fds=(sock.fileno(),),
                stdin=subprocess.DEVNULL,
                # Out of the terminal's process group: Ctrl-C stops the provisioner, which
                # then stops its pods, instead of racing it (the pods would be "replaced").
                start_new_session=True,
            )
        finally:
            sock.close()
        return popen, port

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
            started.add_done_callback(self._orphan)
            raise
        if not self._open:  # closed while it started: nobody will stop it later
            self._orphan(started)
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

    @staticmethod
    def _orphan(done: asyncio.Future[tuple[subprocess.Popen[bytes], int]]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        popen, _ = done.result()
        with contextlib.suppress(ProcessLookupError):
            popen.kill()
        # Collected here, not through the loop, which may be closing: after SIGKILL
        # this takes milliseconds, and only on the shutdown path.
        popen.wait()

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
            _signal(pod, signal.SIGTERM)
            self._tasks.spawn(self._kill_later(pod))
        self._notify()

    async def _kill_later(self, pod: LocalPod) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_STOP_GRACE):
                await pod.proc.wait()
                return
        _signal(pod, signal.SIGKILL)

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
            _signal(new, signal.SIGKILL)


def _signal(pod: LocalPod, sig: signal.Signals) -> None:
    """Signal a pod's process; one that has already exited needs nothing."""
    with contextlib.suppress(ProcessLookupError):
        pod.proc.send_signal(sig)
