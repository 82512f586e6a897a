"""How the WebSocket fuzz cases run: one hypothesis seed per run (printed, and
replayed with `PINGPOD_FUZZ_SEED=<seed>`), `PINGPOD_FUZZ_SCALE=<n>` for n times
as many cases, no example database, and a bound on each case."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, seed, settings

FUZZ_SEED = int(os.environ.get("PINGPOD_FUZZ_SEED") or secrets.randbits(32))
SCALE = float(os.environ.get("PINGPOD_FUZZ_SCALE") or 1)
CASE_TIMEOUT = 30.0


def fuzz(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """hypothesis with this run's seed, a bounded number of cases, no example database."""

    def wrap(test: Callable[..., None]) -> Callable[..., None]:
        configured = settings(
            max_examples=max(1, round(examples * SCALE)),
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )(test)
        return seed(FUZZ_SEED)(configured)

    return wrap


def run(play: Any) -> None:
    """Play one case (a coroutine) in a fresh event loop, within CASE_TIMEOUT."""
    asyncio.run(asyncio.wait_for(play, CASE_TIMEOUT))
