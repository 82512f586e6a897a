"""What `bench.realnode` times with: a watch on every pod of the cluster, a session's
WebSocket, and the kill and claim loops built on the two.

Every time is this machine's `time.monotonic()` when the event arrived here (a watch
line, a WebSocket frame), never an object's timestamp: those have 1 s resolution.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from scripts.controlplane import ControlPlane

T = TypeVar("T")
PING_EVERY = 0.02  # the page pings every 100 ms by default; 20 ms resolves the first pong finer
# `pause`: a random wait before each kill and claim. kubelet works on 1 s clocks (PLEG
# relist, the readiness probe's ticker, reset at the relist that reports the container
# running); a kill sent a fixed time after the previous pong would land at the same
# phase of them every time and show one phase's latency, with no spread.
ECHO_PORT = 8080
# Phases of a kill, in order: the old pod's end, the replacement's start (`process` and
# `listening` are measured on the real node only), the gateway, the pong; the old pod's end.
STARTS = ("created", "scheduled", "process", "started", "listening", "ready")
KILL_PHASES = ("terminating", "pod_killed", *STARTS, "upstream_ready", "first-pong", "old-gone")


@dataclass
class PodRecord:
    """When each state of one pod was first seen here."""

    namespace: str
    name: str
    owner: str = ""
    uid: str = ""
    container_id: str = ""
    ip: str = ""
    at: dict[str, float] = field(default_factory=dict)


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class PodWatch:
    """`GET /api/v1/pods?watch=1` streamed in a thread; lines timed as they arrive."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.pods: dict[tuple[str, str], PodRecord] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="pod-watch", daemon=True)
        self._stop = threading.Event()

    def __enter__(self) -> PodWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()  # the daemon thread ends at its next line or reconnect

    def _run(self) -> None:
        tls = ssl.create_default_context(cafile=str(self.cp.ca_file))
        tls.load_cert_chain(self.cp.pki_dir / "admin.crt", self.cp.pki_dir / "admin.key")
        version = ""
        timeout = httpx.Timeout(10, read=None)
        with httpx.Client(base_url=self.cp.server, verify=tls, timeout=timeout) as http:
            while not self._stop.is_set():
                params = {"watch": "1", "timeoutSeconds": "300"}
                if version:
                    params["resourceVersion"] = version
                try:
                    with http.stream("GET", "/api/v1/pods", params=params) as response:
                        for line in response.iter_lines():
                            now = time.monotonic()
                            if self._stop.is_set():
                                return
                            if not line:
                                continue
                            event = json.loads(line)
                            if event["type"] == "ERROR":  # 410 Gone: start over (first times stay)
                                version = ""
                                break
                            version = event["object"]["metadata"]["resourceVersion"]
                            self._record(event["type"], event["object"], now)
                except httpx.HTTPError:
                    time.sleep(0.1)

    def _record(self, kind: str, pod: dict[str, Any], now: float) -> None:
        meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
        key = (meta["namespace"], meta["name"])
        with self._lock:
            rec = self.pods.setdefault(key, PodRecord(*key, uid=meta.get("uid", "")))
            owners = [o["name"] for o in meta.get("ownerReferences") or []]
            rec.owner = rec.owner or (owners[0] if owners else "")
            containers = status.get("containerStatuses") or []
            rec.ip = rec.ip or status.get("podIP", "")
            rec.container_id = rec.container_id or next(
                (c["containerID"].split("//")[-1] for c in containers if c.get("containerID")), ""
            )
            seen = {
                "created": True,
                "scheduled": bool(spec.get("nodeName")),
                "started": any("running" in (c.get("state") or {}) for c in containers),
                "ready": _ready(pod),
                "terminating": bool(meta.get("deletionTimestamp")),
                "old-gone": kind == "DELETED",
            }
            for phase, now_true in seen.items():
                if now_true:
                    rec.at.setdefault(phase, now)

    def get(self, namespace: str, name: str) -> PodRecord | None:
        with self._lock:
            return self.pods.get((namespace, name))

    def live(self, namespace: str) -> list[PodRecord]:
        """Pods of the namespace not (yet) deleted from the API."""
        with self._lock:
            return [
                r for r in self.pods.values() if r.namespace == namespace and "old-gone" not in r.at
            ]

    def replacement(self, namespace: str, owner: str, exclude: set[str]) -> str | None:
        with self._lock:
            fresh = [
                r
                for r in self.pods.values()
                if r.namespace == namespace and r.owner == owner and r.name not in exclude
            ]
        return min(fresh, key=lambda r: r.at["created"]).name if fresh else None


async def until(probe: Callable[[], T | None], within: float, what: str) -> T:
    """Poll ``probe`` every 5 ms until it returns something other than None (or False)."""
    deadline = time.monotonic() + within
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within:g} s")
        await asyncio.sleep(0.005)
    return value


class Session:
    """One session's gateway WebSocket, pinged every 20 ms; frames timed on arrival.

    A pong's pod is the one named in it (real echo pods know their name) or, with
    ``pod_in_pong`` off, the pod of the gateway's last ``upstream_ready`` (on kwok
    every pod is relayed to the same local echo process, whose name never changes).
    """

    def __init__(self, base: str, body: dict[str, Any], *, pod_in_pong: bool) -> None:
        self.url = base.replace("http://", "ws://", 1) + body["ws_url"]
        self.pod_in_pong = pod_in_pong
        self.upstream = str(body["pod"]["name"])
        self.pongs: list[tuple[float, str]] = []
        self.events: list[tuple[float, str, str]] = []
        self._news = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ws: ClientConnection | None = None

    async def __aenter__(self) -> Session:
        self._ws = await websockets.connect(self.url, compression=None, open_timeout=10)
        self._tasks = [
            asyncio.create_task(self._ping(self._ws)),
            asyncio.create_task(self._read(self._ws)),
        ]
        return self

    async def __aexit__(self, *_: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()

    async def _ping(self, ws: ClientConnection) -> None:
        seq = 0
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                seq += 1
                await ws.send(json.dumps({"type": "ping", "seq": seq, "t": time.time() * 1000}))
                await asyncio.sleep(PING_EVERY)

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in ws:
                now = time.monotonic()
                message = json.loads(frame)
                if message.get("type") == "pong":
                    pod = message.get("pod", "") if self.pod_in_pong else self.upstream
                    self.pongs.append((now, str(pod)))
                elif message.get("type") == "event":
                    self.events.append((now, str(message["event"]), str(message.get("pod", ""))))
                    if message["event"] == "upstream_ready":
                        self.upstream = str(message.get("pod", ""))
                self._news.set()

    async def _wait(self, probe: Callable[[], float | None], within: float, what: str) -> float:
        deadline = time.monotonic() + within
        while (found := probe()) is None:
            self._news.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{what}: not within {within:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._news.wait(), left)
        return found

    async def first_pong(self, pod: str | None, since: float, within: float = 120) -> float:
        """Arrival of the first pong after ``since`` from ``pod`` (None: any pod)."""

        def probe() -> float | None:
            return next((t for t, p in self.pongs if t >= since and pod in (None, p)), None)

        return await self._wait(probe, within, f"a pong from {pod or 'the pod'}")

    def event_at(self, name: str, since: float, pod: str) -> float | None:
        return next((t for t, e, p in self.events if e == name and t >= since and p == pod), None)


def container_stats(rec: PodRecord) -> dict[str, float]:
    """The container's process start (as this machine's monotonic time, 10 ms ticks), its
    CPU so far and its CFS throttling (cgroup v1, cgroupfs driver); {} if not found."""
    found = [
        next(Path("/sys/fs/cgroup", tree).glob(f"**/pod{rec.uid}/{rec.container_id}"), None)
        for tree in ("cpu", "cpuacct")
    ]
    cpu, acct = found
    if not rec.container_id or cpu is None or acct is None:
        return {}
    stat = dict(line.split() for line in (cpu / "cpu.stat").read_text().splitlines())
    boot = time.clock_gettime(time.CLOCK_BOOTTIME) - time.monotonic()
    starts: list[float] = []
    for pid in (cpu / "cgroup.procs").read_text().split():
        with contextlib.suppress(OSError):  # field 22, starttime: clock ticks since boot
            ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
            starts.append(ticks / os.sysconf("SC_CLK_TCK") - boot)
    return {
        "process": min(starts, default=math.nan),
        "cpu_ms": int((acct / "cpuacct.usage").read_text()) / 1e6,
        "periods": float(stat["nr_periods"]),
        "throttled": float(stat["nr_throttled"]),
        "throttled_ms": int(stat["throttled_time"]) / 1e6,
    }


async def listening(watch: PodWatch, namespace: str, name: str) -> float:
    """When the pod's /health first answers, asked from here every 10 ms once its IP is
    known (a refused connection costs the starting container nothing)."""
    rec = await until(lambda: r if (r := watch.get(namespace, name)) and r.ip else None, 120, name)
    async with httpx.AsyncClient(timeout=0.5) as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://{rec.ip}:{ECHO_PORT}/health")).status_code == 200:
                    return time.monotonic()
            await asyncio.sleep(0.01)


@dataclass(frozen=True)
class System:
    """One side of the comparison: a provisioner and its namespace."""

    label: str  # "real" or "kwok"
    base: str
    namespace: str
    real: bool


async def kill_series(
    system: System, watch: PodWatch, kills: int
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """One session; its pod killed ``kills`` times, each once the previous replacement
    has answered and the old pod is gone. Per kill: ms since the DELETE for each phase
    seen; on the real node also the new container's cgroup CPU at its first pong."""
    ns, rows, cpu = system.namespace, [], []
    async with httpx.AsyncClient(base_url=system.base, timeout=60) as http:
        body = checked(await http.post("/session"))
        sid, pod = body["session_id"], str(body["pod"]["name"])
        async with Session(system.base, body, pod_in_pong=system.real) as session:
            await session.first_pong(pod, since=0)
            owner = (await until(lambda: watch.get(ns, pod), 30, "the session's pod")).owner
            seen = {pod}
            for i in range(kills):
                started = time.monotonic()
                checked(await http.delete(f"/session/{sid}/pod"))
                new = await until(lambda: watch.replacement(ns, owner, seen), 60, "a replacement")
                seen.add(new)
                up = asyncio.create_task(listening(watch, ns, new)) if system.real else None
                pong = await session.first_pong(new, since=started)
                fresh = watch.get(ns, new)
                assert fresh is not None
                stats = container_stats(fresh) if system.real else {}
                if stats:
                    cpu.append(stats)
                old = await until(lambda p=pod: gone(watch, ns, p), 60, f"{pod} deleted")
                at = {
                    **{p: old.at.get(p) for p in ("terminating", "old-gone")},
                    **{p: fresh.at.get(p) for p in STARTS},
                    "pod_killed": session.event_at("pod_killed", started, pod),
                    "upstream_ready": session.event_at("upstream_ready", started, new),
                    "first-pong": pong,
                    "process": stats.get("process"),
                    "listening": await up if up else None,  # done: a pong needs a listener
                }
                row = {p: (t - started) * 1000 for p, t in at.items() if t is not None}
                rows.append(row)
                shown = "  ".join(f"{p} {row[p]:5.0f}" for p in KILL_PHASES if p in row)
                print(f"  {system.label} kill {i + 1:2}/{kills} (ms): {shown}", flush=True)
                pod = new
                await asyncio.sleep(random.uniform(0.5, 1.5))  # see `pause`
        await http.delete(f"/session/{sid}")
    return rows, cpu


def checked(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a 2xx answer; otherwise an error that shows the body."""
    if not response.is_success:
        raise RuntimeError(f"{response.request.method} {response.url}: {response.text[:500]}")
    return response.json()


def gone(watch: PodWatch, namespace: str, name: str) -> PodRecord | None:
    rec = watch.get(namespace, name)
    return rec if rec is not None and "old-gone" in rec.at else None


async def settle(system: System, watch: PodWatch, http: httpx.AsyncClient, pool: int) -> None:
    """Before a claim: the namespace holds exactly the pool, Ready and warm, nothing
    terminating (a dying container's CPU would count against the next start)."""
    deadline = time.monotonic() + 180
    while True:
        live = watch.live(system.namespace)
        steady = len(live) == pool and all("terminating" not in r.at for r in live)
        if steady and (await http.get("/pool")).json()["warm"] >= pool:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{system.namespace}: pool of {pool} not steady within 180 s")
        await asyncio.sleep(0.05)


async def claim_series(
    system: System, watch: PodWatch, claims: int, *, pool: int
) -> list[dict[str, float]]:
    """``claims`` sessions one after another: ms from POST /session to the 201 and to the
    first pong through the gateway; each session ended before the next."""
    rows: list[dict[str, float]] = []
    async with httpx.AsyncClient(base_url=system.base, timeout=90) as http:
        for _ in range(claims):
            await settle(system, watch, http, pool)
            await asyncio.sleep(random.uniform(0, 1))  # see `pause`
            started = time.monotonic()
            response = await http.post("/session")
            answered = time.monotonic()
            body = checked(response)
            async with Session(system.base, body, pod_in_pong=system.real) as session:
                pong = await session.first_pong(str(body["pod"]["name"]), since=started)
            rows.append({"201": (answered - started) * 1000, "first-pong": (pong - started) * 1000})
            if bool(body["warm"]) != (pool > 0):
                print(f"  {system.label}: a claim was {'warm' if body['warm'] else 'cold'}")
            await http.delete(f"/session/{body['session_id']}")
    return rows
