"""Pool designs compared by what the cluster spends on them: `python -m bench.designs`.

The provisioner's own work aside, each design is played against the test
control plane (upstream flags, kwok nodes) with the API calls it would make,
at the same rate, and the cluster's cost per claim cycle (claim, end, refill)
is printed side by side: API requests by verb and resource, watch events,
and control-plane CPU by process.

- `replicaset-per-member` (the product's design): a claim PATCHes a warm
  ReplicaSet of one; the end DELETEs it; the refill CREATEs a new one.
- `relabel-out`: one warm ReplicaSet of N; a claim PATCHes a Ready pod's
  labels out of its selector (the ReplicaSet controller releases it and
  makes a replacement: the controller refills); the end DELETEs the pod. A
  session ReplicaSet that adopts the pod would be created only when its
  visitor kills it, so it is not part of a cycle.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import urllib3
from kubernetes import client, watch

from bench.cycle import api_counts, cpu_by_process
from bench.k8s import TEMPLATE
from scripts.controlplane import ControlPlane, ensure_built

Obj = dict[str, Any]


class ReadyPods:
    """A watch of the namespace's pods: names of the Ready ones with a label value."""

    def __init__(self, core: client.CoreV1Api, namespace: str, selector: str) -> None:
        self.ready: set[str] = set()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._watch = watch.Watch()
        self._thread = threading.Thread(
            target=self._run, args=(core, namespace, selector), daemon=True
        )
        self._thread.start()

    def _run(self, core: client.CoreV1Api, namespace: str, selector: str) -> None:
        stream = self._watch.stream(
            core.list_namespaced_pod, namespace, label_selector=selector, deserialize=False
        )
        with contextlib.suppress(urllib3.exceptions.ProtocolError):  # stop() closes it
            for raw in stream:
                self._apply(cast(Obj, raw))

    def _apply(self, event: Obj) -> None:
        obj = event["object"]
        meta = obj["metadata"]
        conditions = (obj.get("status") or {}).get("conditions") or []
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        usable = event["type"] != "DELETED" and ready and not meta.get("deletionTimestamp")
        with self.lock:
            if usable:
                self.ready.add(meta["name"])
            else:
                self.ready.discard(meta["name"])

    def take(self, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.ready:
                    return self.ready.pop()
            time.sleep(0.005)
        raise TimeoutError("no Ready pod")

    def count(self) -> int:
        with self.lock:
            return len(self.ready)

    def stop(self) -> None:
        self._stop.set()
        self._watch.stop()


def replicaset(name: str, labels: dict[str, str], replicas: int) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "labels": {"bench": "designs"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": TEMPLATE["spec"]},
        },
    }


class PerMember:
    """Warm ReplicaSets of one, each selecting its own `slot` label."""

    def __init__(self, api: client.ApiClient, namespace: str, pool: int) -> None:
        self.apps, self.ns = client.AppsV1Api(api), namespace
        self.pods = ReadyPods(client.CoreV1Api(api), namespace, "designs=member")
        for _ in range(pool):
            self.create()

    def create(self) -> None:
        name = "m-" + uuid.uuid4().hex[:10]
        body: Any = replicaset(name, {"designs": "member", "slot": name}, 1)
        self.apps.create_namespaced_replica_set(self.ns, body)

    def cycle(self) -> None:
        pod = self.pods.take()
        slot = pod.rsplit("-", 1)[0]  # the ReplicaSet's name: pod names add a suffix
        patch: Any = {"metadata": {"labels": {"pool.state": "assigned"}}}
        self.apps.patch_namespaced_replica_set(slot, self.ns, patch)
        self.apps.delete_namespaced_replica_set(
            slot, self.ns, body=client.V1DeleteOptions(propagation_policy="Background")
        )
        self.create()


class RelabelOut:
    """One warm ReplicaSet of `pool`; a claim takes a pod out of its selector."""

    def __init__(self, api: client.ApiClient, namespace: str, pool: int) -> None:
        self.core, self.ns = client.CoreV1Api(api), namespace
        self.pods = ReadyPods(self.core, namespace, "designs=warm")
        body: Any = replicaset("warm", {"designs": "warm"}, pool)
        client.AppsV1Api(api).create_namespaced_replica_set(namespace, body)

    def cycle(self) -> None:
        pod = self.pods.take()
        patch: Any = {"metadata": {"labels": {"designs": "session"}}}
        self.core.patch_namespaced_pod(pod, self.ns, patch)
        self.core.delete_namespaced_pod(pod, self.ns)


DESIGNS: dict[str, Callable[[client.ApiClient, str, int], Any]] = {
    "replicaset-per-member": PerMember,
    "relabel-out": RelabelOut,
}


def measure(cp: ControlPlane, name: str, args: argparse.Namespace) -> None:
    namespace = f"designs-{uuid.uuid4().hex[:6]}"
    with cp.api_client() as api:
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
        )
        design = DESIGNS[name](api, namespace, args.pool)
        while design.pods.count() < args.pool:
            time.sleep(0.05)
        time.sleep(args.quiet)
        pids = {proc.name: proc.pid for proc in cp.procs}
        requests0, events0 = api_counts(cp)
        cpu0, own0 = cpu_by_process(pids), os.times()
        cycles = 0
        start = time.perf_counter()
        for i in range(int(args.rate * args.seconds)):
            delay = start + i / args.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            design.cycle()
            cycles += 1
        while design.pods.count() < args.pool:
            time.sleep(0.05)
        time.sleep(args.quiet)
        cpu1, own1 = cpu_by_process(pids), os.times()
        requests1, events1 = api_counts(cp)
        design.pods.stop()
        took = time.perf_counter() - start
    requests: Counter[str] = requests1 - requests0
    events: Counter[str] = events1 - events0
    print(f"\n{name}: {cycles} cycles in {took:.1f} s (asked {args.rate:g}/s)")
    for key, n in sorted(requests.items(), key=lambda item: -item[1]):
        if n / cycles >= 0.05:
            print(f"    {key:<40} {n / cycles:6.2f}")
    total = sum((cpu1[p] - cpu0[p]) * 1000 / cycles for p in pids)
    for p in pids:
        print(f"    cpu {p:<36} {(cpu1[p] - cpu0[p]) * 1000 / cycles:6.2f} ms")
    own = (own1.user + own1.system - own0.user - own0.system) * 1000 / cycles
    print(
        f"design name={name} cycles={cycles} api_requests={requests.total() / cycles:.2f}"
        f" watch_events={events.total() / cycles:.2f} control_plane_cpu_ms={total:.2f}"
        f" client_cpu_ms={own:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=4, help="cycles per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--pool", type=int, default=20)
    parser.add_argument("--quiet", type=float, default=3.0)
    parser.add_argument("--tuned", action="store_true", help="the test suite's flags")
    args = parser.parse_args()
    ensure_built()
    with (
        tempfile.TemporaryDirectory() as tmp,
        ControlPlane.start(Path(tmp) / "cp", tuned=args.tuned) as cp,
    ):
        print(f"pingpod pool designs, cluster cost per cycle ({time.strftime('%Y-%m-%d %H:%M')})")
        for name in DESIGNS:
            measure(cp, name, args)


if __name__ == "__main__":
    main()
