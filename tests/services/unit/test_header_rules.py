"""The header rules as functions: Cache-Control by kind of response, the CSP without
a host, and the headers on the 500 that Starlette writes outside every middleware."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from services.provisioner import app as app_module
from services.provisioner.headers import cache_control, content_security_policy


@pytest.mark.parametrize(
    ("path", "status", "content_type", "expected"),
    [
        (
            "/assets/index-D6flxfJg.js",
            200,
            "text/javascript",
            "public, max-age=31536000, immutable",
        ),
        ("/assets/vendor-react-a_b-C123.css", 304, None, "public, max-age=31536000, immutable"),
        ("/assets/index-D6flxfJg.js", 404, "application/json", "no-store"),
        ("/assets/logo.svg", 200, "image/svg+xml", "no-store"),
        ("/", 304, None, "no-cache"),
        ("/anything", 200, "text/html; charset=utf-8", "no-cache"),
        ("/session", 201, "application/json", "no-store"),
    ],
)
def test_cache_control_rules(
    path: str, status: int, content_type: str | None, expected: str
) -> None:
    assert cache_control(path, status, content_type) == expected


def test_policy_without_a_host_keeps_self_only() -> None:
    assert "connect-src 'self';" in content_security_policy(None)


async def test_the_500_answer_carries_them_too() -> None:
    """Starlette writes the 500 outside every middleware; the handler adds the headers."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/pool",
        "scheme": "https",
        "headers": [(b"host", b"pingpod.example.com")],
        "query_string": b"",
    }
    response = await app_module._server_error(Request(scope), RuntimeError("a defect"))
    assert response.status_code == 500
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert "wss://pingpod.example.com" in response.headers["content-security-policy"]
