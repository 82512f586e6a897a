"""Security and cache headers on every response of a real provisioner serving
a Vite-shaped build (index.html and content-hashed assets)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.servers import Server, StartProvisioner

ASSET_JS = "/assets/index-D6flxfJg.js"
ASSET_CSS = "/assets/index-BzmNfdd9.css"
PLAIN = "/assets/notes.txt"  # not content-hashed: must not be cached for good


@pytest.fixture
def site(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(
        f'<!doctype html><script type="module" src="{ASSET_JS}"></script>'
    )
    (dist / ASSET_JS.lstrip("/")).write_text("console.log('pingpod')\n")
    (dist / ASSET_CSS.lstrip("/")).write_text("body { margin: 0 }\n")
    (dist / PLAIN.lstrip("/")).write_text("hello\n")
    return dist


@pytest.fixture
def server(start_provisioner: StartProvisioner, site: Path) -> Server:
    return start_provisioner(POOL_SIZE="1", FRONTEND_DIR=str(site))


def directives(csp: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in csp.split(";"):
        name, *sources = part.split()
        assert name not in parsed, f"{name} twice in {csp!r}"
        parsed[name] = sources
    return parsed


def assert_common(response: httpx.Response) -> dict[str, list[str]]:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", response.url
    assert headers["referrer-policy"] == "no-referrer", response.url
    assert "strict-transport-security" not in headers, response.url  # plain http
    return directives(headers["content-security-policy"])


def test_the_page_has_a_strict_policy(server: Server) -> None:
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = assert_common(page)
    host = f"127.0.0.1:{server.port}"
    assert csp["default-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'", f"ws://{host}", f"wss://{host}"]
    assert csp["img-src"] == ["'self'", "data:"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    # script-src and style-src fall back to default-src 'self': nothing inline.
    assert "script-src" not in csp and "style-src" not in csp
    assert "unsafe" not in page.headers["content-security-policy"]


def test_cache_policy_by_kind_of_response(server: Server) -> None:
    with server.client() as client:
        for path in ("/", "/index.html"):
            page = client.get(path)
            assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
            assert_common(page)
            again = client.get(path, headers={"If-None-Match": page.headers["etag"]})
            assert again.status_code == 304 and again.headers["cache-control"] == "no-cache"
        for path in (ASSET_JS, ASSET_CSS):
            asset = client.get(path)
            assert asset.status_code == 200
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert_common(asset)
        assert client.get(PLAIN).headers["cache-control"] == "no-store"
        missing = client.get("/assets/index-Zzzzzzzz.js")
        assert missing.status_code == 404 and missing.headers["cache-control"] == "no-store"

        created = client.post("/session")
        assert created.status_code == 201
        sid = created.json()["session_id"]
        api = [
            created,
            client.get(f"/session/{sid}"),
            client.delete(f"/session/{sid}/pod"),
            client.delete(f"/session/{sid}"),  # 204
            client.get(f"/session/{sid}"),  # 404
            client.get("/pool"),
            client.get("/health"),
            client.get("/ready"),
            client.get("/openapi.json"),
            client.put("/pool"),  # 405
            client.get(f"/session/{sid}/ws"),  # 426
            client.post("/session", headers={"Origin": "https://evil.example"}),  # 403
        ]
        for response in api:
            assert response.headers["cache-control"] == "no-store", response.url
            assert_common(response)
        assert sorted({r.status_code for r in api}) == [200, 201, 202, 204, 403, 404, 405, 426]


def test_hsts_only_over_tls_from_a_trusted_proxy(
    start_provisioner: StartProvisioner, server: Server
) -> None:
    tls = {"X-Forwarded-Proto": "https"}
    # The test client is 127.0.0.1, which FORWARDED_ALLOW_IPS trusts by default.
    for path in ("/", "/health", ASSET_JS):
        trusted = httpx.get(server.url + path, headers=tls)
        assert trusted.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        assert "strict-transport-security" not in httpx.get(server.url + path).headers
    # A proxy nobody configured cannot turn it on.
    untrusting = start_provisioner(POOL_SIZE="1", FORWARDED_ALLOW_IPS="192.0.2.1")
    assert "strict-transport-security" not in httpx.get(untrusting.url, headers=tls).headers


def test_a_hostile_host_header_adds_nothing_to_the_policy(server: Server) -> None:
    for host in ("evil.example; script-src *", "a b", "x.example/path"):
        response = httpx.get(server.url + "/", headers={"Host": host})
        csp = directives(response.headers["content-security-policy"])
        assert csp["connect-src"] == ["'self'"]
        assert "script-src" not in csp
    named = httpx.get(server.url + "/", headers={"Host": "Pingpod.Example.com"})
    assert directives(named.headers["content-security-policy"])["connect-src"] == [
        "'self'",
        "ws://pingpod.example.com",
        "wss://pingpod.example.com",
    ]
