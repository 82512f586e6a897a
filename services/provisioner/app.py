"""Application factory: `create_app(settings)` wires the API, gateway and backend."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from services.common.serve import Drain
from services.provisioner import headers
from services.provisioner.api import SessionAPI, upgrade_required
from services.provisioner.backends import make_backend
from services.provisioner.backends.base import Backend
from services.provisioner.drain import ReplicaDrain
from services.provisioner.errors import ErrorCode, ProvisionerError
from services.provisioner.gateway import Gateway
from services.provisioner.metrics import Metrics
from services.provisioner.openapi import document_route
from services.provisioner.origin_guard import guard_routes
from services.provisioner.poolfeed import PoolFeed
from services.provisioner.responses import error_response, from_error
from services.provisioner.settings import Settings
from services.provisioner.showcase import ShowcaseAPI

log = logging.getLogger(__name__)


async def _provisioner_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ProvisionerError):  # pragma: no cover - registered for that type
        raise exc
    return from_error(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover
        raise exc
    codes = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return error_response(
        exc.status_code,
        codes.get(exc.status_code, ErrorCode.HTTP_ERROR),
        str(exc.detail),
        headers,
    )


def _allowed_methods(request: Request) -> str:
    """Every method of the path: Starlette's 405 names only the first route's."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", extra={"path": request.url.path.split("/")[1]})
    response = error_response(500, ErrorCode.INTERNAL, "an internal error occurred")
    # Written outside every middleware (Starlette's outermost one): headers by hand.
    headers.apply(request.scope, 500, MutableHeaders(raw=response.raw_headers))
    return response


def create_app(
    settings: Settings,
    *,
    backend: Backend | None = None,
    drain: Drain | None = None,
    metrics: Metrics | None = None,
) -> Starlette:
    """Build the provisioner app. The backend starts and stops with the app's lifespan."""
    metrics = metrics or Metrics()
    backend = backend or make_backend(settings, metrics)
    drain = drain or Drain()
    feed = PoolFeed(settings, backend, metrics)
    metrics.replicas.set_function(backend.replicas)
    # "Kill my gateway": only where it is offered does this replica ever drain itself.
    replica_drain = (
        ReplicaDrain(delay=settings.drain_delay, stop=drain.request_exit, on_closing=[feed.end_all])
        if settings.gateway_kill_allowed
        else None
    )
    api = SessionAPI(settings, backend, metrics, replica_drain=replica_drain)
    showcase = ShowcaseAPI(settings, backend, metrics, feed)
    gateway = Gateway(settings, backend, metrics, drain, replica_drain=replica_drain)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.start()
        feed.start()
        log.info("provisioner_started", extra={"backend": settings.backend})
        try:
            yield
        finally:
            if replica_drain is not None:
                await replica_drain.aclose()
            await feed.aclose()
            await backend.aclose()
            log.info("provisioner_stopped")

    routes: list[BaseRoute] = [
        *showcase.routes(),
        *api.routes(),
        WebSocketRoute("/session/{session_id}/ws", gateway.handle),
        # The same path over plain HTTP (and the upgrade's place in the OpenAPI document).
        Route("/session/{session_id}/ws", upgrade_required, methods=["GET"]),
    ]
    routes.append(document_route(routes))  # /openapi.json; stops here if a route is undescribed
    guard_routes(routes, allowed=settings.allowed_origins, metrics=metrics)
    if settings.frontend_dir.is_dir():
        routes.append(Mount("/", StaticFiles(directory=settings.frontend_dir, html=True)))
    else:
        log.warning("frontend_missing", extra={"dir": str(settings.frontend_dir)})

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(headers.SecurityHeaders)],
        exception_handlers={
            ProvisionerError: _provisioner_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
