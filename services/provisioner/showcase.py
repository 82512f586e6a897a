"""The page's showcase routes: the live pool feed, what this deployment
offers the page, and "kill my gateway" (docs/api.md).

- `GET /pool/feed`: the pool grid's tiles as server-sent events (`poolfeed`).
- `GET /config`: `{"gateway_kill": bool}`, whether the page shows the button.
- `DELETE /session/{id}/gateway`: the replica holding the session's WebSocket
  drains and exits (`drain`), whichever replica the request reaches.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.ratelimit import KeyedLimiter
from services.provisioner.api import client_ip
from services.provisioner.backends.base import Backend
from services.provisioner.bodies import FEED_EVENTS, FeatureConfig, GatewayDraining
from services.provisioner.errors import ErrorCode, LimitExceeded, NotOffered
from services.provisioner.metrics import Metrics
from services.provisioner.openapi import fail, ok, operation
from services.provisioner.poolfeed import PoolFeed
from services.provisioner.sessions import session_key
from services.provisioner.settings import Settings

log = logging.getLogger(__name__)

_KILLS_PER_IP = 2  # gateway kills per address per GATEWAY_KILL_INTERVAL (one per session)


class ShowcaseAPI:
    def __init__(
        self, settings: Settings, backend: Backend, metrics: Metrics, feed: PoolFeed
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.metrics = metrics
        self.feed = feed
        interval = settings.gateway_kill_interval
        self.kills_per_session = KeyedLimiter(rate=1 / interval, burst=1)
        self.kills_per_ip = KeyedLimiter(rate=_KILLS_PER_IP / interval, burst=_KILLS_PER_IP)

    def routes(self) -> list[Route]:
        return [
            Route("/pool/feed", self.pool_feed, methods=["GET"]),
            Route("/config", self.config, methods=["GET"]),
            Route("/session/{session_id}/gateway", self.kill_gateway, methods=["DELETE"]),
        ]

    @operation(
        "The pool's members, live, as server-sent events",
        ok(
            200,
            "`event: snapshot` (every tile), then `event: diff` (tiles set and pods removed),"
            " at most one message per 250 ms; tiles name pods and states, never sessions",
            media_type="text/event-stream",
            events=FEED_EVENTS,
        ),
        fail(429, ErrorCode.TOO_MANY_STREAMS, description="FEED_PER_IP or FEED_MAX_STREAMS"),
        fail(503, ErrorCode.BACKEND_UNAVAILABLE, description="this replica is restarting"),
        description="Each event's `data:` line is JSON: `FeedSnapshot` or `FeedDiff`. "
        "A stream that falls behind is ended.",
        tag="showcase",
    )
    async def pool_feed(self, request: Request) -> Response:
        return self.feed.response(self.feed.open(client_ip(request)))

    @operation("What this deployment offers the page", ok(200, "", FeatureConfig), tag="showcase")
    async def config(self, request: Request) -> JSONResponse:
        body: FeatureConfig = {"gateway_kill": self._gateway_kill_offered()}
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    @operation(
        "Restart the provisioner replica holding the session's WebSocket",
        ok(202, "that replica fails /ready, then closes its sockets with 1012", GatewayDraining),
        fail(403, ErrorCode.GATEWAY_KILL_OFF, description="ALLOW_GATEWAY_KILL, backend, replicas"),
        fail(404, ErrorCode.SESSION_NOT_FOUND, description="unknown, malformed or ended"),
        fail(429, ErrorCode.RATE_LIMITED, description="per session and per address"),
        fail(503, ErrorCode.BACKEND_UNAVAILABLE),
        tag="showcase",
    )
    async def kill_gateway(self, request: Request) -> JSONResponse:
        if not self._gateway_kill_offered():
            raise NotOffered(ErrorCode.GATEWAY_KILL_OFF, _why_not(self.settings))
        now = time.monotonic()
        wait = self.kills_per_ip.take(client_ip(request), now)
        if wait > 0:
            self.metrics.rejections.labels("gateway_kill_rate").inc()
            raise LimitExceeded(
                ErrorCode.RATE_LIMITED,
                "too many gateway kills from your address; wait and retry",
                wait,
            )
        key = session_key(request.path_params["session_id"])
        await self.backend.get(key)  # 404 for an unknown session, before its budget
        wait = self.kills_per_session.take(key, now)
        if wait > 0:
            self.metrics.rejections.labels("gateway_kill_rate").inc()
            raise LimitExceeded(
                ErrorCode.RATE_LIMITED, "this session restarted a gateway a moment ago; wait", wait
            )
        await self.backend.drain_gateway(key)
        body: GatewayDraining = {"gateway": "draining", "drain_delay": self.settings.drain_delay}
        return JSONResponse(body, status_code=202)

    def _gateway_kill_offered(self) -> bool:
        # Live, not configured: an autoscaler changes the replica count under us.
        return self.settings.gateway_kill_allowed and self.backend.replicas() >= 2


def _why_not(settings: Settings) -> str:
    if not settings.allow_gateway_kill:
        return "killing a gateway is off here (ALLOW_GATEWAY_KILL)"
    if settings.backend != "kubernetes":
        return "killing a gateway needs the Kubernetes backend"
    return "killing a gateway needs at least two provisioner replicas serving; one serves now"
