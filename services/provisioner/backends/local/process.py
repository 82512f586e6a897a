"""Echo-server child processes: spawning one on a socket it inherits, awaiting
its exit without blocking the event loop, signalling and stopping it.

Children die with the provisioner: SIGTERM on shutdown (`stop_all`), and the
kernel's parent-death signal if it crashes (the echo server arms it, see
`ECHO_PARENT_PID`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[4]


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


def popen_echo(*, python: str, name: str, node: str) -> tuple[subprocess.Popen[bytes], int]:
    """An echo server on a socket bound here (no port race), passed to it as a file
    descriptor; returns the process and its port.

    It blocks: call it on a spawning thread that lives as long as the driver (a
    child's parent-death signal follows the thread that forked it).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
        port = sock.getsockname()[1]
        env = {
            **os.environ,
            "LISTEN_FD": str(sock.fileno()),
            "POD_NAME": name,
            "NODE_NAME": node,
            "ECHO_PARENT_PID": str(os.getpid()),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(_ROOT),
        }
        popen = subprocess.Popen(
            [python, "-m", "services.echo"],
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


def kill_orphan(done: asyncio.Future[tuple[subprocess.Popen[bytes], int]]) -> None:
    """Stop the process a finished `popen_echo` started, now that nobody will own it."""
    if done.cancelled() or done.exception() is not None:
        return
    popen, _ = done.result()
    with contextlib.suppress(ProcessLookupError):
        popen.kill()
    # Collected here, not through the loop, which may be closing: after SIGKILL
    # this takes milliseconds, and only on the shutdown path.
    popen.wait()


def send(child: Child, sig: signal.Signals) -> None:
    """Signal a child; one that has already exited needs nothing."""
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(sig)


async def kill_after(child: Child, grace: float) -> None:
    """SIGKILL the child unless it exits within `grace` seconds."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace):
            await child.wait()
            return
    send(child, signal.SIGKILL)


async def stop_all(children: list[Child], grace: float) -> None:
    """SIGTERM every child, SIGKILL those still running after `grace` seconds, and
    wait until all of them have exited."""
    for child in children:
        send(child, signal.SIGTERM)
    if children:
        waits = [asyncio.ensure_future(c.wait()) for c in children]
        _, pending = await asyncio.wait(waits, timeout=grace)
        for child in children:
            if child.returncode is None:
                send(child, signal.SIGKILL)
        for task in pending:
            await task
