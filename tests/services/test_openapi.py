"""/openapi.json: a valid OpenAPI 3.1 document that describes every route, and
that real responses of a running provisioner (successes and errors) conform to."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from schemathesis.core.failures import Failure, FailureGroup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from services.provisioner.app import create_app
from services.provisioner.errors import ErrorCode
from services.provisioner.openapi import build_document, ok, operation
from services.provisioner.settings import Settings
from tests.support.servers import Server, StartProvisioner, new_session

Schema = Any  # schemathesis' loaded schema (BaseSchema)


@pytest.fixture(scope="module")
def document(provisioner: Server) -> dict[str, Any]:
    response = httpx.get(provisioner.url + "/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


@pytest.fixture(scope="module")
def schema(provisioner: Server) -> Schema:
    return schemathesis.openapi.from_url(provisioner.url + "/openapi.json")


def conforms(doc: dict[str, Any], schema: Schema, path: str, response: httpx.Response) -> None:
    """Fail unless `response` is one the document describes for its request.

    The status must be listed, its required headers present, its media type the
    documented one, and its body valid against the schema (schemathesis).
    """
    method = response.request.method
    described = doc["paths"][path][method.lower()]["responses"]
    status = str(response.status_code)
    assert status in described, f"{method} {path}: {status} is not described"
    spec = described[status]
    for name, header in spec.get("headers", {}).items():
        if header.get("required"):
            assert name in response.headers, f"{method} {path} {status}: no {name}"
    content = spec.get("content")
    if content is None:
        assert response.content == b"", f"{method} {path} {status}: a body is sent"
    else:
        (media_type,) = content
        assert response.headers["content-type"].split(";")[0] == media_type
    schema[path][method].validate_response(response)


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)


def test_every_route_is_described(document: dict[str, Any], tmp_path: Path) -> None:
    app = create_app(Settings(frontend_dir=tmp_path))  # built, not started: only its routes
    expected: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Route):
            expected |= {(m.lower(), route.path) for m in route.methods or ()} - {
                ("head", route.path)
            }
        elif isinstance(route, WebSocketRoute):  # described as the GET upgrade
            expected.add(("get", route.path))
    described = {(m, p) for p, item in document["paths"].items() for m in item}
    assert described == expected
    assert ("post", "/session") in described and ("get", "/session/{session_id}/ws") in described


def test_errors_and_rules_are_in_the_document(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["ErrorCode"]["enum"] == [str(code) for code in ErrorCode]
    assert set(schemas["ErrorBody"]["required"]) == {"error", "detail"}
    for path, item in document["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            state_changing = method in ("post", "put", "patch", "delete")
            assert ("403" in responses) == (state_changing or path.endswith("/ws")), (method, path)
            if state_changing:
                assert any(p["name"] == "Origin" for p in op["parameters"])
            for status, spec in responses.items():
                if status == "429":
                    assert spec["headers"]["Retry-After"]["required"] is True
                if int(status) >= 400:  # every error is an ErrorBody with its codes listed
                    body = spec["content"]["application/json"]["schema"]
                    assert body["allOf"] == [{"$ref": "#/components/schemas/ErrorBody"}]
                    assert set(body["properties"]["error"]["enum"]) <= set(ErrorCode)
    ws = document["paths"]["/session/{session_id}/ws"]["get"]
    assert "101" in ws["responses"]
    assert ws["x-websocket"]["closeCodes"]["4404"] == "session_ended"


def test_an_undescribed_route_stops_the_document() -> None:
    async def bare(request: Request) -> Response:
        return Response()

    with pytest.raises(TypeError, match="no OpenAPI description"):
        build_document([Route("/bare", bare)])

    @operation("A new thing", ok(200, "fine", schema={"type": "string"}))
    async def thing(request: Request) -> Response:
        return Response()

    with pytest.raises(TypeError, match="PATH_PARAMETERS"):
        build_document([Route("/thing/{thing_id}", thing)])


def test_real_responses_conform(
    provisioner: Server, document: dict[str, Any], schema: Schema
) -> None:
    foreign = {"Origin": "https://evil.example"}
    sid_path = "/session/{session_id}"
    with provisioner.client() as client:
        for path in ("/health", "/ready", "/pool", "/openapi.json"):
            conforms(document, schema, path, client.get(path))
        created = client.post("/session")
        conforms(document, schema, "/session", created)
        sid = created.json()["session_id"]
        conforms(document, schema, sid_path, client.get(f"/session/{sid}"))
        conforms(document, schema, sid_path + "/ws", client.get(f"/session/{sid}/ws"))  # 426
        conforms(document, schema, sid_path + "/pod", client.delete(f"/session/{sid}/pod"))
        # At once again: 409 while the replacement starts, or 202 if it was quick.
        conforms(document, schema, sid_path + "/pod", client.delete(f"/session/{sid}/pod"))
        conforms(document, schema, sid_path, client.get(f"/session/{sid}"))  # pod may be null
        conforms(document, schema, sid_path, client.delete(f"/session/{sid}"))  # 204
        for method, path in (
            ("GET", sid_path),
            ("DELETE", sid_path),
            ("DELETE", sid_path + "/pod"),
        ):
            gone = client.request(method, path.format(session_id=sid))
            assert gone.status_code == 404
            conforms(document, schema, path, gone)
        for method, path in (
            ("POST", "/session"),
            ("DELETE", sid_path),
            ("DELETE", sid_path + "/pod"),
        ):
            refused = client.request(method, path.format(session_id=sid), headers=foreign)
            assert refused.status_code == 403
            conforms(document, schema, path, refused)


@pytest.fixture
def crowded(start_provisioner: StartProvisioner) -> Server:
    """One session at most, and two claims per address before the rate limit."""
    server = start_provisioner(
        POOL_SIZE="1", MAX_SESSIONS="1", RATE_LIMIT_BURST="2", RATE_LIMIT_PER_MINUTE="1"
    )
    server.wait_pool(1)
    return server


def test_limits_conform(crowded: Server, schema: Schema, document: dict[str, Any]) -> None:
    session = new_session(crowded)
    full = httpx.post(crowded.url + "/session")
    assert full.status_code == 429 and full.json()["error"] == "at_capacity"
    conforms(document, schema, "/session", full)
    limited = httpx.post(crowded.url + "/session")
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    conforms(document, schema, "/session", limited)
    httpx.delete(crowded.url + f"/session/{session['session_id']}")


def test_a_response_off_the_document_is_caught(
    provisioner: Server, document: dict[str, Any], schema: Schema
) -> None:
    """The checks above have teeth: real responses answered for another route fail them."""
    pool = httpx.get(provisioner.url + "/pool")
    with pytest.raises(AssertionError, match="not described"):
        conforms(document, schema, "/health", httpx.get(provisioner.url + "/nope"))
    pool.request = httpx.Request("GET", provisioner.url + "/health")
    with pytest.raises((Failure, FailureGroup)):
        conforms(document, schema, "/health", pool)
    forged = httpx.Response(
        429,
        json={"error": "internal", "detail": "a code POST /session never sends"},
        headers={"Retry-After": "1"},
        request=httpx.Request("POST", provisioner.url + "/session"),
    )
    forged.read()
    forged.elapsed = datetime.timedelta(0)
    with pytest.raises((Failure, FailureGroup)):
        conforms(document, schema, "/session", forged)
