"""The provisioner scaled by the HorizontalPodAutoscaler from real metrics, on the real node.

The `local` stack (``real_stack``, tests/conftest.py) is deployed with its HPA
(``infra/hpa.py``: ``provisionerReplicas`` 1 to ``provisionerMaxReplicas`` 2,
CPU). metrics-server runs as a pod on the real node and scrapes its kubelet;
the API server serves its figures as ``metrics.k8s.io`` through the
aggregation layer; the HPA controller in kube-controller-manager reads them and
scales the Deployment. A bounded load of visitors (sessions and WebSockets
pinging through the port-forward) raises the provisioner's CPU; the HPA adds a
replica, and once the load stops it takes it away again.

Two things of the deployed HPA are changed for the test and put back after: the
scale-down behaviour (production waits ten minutes) and the CPU target (the
production figure is for a dedicated vCPU per replica; here two shared cores run
the node, the control plane, the port-forward and the load). The timeline is
printed; nothing is asserted about durations. `make test-node` runs it (marker
``node``), before tests/engine/test_real_stack.py destroys the stack.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from infra.hpa import SCALE_OUT_CPU_M
from infra.workload import PROVISIONER_LABELS, PROVISIONER_NAME
from scripts.controlplane import metrics_server
from scripts.controlplane.loopback import Endpoint
from scripts.controlplane.metrics_server import MetricsServer
from tests.realstack import NAMESPACE, RealStack
from tests.support.polling import wait_for
from tests.support.wsload import LoadShape, PingLoad

pytestmark = pytest.mark.node

HPA_PATH = (
    f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers/{PROVISIONER_NAME}"
)
DEPLOYMENT_PATH = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{PROVISIONER_NAME}"
SELECTOR = ",".join(f"{k}%3D{v}" for k, v in PROVISIONER_LABELS.items())
# The test's HPA: scale in 10 s after the load (production: 600 s, one pod per 120 s).
SCALE_DOWN = {
    "stabilizationWindowSeconds": 10,
    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 5}],
}
TEST_TARGET_M = 50
# 4 visitors' sessions, 30 sockets each at 20 pings a second (the limit is 50, counted as
# the provisioner reads them: a socket that a busy machine delays for 2.5 s and then
# delivers at once is closed): at most 4 minutes, stopped once the HPA has scaled out.
LOAD = LoadShape(sessions=4, sockets_per_session=30, rate=20.0, seconds=240.0)
POLL = 1.0


def cpu_m(quantity: str) -> float:
    """A CPU quantity in millicores: metrics-server answers in nanocores (``12345n``)."""
    units = {"n": 1e-6, "u": 1e-3, "m": 1.0}
    if quantity[-1] in units:
        return float(quantity[:-1]) * units[quantity[-1]]
    return float(quantity) * 1000


@dataclass
class Timeline:
    """Seconds since the start of the metrics-server install, by event, first time only."""

    t0: float = field(default_factory=time.monotonic)
    events: dict[str, float] = field(default_factory=dict)

    def mark(self, event: str) -> None:
        self.events.setdefault(event, time.monotonic() - self.t0)

    def report(self) -> str:
        return "\n".join(
            f"  +{t:6.1f}s  {e}" for e, t in sorted(self.events.items(), key=lambda x: x[1])
        )


@dataclass
class Snapshot:
    """One poll: the HPA's view and the Deployment's, and the provisioner's CPU as served."""

    desired: int
    current_m: float | None  # the HPA's average, None before its first metric
    spec_replicas: int
    ready: int
    pods: int  # provisioner pods, terminating ones included
    cpu_m: list[float]  # per pod, from metrics.k8s.io
    conditions: dict[str, str]


def snapshot(api: Endpoint, server: MetricsServer) -> Snapshot:
    hpa = api.json("GET", HPA_PATH)
    status = hpa.get("status", {})
    current = [
        m["resource"]["current"].get("averageValue")
        for m in status.get("currentMetrics") or []
        if m.get("type") == "Resource"
    ]
    deployment = api.json("GET", DEPLOYMENT_PATH)
    pods = api.json("GET", f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={SELECTOR}")["items"]
    usage = [
        sum(cpu_m(c["usage"]["cpu"]) for c in pod["containers"])
        for pod in server.pod_metrics(NAMESPACE, SELECTOR)
    ]
    return Snapshot(
        desired=int(status.get("desiredReplicas", 0)),
        current_m=cpu_m(current[0]) if current and current[0] else None,
        spec_replicas=int(deployment["spec"]["replicas"]),
        ready=int(deployment["status"].get("readyReplicas", 0)),
        pods=len(pods),
        cpu_m=usage,
        conditions={
            c["type"]: f"{c['status']} {c.get('reason', '')}"
            for c in status.get("conditions") or []
        },
    )


@pytest.fixture(scope="module")
def timeline() -> Timeline:
    return Timeline()


@pytest.fixture(scope="module")
def metrics(real_stack: RealStack, timeline: Timeline) -> Iterator[MetricsServer]:
    """metrics-server on the real node for this module, removed after."""
    timeline.mark("metrics-server install started")
    with metrics_server.running(
        real_stack.cp, log=lambda m: print(f"metrics-server: {m}")
    ) as server:
        timeline.mark("APIService Available, the node's figures served")
        yield server


@pytest.fixture
def patched_hpa(real_stack: RealStack) -> Iterator[dict[str, Any]]:
    """The Pulumi-made HPA with the test's scale-down and target; its own spec put back after."""
    api = real_stack.cp.admin(timeout=10.0)
    hpa = api.json("GET", HPA_PATH)
    spec = hpa["spec"]
    original = {"behavior": spec.get("behavior"), "metrics": spec["metrics"]}
    metric = {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "AverageValue", "averageValue": f"{TEST_TARGET_M}m"},
        },
    }
    merge(api, {"spec": {"behavior": {"scaleDown": SCALE_DOWN}, "metrics": [metric]}})
    try:
        yield hpa
    finally:
        merge(api, {"spec": original})


def merge(api: Endpoint, patch: dict[str, Any]) -> None:
    status, text = api.raw("PATCH", HPA_PATH, patch, content_type="application/merge-patch+json")
    assert status == 200, text


# Metrics first, then out and back in: minutes on a loaded machine.
@pytest.mark.timeout(600)
def test_the_hpa_scales_the_provisioner_out_under_load_and_back_in(
    real_stack: RealStack, metrics: MetricsServer, timeline: Timeline, patched_hpa: dict[str, Any]
) -> None:
    api = real_stack.cp.admin(timeout=10.0)
    spec = patched_hpa["spec"]
    # The object the Pulumi program made, on the Deployment it made.
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": PROVISIONER_NAME,
    }
    assert spec["metrics"][0]["resource"]["target"]["averageValue"] == f"{SCALE_OUT_CPU_M}m"
    low, high = int(spec["minReplicas"]), int(spec["maxReplicas"])
    assert high > low

    def seen() -> Snapshot:
        shot = snapshot(api, metrics)
        if shot.cpu_m:
            timeline.mark("provisioner figures in metrics.k8s.io")
        if shot.current_m is not None:
            timeline.mark("the HPA reads a CPU average")
        return shot

    def measured() -> Snapshot | None:
        shot = seen()
        return shot if shot.current_m is not None else None

    idle = wait_for("the HPA's first CPU average", measured, 180, POLL)
    # At rest it holds the minimum: the load below is what moves it.
    assert (idle.desired, idle.spec_replicas) == (low, low), idle
    assert idle.conditions.get("ScalingActive", "").startswith("True ValidMetricFound"), idle
    # From two replicas back to one takes an average at most half the target.
    assert idle.current_m is not None and idle.current_m < TEST_TARGET_M / 2, idle

    samples: list[Snapshot] = []
    load = PingLoad(real_stack.forward.url, real_stack.forward.ws_url, real_stack.forward.url, LOAD)
    with load.running():
        timeline.mark("load started")

        def scaled_out() -> Snapshot | None:
            shot = seen()
            samples.append(shot)
            if shot.desired > low:
                timeline.mark(f"the HPA wants {shot.desired} replicas")
            if shot.ready > low:
                timeline.mark(f"{shot.ready} replicas Ready")
            return shot if shot.ready >= high else None

        out = wait_for(f"{high} Ready provisioner replicas", scaled_out, LOAD.seconds, POLL)
        load.stop()
        timeline.mark("load stopped")
    figures = load.figures

    def scaled_in() -> Snapshot | None:
        shot = seen()
        if shot.desired == low:
            timeline.mark(f"the HPA wants {low} again")
        if shot.spec_replicas == low and shot.ready == low:
            timeline.mark(f"the Deployment at {low} replica(s)")
        if shot.pods == low:
            timeline.mark("the removed replica's pod gone")
        return shot if shot.spec_replicas == shot.ready == shot.pods == low else None

    back = wait_for(f"{low} provisioner replica(s) again", scaled_in, 180, POLL)

    unasked = figures.first_unasked_close
    loaded = [max(s.cpu_m) for s in samples if s.cpu_m]
    averages = [s.current_m for s in samples if s.current_m is not None]
    print(
        f"\nHPA on the real node (target {TEST_TARGET_M}m average, production {SCALE_OUT_CPU_M}m; "
        f"metrics-server resolution {metrics_server.METRIC_RESOLUTION}):\n{timeline.report()}\n"
        f"  idle: HPA average {idle.current_m:.0f}m\n"
        f"  load: {figures.sessions} sessions, {figures.sockets} sockets at {LOAD.rate:.0f}/s, "
        f"{figures.pings} pings, {figures.pongs} pongs, closes {dict(figures.closes)}, "
        f"claim retries {figures.claim_retries}, closed unasked: "
        f"{'none' if unasked is None else f'first at +{unasked:.1f}s'}\n"
        f"  busiest provisioner under load: median {statistics.median(loaded):.0f}m, "
        f"max {max(loaded):.0f}m; HPA average max {max(averages):.0f}m\n"
        f"  after: HPA average {back.current_m or 0:.0f}m"
    )
    assert out.desired == high and out.ready == high
    # The load was the app's path: pongs from the echo pods, no socket closed for a limit.
    assert figures.pongs > 0 and figures.sockets == LOAD.sessions * LOAD.sockets_per_session
    assert "1008" not in figures.closes, figures.closes
    assert back.conditions.get("ScalingActive", "").startswith("True"), back
