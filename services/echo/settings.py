"""Echo server settings, parsed once from the environment into a frozen object."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from services.common.env import read_env, require
from services.common.logs import LOG_LEVELS


@dataclass(frozen=True, kw_only=True)
class EchoSettings:
    """Every field maps to the upper-case env var of the same name.

    ``services.common.env`` reads them; docs/configuration.md lists them with
    their defaults (tests/services keeps the table equal to the fields).
    """

    host: str = "0.0.0.0"
    port: int = 8080
    # A listening socket handed down by the local backend; HOST and PORT are then unused.
    listen_fd: int | None = None
    # Empty: the hostname (a pod's name on Kubernetes, where the template sets neither).
    pod_name: str = ""
    node_name: str = ""
    max_frame_bytes: int = 4096
    max_messages_per_second: float = 100.0
    # Seconds open WebSockets get to close with 1001 on SIGTERM.
    grace_seconds: float = 5.0
    log_level: str = "WARNING"
    # The local backend's pid: the echo server dies with it (the kernel's
    # parent-death signal), and a leftover child is recognisable by it.
    echo_parent_pid: int | None = None

    def __post_init__(self) -> None:
        require(0 <= self.port < 65536, "PORT", "a port number 0-65535", self.port)
        if self.listen_fd is not None:
            require(self.listen_fd >= 0, "LISTEN_FD", "a file descriptor >= 0", self.listen_fd)
        require(
            self.max_frame_bytes >= 1, "MAX_FRAME_BYTES", "an integer >= 1", self.max_frame_bytes
        )
        # The rate is also the burst, and a token bucket's burst must hold one message.
        require(
            self.max_messages_per_second >= 1,
            "MAX_MESSAGES_PER_SECOND",
            "a number >= 1",
            self.max_messages_per_second,
        )
        require(self.grace_seconds >= 0, "GRACE_SECONDS", "a number >= 0", self.grace_seconds)
        require(self.log_level in LOG_LEVELS, "LOG_LEVEL", " or ".join(LOG_LEVELS), self.log_level)
        if self.echo_parent_pid is not None:
            require(
                self.echo_parent_pid >= 1, "ECHO_PARENT_PID", "a pid >= 1", self.echo_parent_pid
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EchoSettings:
        """Read settings from env vars; raises EnvError (a ValueError) naming the bad key."""
        values = read_env(cls, os.environ if environ is None else environ)
        host = socket.gethostname()
        values["pod_name"] = values.get("pod_name") or host
        values["node_name"] = values.get("node_name") or host
        return cls(**values)
