"""Fixtures for the service tests: real provisioner and echo servers
(tests/support/servers.py), stopped at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import Server, StartProvisioner, start_server

# A cold start on a machine busy with the suite may take longer than CLAIM_TIMEOUT's
# default; tests that are not about shedding wait for it (test_overload sets its own).
COLD_CLAIM_WAIT = "30"


@pytest.fixture
def start_provisioner(tmp_path: Path) -> Iterator[StartProvisioner]:
    """Factory: start a provisioner with env overrides; all are stopped at teardown."""
    servers: list[Server] = []

    def start(**env: str) -> Server:
        defaults = {
            "POOL_SIZE": "3",
            "RATE_LIMIT_PER_MINUTE": "6000",
            "RATE_LIMIT_BURST": "100",
            "CLAIM_TIMEOUT": COLD_CLAIM_WAIT,
        }
        server = start_server(
            "services.provisioner", tmp_path, {**defaults, **env}, "/ready", metrics=True
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def provisioner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A shared provisioner for tests that do not depend on special settings."""
    server = start_server(
        "services.provisioner",
        tmp_path_factory.mktemp("prov"),
        {
            "POOL_SIZE": "4",
            "RATE_LIMIT_PER_MINUTE": "6000",
            "RATE_LIMIT_BURST": "200",
            "CLAIM_TIMEOUT": COLD_CLAIM_WAIT,
        },
        "/ready",
        metrics=True,
    )
    server.wait_pool(4)
    yield server
    server.stop()


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[Server]:
    server = start_server("services.echo", tmp_path, {"POD_NAME": "echo-test", "NODE_NAME": "n1"})
    yield server
    server.stop()
