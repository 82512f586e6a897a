"""Launching the components of one cluster and waiting on them while it starts.

:class:`Launcher` spawns each component with its own log file (``procs.spawn``),
records it for the state file before anything waits on it, tells whether each
one still runs, fails a wait as soon as any of them exits, and gathers the log
tails for error messages.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import procs
from .loopback import LOOPBACK

LOG_TAIL_LINES = 25
POLL_SECONDS = 0.1


class ControlPlaneError(RuntimeError):
    """Startup failed or the cluster is in an unexpected state; the message carries log tails."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    # Hold every socket until all are chosen, so the ports are distinct.
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass
class Launcher:
    """The component processes of one cluster, as this process sees them.

    ``refs`` is the cluster's own list (what its state file records); ``on_spawn``
    runs after each spawn, so a start that hangs can still be cleaned up by
    another process. Processes started elsewhere are only known by ``refs``.
    """

    log_dir: Path
    refs: list[procs.ProcRef]
    die_with_parent: bool
    on_spawn: Callable[[], None]
    popen: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    # Each component's command line, so that a stopped one can be started again as it was.
    commands: dict[str, tuple[list[str], Mapping[str, str] | None]] = field(
        default_factory=dict, repr=False
    )
    _respawner: ThreadPoolExecutor | None = field(default=None, repr=False)

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        popen, ref = procs.spawn(
            name, argv, self.log_file(name), env=env, die_with_parent=self.die_with_parent
        )
        self.popen[name] = popen
        self.commands[name] = (list(argv), env)
        self.refs.append(ref)
        # Recorded before waiting, so `down` can clean up even a start that hangs.
        self.on_spawn()

    def running(self, ref: procs.ProcRef) -> bool:
        """Reaps our own children; falls back to /proc for processes started elsewhere."""
        popen = self.popen.get(ref.name)
        if popen is not None and popen.pid == ref.pid:
            return popen.poll() is None
        return procs.alive(ref)

    def any_running(self) -> bool:
        return any([self.running(ref) for ref in self.refs])

    def stop(self, order: Sequence[Sequence[str]]) -> list[str]:
        """Stop every process, group by group in ``order`` (names), those not named first;
        returns the names of those that needed SIGKILL."""
        by_name = {ref.name: ref for ref in self.refs}
        groups = [[by_name[n] for n in group if n in by_name] for group in order]
        known = {n for group in order for n in group}
        groups.insert(0, [ref for ref in self.refs if ref.name not in known])
        return procs.stop(groups, running=self.running)

    def stop_one(self, name: str, grace: float = 10.0) -> bool:
        """Stop one component (SIGTERM, then SIGKILL after ``grace`` seconds) and forget
        it; whether it needed SIGKILL."""
        ref = next((r for r in self.refs if r.name == name), None)
        if ref is None:
            raise ControlPlaneError(f"{name} is not running here")
        killed = procs.stop([[ref]], timeout=grace, running=self.running)
        self.refs.remove(ref)
        self.popen.pop(name, None)
        self.on_spawn()  # the state file no longer lists it
        return bool(killed)

    def respawn(self, name: str) -> None:
        """Start a component stopped by :meth:`stop_one` again, with the same command line."""
        if any(r.name == name for r in self.refs):
            raise ControlPlaneError(f"{name} is already running")
        if name not in self.commands:
            raise ControlPlaneError(f"{name} was not started by this process")
        argv, env = self.commands[name]
        if not self.die_with_parent:
            self.spawn(name, argv, env)
            return
        # The kernel's parent-death signal follows the thread that forked, not the
        # process: fork from a thread that lives as long as this process, not from the
        # caller's (an asyncio.to_thread worker would take the component down with it).
        if self._respawner is None:
            self._respawner = ThreadPoolExecutor(1, thread_name_prefix="controlplane-respawn")
        self._respawner.submit(self.spawn, name, argv, env).result()

    def check_alive(self) -> None:
        for ref in self.refs:
            if not self.running(ref):
                raise ControlPlaneError(f"{ref.name} exited during startup")

    def wait(self, what: str, deadline: float, check: Callable[[], bool]) -> None:
        """Poll ``check`` until it holds; fail once ``deadline`` passes or a component exits."""
        while True:
            self.check_alive()
            if check():
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"timed out waiting for {what}")
            time.sleep(POLL_SECONDS)

    def log_tails(self) -> str:
        """The tail of every component log, for error messages."""
        parts: list[str] = []
        for ref in self.refs:
            path = self.log_file(ref.name)
            state = "running" if self.running(ref) else "exited"
            try:
                lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            except OSError:
                lines = ["(no log)"]
            parts.append(f"--- {ref.name} ({state}), {path}:\n" + "\n".join(lines))
        return "\n".join(parts)
