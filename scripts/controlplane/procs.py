"""Start and stop component processes, by pid, without leaving any behind.

Each component gets its own process group (so a terminal's Ctrl-C reaches the
supervisor, which stops components in order) and its own log file. When the
supervisor owns the cluster (the Python API), the kernel also delivers SIGTERM
to every component if the supervisor dies without cleaning up.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1
# dlopen(NULL): the symbols already loaded, libc's among them (no ldconfig lookup).
_libc = ctypes.CDLL(None, use_errno=True)
# Resolved before any fork: the child must not load libraries between fork and exec.
_prctl = _libc.prctl


def _die_with_parent() -> None:
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass(frozen=True)
class ProcRef:
    """A pid plus its kernel start time, so a recycled pid is never signalled."""

    name: str
    pid: int
    start_ticks: int

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "pid": self.pid, "start_ticks": self.start_ticks}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ProcRef:
        return cls(str(data["name"]), int(str(data["pid"])), int(str(data["start_ticks"])))


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) from /proc, or None if the pid is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; fields resume after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def spawn(
    name: str,
    argv: Sequence[str],
    log_file: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    die_with_parent: bool,
) -> tuple[subprocess.Popen[bytes], ProcRef]:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    stat = _stat(proc.pid)
    return proc, ProcRef(name, proc.pid, stat[1] if stat else 0)


def alive(ref: ProcRef) -> bool:
    stat = _stat(ref.pid)
    # A zombie has exited; it lingers only until its parent (maybe init) reaps it.
    return stat is not None and stat[1] == ref.start_ticks and stat[0] != "Z"


def _signal(ref: ProcRef, sig: signal.Signals) -> None:
    if alive(ref):
        # The component leads its own group: this reaches it and anything it forked.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(ref.pid, sig)


def stop(
    groups: Sequence[Sequence[ProcRef]],
    *,
    timeout: float = 10.0,
    running: Callable[[ProcRef], bool] = alive,
) -> list[str]:
    """SIGTERM each group in turn (clients first, etcd last), SIGKILL what outlives ``timeout``.

    ``running`` decides when a process is gone; for a child, pass one that reaps it
    (``Popen.poll``): an exiting multi-threaded process shows as a zombie in /proc
    before its last thread is done and it can be reaped.
    Returns the names of the components that had to be killed.
    """
    killed: list[str] = []

    def wait(group: Sequence[ProcRef], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while any([running(ref) for ref in group]):  # a list: poll every child each round
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    for group in groups:
        for ref in group:
            _signal(ref, signal.SIGTERM)
        if wait(group, timeout):
            continue
        for ref in group:
            if running(ref):
                killed.append(ref.name)
                _signal(ref, signal.SIGKILL)
        # SIGKILL is not instant either; the next group (etcd) must outlive this one.
        wait(group, 5.0)
    return killed
