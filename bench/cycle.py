"""What one claim cycle costs on the Kubernetes backend: `python -m bench.cycle`.

A claim cycle is a warm claim, the session's end, and the refill that puts a
new warm member in its place. Claims run open loop at a rate below saturation
(default 20/s for 20 s, each session ended at once); then the benchmark waits
until the pool is full again and the cluster is quiet, so every refill the
claims caused is counted. Against the test control plane (kwok nodes), it
prints per completed cycle:

- API requests by verb and resource (the API server's
  `apiserver_request_total`, before and after);
- watch events sent by kind (`apiserver_watch_events_total`): the fan-out;
- CPU milliseconds by process: each control-plane component, the
  provisioner, and the load generator (this process). The load generator is
  printed apart and not counted in the total: it stands for the visitors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.k8s import kubernetes_provisioner_process
from bench.overload import Answers, claim_once, wait_warm
from bench.procs import cpu_seconds, open_loop, profiled
from scripts.controlplane import ControlPlane, ensure_built

# Design name -> (POOL_MEMBERS, SESSION_END): bare warm pods (the default), warm
# ReplicaSets deleted at a session's end, and warm ReplicaSets recycled.
DESIGNS: dict[str, tuple[str, str]] = {
    "pods": ("pods", "delete"),
    "delete": ("replicasets", "delete"),
    "recycle": ("replicasets", "recycle"),
}


def api_counts(cp: ControlPlane) -> tuple[Counter[str], Counter[str]]:
    """(requests by "VERB resource[/subresource]", watch events by kind) so far."""
    status, text = cp.admin().raw("GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"API server /metrics answered {status}")
    requests: Counter[str] = Counter()
    events: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "apiserver_request_total":
                resource = labels.get("resource", "")
                if labels.get("subresource"):
                    resource += "/" + labels["subresource"]
                requests[f"{labels.get('verb', '?')} {resource}"] += int(sample.value)
            elif sample.name == "apiserver_watch_events_total":
                events[labels.get("resource") or labels.get("kind", "?")] += int(sample.value)
    return requests, events


def cpu_by_process(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def settle(base: str, pool: int, quiet: float) -> None:
    """Until the pool is full, then `quiet` seconds more for the controllers' tail."""
    wait_warm(base, pool)
    time.sleep(quiet)


async def run_claims(base: str, rate: float, seconds: float) -> Answers:
    answers = Answers()
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        await open_loop(rate, seconds, lambda: claim_once(http, answers))
    return answers


def measure(cp: ControlPlane, label: str, args: argparse.Namespace, **extra: str) -> None:
    with kubernetes_provisioner_process(cp, args.pool, **extra) as (base, pid):
        settle(base, args.pool, args.quiet)
        pids = {proc.name: proc.pid for proc in cp.procs} | {"provisioner": pid}
        requests0, events0 = api_counts(cp)
        cpu0, own0 = cpu_by_process(pids), os.times()
        with profiled(pid, f"cycle-{label}", enabled=args.profile):
            answers = asyncio.run(run_claims(base, args.rate, args.seconds))
        settle(base, args.pool, args.quiet)
        cpu1, own1 = cpu_by_process(pids), os.times()
        requests1, events1 = api_counts(cp)
    cycles = answers.count("warm", "cold")
    print(
        f"\n{label}: {cycles} cycles at {args.rate:g}/s "
        f"(warm={answers.count('warm')} cold={answers.count('cold')} "
        f"rejected={answers.count('429')} errors={answers.errors()})"
    )
    if not cycles:
        return
    print("  API requests per cycle, by verb and resource:")
    requests = requests1 - requests0
    for name, n in sorted(requests.items(), key=lambda item: -item[1]):
        print(f"    {name:<40} {n / cycles:6.2f}")
    print(f"    {'total':<40} {requests.total() / cycles:6.2f}")
    print("  watch events sent per cycle, by kind:")
    events = events1 - events0
    for name, n in sorted(events.items(), key=lambda item: -item[1]):
        print(f"    {name:<40} {n / cycles:6.2f}")
    print("  CPU ms per cycle, by process:")
    total = 0.0
    for name in pids:
        used = (cpu1[name] - cpu0[name]) * 1000 / cycles
        total += used
        print(f"    {name:<40} {used:6.2f}")
    print(f"    {'total':<40} {total:6.2f}")
    own = (own1.user + own1.system - own0.user - own0.system) * 1000 / cycles
    print(f"    {'load generator (not in total)':<40} {own:6.2f}")
    print(
        f"cycle design={label} cycles={cycles} api_requests={requests.total() / cycles:.2f}"
        f" watch_events={events.total() / cycles:.2f} cpu_ms={total:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--pool", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="py-spy the provisioner")
    parser.add_argument(
        "--tuned", action="store_true", help="the test suite's control-plane flags, not upstream's"
    )
    parser.add_argument(
        "--designs",
        default=",".join(DESIGNS),
        help=f"comma-separated, of {', '.join(DESIGNS)} (POOL_MEMBERS/SESSION_END pairs)",
    )
    parser.add_argument(
        "--quiet", type=float, default=3.0, help="seconds to let controllers settle"
    )
    args = parser.parse_args()
    ensure_built()
    with (
        tempfile.TemporaryDirectory() as tmp,
        ControlPlane.start(Path(tmp) / "cp", tuned=args.tuned) as cp,
    ):
        print(f"pingpod claim-cycle cost ({time.strftime('%Y-%m-%d %H:%M')})")
        for design in args.designs.split(","):
            members, end = DESIGNS[design]
            measure(cp, design, args, POOL_MEMBERS=members, SESSION_END=end)


if __name__ == "__main__":
    main()
