"""HTTP routes of the session API (see docs/api.md).

Each endpoint carries its OpenAPI description (`openapi.operation`) and
builds its body from a `bodies` type, so the document served at
/openapi.json is generated from what the code sends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.ratelimit import KeyedLimiter
from services.common.wire import CloseCode
from services.provisioner.backends.base import Backend, PodInfo, PodPhases, SessionInfo
from services.provisioner.bodies import (
    EchoErrorFrame,
    EventFrame,
    Health,
    PingFrame,
    PodKilled,
    PodStatus,
    PongFrame,
    PoolCounts,
    Readiness,
    SessionCreated,
    SessionStatus,
    StartPhases,
)
from services.provisioner.drain import ReplicaDrain
from services.provisioner.errors import ErrorCode, LimitExceeded
from services.provisioner.metrics import Metrics
from services.provisioner.openapi import WebSocketDoc, fail, ok, operation
from services.provisioner.responses import error_response
from services.provisioner.sessions import new_session_id, session_key
from services.provisioner.settings import Settings

log = logging.getLogger(__name__)


def client_ip(request: Request) -> str:
    # uvicorn has already applied X-Forwarded-For from trusted proxies (FORWARDED_ALLOW_IPS).
    return request.client.host if request.client else "unknown"


def pod_status(pod: PodInfo) -> PodStatus:
    return {
        "name": pod.name,
        "node": pod.node,
        "phase": pod.phase,
        "ready": pod.ready,
        "started_at": pod.started_at,
        "phases": start_phases(pod.phases) if pod.phases else None,
    }


def start_phases(phases: PodPhases) -> StartPhases:
    return {
        "created": phases.created,
        "scheduled": phases.scheduled,
        "started": phases.started,
        "ready": phases.ready,
        "resolution": phases.resolution,
    }


def session_body(session_id: str, info: SessionInfo) -> SessionStatus:
    return {
        "session_id": session_id,
        "pod": pod_status(info.pod) if info.pod else None,  # None while being replaced
        "replacements": info.replacements,
        "created_at": info.created_at,
        "expires_at": info.expires_at,
        "last_active": info.last_active,
    }


async def gone(request: Request) -> bool:
    """Whether the client closed its connection while its request was being answered.

    A POST's body arrives first (ignored here, as the route says); the disconnect, if
    any, after it: look twice, without waiting."""
    return await request.is_disconnected() or await request.is_disconnected()


class SessionAPI:
    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        metrics: Metrics,
        *,
        replica_drain: ReplicaDrain | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.metrics = metrics
        self.replica_drain = replica_drain
        self.clock = clock
        self.limiter = KeyedLimiter(
            rate=settings.rate_limit_per_minute / 60, burst=settings.rate_limit_burst
        )

    def routes(self) -> list[Route]:
        return [
            Route("/session", self.create, methods=["POST"]),
            Route("/session/{session_id}", self.show, methods=["GET"]),
            Route("/session/{session_id}", self.end, methods=["DELETE"]),
            Route("/session/{session_id}/pod", self.kill, methods=["DELETE"]),
            Route("/pool", self.pool, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/ready", self.ready, methods=["GET"]),
        ]

    @operation(
        "Claim a Ready pod for a new session",
        ok(201, "the session and its pod", SessionCreated),
        fail(
            429,
            ErrorCode.RATE_LIMITED,
            ErrorCode.AT_CAPACITY,
            ErrorCode.POOL_EMPTY,
            description=(
                "`rate_limited` (this address claims too often), `at_capacity` "
                "(MAX_SESSIONS), `pool_empty` (no pod Ready within CLAIM_TIMEOUT)"
            ),
        ),
        fail(503, ErrorCode.BACKEND_UNAVAILABLE),
        description=(
            "No request body (anything sent is ignored). Answered within CLAIM_TIMEOUT "
            "plus the round trip: claims are shed with 429, never queued."
        ),
        tag="sessions",
    )
    async def create(self, request: Request) -> Response:
        # The budget is the deployment's: this replica spends its share of it.
        wait = self.limiter.take(
            client_ip(request), time.monotonic(), shares=self.backend.replicas()
        )
        if wait > 0:
            self.metrics.rejections.labels("rate_limited").inc()
            raise LimitExceeded(
                ErrorCode.RATE_LIMITED,
                "too many new sessions from your address; wait and retry",
                wait,
            )
        session_id = new_session_id()
        key = session_key(session_id)
        now = self.clock()
        started = time.perf_counter()
        try:
            claim = await self.backend.claim(
                key, now=now, expires_at=now + self.settings.session_max_lifetime
            )
        except LimitExceeded as exc:
            self.metrics.rejections.labels(exc.code).inc()
            raise
        elapsed = time.perf_counter() - started
        if await gone(request):
            # Nobody will learn the session's id: end it now rather than hold its pod
            # until the idle reaper (SESSION_IDLE_TIMEOUT) finds it.
            await self.backend.release(key)
            log.info("claim_abandoned", extra={"session": key[:12], "ms": elapsed * 1000})
            return Response(status_code=499)  # nginx's "client closed request": for logs
        path = "warm" if claim.warm else "cold"
        self.metrics.claims.labels(path).inc()
        self.metrics.claim_seconds.labels(path).observe(elapsed)
        log.info(
            "session_claimed",
            extra={"session": key[:12], "pod": claim.pod.name, "path": path, "ms": elapsed * 1000},
        )
        body: SessionCreated = {
            "session_id": session_id,
            "ws_url": f"/session/{session_id}/ws",
            "pod": {
                "name": claim.pod.name,
                "node": claim.pod.node,
                "started_at": claim.pod.started_at,
            },
            "warm": claim.warm,
            "assign_ms": round(elapsed * 1000, 3),
            "expires_at": claim.session.expires_at,
        }
        return JSONResponse(body, status_code=201)

    @operation(
        "A session's pod and times",
        ok(200, "the session", SessionStatus),
        fail(404, ErrorCode.SESSION_NOT_FOUND, description="unknown, malformed or ended"),
        fail(503, ErrorCode.BACKEND_UNAVAILABLE),
        tag="sessions",
    )
    async def show(self, request: Request) -> JSONResponse:
        session_id = request.path_params["session_id"]
        info = await self.backend.get(session_key(session_id))
        return JSONResponse(session_body(session_id, info))

    @operation(
        "Kill the session's pod; a replacement takes over the session",
        ok(202, "the pod is being deleted; its replacement is on its way", PodKilled),
        fail(404, ErrorCode.SESSION_NOT_FOUND, description="unknown, malformed or ended"),
        fail(409, ErrorCode.POD_NOT_RUNNING, description="a replacement is still starting"),
        fail(503, ErrorCode.BACKEND_UNAVAILABLE),
        tag="sessions",
    )
    async def kill(self, request: Request) -> JSONResponse:
        key = session_key(request.path_params["session_id"])
        pod = await self.backend.kill(key)
        body: PodKilled = {"killed": pod.name, "replacement": "pending"}
        return JSONResponse(body, status_code=202)

    @operation(
        "End the session and release its pod",
        ok(204, "ended"),
        fail(404, ErrorCode.SESSION_NOT_FOUND, description="unknown, malformed or ended"),
        fail(503, ErrorCode.BACKEND_UNAVAILABLE),
        tag="sessions",
    )
    async def end(self, request: Request) -> Response:
        key = session_key(request.path_params["session_id"])
        await self.backend.release(key)
        return Response(status_code=204)

    @operation("Pool members by state", ok(200, "the counts", PoolCounts), tag="operations")
    async def pool(self, request: Request) -> JSONResponse:
        status = await self.backend.pool()
        body: PoolCounts = {
            "warm": status.warm,
            "starting": status.starting,
            "assigned": status.assigned,
            "target": status.target,
            "capacity": status.capacity,
        }
        return JSONResponse(body)

    @operation("Liveness", ok(200, "the process serves", Health), tag="operations")
    async def health(self, request: Request) -> JSONResponse:
        body: Health = {"status": "ok"}
        return JSONResponse(body)

    @operation(
        "Readiness: the backend is reachable and its caches are synced",
        ok(200, "ready for claims", Readiness),
        fail(
            503,
            ErrorCode.NOT_READY,
            ErrorCode.DRAINING,
            description="`not_ready` (the backend is not reachable or not synced), "
            "`draining` (this replica is restarting: kill my gateway)",
        ),
        tag="operations",
    )
    async def ready(self, request: Request) -> JSONResponse:
        if self.replica_drain is not None and self.replica_drain.draining:
            # First step of a drain: the load balancer stops routing here.
            return error_response(503, ErrorCode.DRAINING, "this replica is restarting")
        if self.backend.ready():
            body: Readiness = {"status": "ready"}
            return JSONResponse(body)
        return error_response(
            503, ErrorCode.NOT_READY, "the pod backend is not reachable or not synced"
        )


@operation(
    "The gateway WebSocket to the session's pod",
    ok(
        101,
        "Switching Protocols: the gateway (GET with `Upgrade: websocket`). An unknown "
        "or ended session is accepted and closed at once with 4404 (4408 if it "
        "expired), since a browser cannot read a refused upgrade. Frames and close "
        "codes: `x-websocket`.",
    ),
    fail(
        403,
        ErrorCode.ORIGIN_NOT_ALLOWED,
        description="an upgrade from a foreign Origin (browsers always send one)",
    ),
    fail(426, ErrorCode.UPGRADE_REQUIRED, description="a plain HTTP request"),
    fail(429, ErrorCode.TOO_MANY_CONNECTIONS, description="WS_PER_IP sockets already open"),
    fail(503, ErrorCode.BACKEND_UNAVAILABLE),
    tag="gateway",
    websocket=WebSocketDoc(
        from_client=(PingFrame,),
        to_client=(PongFrame, EventFrame, EchoErrorFrame),
        close_codes={code.value: code.name.lower() for code in CloseCode},
    ),
)
async def upgrade_required(request: Request) -> JSONResponse:
    """Plain HTTP to the WebSocket path: say what it is, not 404."""
    return error_response(
        426,
        ErrorCode.UPGRADE_REQUIRED,
        "this is a WebSocket endpoint: connect with Upgrade: websocket",
        {"Upgrade": "websocket"},
    )
