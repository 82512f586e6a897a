"""The metrics listener's app (METRICS_PORT): `GET /metrics` and nothing else.

The public port is what the load balancer sends the internet to, so the
scrape is served on a port of its own, which the NetworkPolicy opens to the
monitoring namespace only (docs/security.md). prometheus_client's own ASGI app
answers (the text format or OpenMetrics, as the scraper asks, gzip when it
accepts it), after the pool gauges are read from the backend: the pool is the
backend's state, not a counter anything increments.
"""

from __future__ import annotations

from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from services.provisioner.backends.base import Backend
from services.provisioner.errors import ErrorCode
from services.provisioner.metrics import Metrics
from services.provisioner.responses import error_response


class Scrape:
    """ASGI: refresh the pool gauges, then let prometheus_client render the registry."""

    def __init__(self, backend: Backend, metrics: Metrics) -> None:
        self.backend = backend
        self.metrics = metrics
        self.render = make_asgi_app(registry=metrics.registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = await self.backend.pool()
        for state in ("warm", "starting", "assigned"):
            self.metrics.pool_pods.labels(state).set(getattr(status, state))
        self.metrics.pool_target.set(status.target)
        self.metrics.sessions_active.set(status.assigned)
        await self.render(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for that type
        raise exc
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
        exc.status_code, ErrorCode.HTTP_ERROR
    )
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


def create_metrics_app(backend: Backend, metrics: Metrics) -> Starlette:
    """The app for the metrics port; the backend is started and stopped by the main app."""
    return Starlette(
        routes=[Route("/metrics", Scrape(backend, metrics), methods=["GET"])],
        exception_handlers={HTTPException: _http_error},
    )
