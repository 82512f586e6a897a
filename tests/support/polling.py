"""Waiting for a state instead of sleeping: poll until a probe holds, fail with
what was awaited once a generous bound has passed (a liveness bound, never a
timing assertion)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

WAIT = 60  # seconds: generous, for a loaded machine


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.1
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


async def eventually(
    probe: Callable[[], Any], what: str = "the condition", timeout: float = WAIT
) -> None:
    """Poll `probe` (sync or async) until it is truthy; fail after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            for _ in itertools.count():
                value = probe()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
