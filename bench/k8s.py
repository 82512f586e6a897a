"""Kubernetes backend benchmark: `python -m bench.k8s`.

Against the real API server built from source (kwok nodes), with the local
backend's figures from the same run beside them:
  1. claim latency at a sustained rate (default 50 claims/s for 30 s),
     each session ended right after its claim, so the pool must keep up;
  2. pool refill rate: time for an empty pool to reach its target;
  3. delete-to-replacement-Ready over consecutive kills, for a ReplicaSet of
     one (the design) and for a Job (which backs off after each counted
     failure): the figures behind "not a Job".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client

from bench.procs import open_loop, percentile, server, server_process
from scripts.controlplane import ControlPlane, ensure_built

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app.kubernetes.io/part-of": "pingpod"}},
    "spec": {
        "automountServiceAccountToken": False,
        "containers": [{"name": "echo", "image": "registry.invalid/echo:1"}],
    },
}
PROVISIONER_ENV = {
    "RATE_LIMIT_PER_MINUTE": "1000000",
    "RATE_LIMIT_BURST": "100000",
    "MAX_SESSIONS": "500",
    "REFILL_PER_SECOND": "200",
    "SESSION_IDLE_TIMEOUT": "600",
    "LOG_LEVEL": "WARNING",
}


def fmt(values: list[float]) -> str:
    return f"p50={percentile(values, 50):8.1f} ms  p99={percentile(values, 99):8.1f} ms"


async def sustained_claims(base: str, rate: float, seconds: float) -> dict[str, Any]:
    """Open-loop load: a claim every 1/rate s whatever the answers; each session ends at once."""
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:

        async def one() -> None:
            started = time.perf_counter()
            try:
                response = await http.post("/session")
            except httpx.HTTPError as exc:
                key = type(exc).__name__
                outcomes[key] = outcomes.get(key, 0) + 1
                return
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code == 201:
                body = response.json()
                path = "warm" if body["warm"] else "cold"
                outcomes[path] = outcomes.get(path, 0) + 1
                latencies.append(elapsed)
                with contextlib.suppress(httpx.HTTPError):
                    await http.delete(f"/session/{body['session_id']}")
            else:
                key = str(response.status_code)
                outcomes[key] = outcomes.get(key, 0) + 1

        await open_loop(rate, seconds, one)
    return {"latencies": latencies, "outcomes": outcomes}


def wait_warm(base: str, target: int, timeout: float = 300) -> float:
    started = time.monotonic()
    while httpx.get(base + "/pool").json()["warm"] < target:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"pool did not reach {target}")
        time.sleep(0.05)
    return time.monotonic() - started


@contextlib.contextmanager
def kubernetes_provisioner_process(
    cp: ControlPlane, pool: int, **extra: str
) -> Iterator[tuple[str, int]]:
    """A provisioner with the Kubernetes backend in a namespace of its own: (base URL, pid)."""
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    with provisioner_in(cp, namespace, TEMPLATE, {"POOL_SIZE": str(pool), **extra}) as found:
        yield found


@contextlib.contextmanager
def provisioner_in(
    cp: ControlPlane,
    namespace: str,
    template: dict[str, Any],
    env: dict[str, str],
    *,
    credential: Callable[[ControlPlane, str], Path] | None = None,
) -> Iterator[tuple[str, int]]:
    """A Kubernetes-backend provisioner for ``namespace`` (created here), echo pods from
    ``template``, ``env`` over the benchmarks' settings: (base URL, pid). It runs as the
    admin, or with the kubeconfig ``credential(cp, namespace)`` makes once the namespace
    exists."""
    with cp.api_client() as api:
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
        )
    kubeconfig = credential(cp, namespace) if credential else cp.kubeconfig
    with tempfile.TemporaryDirectory() as tmp:
        template_file = Path(tmp) / "echo-pod.json"
        template_file.write_text(json.dumps(template))
        full = {
            **PROVISIONER_ENV,
            "BACKEND": "kubernetes",
            "KUBECONFIG": str(kubeconfig),
            "NAMESPACE": namespace,
            "ECHO_POD_TEMPLATE": str(template_file),
            **env,
        }
        with server_process("services.provisioner", "/ready", **full) as (base, proc):
            yield base, proc.pid


@contextlib.contextmanager
def kubernetes_provisioner(cp: ControlPlane, pool: int, **extra: str) -> Iterator[str]:
    with kubernetes_provisioner_process(cp, pool, **extra) as (base, _):
        yield base


def local_provisioner(pool: int, **extra: str) -> contextlib.AbstractContextManager[str]:
    env = {**PROVISIONER_ENV, "POOL_SIZE": str(pool), **extra}
    return server("services.provisioner", "/ready", **env)


def replacement_times(
    api: client.ApiClient, kind: str, kills: int, timeout: float = 600
) -> tuple[list[float], str]:
    """Create one ReplicaSet or Job, then time `kills` delete -> replacement Ready.
    Returns the times and, if a pod was not Ready within `timeout` s (the controller
    manager can be minutes behind after a heavy phase), what did not happen: the
    kills stop there, and the benchmark goes on."""
    namespace = f"bench-{kind.lower()}-{uuid.uuid4().hex[:6]}"
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    labels = {"bench": namespace}
    spec = {**TEMPLATE["spec"], "restartPolicy": "Never" if kind == "Job" else "Always"}
    template = {"metadata": {"labels": labels}, "spec": spec}
    body: Any
    if kind == "ReplicaSet":
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "one"},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
        }
        apps.create_namespaced_replica_set(namespace, body)
    else:
        body = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "one"},
            "spec": {"backoffLimit": 10, "template": template},
        }
        batch.create_namespaced_job(namespace, body)

    def ready_pod(exclude: set[str]) -> str | None:
        for pod in core.list_namespaced_pod(namespace, label_selector=f"bench={namespace}").items:
            meta, status = pod.metadata, pod.status
            if meta is None or status is None or meta.deletion_timestamp or not meta.name:
                continue
            name = meta.name
            if name in exclude:
                continue
            if any(c.type == "Ready" and c.status == "True" for c in status.conditions or []):
                return name
        return None

    seen: set[str] = set()
    times: list[float] = []
    missing = ""
    current = poll(lambda: ready_pod(seen), timeout)
    if current is None:
        missing = f"the first pod was not Ready within {timeout:g} s"
    for kill in range(kills):
        if current is None:
            break
        seen.add(current)
        started = time.monotonic()
        core.delete_namespaced_pod(current, namespace)
        current = poll(lambda: ready_pod(seen), timeout)
        if current is None:
            missing = f"no replacement Ready within {timeout:g} s after kill {kill + 1}"
        else:
            times.append((time.monotonic() - started) * 1000)
    core.delete_namespace(namespace)
    return times, missing


def poll(probe: Callable[[], str | None], timeout: float) -> str | None:
    """The probe's first value, or None if it has none within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (value := probe()) is None:
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="10,50", help="claims per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--pool", type=int, default=20)
    parser.add_argument("--refill-pool", type=int, default=100)
    parser.add_argument("--local-refill-pool", type=int, default=30)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    ensure_built()
    with (
        tempfile.TemporaryDirectory() as tmp,
        ControlPlane.start(Path(tmp) / "cp", tuned=False) as cp,
    ):
        print(f"pingpod Kubernetes backend benchmark ({time.strftime('%Y-%m-%d %H:%M')})")
        for rate in (float(r) for r in args.rates.split(",")):
            print(f"\nclaims at {rate:g}/s for {args.seconds:g} s, pool {args.pool}:")
            for label, make in (
                ("kubernetes", lambda: kubernetes_provisioner(cp, args.pool)),
                ("local     ", lambda: local_provisioner(args.pool)),
            ):
                with make() as base:
                    try:
                        wait_warm(base, args.pool)
                    except TimeoutError:
                        # The controllers are behind (an earlier phase's backlog): say so.
                        print(f"  {label} pool not full within 300 s; not measured")
                        continue
                    result = asyncio.run(sustained_claims(base, rate, args.seconds))
                print(f"  {label} {fmt(result['latencies'])}  outcomes={result['outcomes']}")
        print("\npool refill from empty:")
        for label, make, target in (
            ("kubernetes", lambda: kubernetes_provisioner(cp, args.refill_pool), args.refill_pool),
            (
                "local     ",
                lambda: local_provisioner(args.local_refill_pool),
                args.local_refill_pool,
            ),
        ):
            with make() as base:
                try:
                    took = wait_warm(base, target)
                except TimeoutError:
                    print(f"  {label} {target} pods not all Ready within 300 s")
                    continue
            print(f"  {label} {target} pods Ready in {took:5.1f} s = {target / took:6.1f} pods/s")
        print(f"\ndelete -> replacement Ready, {args.kills} consecutive kills:")
        with cp.api_client() as api:
            for kind in ("ReplicaSet", "Job"):
                times, missing = replacement_times(api, kind, args.kills)
                shown = ", ".join([f"{t / 1000:.2f} s" for t in times] + [missing] * bool(missing))
                print(f"  {kind:<10} {shown}")


if __name__ == "__main__":
    main()
