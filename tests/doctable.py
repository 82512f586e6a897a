"""The tables of docs/configuration.md as data, for the tests that keep them equal to the code.

A row names one or more settings in its first column (`` `HOST` / `PORT` ``)
and their defaults in its second (`` `127.0.0.1` / `8000` ``). A default cell
that is not such a list of literals (empty, or prose such as ``*(same origin)*``)
stands for a setting without a value of its own: an empty string, list or
tuple, or None in the code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGURATION = REPO / "docs" / "configuration.md"

_LITERALS = re.compile(r"`([^`]*)`(?:\s*/\s*`([^`]*)`)*")


def table_after(text: str, heading: str) -> list[list[str]]:
    """The cells of the first table after the line ``heading``, header row left out."""
    lines = text.splitlines()
    if heading not in lines:
        raise AssertionError(f"no heading {heading!r}")
    rows: list[list[str]] = []
    for line in lines[lines.index(heading) + 1 :]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    if len(rows) < 3:  # header, rule, at least one row
        raise AssertionError(f"no table under {heading!r}")
    return rows[2:]


def literals(cell: str) -> list[str] | None:
    """`` `a` / `b` `` as ["a", "b"]; None for a cell that is anything else."""
    if not _LITERALS.fullmatch(cell):
        return None
    return re.findall(r"`([^`]*)`", cell)


def defaults_in(rows: list[list[str]], *, name: int = 0, default: int = 1) -> dict[str, str]:
    """Each setting a table names, with its default as written ("" for none)."""
    found: dict[str, str] = {}
    for row in rows:
        names = literals(row[name])
        if names is None:
            raise AssertionError(f"names not in backticks: {row[name]!r}")
        values = literals(row[default]) or [""] * len(names)
        if len(values) != len(names):
            raise AssertionError(f"{row[name]}: {len(names)} names, {len(values)} defaults")
        for setting, value in zip(names, values, strict=True):
            if setting in found:
                raise AssertionError(f"{setting} is listed twice")
            found[setting] = value
    return found


def shown(value: object) -> str:
    """A default as the tables write it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Path):
        return str(value.relative_to(REPO)) if value.is_relative_to(REPO) else str(value)
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    if isinstance(value, list):
        return "[" + ", ".join(shown(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {shown(v)}" for k, v in value.items()) + "}"
    return str(value)


def differences(documented: Mapping[str, str], code: Mapping[str, object]) -> list[str]:
    """What the table gets wrong about the code's defaults, one line each."""
    wrong: list[str] = []
    for setting in sorted(set(code) - set(documented)):
        wrong.append(f"{setting}: in the code, not in the table")
    for setting in sorted(set(documented) - set(code)):
        wrong.append(f"{setting}: in the table, not in the code")
    for setting in sorted(set(code) & set(documented)):
        if documented[setting] != shown(code[setting]):
            wrong.append(
                f"{setting}: the table says {documented[setting]!r}, "
                f"the code {shown(code[setting])!r}"
            )
    return wrong
