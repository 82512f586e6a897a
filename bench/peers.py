"""pingpod beside agent-sandbox on one control plane: `python -m bench.peers`.

agent-sandbox (kubernetes-sigs/agent-sandbox: SandboxTemplate, SandboxWarmPool,
SandboxClaim) is the warm-pool system users would pick instead. One run, one
control plane at upstream flags (`tuned=False`), kwok nodes with room for every
pod a phase leaves behind, the same echo pod template and the same pool size for
both, each controller with a ServiceAccount token of its own (pingpod's provisioner
with the stack's Role, agent-sandbox's controller with its release's ClusterRoles).

Phases: claims at 5, 10, 20 and 50 a second for 30 s, then a burst of 100 in 2 s,
all open loop, each claim ended as soon as it is answered (ours) or Ready (theirs).
In every phase the two systems take turns (who goes first alternates), each on a
fresh pool in a namespace of its own, with its controller started for it. For
each: answered (ours: the 201; theirs: bound) and Ready p50/p99, warm / cold /
refused counts, the refill rate from the end of the claims until the pool is full,
API requests per claim cycle (`apiserver_request_total`, this benchmark's own
reads left out) and CPU per claim cycle by process, counted until the phase's
claims are all gone. A controller minutes behind is reported, never a crash.

With `--real-node` (root) the echo pods of both run as real containers on the one
real node (kubelet, containerd, the bridge `pingpod0`: docs/real-node.md), pinned
there by the template's node selector, so Ready is a real process answering its
readiness probe. Its defaults: one rate (10/s) and the burst.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.cycle import api_counts, cpu_by_process
from bench.k8s import TEMPLATE, provisioner_in
from bench.peerpools import Counted, Load, PingpodPool, Pool, provisioner_credential
from bench.peertable import (
    CONTROL_PLANE,
    CONTROLLER,
    NODE,
    SYSTEMS,
    Result,
    peer_line,
    table,
)
from bench.realnode import wait_for_bridge
from bench.sandboxload import SandboxPool
from infra.rbac import POOL_MEMBERS
from infra.workload import echo_pod_template
from scripts.controlplane import (
    COMPONENTS,
    NODE_COMPONENTS,
    ControlPlane,
    ControlPlaneError,
    ensure_built,
)
from scripts.controlplane import agentsandbox as sandbox
from scripts.controlplane.components import AGENT_SANDBOX
from scripts.controlplane.loopback import HttpError
from scripts.controlplane.node import NODE_LABEL
from scripts.controlplane.node.host import pods_cpu_seconds
from scripts.images import ensure_images


@dataclass(frozen=True)
class Phase:
    name: str
    rate: float  # claims per second
    seconds: float


def phases(args: argparse.Namespace) -> list[Phase]:
    rates = [float(r) for r in args.rates.split(",") if r]
    found = [Phase(f"rate{r:g}", r, args.seconds) for r in rates]
    if args.burst:
        found.append(
            Phase(f"burst{args.burst}", args.burst / args.burst_seconds, args.burst_seconds)
        )
    return found


def wait_for(check: Callable[[], bool], timeout: float, every: float = 0.25) -> bool:
    """True once ``check()`` holds, False if it did not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def remove_namespace(cp: ControlPlane, namespace: str, timeout: float) -> str:
    """Delete it and wait until it is gone; what was not done, or ""."""
    path = f"/api/v1/namespaces/{namespace}"
    api = cp.admin(timeout=30.0)
    api.raw("DELETE", path)
    if wait_for(lambda: api.raw("GET", path)[0] == 404, timeout, every=0.5):
        return ""
    return f"namespace {namespace} not gone {timeout:g} s after its delete"


@contextlib.contextmanager
def open_pool(
    cp: ControlPlane, system: str, args: argparse.Namespace, counted: Counted, notes: list[str]
) -> Iterator[Pool]:
    """A fresh pool of ``args.pool`` in a namespace of its own, its controller running;
    on the way out the namespace is deleted (before the controller stops: it removes
    its own finalizers)."""
    namespace = f"peers-{system}-{uuid.uuid4().hex[:6]}"
    if system == SYSTEMS[0]:
        # A fixed target, as agent-sandbox's pool (the adaptive headroom would grow ours).
        env = {"POOL_SIZE": str(args.pool), "POOL_HEADROOM": "0", **dict(args.pingpod_env)}
        members = env.get("POOL_MEMBERS", POOL_MEMBERS)
        credential = functools.partial(provisioner_credential, pool_members=members)
        template = args.template
        with provisioner_in(cp, namespace, template, env, credential=credential) as (base, pid):
            try:
                yield PingpodPool(cp, namespace, base, pid, counted)
            finally:
                notes.append(remove_namespace(cp, namespace, args.settle_timeout))
        return
    controller = sandbox.start(cp)
    try:
        pool = SandboxPool(cp, namespace, controller, counted)
        pool.claim_timeout = args.claim_timeout
        pool.create(args.pool, args.template)
        try:
            yield pool
        finally:
            notes.append(remove_namespace(cp, namespace, args.settle_timeout))
    finally:
        controller.stop()


def refill(pool: Pool, size: int, timeout: float) -> tuple[float | None, str]:
    """Pods/s from now until the pool is full, or why there is no such rate."""
    started, short = time.monotonic(), size - pool.warm()
    if short <= 0:
        return None, "the pool stayed full"
    if not wait_for(lambda: pool.warm() >= size, timeout, every=0.1):
        return None, f"pool at {pool.warm()}/{size} {timeout:g} s after the claims (refill behind)"
    return short / (time.monotonic() - started), ""


def cpu_used(cp: ControlPlane, pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far by process; on the real node also its containers' ("pods")."""
    used = cpu_by_process(pids)
    pods = pods_cpu_seconds() if cp.node is not None else None
    return used if pods is None else used | {"pods": pods}


def run_phase(cp: ControlPlane, system: str, phase: Phase, args: argparse.Namespace) -> Result:
    counted: Counted = Counter()
    notes: list[str] = []
    with open_pool(cp, system, args, counted, notes) as pool:
        if not wait_for(lambda: pool.warm() >= args.pool, args.settle_timeout):
            notes.append(f"pool at {pool.warm()}/{args.pool} when the claims began")
        pids = {ref.name: ref.pid for ref in cp.procs if ref.name in (*CONTROL_PLANE, *NODE)}
        pids[CONTROLLER] = pool.controller_pid()
        requests0, _ = api_counts(cp)
        counted["GET "] += 1  # that scrape of /metrics
        cpu0, counted0 = cpu_used(cp, pids), counted.copy()
        load = asyncio.run(pool.claims(phase.rate, phase.seconds))
        rate, refill_note = refill(pool, args.pool, args.settle_timeout)
        left = [""]

        def gone() -> bool:
            left[0] = pool.leftovers(args.pool)
            return not left[0]

        if not wait_for(gone, args.settle_timeout, every=0.5):
            notes.append(f"{args.settle_timeout:g} s after the claims, still there: {left[0]}")
        time.sleep(args.quiet)
        cpu1 = cpu_used(cp, pids)
        requests1, _ = api_counts(cp)
    result = Result(system, phase.name, load, rate, refill_note, notes=[n for n in notes if n])
    cycles = load.served
    if cycles:
        own = counted - counted0
        requests = (requests1 - requests0) - own
        result.api = requests.total() / cycles
        result.api_by = {name: n / cycles for name, n in requests.most_common()}
        result.cpu = {name: (cpu1[name] - cpu0[name]) * 1000 / cycles for name in cpu0}
    return result


def progress(result: Result) -> None:
    load = result.load
    print(
        f"  {result.phase:<9} {result.system:<14} served={load.served} "
        f"outcomes={dict(load.outcomes)} api/cycle={result.api or 0:.1f} "
        f"cpu/cycle={result.cpu_total:.1f} ms",
        flush=True,
    )
    top = ", ".join(f"{name} {n:.2f}" for name, n in list(result.api_by.items())[:10])
    if top:
        print(f"    API requests per cycle, most first: {top}", flush=True)
    for note in result.notes:
        print(f"    {note}", flush=True)


def setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rates", help="claims per second, comma-separated (5,10,20,50; real node: 10)"
    )
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--burst", type=int, default=100, help="claims in the burst (0: none)")
    parser.add_argument("--burst-seconds", type=float, default=2)
    parser.add_argument("--pool", type=int, default=20)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--nodes", type=int, default=16, help="kwok nodes, 110 pods each")
    parser.add_argument("--claim-timeout", type=float, default=30, help="agent-sandbox claims")
    parser.add_argument(
        "--settle-timeout", type=float, default=300, help="seconds to wait for a refill or cleanup"
    )
    parser.add_argument("--quiet", type=float, default=2.0, help="seconds for controllers' tails")
    parser.add_argument(
        "--pingpod-env",
        type=setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a provisioner setting for pingpod's runs (repeatable): a design variant",
    )
    parser.add_argument(
        "--real-node", action="store_true", help="echo pods as real containers (root)"
    )
    args = parser.parse_args()
    if args.rates is None:  # "" is no rate phase at all
        args.rates = "10" if args.real_node else "5,10,20,50"
    args.template = TEMPLATE
    systems = [s for s in SYSTEMS if s in args.systems.split(",")]
    node = NODE_COMPONENTS if args.real_node else ()
    ensure_built((*COMPONENTS, *node, AGENT_SANDBOX))
    archive: Path | None = None
    if args.real_node:
        echo = ensure_images()["echo"]
        # The app's echo template, pinned to the real node (kwok's nodes stay for nothing).
        args.template = echo_pod_template(echo.ref, arm64_only=False, node_selector=[NODE_LABEL])
        archive = echo.archive
        wait_for_bridge()
    with (
        tempfile.TemporaryDirectory() as tmp,
        ControlPlane.start(
            Path(tmp) / "cp", tuned=False, nodes=args.nodes, real_node=args.real_node, timeout=600
        ) as cp,
    ):
        if cp.node is not None and archive is not None:
            cp.node.import_image(archive)
        sandbox.install(cp)
        where = "echo pods on the real node" if args.real_node else f"{args.nodes} kwok nodes"
        print(
            f"pingpod beside agent-sandbox {AGENT_SANDBOX.version} "
            f"({time.strftime('%Y-%m-%d %H:%M')}; pool {args.pool}, upstream flags, {where})",
            flush=True,
        )
        results: list[Result] = []
        for n, phase in enumerate(phases(args)):
            for system in systems if n % 2 == 0 else systems[::-1]:
                try:
                    result = run_phase(cp, system, phase, args)
                except (HttpError, ControlPlaneError, httpx.HTTPError, OSError) as exc:
                    result = Result(system, phase.name, Load(), notes=[f"not measured: {exc}"])
                results.append(result)
                progress(result)
    print("\nside by side (ratio = pingpod / agent-sandbox; per cycle = per served claim):")
    for line in table(results):
        print(line)
    print()
    for result in results:
        print(peer_line(result))


if __name__ == "__main__":
    main()
