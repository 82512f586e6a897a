"""A burst against a pool at its base size: `python -m bench.burst`.

100 claims within 2 s (open loop; visitors keep their sessions until the
burst is over, then all are ended) against a
provisioner whose pool has just filled to its base size, with the adaptive
target (`POOL_HEADROOM=2`) and, beside it in the same run, a fixed target
(`POOL_HEADROOM=0`). For each backend and mode it prints the counts by
outcome, the p99 of answers, how many claims after the first second's worth
were warm, and the highest target `/pool` reported:

  burst backend=kubernetes mode=adaptive claims=100 seconds=2 p99=..ms warm=N cold=N
  rejected=N errors=N after_first_second_warm=N/M (P%) peak_target=N
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.k8s import kubernetes_provisioner, local_provisioner
from bench.overload import CLIENT_TIMEOUT, Answers, claim_once, wait_warm
from bench.procs import open_loop, percentile
from scripts.controlplane import ControlPlane, ensure_built

MODES = {"adaptive": "2", "fixed": "0"}


async def watch_target(base: str, peak: list[int], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT) as http:
        while not stop.is_set():
            peak[0] = max(peak[0], (await http.get("/pool")).json()["target"])
            await asyncio.sleep(0.1)


async def burst(base: str, claims: int, seconds: float) -> tuple[Answers, list[str], int]:
    """The answers, the outcome of each claim in the order it was sent, and the peak target."""
    answers = Answers()
    order: list[str] = []  # each claim's outcome, in the order they were sent
    kept: list[str] = []  # session ids, ended after the burst
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
    peak, stop = [0], asyncio.Event()
    watcher = asyncio.create_task(watch_target(base, peak, stop))
    async with httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT, limits=limits) as http:

        async def one() -> None:
            slot = len(order)
            order.append("")
            mine = Answers()
            await claim_once(http, mine, kept)
            outcome = next(iter(mine.by_status))
            order[slot] = outcome
            answers.add(outcome, mine.latencies[0])

        await open_loop(claims / seconds, seconds, one)
        stop.set()
        await asyncio.gather(*(http.delete(f"/session/{sid}") for sid in kept))
    await watcher
    return answers, order, peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=2)
    parser.add_argument("--pool", type=int, default=10, help="the pool's base size")
    parser.add_argument("--backends", default="kubernetes,local")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    backends = args.backends.split(",")
    first_second = round(args.claims / args.seconds)
    print(f"pingpod burst benchmark ({time.strftime('%Y-%m-%d %H:%M')})")
    with contextlib.ExitStack() as stack:
        makers: dict[str, Callable[..., contextlib.AbstractContextManager[str]]] = {
            "local": lambda **env: local_provisioner(args.pool, **env)
        }
        if "kubernetes" in backends:
            ensure_built()
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            cp = stack.enter_context(ControlPlane.start(Path(tmp) / "cp", tuned=False))
            makers["kubernetes"] = lambda **env: kubernetes_provisioner(cp, args.pool, **env)
        rounds = [(b, m) for _ in range(args.repeat) for b in backends for m in MODES]
        for backend, mode in rounds:  # modes alternate: drift on a noisy machine hits both
            headroom = MODES[mode]
            with makers[backend](POOL_HEADROOM=headroom) as base:
                wait_warm(base, args.pool)
                answers, order, peak = asyncio.run(burst(base, args.claims, args.seconds))
            later = order[first_second:]
            warm_later = sum(1 for outcome in later if outcome == "warm")
            share = 100 * warm_later / len(later) if later else float("nan")
            print(
                f"burst backend={backend} mode={mode} claims={args.claims}"
                f" seconds={args.seconds:g} p99={percentile(answers.latencies, 99):.1f}ms"
                f" warm={answers.count('warm')} cold={answers.count('cold')}"
                f" rejected={answers.count('429')} errors={answers.errors()}"
                f" after_first_second_warm={warm_later}/{len(later)} ({share:.0f}%)"
                f" peak_target={peak}"
            )


if __name__ == "__main__":
    main()
