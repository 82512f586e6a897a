"""Security and cache headers on every HTTP response, decided in one place.

`SecurityHeaders` (ASGI middleware) sets them on whatever the app answers:
the page, its assets, the API and its errors. The one response it cannot
see is the 500 that Starlette's outermost error middleware writes, so the
app's 500 handler calls `apply` (the same rules) itself. WebSocket upgrades
pass through untouched.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Vite names every file it emits into assets/ `<name>-<8-character hash>.<ext>`:
# a new build is new URLs, so these may be cached for good.
_HASHED_ASSET = re.compile(r"/assets/[^/]+-[A-Za-z0-9_-]{8}\.[A-Za-z0-9]+")
_PAGE_PATHS = frozenset({"/", "/index.html"})
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"  # the page: may be kept, asked again every time
NEVER_STORE = "no-store"  # the API: sessions, pool counts, errors
HSTS = "max-age=31536000; includeSubDomains"
# A Host header as a CSP host-source may spell it: a DNS name or an IP literal,
# and a port. Anything else (a space or `;` would add directives) is left out.
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::[0-9]{{1,5}})?")

_STATIC_POLICY = (
    "default-src 'self'",
    # The page's favicon is an inline SVG data: URL (frontend/index.html).
    "img-src 'self' data:",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
    "form-action 'self'",
)


def content_security_policy(host: str | None) -> str:
    """The page's policy: its own scripts, styles and connections, nothing inline.

    'self' covers ws:/wss: to the page's own host only in CSP Level 3 browsers,
    so the gateway's origin is named too, for both schemes: the Host the
    browser asked for is the page's host (a forged one only reaches the forger's
    own response), and from an https page mixed-content rules block ws: anyway.
    """
    connect = ["connect-src 'self'"]
    if host is not None and _HOST.fullmatch(host.lower()):
        connect += [f"ws://{host.lower()}", f"wss://{host.lower()}"]
    return "; ".join((_STATIC_POLICY[0], " ".join(connect), *_STATIC_POLICY[1:]))


def cache_control(path: str, status: int, content_type: str | None) -> str:
    if status in (200, 304) and _HASHED_ASSET.fullmatch(path):
        return IMMUTABLE
    if path in _PAGE_PATHS or (content_type or "").startswith("text/html"):
        return REVALIDATE
    return NEVER_STORE


def apply(scope: Scope, status: int, headers: MutableHeaders) -> None:
    """Set the headers for a response to the HTTP request `scope`.

    HSTS only over TLS: `scheme` is https when the connection was, or when a
    proxy trusted by FORWARDED_ALLOW_IPS said so with X-Forwarded-Proto
    (uvicorn's proxy-headers middleware has applied it before the app runs).
    """
    request_headers = Headers(scope=scope)
    headers["Content-Security-Policy"] = content_security_policy(request_headers.get("host"))
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"  # the session id is in the WebSocket path
    headers["Cache-Control"] = cache_control(scope["path"], status, headers.get("content-type"))
    if scope.get("scheme") == "https":
        headers["Strict-Transport-Security"] = HSTS


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                apply(scope, message["status"], MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)
