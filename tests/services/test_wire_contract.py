"""The wire contract reaches the page and the docs from the Python definitions.

The page's types (frontend/src/lib/contract.gen.ts) must be what a running
provisioner's /openapi.json gives, and the tables of docs/api.md what the
code says; `python -m scripts.contract` writes both. The document itself must
explain every value of the enumerations it carries.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scripts.contract import tables, typescript
from services.common.wire import CloseCode, GatewayEvent
from services.provisioner import openapi
from services.provisioner.bodies import EventFrame
from services.provisioner.errors import ErrorCode
from tests.services.helpers import Server

REPO = Path(__file__).resolve().parents[2]
REGENERATE = "out of date: run `python -m scripts.contract` and commit what it writes"


@pytest.fixture(scope="module")
def document(provisioner: Server) -> dict[str, Any]:
    return httpx.get(provisioner.url + "/openapi.json").json()


def test_the_page_types_are_those_of_the_served_document(document: dict[str, Any]) -> None:
    committed = (REPO / typescript.SOURCE).read_text()
    assert committed == typescript.render(document), f"{typescript.SOURCE} is {REGENERATE}"


@pytest.mark.parametrize("name", sorted(tables.tables()))
def test_the_api_tables_are_those_of_the_code(name: str) -> None:
    text = (REPO / tables.DOC).read_text()
    found = tables.block(text, name)
    assert found is not None, f"{tables.DOC} has no contract:{name} block"
    assert found == tables.tables()[name], f"the {name} table of {tables.DOC} is {REGENERATE}"


def test_the_script_finds_its_outputs_up_to_date() -> None:
    """`--check` builds the document in-process: the same one the server serves."""
    run = subprocess.run(
        [sys.executable, "-m", "scripts.contract", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_the_enumerations_are_explained(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for enum in (ErrorCode, GatewayEvent, CloseCode):
        schema = schemas[enum.__name__]
        assert schema["enum"] == [member.value for member in enum]
        assert schema["x-enum-varnames"] == [member.name for member in enum]
        assert len(schema["x-enum-descriptions"]) == len(enum)
        assert all(schema["x-enum-descriptions"])
    ws = document["paths"]["/session/{session_id}/ws"]["get"]["x-websocket"]
    assert ws["closeCode"] == {"$ref": "#/components/schemas/CloseCode"}
    ready = document["paths"]["/ready"]["get"]["responses"]["503"]
    codes = ready["content"]["application/json"]["schema"]["properties"]["error"]["enum"]
    assert codes == [ErrorCode.NOT_READY, ErrorCode.DRAINING]


def test_a_value_without_a_meaning_stops_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    @openapi.operation("frames", openapi.ok(200, "an event", EventFrame))
    async def frames(request: Request) -> Response:
        return Response()

    routes = [Route("/frames", frames)]
    assert "GatewayEvent" in openapi.build_document(routes)["components"]["schemas"]
    unexplained = {e: "x" for e in GatewayEvent if e != GatewayEvent.UPSTREAM_LOST}
    monkeypatch.setitem(openapi._MEANINGS, GatewayEvent, unexplained)
    with pytest.raises(TypeError, match="GatewayEvent: no meaning for UPSTREAM_LOST"):
        openapi.build_document(routes)


def test_the_renderer_refuses_what_it_cannot_type() -> None:
    def doc(schema: dict[str, Any]) -> dict[str, Any]:
        return {"components": {"schemas": {"Thing": schema}}}

    open_object = {"type": "object", "properties": {"a": {"type": "string"}}}
    with pytest.raises(typescript.UnsupportedSchema, match="closed objects"):
        typescript.render(doc(open_object))
    untyped = {"type": "object", "additionalProperties": False, "properties": {"a": {}}}
    with pytest.raises(typescript.UnsupportedSchema, match=r"Thing\.a"):
        typescript.render(doc(untyped))
    with pytest.raises(typescript.UnsupportedSchema, match="x-enum-varnames"):
        typescript.render(doc({"type": "integer", "enum": [1, 2]}))
    closed = {
        "type": "object",
        "additionalProperties": False,
        "required": ["a"],
        "properties": {
            "a": {"anyOf": [{"$ref": "#/components/schemas/Other"}, {"type": "null"}]},
            "b": {"type": "array", "items": {"enum": ["x", "it's"]}},
        },
    }
    assert "  a: Other | null;\n  b?: ('x' | 'it\\'s')[];\n" in typescript.render(doc(closed))


def test_a_table_block_is_filled_in_place() -> None:
    text = "before\n<!-- contract:t:begin -->\nold\n<!-- contract:t:end -->\nafter\n"
    filled = tables.fill(text, {"t": "| a |\n"})
    assert filled == "before\n<!-- contract:t:begin -->\n| a |\n<!-- contract:t:end -->\nafter\n"
    assert tables.block(filled, "t") == "| a |\n"
    with pytest.raises(ValueError, match="contract:missing"):
        tables.fill(text, {"missing": ""})
