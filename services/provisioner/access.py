"""Who may open a gateway WebSocket. Pure decisions on header values."""

from __future__ import annotations

from urllib.parse import urlsplit


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """Check the Origin of a WebSocket upgrade (cross-site WebSocket hijacking).

    Browsers always send Origin on an upgrade; a client without one is not a
    browser and could forge it anyway, so it is let through. With no explicit
    allow-list only the page's own origin (same host and port) is accepted.
    """
    if origin is None:
        return True
    origin = origin.rstrip("/")
    if allowed:
        return origin in allowed
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()
