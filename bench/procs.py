"""Start and stop the real servers a benchmark measures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path

from scripts.servers import ROOT, free_port, launch, stop


@contextlib.contextmanager
def server(module: str, ready_path: str, **env: str) -> Iterator[str]:
    """Run `python -m module` on a free port; yields its base URL. Logs: artifacts/bench/."""
    with server_process(module, ready_path, **env) as (base, _):
        yield base


@contextlib.contextmanager
def server_process(
    module: str, ready_path: str, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`server`, also yielding the process (for its CPU time)."""
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


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process, from /proc (children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def profiled(pid: int, label: str, *, enabled: bool) -> Iterator[None]:
    """With `enabled`, py-spy samples process `pid` meanwhile (needs root), and the
    functions that hold most samples are printed: where its CPU goes."""
    if not enabled:
        yield
        return
    out = ROOT / "artifacts" / "bench" / f"{label}.folded"
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--gil",  # only the thread holding the GIL: CPU, not waits
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=30)
    print_profile(out)


def print_profile(folded: Path, top: int = 10) -> None:
    """Where the CPU went: samples by the package of the innermost frame (self time),
    and by a few named functions of ours and of the client (inclusive)."""
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        where = frames[-1].rpartition("(")[2].split(":")[0]
        by_package[where.split("/")[0] if "/" in where else where] += n
        for name in {frame.split(" (")[0] for frame in frames}:
            inclusive[name] += n
    if not total:
        print("  profile: no samples")
        return
    print(f"  profile: {total} samples holding the GIL; self time by package:")
    for package, n in by_package.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {package}")
    print("  inclusive, by function:")
    for name, n in inclusive.most_common(top * 4):
        if "." in name and not name.startswith(("Thread.", "Runner.", "_run")):
            print(f"    {100 * n / total:5.1f}%  {name}")
