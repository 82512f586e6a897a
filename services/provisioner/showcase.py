"""The page's showcase routes: the live pool feed, what this deployment
offers the page, and "kill my gateway" (README, API).

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
from services.provisioner.errors import LimitExceeded, NotOffered
from services.provisioner.metrics import Metrics
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

    async def pool_feed(self, request: Request) -> Response:
        return self.feed.response(self.feed.open(client_ip(request)))

    async def config(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {"gateway_kill": self.settings.gateway_kill_offered},
            headers={"Cache-Control": "no-store"},
        )

    async def kill_gateway(self, request: Request) -> JSONResponse:
        if not self.settings.gateway_kill_offered:
            raise NotOffered("gateway_kill_off", _why_not(self.settings))
        now = time.monotonic()
        wait = self.kills_per_ip.take(client_ip(request), now)
        if wait > 0:
            self.metrics.rejections.labels("gateway_kill_rate").inc()
            raise LimitExceeded(
                "rate_limited", "too many gateway kills from your address; wait and retry", wait
            )
        key = session_key(request.path_params["session_id"])
        await self.backend.get(key)  # 404 for an unknown session, before its budget
        wait = self.kills_per_session.take(key, now)
        if wait > 0:
            self.metrics.rejections.labels("gateway_kill_rate").inc()
            raise LimitExceeded(
                "rate_limited", "this session restarted a gateway a moment ago; wait", wait
            )
        await self.backend.drain_gateway(key)
        return JSONResponse(
            {"gateway": "draining", "drain_delay": self.settings.drain_delay}, status_code=202
        )


def _why_not(settings: Settings) -> str:
    if not settings.allow_gateway_kill:
        return "killing a gateway is off here (ALLOW_GATEWAY_KILL)"
    if settings.backend != "kubernetes":
        return "killing a gateway needs the Kubernetes backend"
    return "killing a gateway needs at least two provisioner replicas (PROVISIONER_REPLICAS)"
