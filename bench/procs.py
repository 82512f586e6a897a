"""Start and stop the real servers a benchmark measures."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from scripts.servers import ROOT, free_port, launch, stop


@contextlib.contextmanager
def server(module: str, ready_path: str, **env: str) -> Iterator[str]:
    """Run `python -m module` on a free port; yields its base URL. Logs: artifacts/bench/."""
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
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc, timeout=20)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]
