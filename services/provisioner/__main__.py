"""`python -m services.provisioner`: settings from the environment, then serve."""

from __future__ import annotations

import logging
import socket
import sys

from starlette.types import ASGIApp

from services.common import logs
from services.common.serve import Drain, listen, run
from services.provisioner.app import create_app
from services.provisioner.backends import make_backend
from services.provisioner.errors import ConfigError
from services.provisioner.metrics import Metrics
from services.provisioner.metrics_app import create_metrics_app
from services.provisioner.settings import Settings

log = logging.getLogger("services.provisioner")


def _metrics_socket(settings: Settings) -> socket.socket:
    """Bound before anything starts, so a port that cannot be had stops the start."""
    try:
        return listen(settings.host, settings.metrics_port)
    except OSError as exc:
        where = f"{settings.host}:{settings.metrics_port}"
        raise ConfigError(
            "METRICS_PORT", "a port this process can listen on", f"{where} ({exc.strerror})"
        ) from None


def main() -> None:
    try:
        settings = Settings.from_env()
        metrics_socket = _metrics_socket(settings) if settings.metrics_port else None
    except ConfigError as exc:
        sys.exit(f"provisioner: configuration error: {exc.detail}")
    logs.configure(settings.log_level)
    drain = Drain()
    metrics = Metrics()
    backend = make_backend(settings, metrics)
    side_apps: list[tuple[ASGIApp, socket.socket]] = []
    if metrics_socket is not None:
        side_apps.append((create_metrics_app(backend, metrics), metrics_socket))
        log.info("metrics_listening", extra={"host": settings.host, "port": settings.metrics_port})
    run(
        create_app(settings, backend=backend, drain=drain, metrics=metrics),
        host=settings.host,
        port=settings.port,
        drain=drain,
        ws_max_size=settings.max_frame_bytes,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        head_timeout=settings.header_timeout,
        side_apps=side_apps,
    )


if __name__ == "__main__":
    main()
