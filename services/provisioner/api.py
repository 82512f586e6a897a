"""HTTP routes of the session API (see the README's API table)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.ratelimit import KeyedLimiter
from services.provisioner.backends.base import Backend, SessionInfo
from services.provisioner.drain import ReplicaDrain
from services.provisioner.errors import LimitExceeded
from services.provisioner.metrics import Metrics
from services.provisioner.sessions import new_session_id, session_key
from services.provisioner.settings import Settings

log = logging.getLogger(__name__)


def client_ip(request: Request) -> str:
    # uvicorn has already applied X-Forwarded-For from trusted proxies (FORWARDED_ALLOW_IPS).
    return request.client.host if request.client else "unknown"


def session_body(session_id: str, info: SessionInfo) -> dict[str, object]:
    pod = asdict(info.pod) if info.pod else None  # None while a replacement is being created
    return {
        "session_id": session_id,
        "pod": pod,
        "replacements": info.replacements,
        "created_at": info.created_at,
        "expires_at": info.expires_at,
        "last_active": info.last_active,
    }


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
            Route("/metrics", self.metrics_text, methods=["GET"]),
        ]

    async def create(self, request: Request) -> JSONResponse:
        wait = self.limiter.take(client_ip(request), time.monotonic())
        if wait > 0:
            self.metrics.rejections.labels("rate_limited").inc()
            raise LimitExceeded(
                "rate_limited", "too many new sessions from your address; wait and retry", wait
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
        path = "warm" if claim.warm else "cold"
        self.metrics.claims.labels(path).inc()
        self.metrics.claim_seconds.labels(path).observe(elapsed)
        log.info(
            "session_claimed",
            extra={"session": key[:12], "pod": claim.pod.name, "path": path, "ms": elapsed * 1000},
        )
        body = {
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
        return JSONResponse(body, status_code=201, headers={"Cache-Control": "no-store"})

    async def show(self, request: Request) -> JSONResponse:
        session_id = request.path_params["session_id"]
        info = await self.backend.get(session_key(session_id))
        return JSONResponse(session_body(session_id, info), headers={"Cache-Control": "no-store"})

    async def kill(self, request: Request) -> JSONResponse:
        key = session_key(request.path_params["session_id"])
        pod = await self.backend.kill(key)
        return JSONResponse({"killed": pod.name, "replacement": "pending"}, status_code=202)

    async def end(self, request: Request) -> Response:
        key = session_key(request.path_params["session_id"])
        await self.backend.release(key)
        return Response(status_code=204)

    async def pool(self, request: Request) -> JSONResponse:
        return JSONResponse(asdict(await self.backend.pool()))

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(self, request: Request) -> JSONResponse:
        if self.replica_drain is not None and self.replica_drain.draining:
            # First step of a drain: the load balancer stops routing here.
            return JSONResponse(
                {"error": "draining", "detail": "this replica is restarting"}, status_code=503
            )
        if self.backend.ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse(
            {"error": "not_ready", "detail": "the pod backend is not reachable or not synced"},
            status_code=503,
        )

    async def metrics_text(self, request: Request) -> Response:
        status = await self.backend.pool()
        for state in ("warm", "starting", "assigned"):
            self.metrics.pool_pods.labels(state).set(getattr(status, state))
        self.metrics.pool_target.set(status.target)
        self.metrics.sessions_active.set(status.assigned)
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")
