"""Start and stop the real servers a benchmark measures."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator

from scripts.servers import ROOT, free_port, launch, stop


@contextlib.contextmanager
def server(module: str, ready_path: str, **env: str) -> Iterator[str]:
    """Run `python -m module` on a free port; yields its base URL. Logs: artifacts/bench/."""
    with server_process(module, ready_path, **env) as (url, _):
        yield url


@contextlib.contextmanager
def server_process(
    module: str, ready_path: str, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`server`, also yielding the process (to watch it from outside)."""
    port = free_port()
    logs = ROOT / "artifacts" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    proc = launch(
        module,
        port=port,
        log=logs / f"{module.rsplit('.', 1)[-1]}-{port}.log",
        env={"LOG_LEVEL": "WARNING", **env},
        ready_path=ready_path,
        timeout=60,
    )
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop(proc, timeout=20)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


async def open_loop(
    rate: float, seconds: float, one: Callable[[], Coroutine[object, object, None]]
) -> None:
    """Start ``one()`` ``rate`` times a second for ``seconds``, whether or not earlier
    calls have answered (an open loop: a slow server does not slow the offered load)."""
    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
