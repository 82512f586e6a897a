"""The backend contract (tests/support/backend_contract.py) for the local backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.backend_contract import BackendContract, Backends


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    made = Backends(settings={"backend": "local"})
    yield made
    await made.close()


class TestLocalBackend(BackendContract):
    pass
