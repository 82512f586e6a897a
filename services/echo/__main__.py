"""`python -m services.echo`: serve on PORT (8080), or on an inherited LISTEN_FD."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from services.common import logs
from services.common.serve import Drain, run
from services.echo.app import EchoSettings, create_app

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to kill us when the parent that spawned us dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # The parent may have died before prctl took effect.
    if os.getppid() != parent_pid:
        sys.exit(0)


def main() -> None:
    if parent := os.environ.get("ECHO_PARENT_PID"):
        _die_with_parent(int(parent))
    logs.configure(os.environ.get("LOG_LEVEL", "WARNING"))
    try:
        settings = EchoSettings.from_env()
    except ValueError as exc:
        sys.exit(f"echo: configuration error: {exc}")
    drain = Drain()
    fd = os.environ.get("LISTEN_FD")
    run(
        create_app(settings, drain),
        host=os.environ.get("HOST", "0.0.0.0"),
        port=settings.port,
        drain=drain,
        listen_fd=int(fd) if fd else None,
        ws_max_size=settings.max_frame_bytes,
        grace=settings.grace_seconds,
    )


if __name__ == "__main__":
    main()
