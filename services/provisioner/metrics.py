"""Prometheus metrics, in a registry per app so tests can run several apps."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions_active = Gauge("pingpod_sessions_active", "Sessions with a pod", registry=r)
        self.pool_pods = Gauge("pingpod_pool_pods", "Pool pods by state", ["state"], registry=r)
        self.pool_target = Gauge(
            "pingpod_pool_target", "Free pool pods the provisioner aims to keep", registry=r
        )
        self.claims = Counter("pingpod_claims", "Claims by path", ["path"], registry=r)
        self.claim_seconds = Histogram(
            "pingpod_claim_seconds",
            "Time to assign a Ready pod",
            ["path"],
            buckets=_FAST,
            registry=r,
        )
        self.kills = Counter("pingpod_pod_kills", "Pods killed on request", registry=r)
        self.replacement_seconds = Histogram(
            "pingpod_replacement_seconds",
            "From a session pod's death to its replacement being Ready",
            buckets=_SLOW,
            registry=r,
        )
        self.relayed = Counter(
            "pingpod_relayed_messages", "Frames relayed by the gateway", ["direction"], registry=r
        )
        self.websockets = Gauge("pingpod_websockets_open", "Open browser WebSockets", registry=r)
        self.rejections = Counter(
            "pingpod_rejections", "Requests refused by abuse controls", ["reason"], registry=r
        )
        self.feed_streams = Gauge(
            "pingpod_feed_streams_open", "Open pool feed streams (GET /pool/feed)", registry=r
        )
        self.feed_dropped = Counter(
            "pingpod_feed_dropped",
            "Pool feed streams ended because the client fell behind",
            ["reason"],
            registry=r,
        )
        self.replicas = Gauge(
            "pingpod_provisioner_replicas",
            "Provisioner replicas serving, as this one last counted them",
            registry=r,
        )
        self.sessions_ended = Counter(
            "pingpod_sessions_ended", "Sessions ended by reason", ["reason"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
