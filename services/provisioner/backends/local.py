"""Local driver: each "pod" is a real echo-server child process on 127.0.0.1.

It keeps the Kubernetes driver's contract without a cluster: warm members,
a cold start when there are none, and when a session's process dies a
replacement takes over the same session at once (what the ReplicaSet
controller does for a pod). Children die with the provisioner: SIGTERM on
shutdown, and the kernel's parent-death signal if it crashes.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.provisioner.backends.base import (
    Claim,
    Endpoint,
    PodInfo,
    SessionInfo,
    Tasks,
)
from services.provisioner.backends.events import SessionEvents
from services.provisioner.errors import BackendUnavailable, PodNotRunning, SessionNotFound
from services.provisioner.pool import SessionTimes
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
        self._pods: set[LocalPod] = set()
        self._sessions: dict[str, LocalSession] = {}
        self._tasks = Tasks()
        self._names = itertools.count()
        self._open = False

    @classmethod
    def from_settings(
        cls, settings: Settings, events: SessionEvents, *, clock: Callable[[], float] = time.time
    ) -> LocalDriver:
        return cls(events=events, cold_start_timeout=settings.cold_start_timeout, clock=clock)

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False  # from now on a dead pod is not replaced
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

    # members

    async def start_member(self) -> None:
        pod = await self._start_ready_pod()
        if pod is None:
            raise BackendUnavailable("a pool pod did not become Ready")
        if self._open:
            self._warm.append(pod)
        else:
            self._stop(pod)

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

    async def claim_cold(self, key: str, *, now: float, expires_at: float) -> Claim:
        session = self._reserve(key, now=now, expires_at=expires_at)  # before any await
        pod = await self._start_ready_pod()
        if pod is None or session.ended or not self._open:
            self._sessions.pop(key, None)
            if pod is not None:
                self._stop(pod)
            raise BackendUnavailable("could not start a pod for the session")
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
        _signal(pod, signal.SIGKILL)
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
        pod.session = session.key
        session.pod = pod
        return Claim(session=session.info(self.node), pod=pod.info(self.node), warm=warm)

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
        self._tasks.spawn(self._watch(pod))
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
        pod = await self._spawn()
        if await self._probe(pod):
            pod.ready = True
            return pod
        self._stop(pod)
        return None

    def _stop(self, pod: LocalPod) -> None:
        pod.session = None
        if pod.alive:
            _signal(pod, signal.SIGTERM)
            self._tasks.spawn(self._kill_later(pod))

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
        new = await self._spawn()
        if session.ended or not self._open:
            self._stop(new)
            return
        new.session = session.key
        session.pod = new
        session.replacements += 1
        self.events.pod_added(session.key, new.name)
        log.info("pod_replaced", extra={"session": session.key[:12], "pod": new.name})
        if await self._probe(new) and session.pod is new and not session.ended:
            new.ready = True
            session.failures = 0
            self.events.pod_ready(session.key, new.name)
        elif new.alive and session.pod is new:
            session.failures += 1
            _signal(new, signal.SIGKILL)


def _signal(pod: LocalPod, sig: signal.Signals) -> None:
    """Signal a pod's process; one that has already exited needs nothing."""
    with contextlib.suppress(ProcessLookupError):
        pod.proc.send_signal(sig)
