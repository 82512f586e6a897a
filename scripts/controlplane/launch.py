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

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        popen, ref = procs.spawn(
            name, argv, self.log_file(name), env=env, die_with_parent=self.die_with_parent
        )
        self.popen[name] = popen
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
