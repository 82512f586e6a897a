"""Provisioner settings, parsed once from the environment into a frozen object."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.env import EnvError, read_env
from services.common.logs import LOG_LEVELS
from services.provisioner.errors import ConfigError

_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every field maps to the upper-case env var of the same name.

    ``services.common.env`` reads them; docs/configuration.md lists them with
    their defaults (tests/services keeps the table equal to the fields).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    backend: str = "local"
    pool_size: int = 4
    max_sessions: int = 50
    session_idle_timeout: float = 60.0
    session_max_lifetime: float = 900.0
    rate_limit_per_minute: float = 10.0
    rate_limit_burst: int = 5
    ws_per_ip: int = 4
    ws_max_messages_per_second: float = 50.0
    max_frame_bytes: int = 4096
    allowed_origins: tuple[str, ...] = ()
    refill_per_second: float = 5.0
    cold_start_timeout: float = 20.0
    max_cold_starts: int = 8
    claim_timeout: float = 1.5
    # The warm pool's target: POOL_SIZE + claim rate x time-to-Ready x POOL_HEADROOM
    # (0: the target is POOL_SIZE, whatever the demand).
    pool_headroom: float = 2.0
    frontend_dir: Path = _REPO_ROOT / "frontend" / "dist"
    forwarded_allow_ips: str = "127.0.0.1"
    log_level: str = "INFO"
    # The metrics listener, on HOST beside PORT (0: none). Never the public port:
    # the load balancer routes that one to the internet.
    metrics_port: int = 9090
    # Seconds a client has to send a whole request head (services/common/headtimeout.py).
    header_timeout: float = 10.0
    # The pool feed (GET /pool/feed)
    feed_per_ip: int = 2
    feed_max_streams: int = 500
    feed_max_tiles: int = 200
    # "Kill my gateway" (DELETE /session/{id}/gateway): offered only when allowed,
    # on Kubernetes, while at least two replicas serve (counted live, see
    # backends/kubernetes/roster.py) to carry the sessions meanwhile.
    allow_gateway_kill: bool = False
    gateway_kill_interval: float = 60.0
    drain_delay: float = 15.0
    # Kubernetes backend
    namespace: str = "pingpod"
    pod_name: str = ""
    echo_pod_template: Path = Path("/etc/pingpod/echo-pod.json")
    echo_port: int = 8080
    echo_url_template: str = "ws://{ip}:{port}/ws"
    lease_name: str = "pingpod-provisioner"
    lease_duration: float = 15.0
    # What ending a session does to its ReplicaSet: "recycle" (kept; its pod is
    # replaced and it is warm again) or "delete" (deleted; the Lease holder makes a new one).
    session_end: str = "delete"
    # What a warm pool member is: "pods" (a bare pod the Lease holder creates, adopted at
    # claim time by the session's ReplicaSet) or "replicasets" (a ReplicaSet of one each).
    pool_members: str = "pods"

    def __post_init__(self) -> None:
        _check(
            self.backend in ("local", "kubernetes"), "BACKEND", "local or kubernetes", self.backend
        )
        _check(
            self.session_end in ("recycle", "delete"),
            "SESSION_END",
            "recycle or delete",
            self.session_end,
        )
        _check(
            self.pool_members in ("replicasets", "pods"),
            "POOL_MEMBERS",
            "replicasets or pods",
            self.pool_members,
        )
        _check(
            not (self.pool_members == "pods" and self.session_end == "recycle"),
            "SESSION_END",
            "delete when POOL_MEMBERS=pods (recycling keeps a ReplicaSet warm)",
            self.session_end,
        )
        for name in ("port", "echo_port"):
            value = getattr(self, name)
            _check(0 <= value < 65536, name.upper(), "a port number 0-65535", value)
        for name in ("pool_size", "pool_headroom"):
            _check(getattr(self, name) >= 0, name.upper(), "a number >= 0", getattr(self, name))
        for name in (
            "max_sessions",
            "rate_limit_burst",
            "ws_per_ip",
            "max_frame_bytes",
            "max_cold_starts",
            "feed_per_ip",
            "feed_max_streams",
            "feed_max_tiles",
        ):
            _check(getattr(self, name) >= 1, name.upper(), "an integer >= 1", getattr(self, name))
        for name in (
            "session_idle_timeout",
            "session_max_lifetime",
            "rate_limit_per_minute",
            "refill_per_second",
            "cold_start_timeout",
            "claim_timeout",
            "lease_duration",
            "gateway_kill_interval",
        ):
            _check(getattr(self, name) > 0, name.upper(), "a number > 0", getattr(self, name))
        _check(self.drain_delay >= 0, "DRAIN_DELAY", "a number >= 0", self.drain_delay)
        # The rate is also the burst, and a token bucket's burst must hold one message.
        _check(
            self.ws_max_messages_per_second >= 1,
            "WS_MAX_MESSAGES_PER_SECOND",
            "a number >= 1",
            self.ws_max_messages_per_second,
        )
        _check(self.log_level in LOG_LEVELS, "LOG_LEVEL", " or ".join(LOG_LEVELS), self.log_level)
        try:
            self.echo_url_template.format(ip="10.0.0.1", port=8080)
        except (KeyError, IndexError, ValueError):
            raise ConfigError(
                "ECHO_URL_TEMPLATE",
                "a URL with {ip} and {port} placeholders",
                self.echo_url_template,
            ) from None
        for origin in self.allowed_origins:
            _check(
                origin.startswith(("http://", "https://")),
                "ALLOWED_ORIGINS",
                "comma-separated origins like https://demo.example.com",
                origin,
            )
        _check(
            0 <= self.metrics_port < 65536,
            "METRICS_PORT",
            "a port number 0-65535 (0: no metrics listener)",
            self.metrics_port,
        )
        _check(
            self.metrics_port == 0 or self.metrics_port != self.port,
            "METRICS_PORT",
            f"a port other than PORT ({self.port}), or 0",
            self.metrics_port,
        )
        _check(self.header_timeout > 0, "HEADER_TIMEOUT", "a number > 0", self.header_timeout)

    @property
    def gateway_kill_allowed(self) -> bool:
        """Allowed and possible here; it is offered while two replicas or more serve."""
        return self.allow_gateway_kill and self.backend == "kubernetes"

    @property
    def replica(self) -> str:
        """This replica's name (its pod's, on Kubernetes)."""
        return self.pod_name or socket.gethostname()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from env vars; raises ConfigError naming the bad key."""
        try:
            values = read_env(cls, os.environ if environ is None else environ)
        except EnvError as exc:
            raise ConfigError(exc.key, exc.expected, exc.got) from None
        if "allowed_origins" in values:  # an origin has no path, not even "/"
            values["allowed_origins"] = tuple(o.rstrip("/") for o in values["allowed_origins"])
        return cls(**values)


def _check(ok: bool, key: str, expected: str, got: object) -> None:
    if not ok:
        raise ConfigError(key, expected, str(got))
