"""Real node vs kwok, side by side: `python -m bench.realnode`.

One control plane with upstream flags (`tuned=False`) and one real node (kubelet,
containerd, runc, the bridge `pingpod0`) beside kwok's fake nodes; one provisioner at
a time, each in a namespace of its own, with the echo template pinned to the real node
(`pingpod.dev/node=real`) or to kwok's arm64 nodes. On kwok the gateway is pointed at a
local echo process, so a pong there has crossed the same gateway. Measured:
  1. `--kills` kills of one session's pod, each phase timed from the DELETE;
  2. `--claims` cold claims (pool 0) and warm claims (pool 1): to the 201, to the first pong;
  3. the kills again on the real node with the echo CPU limit at `--whatif-cpu`;
  4. where the echo container's own start goes (real node): interpreter, imports, spawn
     to /health and started -> Ready in bare pods at CPU limits from 100m to 1000m.
Prints figures and asserts nothing about speed. Needs root (the real node).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.k8s import provisioner_in
from bench.phases import (
    KILL_PHASES,
    PodRecord,
    PodWatch,
    System,
    claim_series,
    container_stats,
    gone,
    kill_series,
    until,
)
from bench.procs import percentile, server
from infra.workload import ECHO_CPU_LIMIT_M, echo_pod_template
from scripts.controlplane import K8S, ControlPlane, ensure_built, versions
from scripts.controlplane.node import BRIDGE, NODE_LABEL
from scripts.images import ensure_images
from scripts.servers import free_port

GOAL_MS = 1500.0  # the project's goal: kill -> first pong p99 on a real node
BRIDGE_WAIT = 30 * 60  # another run may hold the one real node this machine can have
# Run inside an echo container (`kubectl exec`), and on this host for reference: the
# bare interpreter, the module's imports, and a second server's spawn -> /health 200.
PROBE = r"""
import http.client, json, os, subprocess, sys, time
def timed(*args):
    t = time.perf_counter(); subprocess.run([sys.executable, *args], check=True)
    return time.perf_counter() - t
out = {"interpreter": timed("-c", "pass"), "imports": timed("-c", "import services.echo.__main__")}
port = os.environ.get("PROBE_PORT", "8081")
def serve(*flags):
    env = {**os.environ, "PORT": port}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *flags, "-m", "services.echo"], env=env,
                            stderr=subprocess.PIPE, text=True)
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.005)
    took = time.perf_counter() - t
    proc.terminate()
    return took, proc.communicate()[1]
out["health"] = serve()[0]
out["importtime"] = serve("-X", "importtime")[1]
print(json.dumps(out))
"""
PROBE_KEYS = ("interpreter", "imports", "health", "ready", "cpu")
LIMITS = (f"{ECHO_CPU_LIMIT_M}m", "250m", "500m", "1000m")  # the template's first


def load() -> str:
    """Other work on this machine's few cores shows in every figure: say how much."""
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1/5/15 min)"


def note(message: str) -> None:
    """Set-up chatter: stderr, apart from the figures."""
    print(f"# {message}", file=sys.stderr, flush=True)


def wait_for_bridge() -> None:
    """Wait (5 s polls) until nobody else's real node holds the bridge; never touch theirs."""
    path = Path("/sys/class/net") / BRIDGE
    deadline = time.monotonic() + BRIDGE_WAIT
    if path.exists():
        note(f"{BRIDGE} exists: another real node is running; waiting up to 30 min")
    while path.exists():
        if time.monotonic() > deadline:
            sys.exit(f"{BRIDGE} still there after {BRIDGE_WAIT / 60:.0f} min; not starting")
        time.sleep(5)


@contextlib.contextmanager
def provisioner(
    cp: ControlPlane, namespace: str, template: dict[str, Any], *, pool: int, **env: str
) -> Iterator[str]:
    """A Kubernetes-backend provisioner for ``namespace`` (created here): its base URL."""
    settings = {
        "WS_MAX_MESSAGES_PER_SECOND": "1000",  # 50 pings/s sit at the default's edge
        # A cold claim waits for its pod within CLAIM_TIMEOUT (1.5 s); on the real node
        # that is too short and the claim would be shed (429 pool_empty) unmeasured.
        "CLAIM_TIMEOUT": "60",
        "COLD_START_TIMEOUT": "60",
        "POOL_HEADROOM": "0",  # the pool stays at POOL_SIZE whatever the claim rate
        **env,
    }
    with provisioner_in(cp, namespace, template, {"POOL_SIZE": str(pool), **settings}) as found:
        yield found[0]


Rows = list[dict[str, float]]


def measure(
    cp: ControlPlane, watch: PodWatch, args: argparse.Namespace, echo_ref: str, echo_port: int
) -> dict[str, dict[str, Rows]]:
    """Per system: "kills", "cpu" (cgroup, real node only) and, but for the what-if run
    (the real node with the echo CPU limit at ``--whatif-cpu``), "cold" and "warm"."""
    results: dict[str, dict[str, Rows]] = {}
    for label in ("real", "kwok", "whatif"):
        real = label != "kwok"
        selector = [NODE_LABEL] if real else []
        # kwok's nodes are arm64 and the real one is amd64: arm64_only keeps kwok's pods off it.
        template = echo_pod_template(echo_ref, arm64_only=not real, node_selector=selector)
        if label == "whatif":
            template["spec"]["containers"][0]["resources"]["limits"]["cpu"] = args.whatif_cpu
        extra: dict[str, str] = {}
        if not real:
            extra = {"ECHO_URL_TEMPLATE": "ws://127.0.0.1:{port}/ws", "ECHO_PORT": str(echo_port)}
        out = results[label] = {}
        claims = 0 if label == "whatif" else args.claims
        with provisioner(cp, f"{label}-cold", template, pool=0, **extra) as base:
            system = System(label, base, f"{label}-cold", real)
            print(f"\n{label}: {claims} cold claims, then {args.kills} kills", flush=True)
            out["cold"] = asyncio.run(claim_series(system, watch, claims, pool=0))
            out["kills"], out["cpu"] = asyncio.run(kill_series(system, watch, args.kills))
        if claims:
            with provisioner(cp, f"{label}-warm", template, pool=1, **extra) as base:
                system = System(label, base, f"{label}-warm", real)
                out["warm"] = asyncio.run(claim_series(system, watch, claims, pool=1))
    return results


def fmt(value: float, width: int = 0, digits: int = 0) -> str:
    return f"{'-':>{width}}" if math.isnan(value) else f"{value:{width}.{digits}f}"


def table(a: dict[str, Rows], b: dict[str, Rows], names: tuple[str, str], key: str) -> None:
    """One row per phase: p50 and p99 of both sides, the ratio of the p50s; then the
    same as `<key> <phase> <a> p50=..ms p99=..ms <b> p50=.. p99=..` lines to grep."""
    rows: list[tuple[str, Rows, Rows, str]] = [
        (f"kill->{p}", a["kills"], b["kills"], p) for p in KILL_PHASES
    ]
    for kind in ("cold", "warm"):
        if a.get(kind) and b.get(kind):
            rows += [(f"{kind}-claim->{s}", a[kind], b[kind], s) for s in ("201", "first-pong")]
    columns = "".join(f"{f'{n} p{p}':>12}" for n in names for p in (50, 99))
    print(f"{'ms':<24}{columns}  {names[0]}/{names[1]} p50")
    lines: list[str] = []
    for title, ra, rb, step in rows:
        va, vb = ([r[step] for r in side if step in r] for side in (ra, rb))
        pa, pb = ([percentile(v, p) for p in (50, 99)] for v in (va, vb))
        ratio = pa[0] / max(pb[0], 0.1) if va and vb else math.nan
        print(
            f"{title:<24}"
            + "".join(fmt(v, 12) for v in (*pa, *pb))
            + fmt(ratio, 10, 1)
            + ("" if math.isnan(ratio) else "x")
        )
        half = [
            f"{n} p50={fmt(p[0])}ms p99={fmt(p[1])}ms" for n, p in zip(names, (pa, pb), strict=True)
        ]
        lines.append(f"{key} {title} {' '.join(half)}")
    print()
    print("\n".join(lines))


def report(results: dict[str, dict[str, Rows]], args: argparse.Namespace) -> None:
    real, kwok, whatif = results["real"], results["kwok"], results["whatif"]
    print(f"\nreal node vs kwok, ms since the kill ({args.kills} kills) or since the POST")
    print(f"/session ({args.claims} claims each); '-': not measured there")
    table(real, kwok, ("real", "kwok"), "phase")
    p99 = percentile([r["first-pong"] for r in real["kills"]], 99)
    verdict = "met" if p99 <= GOAL_MS else "NOT met"
    goal = f"goal kill->first-pong p99 <= {GOAL_MS:.0f}ms on the real node"
    print(f"{goal}: {verdict} (p99={p99:.0f}ms)")
    for label, side in (("template", real), ("whatif", whatif)):
        if cpu := side["cpu"]:
            mid = {k: statistics.median(c[k] for c in cpu) for k in cpu[0]}
            print(
                f"echo container ({label}) from its start to its first pong, median of "
                f"{len(cpu)}: {mid['cpu_ms']:.0f}ms CPU; CFS-throttled in "
                f"{mid['throttled']:.0f} of {mid['periods']:.0f} 100-ms periods "
                f"({mid['throttled_ms']:.0f}ms throttled)"
            )
    print(f"\nwhat if the echo CPU limit were {args.whatif_cpu} (real node, {args.kills} kills)")
    table(real, whatif, (f"{ECHO_CPU_LIMIT_M}m", args.whatif_cpu), "whatif")


def kubectl_exec(cp: ControlPlane, namespace: str, pod: str, *argv: str) -> str:
    cmd = [str(K8S.binary("kubectl")), f"--kubeconfig={cp.kubeconfig}", "-n", namespace]
    done = subprocess.run(
        [*cmd, "exec", pod, "--", *argv], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl exec {shlex.join(argv[:2])}: {done.stderr[-2000:]}")
    return done.stdout


def top_imports(text: str, top: int = 10) -> str:
    """`-X importtime` lines, top-level packages (first import) by cumulative time."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and "." not in (name := parts[2].strip()):
            found.setdefault(name, int(parts[1]))  # a package's first import is its cost
    best = sorted(found.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{name} {us / 1000:.0f}ms" for name, us in best)


def echo_start(cp: ControlPlane, watch: PodWatch, echo_ref: str, pods: int) -> None:
    """Where the echo container's start goes: bare pods from the template at several CPU
    limits, each timed started -> Ready by the watch, its CPU read from its cgroup at
    Ready, then PROBE run inside it; and PROBE on this host, in no container."""
    namespace = "echo-start"
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    cp.admin().json("POST", "/api/v1/namespaces", body)
    print(f"\necho start on the real node: {pods} pods per CPU limit, PROBE run in each")
    steps = ("python -c pass", "import module", "spawn->/health", "started->Ready", "CPU to Ready")
    print(f"{'median, ms':<26}" + "".join(f"{s:>16}" for s in steps))
    lines: list[str] = []
    probes: list[dict[str, Any]] = []
    for limit in LIMITS:
        probes = []
        for i in range(pods):
            template = echo_pod_template(echo_ref, arm64_only=False, node_selector=[NODE_LABEL])
            # Room beside the running server for the probe's own interpreters (64Mi is tight).
            template["spec"]["containers"][0]["resources"]["limits"] = {
                "cpu": limit,
                "memory": "256Mi",
            }
            name = f"echo-{limit}-{i}"
            pod = {"apiVersion": "v1", "kind": "Pod", **template}
            pod["metadata"] = {**template["metadata"], "name": name}
            cp.admin().json("POST", f"/api/v1/namespaces/{namespace}/pods", pod)
            rec = asyncio.run(_ready(watch, namespace, name))
            cpu = container_stats(rec).get("cpu_ms", math.nan) / 1000
            probe = json.loads(kubectl_exec(cp, namespace, name, "python", "-c", PROBE))
            probes.append({**probe, "ready": rec.at["ready"] - rec.at["started"], "cpu": cpu})
            cp.admin().json("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}")
            asyncio.run(until(lambda n=name: gone(watch, namespace, n), 60, f"{name} deleted"))
        lines.append(_probe_line(f"CPU limit {limit}", f"limit={limit}", probes))
    imports = top_imports(probes[-1]["importtime"])
    print(f"  imports by cumulative time (limit {LIMITS[-1]}): {imports}")
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root, "PROBE_PORT": str(free_port())}
    host = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True
            ).stdout
        )
        for _ in range(pods)
    ]
    lines.append(_probe_line(f"host, Python {sys.version.split()[0]}", "host", host))
    print(f"  imports by cumulative time (this host): {top_imports(host[-1]['importtime'])}")
    print("\n".join(lines))


async def _ready(watch: PodWatch, namespace: str, name: str) -> PodRecord:
    return await until(
        lambda: rec if (rec := watch.get(namespace, name)) and "ready" in rec.at else None,
        120,
        f"pod {name} Ready",
    )


def _probe_line(label: str, key: str, probes: list[dict[str, Any]]) -> str:
    """Prints the medians as a table row; returns them as an `echo-start` line to grep."""
    mid = {k: statistics.median(p.get(k, math.nan) * 1000 for p in probes) for k in PROBE_KEYS}
    print(f"  {label:<24}" + "".join(f"{fmt(v, 14)}ms" for v in mid.values()))
    return f"echo-start {key} " + " ".join(f"{k}={fmt(v)}ms" for k, v in mid.items())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--claims", type=int, default=5)
    parser.add_argument("--whatif-cpu", default="1000m", help="echo CPU limit of the what-if")
    parser.add_argument("--probe-pods", type=int, default=3, help="echo-start pods per CPU limit")
    args = parser.parse_args()
    print(f"pingpod real node vs kwok ({time.strftime('%Y-%m-%d %H:%M %Z')})")
    print("command: python -m bench.realnode " + shlex.join(sys.argv[1:]))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    print(f"host: {os.cpu_count()} CPUs, shared with whatever else runs here; {load()}")
    ensure_built(log=note)
    images = ensure_images(log=note)
    echo = images["echo"]
    spec = echo_pod_template(echo.ref, arm64_only=False)["spec"]
    probe = spec["containers"][0]["readinessProbe"]
    print(
        f"echo image {echo.ref}: readinessProbe every {probe['periodSeconds']} s, CPU limit "
        f"{ECHO_CPU_LIMIT_M}m, grace {spec['terminationGracePeriodSeconds']} s; "
        "control plane with upstream flags (tuned=False)"
    )
    wait_for_bridge()
    with (
        tempfile.TemporaryDirectory() as tmp,
        ControlPlane.start(Path(tmp) / "cp", tuned=False, real_node=True, timeout=600) as cp,
        PodWatch(cp) as watch,
        server("services.echo", "/health", POD_NAME="local-echo", NODE_NAME="this-host") as local,
    ):
        assert cp.node is not None
        cp.node.import_image(echo.archive)
        results = measure(cp, watch, args, echo.ref, int(local.rsplit(":", 1)[1]))
        report(results, args)
        echo_start(cp, watch, echo.ref, args.probe_pods)
    print(f"\nat the end: {load()}")


if __name__ == "__main__":
    main()
