"""Every state-changing request passes the gateway's Origin check.

A page on another site can make a visitor's browser send `POST /session` (a
plain form does) or, with the visitor's session id, end or kill it. Browsers
put the page's origin in `Origin` on every such request, so the rule the
gateway applies to WebSocket upgrades (`access.origin_allowed`, with
ALLOWED_ORIGINS or else the page's own host) is applied here too, by method:
a route added later is covered without a word. Requests without Origin
(curl, server to server) are not from a browser's page and pass, as on the
gateway. A refused request never reaches a handler, so it changes nothing.

The guard wraps each route, inside the route's own method check, so an
unknown path stays 404 and an unsupported method 405 whatever the Origin.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from services.provisioner.access import origin_allowed
from services.provisioner.errors import OriginNotAllowed
from services.provisioner.metrics import Metrics
from services.provisioner.responses import from_error

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def origin_checked(method: str) -> bool:
    """Whether requests with this method must come from an allowed Origin."""
    return method.upper() in STATE_CHANGING


class OriginGuard:
    def __init__(self, app: ASGIApp, *, allowed: tuple[str, ...], metrics: Metrics) -> None:
        self.app = app
        self.allowed = allowed
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and origin_checked(scope["method"]):
            headers = Headers(scope=scope)
            if not origin_allowed(headers.get("origin"), headers.get("host"), self.allowed):
                self.metrics.rejections.labels("origin").inc()
                refusal = from_error(OriginNotAllowed("this origin may not change sessions"))
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def guard_routes(
    routes: Iterable[BaseRoute], *, allowed: tuple[str, ...], metrics: Metrics
) -> None:
    """Put every route that takes a state-changing method behind the guard."""
    for route in routes:
        if isinstance(route, Route) and any(map(origin_checked, route.methods or ())):
            route.app = OriginGuard(route.app, allowed=allowed, metrics=metrics)
