"""TypeScript declarations from an OpenAPI document's component schemas.

Handles what the provisioner's schemas use (closed objects, `$ref`, `anyOf`
and `oneOf`, `const`, enumerations, arrays, the JSON types) and refuses
anything else, so a new kind of schema is noticed rather than typed loosely.
An enumeration becomes a constant object, named by `x-enum-varnames` (or its
values in capitals) and commented from `x-enum-descriptions`, plus a type of
the same name: `ErrorCode.AT_CAPACITY`, and `ErrorCode` for any of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

SOURCE = "frontend/src/lib/contract.gen.ts"

_HEADER = """\
/**
 * The provisioner's wire contract, generated from its OpenAPI document
 * (GET /openapi.json, built from services/provisioner/bodies.py, errors.py and
 * services/common/wire.py) by `python -m scripts.contract`. Do not edit:
 * tests/services/test_wire_contract.py fails when this file is not what the
 * running provisioner's document gives.
 */
"""
_REF = re.compile(r"^#/components/schemas/(\w+)$")
_IDENTIFIER = re.compile(r"^[A-Za-z_$][\w$]*$")
_PRIMITIVES = {
    "string": "string",
    "number": "number",
    "integer": "number",
    "boolean": "boolean",
    "null": "null",
}


class UnsupportedSchema(ValueError):
    """A schema construct this renderer does not type."""


def render(document: Mapping[str, Any]) -> str:
    """The TypeScript module for every component schema of `document`."""
    schemas: Mapping[str, Any] = document["components"]["schemas"]
    parts = [_HEADER]
    for name, schema in schemas.items():
        where = f"components.schemas.{name}"
        if "enum" in schema:
            parts.append(_enumeration(name, schema, where))
        else:
            parts.append(_interface(name, schema, where))
    return "\n".join(parts)


def _comment(text: str | None, indent: str = "") -> str:
    if not text:
        return ""
    lines = text.replace("*/", "*\\/").splitlines()
    if len(lines) == 1:
        return f"{indent}/** {lines[0]} */\n"
    body = "".join(f"{indent} * {line}".rstrip() + "\n" for line in lines)
    return f"{indent}/**\n{body}{indent} */\n"


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + json.dumps(value)[1:-1].replace("'", "\\'") + "'"
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return json.dumps(value)
    raise UnsupportedSchema(f"a literal of type {type(value).__name__}")


def _enumeration(name: str, schema: Mapping[str, Any], where: str) -> str:
    values: list[Any] = schema["enum"]
    names: list[str] = schema.get("x-enum-varnames") or [_constant_name(v, where) for v in values]
    meanings: list[str | None] = schema.get("x-enum-descriptions") or [None] * len(values)
    if not len(names) == len(meanings) == len(values):
        raise UnsupportedSchema(f"{where}: x-enum-varnames or x-enum-descriptions miscounted")
    members = "".join(
        _comment(meaning, "  ") + f"  {key}: {_literal(value)},\n"
        for key, value, meaning in zip(names, values, meanings, strict=True)
    )
    return (
        _comment(schema.get("description"))
        + f"export const {name} = {{\n{members}}} as const;\n"
        + f"export type {name} = (typeof {name})[keyof typeof {name}];\n"
    )


def _constant_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise UnsupportedSchema(f"{where}: {value!r} needs a name (x-enum-varnames)")
    return value.upper()


def _interface(name: str, schema: Mapping[str, Any], where: str) -> str:
    if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
        raise UnsupportedSchema(f"{where}: only closed objects become interfaces")
    required = set(schema.get("required", ()))
    fields = ""
    for prop, spec in schema.get("properties", {}).items():
        key = prop if _IDENTIFIER.match(prop) else _literal(prop)
        optional = "" if prop in required else "?"
        kind = _type(spec, f"{where}.{prop}")
        fields += _comment(spec.get("description"), "  ") + f"  {key}{optional}: {kind};\n"
    return _comment(schema.get("description")) + f"export interface {name} {{\n{fields}}}\n"


def _type(schema: Mapping[str, Any], where: str) -> str:
    """The TypeScript type of a property's schema (annotations such as title are ignored)."""
    if "$ref" in schema:
        found = _REF.match(schema["$ref"])
        if found is None:
            raise UnsupportedSchema(f"{where}: $ref {schema['$ref']}")
        return found.group(1)
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return " | ".join(_type(s, f"{where}.{union}") for s in schema[union])
    if "const" in schema:
        return _literal(schema["const"])
    if "enum" in schema:
        return " | ".join(_literal(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        item = _type(schema["items"], f"{where}.items")
        return f"({item})[]" if " | " in item else f"{item}[]"
    if isinstance(kind, str) and kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    raise UnsupportedSchema(f"{where}: {json.dumps(schema)[:200]}")
