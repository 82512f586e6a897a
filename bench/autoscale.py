"""Nodes follow a burst of sessions: `python -m bench.autoscale`.

On the test control plane (upstream flags: `tuned=False`), with Karpenter's kwok
provider and a NodePool shaped like the AWS one (t4g sizes, Spot and on-demand,
`WhenEmptyOrUnderutilized` after `--consolidate-after`), a provisioner
(Kubernetes backend, its settings as deployed but for the rate limits) keeps a
base pool of `--pool` echo pods, with the app's requests
(infra/workload.py), on one node. Then `--claims` claims within `--seconds`
(open loop; visitors keep their sessions until the burst is answered and the
pool's pods are all bound), then every session is ended. It prints, from the
first claim: when each node was created and Ready, the answers (warm, cold,
rejected by code), when the last granted claim was answered and when no pod of
the pool waited for a node any more; and from the end of the sessions, when each
node added went and when the pool was back to one node. Figures only: nothing
is asserted. Node times come from polling every 0.25 s.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.k8s import provisioner_in
from bench.procs import open_loop, percentile
from infra.workload import echo_pod_template
from scripts.controlplane import (
    AUTOSCALING_COMPONENTS,
    COMPONENTS,
    KARPENTER,
    ControlPlane,
    ensure_built,
)
from scripts.controlplane import karpenter as kp

POLL = 0.25  # seconds between looks at nodes and pods
CLIENT_TIMEOUT = 30.0


@dataclass
class NodeSeen:
    instance_type: str
    capacity_type: str
    created: float
    claimed: float | None = None  # when its NodeClaim (Karpenter's decision) was first seen
    ready: float | None = None
    gone: float | None = None


@dataclass
class Watcher:
    """Nodes of the NodePool and unbound pods of the namespace, polled in a thread; times
    are monotonic seconds."""

    cp: ControlPlane
    pool: str
    namespace: str
    nodes: dict[str, NodeSeen] = field(default_factory=dict)
    claims: dict[str, float] = field(default_factory=dict)  # NodeClaim name: first seen
    unbound: int = 0
    most_unbound: int = 0
    bound_at: float | None = None  # when no pod of the pool waited for a node, last
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            self.look()

    def look(self) -> None:
        now = time.monotonic()
        claimed: dict[str, float] = {}  # node name: when its NodeClaim was first seen
        for claim in kp.nodeclaims(self.cp, self.pool):
            first = self.claims.setdefault(claim["metadata"]["name"], now)
            if claim.get("status", {}).get("nodeName"):
                claimed[claim["status"]["nodeName"]] = first
        current = {n["metadata"]["name"]: n for n in kp.nodes(self.cp, self.pool)}
        for name, node in current.items():
            labels = node["metadata"]["labels"]
            seen = self.nodes.setdefault(
                name,
                NodeSeen(
                    labels.get("node.kubernetes.io/instance-type", "?"),
                    labels.get("karpenter.sh/capacity-type", "?"),
                    now,
                ),
            )
            if seen.claimed is None:
                seen.claimed = claimed.get(name)
            if seen.ready is None and _ready(node):
                seen.ready = now
        for name, seen in self.nodes.items():
            if name not in current and seen.gone is None:
                seen.gone = now
        path = f"/api/v1/namespaces/{self.namespace}/pods?labelSelector=slot"
        pods = self.cp.admin().json("GET", path)["items"]
        unbound = sum(1 for p in pods if not p["spec"].get("nodeName"))
        if unbound == 0 and self.unbound:
            self.bound_at = now
        self.unbound = unbound
        self.most_unbound = max(self.most_unbound, unbound)

    def live(self) -> int:
        return sum(1 for seen in self.nodes.values() if seen.gone is None)

    def one_node(self) -> bool:
        """Looks now (before the thread runs): is the pool on exactly one node?"""
        self.look()
        return self.live() == 1


def _ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@dataclass
class Burst:
    outcomes: dict[str, int] = field(default_factory=dict)
    granted_ms: list[float] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    last_granted: float = 0.0  # monotonic

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


async def burst(base: str, claims: int, seconds: float) -> Burst:
    result = Burst()
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT, limits=limits) as http:

        async def one() -> None:
            started = time.perf_counter()
            try:
                reply = await http.post("/session")
            except httpx.HTTPError as exc:
                result.count(type(exc).__name__)
                return
            if reply.status_code == 201:
                body = reply.json()
                result.count("warm" if body["warm"] else "cold")
                result.granted_ms.append((time.perf_counter() - started) * 1000)
                result.sessions.append(body["session_id"])
                result.last_granted = time.monotonic()
            else:
                result.count(f"{reply.status_code} {reply.json().get('error', '?')}")

        await open_loop(claims / seconds, seconds, one)
    return result


async def end_all(base: str, sessions: list[str]) -> None:
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT, limits=limits) as http:
        await asyncio.gather(*(http.delete(f"/session/{sid}") for sid in sessions))


def wait(what: str, probe: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            print(f"  ({what}: not within {timeout:.0f} s)")
            return False
        time.sleep(POLL)
    return True


def template(pool: str) -> dict[str, Any]:
    pod = echo_pod_template("registry.invalid/echo:1", arm64_only=True)
    pod["spec"] |= kp.echo_scheduling(pool)
    return pod


def _at(moment: float | None, origin: float) -> str:
    return f"{moment - origin:+7.1f} s" if moment is not None else "        -"


def report_nodes(watcher: Watcher, t0: float, ended: float) -> None:
    print("  type        capacity  NodeClaim      Node     Ready  gone (from the end)")
    for seen in sorted(watcher.nodes.values(), key=lambda node: node.created):
        print(
            f"  {seen.instance_type:<11} {seen.capacity_type:<9} {_at(seen.claimed, t0)}"
            f" {_at(seen.created, t0)} {_at(seen.ready, t0)}  {_at(seen.gone, ended)}"
        )


def run(args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        ControlPlane.start(Path(tmp) / "cp", tuned=args.tuned) as cp,
    ):
        kp.start(cp)
        pool = "echo"
        kp.apply(
            cp,
            [
                kp.node_pool(
                    pool, cpu_limit=args.cpu_limit, consolidate_after=args.consolidate_after
                )
            ],
        )
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        print(
            f"pingpod autoscaling benchmark ({time.strftime('%Y-%m-%d %H:%M')}): Karpenter "
            f"{KARPENTER.version} (kwok provider), t4g sizes, consolidateAfter "
            f"{args.consolidate_after}, cpu limit {args.cpu_limit}; pool {args.pool}; "
            f"{args.claims} claims in {args.seconds:g} s"
        )
        env = {"POOL_SIZE": str(args.pool), "LOG_LEVEL": "WARNING"}
        with provisioner_in(cp, namespace, template(pool), env) as (base, _):
            watcher = Watcher(cp, pool, namespace)

            def warm() -> bool:
                return httpx.get(base + "/pool").json()["warm"] >= args.pool

            wait("the base pool", warm, 300)
            wait("one node", watcher.one_node, 300)
            watcher.bound_at, watcher.most_unbound = None, 0
            watcher.start()
            t0 = time.monotonic()
            result = asyncio.run(burst(base, args.claims, args.seconds))
            wait("every pod of the pool bound", lambda: watcher.unbound == 0, 300)
            settled = time.monotonic()
            print("\nthe burst:")
            counts = result.outcomes
            rejected = {k: v for k, v in counts.items() if k[:1] == "4"}
            errors = sum(v for k, v in counts.items() if k not in ("warm", "cold", *rejected))
            print(
                f"  answers: warm {counts.get('warm', 0)}, cold {counts.get('cold', 0)}, "
                f"rejected {sum(rejected.values())} {rejected or ''}, errors {errors}"
            )
            if result.granted_ms:
                print(
                    f"  granted claims: p50 {percentile(result.granted_ms, 50):.0f} ms, "
                    f"p99 {percentile(result.granted_ms, 99):.0f} ms; the last answered at "
                    f"{result.last_granted - t0:+.1f} s"
                )
            bound = watcher.bound_at or settled
            print(
                f"  every pod of the pool bound to a node at {bound - t0:+.1f} s "
                f"(at most {watcher.most_unbound} waited for one at a time)"
            )
            print(f"  nodes at the end of the burst: {watcher.live()}")
            ended = time.monotonic()
            asyncio.run(end_all(base, result.sessions))
            print(f"\n{len(result.sessions)} sessions ended at {ended - t0:+.1f} s")
            back = wait("back to one node", lambda: watcher.live() <= 1, args.scale_in_timeout)
            if back:
                print(f"  back to one node {time.monotonic() - ended:.1f} s after the end")
            watcher.stop()
            print("\nnodes (times from the first claim; gone: from the end of the sessions):")
            report_nodes(watcher, t0, ended)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pool", type=int, default=4, help="the warm pool's base size")
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--consolidate-after", default="30s", help="the NodePool's")
    parser.add_argument("--cpu-limit", type=int, default=16, help="the NodePool's, in vCPUs")
    parser.add_argument("--scale-in-timeout", type=float, default=600.0)
    parser.add_argument("--tuned", action="store_true", help="the test suite's control plane flags")
    args = parser.parse_args()
    ensure_built((*COMPONENTS, *AUTOSCALING_COMPONENTS))
    run(args)


if __name__ == "__main__":
    main()
