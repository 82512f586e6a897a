"""`python -m services.echo`: serve on PORT (8080), or on an inherited LISTEN_FD."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from services.common import logs
from services.common.serve import Drain, run
from services.echo.app import create_app
from services.echo.settings import EchoSettings

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to kill us when the parent that spawned us dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # The parent may have died before prctl took effect.
    if os.getppid() != parent_pid:
        sys.exit(0)


def main() -> None:
    try:
        settings = EchoSettings.from_env()
    except ValueError as exc:
        sys.exit(f"echo: configuration error: {exc}")
    if settings.echo_parent_pid is not None:
        _die_with_parent(settings.echo_parent_pid)
    logs.configure(settings.log_level)
    drain = Drain()
    run(
        create_app(settings, drain),
        host=settings.host,
        port=settings.port,
        drain=drain,
        listen_fd=settings.listen_fd,
        ws_max_size=settings.max_frame_bytes,
        grace=settings.grace_seconds,
    )


if __name__ == "__main__":
    main()
