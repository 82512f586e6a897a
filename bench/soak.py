"""Soak benchmark: `python -m bench.soak` (not part of `make test`).

`--sessions` (200) sessions on the local backend, a real provisioner process
with a real echo-server child per pod, each pinging at `--rate` (10 Hz)
through the gateway for `--seconds` (300), while one random session's pod is
killed every second (`DELETE /session/{id}/pod`). Prints:

- lost pongs outside kill windows (goal 0). A session's kill window runs from
  the moment its pod stopped answering (the send time of the oldest ping still
  unanswered when the kill was asked for, or the request itself if none was)
  to the first pong from its replacement. Inside a window pings may be lost by
  design: the gateway drops them while the session has no pod.
- RTT p50 and p99 over every pong.
- recovery p50, p99 and max: the kill request to the first pong from the
  replacement. The client pings at once when the gateway says
  `upstream_ready`, so recovery is not rounded up to the ping interval.
- the provisioner's RSS and open file descriptors once every session is up and
  at the end (goal: flat), and every 30 s between.
- processes left over after shutdown (goal 0): echo servers carrying the
  `ECHO_PARENT_PID=<provisioner pid>` marker in their environment, whoever
  their parent is by then.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvloop
import websockets
from websockets.asyncio.client import ClientConnection, connect

from bench.procs import open_loop, percentile, server_process
from bench.sessions import claim, line
from scripts.procinfo import descendants, open_fds, rss_bytes, with_environ

MB = 1 << 20
STRAGGLERS = 2.0  # seconds the last pongs may take before an unanswered ping counts as lost
IN_FLIGHT = 1.0  # a ping older than this at a kill was already lost, not lost to the kill


@dataclass
class Window:
    """One kill: from the pod's last answered moment to the replacement's first pong."""

    start: float
    kill: float
    pod: str  # the pod asked to die
    end: float | None = None

    def holds(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t <= self.end)


@dataclass
class Stats:
    measuring: bool = False  # RTTs count from the start of the soak, not while sessions start
    rtts: list[float] = field(default_factory=list)  # ms
    recoveries: list[float] = field(default_factory=list)  # ms
    kill_answers: dict[int, int] = field(default_factory=dict)  # HTTP status -> count
    disconnects: int = 0
    pongs: int = 0


class Soaker:
    """One session's WebSocket, as the page keeps it: pings at a steady rate,
    reconnects if the socket fails."""

    def __init__(self, body: dict[str, Any], ws_base: str, rate: float, stats: Stats) -> None:
        self.id = body["session_id"]
        self.url = ws_base + body["ws_url"]
        self.pod = body["pod"]["name"]
        self.rate = rate
        self.stats = stats
        self.sent: dict[int, float] = {}  # seq -> perf_counter() at send
        self.outstanding: dict[int, float] = {}
        self.windows: list[Window] = []
        self.ws: ClientConnection | None = None
        self.ready = asyncio.Event()
        self._seq = 0

    @property
    def window(self) -> Window | None:
        last = self.windows[-1] if self.windows else None
        return last if last is not None and last.end is None else None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with connect(self.url, open_timeout=30, max_queue=None) as ws:
                    self.ws = ws
                    await asyncio.gather(self._read(ws), self._ping(stop))
                    return
            except (OSError, TimeoutError, websockets.WebSocketException):
                self.stats.disconnects += 1
            finally:
                self.ws = None
            await asyncio.sleep(0.5)

    async def ping(self) -> None:
        if self.ws is None:
            return
        self._seq += 1
        now = time.perf_counter()
        self.sent[self._seq] = self.outstanding[self._seq] = now
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(json.dumps({"type": "ping", "seq": self._seq, "t": 0}))

    async def _ping(self, stop: asyncio.Event) -> None:
        await self.ready.wait()
        interval = 1 / self.rate
        await asyncio.sleep(random.random() * interval)  # spread the sessions' pings
        next_at = time.perf_counter()
        while not stop.is_set():
            await self.ping()
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.sleep(STRAGGLERS)
        if self.ws is not None:
            await self.ws.close()

    async def _read(self, ws: ClientConnection) -> None:
        async for frame in ws:
            now = time.perf_counter()
            message = json.loads(frame)
            if message.get("type") == "pong":
                self._pong(message, now)
            elif message.get("event") == "upstream_ready":
                self.ready.set()
                if self.window is not None:
                    await self.ping()  # the replacement's first pong, without waiting a tick

    def _pong(self, message: dict[str, Any], now: float) -> None:
        sent = self.outstanding.pop(message["seq"], None)
        if sent is None:
            return
        self.stats.pongs += 1
        if self.stats.measuring:
            self.stats.rtts.append((now - sent) * 1000)
        window = self.window
        if window is not None and message["pod"] != window.pod:
            window.end = now
            self.stats.recoveries.append((now - window.kill) * 1000)
        self.pod = message["pod"]

    def open_window(self, now: float) -> Window:
        recent = [t for t in self.outstanding.values() if now - t < IN_FLIGHT]
        window = Window(start=min(recent, default=now), kill=now, pod=self.pod)
        self.windows.append(window)
        return window

    def lost(self) -> tuple[int, int]:
        """Unanswered pings (inside kill windows, outside them)."""
        inside = outside = 0
        for sent in self.outstanding.values():
            if any(w.holds(sent) for w in self.windows):
                inside += 1
            else:
                outside += 1
        return inside, outside


async def kill_one(http: httpx.AsyncClient, soakers: list[Soaker], stats: Stats) -> None:
    """A random session not already being replaced loses its pod."""
    candidates = [s for s in soakers if s.window is None and s.ws is not None]
    if not candidates:
        return
    soaker = random.choice(candidates)
    window = soaker.open_window(time.perf_counter())
    response = await http.delete(f"/session/{soaker.id}/pod")
    stats.kill_answers[response.status_code] = stats.kill_answers.get(response.status_code, 0) + 1
    if response.status_code == 202:
        window.pod = response.json()["killed"]
    else:
        soaker.windows.remove(window)


async def settled(http: httpx.AsyncClient, soakers: list[Soaker]) -> None:
    """Until no pod is being replaced and the pool is full (at most a minute): the
    same state at the start and at the end."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60):
            while True:
                pool = (await http.get("/pool")).json()
                full = pool["starting"] == 0 and pool["warm"] >= pool["target"]
                if full and all(s.window is None for s in soakers):
                    return
                await asyncio.sleep(0.2)


def usage(pid: int) -> str:
    return f"rss={rss_bytes(pid) / MB:.1f}MB fds={len(open_fds(pid))}"


async def report_every(seconds: float, pid: int, stats: Stats, started: float) -> None:
    pongs, rtts = stats.pongs, len(stats.rtts)
    while True:
        await asyncio.sleep(seconds)
        recent = stats.rtts[rtts:]
        rate = (stats.pongs - pongs) / seconds
        pongs, rtts = stats.pongs, len(stats.rtts)
        print(
            f"  t={time.perf_counter() - started:5.0f}s {usage(pid)} pongs/s={rate:.0f}"
            f" rtt_p50={percentile(recent, 50):.1f}ms kills={sum(stats.kill_answers.values())}"
            f" recoveries={len(stats.recoveries)}",
            flush=True,
        )


async def soak(base: str, pid: int, args: argparse.Namespace) -> None:
    stats = Stats()
    ws_base = base.replace("http://", "ws://")
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        began = time.perf_counter()
        bodies = [await claim(http) for _ in range(args.sessions)]
        soakers = [Soaker(body, ws_base, args.rate, stats) for body in bodies]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(s.run(stop)) for s in soakers]
        for soaker in soakers:
            await soaker.ready.wait()
        print(f"{args.sessions} sessions up in {time.perf_counter() - began:.0f} s", flush=True)
        await settled(http, soakers)
        at_start = usage(pid)
        print(f"  t=    0s {at_start}", flush=True)
        started = time.perf_counter()
        stats.measuring = True
        reporter = asyncio.create_task(report_every(30, pid, stats, started))
        await open_loop(args.kills, args.seconds, lambda: kill_one(http, soakers, stats))
        await asyncio.sleep(max(0.0, started + args.seconds - time.perf_counter()))
        stats.measuring = False
        await settled(http, soakers)
        at_end = usage(pid)  # as at the start: every session live, nothing starting
        children = len(descendants(pid))
        stop.set()
        await asyncio.gather(*tasks)
        reporter.cancel()
        for soaker in soakers:
            await http.delete(f"/session/{soaker.id}")
    inside = outside = sent = 0
    for soaker in soakers:
        a, b = soaker.lost()
        inside, outside, sent = inside + a, outside + b, sent + len(soaker.sent)
    windows = [w for s in soakers for w in s.windows]
    unrecovered = sum(1 for w in windows if w.end is None)
    print(
        f"\nsoak: {args.sessions} sessions x {args.rate:g} Hz for {args.seconds:g} s,"
        f" {args.kills:g} kill/s, local backend"
    )
    print(f"pings sent {sent}, pongs {stats.pongs}, disconnects {stats.disconnects}")
    print(f"lost pongs outside kill windows: {outside} (goal 0)")
    print(f"lost pongs inside kill windows:  {inside} (dropped while the session had no pod)")
    print(line("RTT via gateway", stats.rtts))
    print(line("recovery (kill -> first pong)", stats.recoveries))
    answers = ", ".join(f"{code}: {n}" for code, n in sorted(stats.kill_answers.items()))
    print(f"kills {len(windows)} ({answers}), not recovered by the end: {unrecovered}")
    print(f"provisioner at start: {at_start}; at end: {at_end}")
    print(f"echo servers under the provisioner at the end: {children}")


def leftovers(pid: int, wait: float = 10) -> int:
    """Echo servers of provisioner `pid` still alive after it exited (by environment marker)."""
    deadline = time.monotonic() + wait
    while (alive := with_environ("ECHO_PARENT_PID", str(pid))) and time.monotonic() < deadline:
        time.sleep(0.2)
    return len(alive)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--rate", type=float, default=10.0, help="pings per second per session")
    parser.add_argument("--kills", type=float, default=1.0, help="pods killed per second")
    parser.add_argument("--seed", type=int, default=None, help="which sessions lose their pod")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    random.seed(seed)
    env = {
        "POOL_SIZE": str(min(20, args.sessions)),
        "REFILL_PER_SECOND": "20",
        "MAX_SESSIONS": str(args.sessions + 10),
        "RATE_LIMIT_PER_MINUTE": "1000000",
        "RATE_LIMIT_BURST": "100000",
        "WS_PER_IP": str(args.sessions + 10),
        "WS_MAX_MESSAGES_PER_SECOND": str(max(50, 5 * args.rate)),
        # Setting up hundreds of sessions takes minutes: none may expire meanwhile.
        "SESSION_IDLE_TIMEOUT": str(args.seconds + 600),
        "SESSION_MAX_LIFETIME": str(args.seconds + 1800),
        "LOG_LEVEL": "WARNING",
    }
    print(f"pingpod soak benchmark ({time.strftime('%Y-%m-%d %H:%M')}), seed {seed}", flush=True)
    with server_process("services.provisioner", "/ready", **env) as (base, proc):
        uvloop.run(soak(base, proc.pid, args))
    print(f"processes left over after shutdown: {leftovers(proc.pid)} (goal 0)")


if __name__ == "__main__":
    main()
