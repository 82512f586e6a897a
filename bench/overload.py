"""Overload benchmark: `python -m bench.overload`.

Claims at a sustained rate (default 50/s for 30 s, open loop: a claim every
1/rate s whatever the answers; each session ended at once, so the pool must
keep up) against the local backend and the Kubernetes backend (the test
control plane, kwok nodes). Every answer counts: its latency, and its status:
`warm` and `cold` (201), `rejected` (429), `errors` (anything else, time-outs
included; the client gives up after 10 s). One line per backend and rate:

  claims backend=local rate=50/s seconds=30 p50=..ms p99=..ms warm=N cold=N rejected=N errors=N

Then, for the local backend, the claim latency over HTTP while the pool
refills from empty (echo servers starting beside the provisioner).

With `--sweep 10,20,30`, each backend is also run at those rates in turn
(ascending, stopping at the first that fails), and the largest rate that met
p99 <= 50 ms with nothing rejected and no errors is printed:

  sweep backend=kubernetes seconds=30 p99_limit=50ms best_rate=N/s
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.k8s import kubernetes_provisioner, local_provisioner
from bench.procs import open_loop, percentile, server
from scripts.controlplane import ControlPlane, ensure_built

CLIENT_TIMEOUT = 10.0  # seconds; a claim not answered by then is an error


@dataclass
class Answers:
    latencies: list[float] = field(default_factory=list)  # ms, every claim
    by_status: dict[str, list[float]] = field(default_factory=dict)  # ms, by outcome

    def add(self, outcome: str, ms: float) -> None:
        self.latencies.append(ms)
        self.by_status.setdefault(outcome, []).append(ms)

    def count(self, *outcomes: str) -> int:
        return sum(len(self.by_status.get(o, [])) for o in outcomes)

    def errors(self) -> int:
        return len(self.latencies) - self.count("warm", "cold", "429")


async def claim_once(
    http: httpx.AsyncClient, answers: Answers, kept: list[str] | None = None
) -> None:
    """One `POST /session`, its answer recorded by outcome. A granted session is ended
    at once, or with `kept`, its id is added there and it lives on."""
    started = time.perf_counter()
    try:
        response = await http.post("/session")
    except httpx.HTTPError as exc:
        answers.add(type(exc).__name__, (time.perf_counter() - started) * 1000)
        return
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code == 201:
        body = response.json()
        answers.add("warm" if body["warm"] else "cold", elapsed)
        if kept is not None:
            kept.append(body["session_id"])
            return
        with contextlib.suppress(httpx.HTTPError):
            await http.delete(f"/session/{body['session_id']}")
    elif response.status_code == 429 and "Retry-After" in response.headers:
        answers.add("429", elapsed)
    elif response.status_code == 429:
        answers.add("429 without Retry-After", elapsed)  # an error, not a rejection
    else:
        answers.add(str(response.status_code), elapsed)


async def claims(base: str, rate: float, seconds: float) -> Answers:
    """Open-loop claims; each session that is granted is ended at once."""
    answers = Answers()
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT, limits=limits) as http:
        await open_loop(rate, seconds, lambda: claim_once(http, answers))
    return answers


def ms(values: list[float]) -> str:
    return f"p50={percentile(values, 50):.1f}ms p99={percentile(values, 99):.1f}ms"


def report(backend: str, rate: float, seconds: float, answers: Answers) -> None:
    for outcome, values in sorted(answers.by_status.items()):
        print(f"  {backend:<10} {outcome:<6} n={len(values):<5} {ms(values)}")
    print(
        f"claims backend={backend} rate={rate:g}/s seconds={seconds:g} {ms(answers.latencies)}"
        f" warm={answers.count('warm')} cold={answers.count('cold')}"
        f" rejected={answers.count('429')} errors={answers.errors()}"
    )


P99_LIMIT_MS = 50.0


def meets(answers: Answers) -> bool:
    """The capacity goal: every claim granted, p99 within the limit."""
    granted = answers.count("warm", "cold")
    return granted == len(answers.latencies) and percentile(answers.latencies, 99) <= P99_LIMIT_MS


def sweep(
    backend: str,
    make: Callable[[], contextlib.AbstractContextManager[str]],
    rates: list[float],
    seconds: float,
    pool: int,
) -> None:
    best = 0.0
    for rate in sorted(rates):
        with make() as base:
            wait_warm(base, pool)
            answers = asyncio.run(claims(base, rate, seconds))
        report(backend, rate, seconds, answers)
        if not meets(answers):
            break
        best = rate
    print(
        f"sweep backend={backend} seconds={seconds:g} p99_limit={P99_LIMIT_MS:g}ms"
        f" best_rate={best:g}/s"
    )


def wait_warm(base: str, target: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(base + "/pool", timeout=CLIENT_TIMEOUT).json()["warm"] < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"pool did not reach {target}")
        time.sleep(0.05)


async def during_refill(
    base: str, rate: float, pool: int, limit: float = 120
) -> tuple[Answers, float]:
    """Claims at `rate` from the moment the provisioner is up until its pool is full
    (or `limit` seconds have passed)."""
    answers = Answers()
    async with httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT) as http:
        started = time.monotonic()
        while (await http.get("/pool")).json()["warm"] < pool:
            if time.monotonic() - started > limit:
                break
            began = time.perf_counter()
            await claim_once(http, answers)
            await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - began)))
        return answers, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="50", help="claims per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--pool", type=int, default=20)
    parser.add_argument("--backends", default="local,kubernetes")
    parser.add_argument("--refill-pool", type=int, default=30)
    parser.add_argument("--refill-rate", type=float, default=2)
    parser.add_argument("--sweep", default="", help="rates to step through, comma-separated")
    args = parser.parse_args()
    backends = args.backends.split(",")
    print(f"pingpod overload benchmark ({time.strftime('%Y-%m-%d %H:%M')})")
    with contextlib.ExitStack() as stack:
        makers: dict[str, Callable[[], contextlib.AbstractContextManager[str]]] = {
            "local": lambda: local_provisioner(args.pool)
        }
        if "kubernetes" in backends:
            ensure_built()
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            cp = stack.enter_context(ControlPlane.start(Path(tmp) / "cp", tuned=False))
            makers["kubernetes"] = lambda: kubernetes_provisioner(cp, args.pool)
        for rate in (float(r) for r in args.rates.split(",") if r):
            for backend in backends:
                print(f"\n{backend}: claims at {rate:g}/s for {args.seconds:g} s, pool {args.pool}")
                with makers[backend]() as base:
                    wait_warm(base, args.pool)
                    answers = asyncio.run(claims(base, rate, args.seconds))
                report(backend, rate, args.seconds, answers)
        for backend in backends if args.sweep else ():
            print(f"\n{backend}: sweep of rates {args.sweep}, {args.seconds:g} s each")
            rates = [float(r) for r in args.sweep.split(",")]
            sweep(backend, makers[backend], rates, args.seconds, args.pool)
    if "local" in backends and args.refill_pool:
        pool, rate = args.refill_pool, args.refill_rate
        print(f"\nlocal: claims at {rate:g}/s while an empty pool of {pool} refills")
        env = {"RATE_LIMIT_PER_MINUTE": "1000000", "RATE_LIMIT_BURST": "100000"}
        with server("services.provisioner", "/ready", **env, POOL_SIZE=str(pool)) as base:
            answers, took = asyncio.run(during_refill(base, rate, pool))
        for outcome, values in sorted(answers.by_status.items()):
            print(f"  local      {outcome:<6} n={len(values):<5} {ms(values)}")
        print(
            f"refill backend=local pool={pool} seconds={took:.1f} claims={len(answers.latencies)}"
            f" {ms(answers.latencies)} warm={answers.count('warm')} cold={answers.count('cold')}"
            f" rejected={answers.count('429')} errors={answers.errors()}"
        )


if __name__ == "__main__":
    main()
