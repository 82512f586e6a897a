"""`python -m services.provisioner`: settings from the environment, then serve."""

from __future__ import annotations

import sys

from services.common import logs
from services.common.serve import Drain, run
from services.provisioner.app import create_app
from services.provisioner.errors import ConfigError
from services.provisioner.settings import Settings


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"provisioner: configuration error: {exc.detail}")
    logs.configure(settings.log_level)
    drain = Drain()
    run(
        create_app(settings, drain=drain),
        host=settings.host,
        port=settings.port,
        drain=drain,
        ws_max_size=settings.max_frame_bytes,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


if __name__ == "__main__":
    main()
