"""Session benchmark against the local backend: `python -m bench.sessions`.

Prints, from one run:
  1. claim latency (warm path) over N sessions;
  2. for each session count S (default 1, 20 and 100) x H Hz: ping RTT
     through the gateway vs directly to echo servers, measured in
     alternating rounds so both see the same machine noise; the latency the
     gateway adds and their ratio; and the provisioner's CPU per relayed
     frame (its CPU time over the gateway rounds / frames relayed, both ways);
  3. kill-to-first-pong recovery over K kills.

With `--profile`, py-spy samples the provisioner during the gateway rounds
of the largest session count and prints where its CPU went.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect

from bench.procs import cpu_seconds, percentile, profiled, server, server_process
from scripts.servers import free_port


def line(label: str, values: list[float]) -> str:
    top = max(values, default=float("nan"))
    return (
        f"{label:<34} n={len(values):<6} p50={percentile(values, 50):8.2f} ms"
        f"  p99={percentile(values, 99):8.2f} ms  max={top:8.2f} ms"
    )


async def wait_warm(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 30
    while (await client.get("/pool")).json()["warm"] < 1:
        if time.monotonic() > deadline:
            raise TimeoutError("pool stayed empty")
        await asyncio.sleep(0.01)


async def claim(client: httpx.AsyncClient) -> dict[str, Any]:
    """A new session; a 429 (the pool is empty) is retried after its Retry-After."""
    while True:
        response = await client.post("/session")
        if response.status_code != 429:
            response.raise_for_status()
            return response.json()
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))


async def bench_claims(base: str, n: int) -> None:
    client_ms: list[float] = []
    server_ms: list[float] = []
    cold = 0
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for _ in range(n):
            await wait_warm(client)
            started = time.perf_counter()
            body = await claim(client)
            elapsed = (time.perf_counter() - started) * 1000
            if not body["warm"]:
                cold += 1
                continue
            client_ms.append(elapsed)
            server_ms.append(body["assign_ms"])
            await client.delete(f"/session/{body['session_id']}")
    print(line("claim, warm path (HTTP round trip)", client_ms))
    print(line("claim, warm path (assign_ms)", server_ms))
    slow = sum(1 for ms in server_ms if ms >= 100)
    print(f"  {slow} of {len(server_ms)} warm claims took 100 ms or more (assign_ms)")
    if cold:
        print(f"  ({cold} claims found the pool empty and took the cold path; excluded)")


async def pinger(ws: ClientConnection, hz: float, seconds: float, rtts: list[float]) -> None:
    sent: dict[int, float] = {}

    async def reader() -> None:
        async for frame in ws:
            message = json.loads(frame)
            if message.get("type") == "pong":
                started = sent.pop(message["seq"], None)
                if started is not None:
                    rtts.append((time.perf_counter() - started) * 1000)

    task = asyncio.create_task(reader())
    try:
        interval = 1 / hz
        # Visitors' pings are not in step: each socket starts at its own phase, so a
        # relay is not measured on 100 pings that all arrive in the same millisecond.
        await asyncio.sleep(random.uniform(0, interval))
        start = time.perf_counter()
        seq = 0
        while time.perf_counter() - start < seconds:
            seq += 1
            sent[seq] = time.perf_counter()
            await ws.send(json.dumps({"type": "ping", "seq": seq, "t": time.time() * 1000}))
            await asyncio.sleep(interval)
        await asyncio.sleep(0.5)  # let the last pongs arrive
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def upstream_ready(ws: ClientConnection) -> None:
    """Through the gateway, pings before its pod connection is up are dropped (the
    page waits for this event too): wait for it."""
    async with asyncio.timeout(10):
        while json.loads(await ws.recv()).get("event") != "upstream_ready":
            pass


async def round_of(urls: list[str], hz: float, seconds: float, *, gateway: bool) -> list[float]:
    rtts: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(connect(url)) for url in urls]
        if gateway:
            await asyncio.gather(*(upstream_ready(ws) for ws in sockets))
        await asyncio.gather(*(pinger(ws, hz, seconds, rtts) for ws in sockets))
    return rtts


async def relayed_frames(client: httpx.AsyncClient, metrics_url: str) -> float:
    """Frames the gateway has relayed so far, both directions (from the metrics port)."""
    text = (await client.get(metrics_url)).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "pingpod_relayed_messages_total"
    )


@dataclass
class Provisioner:
    base: str
    pid: int
    metrics_url: str
    profile: bool = False


async def bench_rtt(
    prov: Provisioner, direct: list[str], sessions: int, hz: float, seconds: float
) -> None:
    ws_base = prov.base.replace("http://", "ws://")
    async with httpx.AsyncClient(base_url=prov.base, timeout=120) as client:
        bodies = [await claim(client) for _ in range(sessions)]
        gateway_urls = [ws_base + body["ws_url"] for body in bodies]
        via: list[float] = []
        straight: list[float] = []
        cpu = frames = 0.0
        for round_no in range(2):  # alternate so both paths share the machine's noise
            straight += await round_of(direct[:sessions], hz, seconds / 2, gateway=False)
            frames0, cpu0 = await relayed_frames(client, prov.metrics_url), cpu_seconds(prov.pid)
            with profiled(prov.pid, f"gateway-{sessions}", enabled=prov.profile and round_no == 1):
                via += await round_of(gateway_urls, hz, seconds / 2, gateway=True)
            cpu += cpu_seconds(prov.pid) - cpu0
            frames += await relayed_frames(client, prov.metrics_url) - frames0
        for body in bodies:
            await client.delete(f"/session/{body['session_id']}")
    print(line(f"RTT direct ({sessions} x {hz:g} Hz)", straight))
    print(line(f"RTT via gateway ({sessions} x {hz:g} Hz)", via))
    added = percentile(via, 50) - percentile(straight, 50)
    print(
        f"{'gateway adds':<34} p50 +{added:.2f} ms"
        f"  ratio p50 x{percentile(via, 50) / percentile(straight, 50):.2f}"
        f"  p99 x{percentile(via, 99) / percentile(straight, 99):.2f}"
    )
    per_frame = cpu * 1e6 / frames if frames else float("nan")
    print(
        f"gateway sessions={sessions} hz={hz:g} direct_p50={percentile(straight, 50):.2f}ms"
        f" via_p50={percentile(via, 50):.2f}ms added_p50={added:.2f}ms"
        f" ratio_p50={percentile(via, 50) / percentile(straight, 50):.2f}"
        f" cpu_per_frame={per_frame:.0f}us frames={frames:.0f}"
    )


async def bench_kills(base: str, kills: int) -> None:
    ws_base = base.replace("http://", "ws://")
    recover: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        body = await claim(client)
        sid = body["session_id"]
        async with connect(ws_base + body["ws_url"]) as ws:
            pod = body["pod"]["name"]
            for _ in range(kills):
                started = time.perf_counter()
                await client.delete(f"/session/{sid}/pod")
                pod = await first_pong_from_new_pod(ws, pod)
                recover.append((time.perf_counter() - started) * 1000)
        await client.delete(f"/session/{sid}")
    print(line(f"kill -> first pong ({kills} kills)", recover))


async def first_pong_from_new_pod(ws: ClientConnection, old: str) -> str:
    seq = 0
    while True:
        seq += 1
        await ws.send(json.dumps({"type": "ping", "seq": seq, "t": 0}))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.02):
                while True:
                    message = json.loads(await ws.recv())
                    if message.get("type") == "pong" and message["pod"] != old:
                        return message["pod"]


@contextlib.contextmanager
def echo_servers(n: int) -> Iterator[list[str]]:
    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(server("services.echo", "/health", POD_NAME=f"direct-{i}"))
            for i in range(n)
        ]
        yield [url.replace("http://", "ws://") + "/ws" for url in urls]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--sessions", default="1,20,100", help="session counts, comma-separated")
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway (root)")
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--kills", type=int, default=20)
    args = parser.parse_args()
    counts = [int(n) for n in args.sessions.split(",")]
    most = max(counts)
    env = {
        "POOL_SIZE": "8",
        "REFILL_PER_SECOND": "20",
        "MAX_SESSIONS": str(max(most, 10) + 10),
        "RATE_LIMIT_PER_MINUTE": "1000000",
        "RATE_LIMIT_BURST": "100000",
        "WS_PER_IP": str(most + 10),
        "SESSION_IDLE_TIMEOUT": "600",
        "LOG_LEVEL": "WARNING",
        "METRICS_PORT": str(metrics_port := free_port()),
    }
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    with server_process("services.provisioner", "/ready", **env) as (base, proc):
        print(f"pingpod session benchmark, local backend ({time.strftime('%Y-%m-%d %H:%M')})")
        asyncio.run(bench_claims(base, args.claims))
        with echo_servers(most) as direct:
            for n in counts:
                prov = Provisioner(base, proc.pid, metrics_url, profile=args.profile and n == most)
                asyncio.run(bench_rtt(prov, direct, n, args.hz, args.seconds))
        asyncio.run(bench_kills(base, args.kills))


if __name__ == "__main__":
    main()
