"""The tables of docs/api.md that mirror the code: error codes, close codes, gateway events.

Each sits between `<!-- contract:<name>:begin -->` and `<!-- contract:<name>:end -->`;
`fill` rewrites what is between the markers and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from services.common.wire import CLOSE_MEANINGS, EVENT_MEANINGS, CloseCode, GatewayEvent
from services.provisioner.errors import ERROR_MEANINGS, ErrorCode

DOC = "docs/api.md"


def _table(head: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        if any("|" in cell or "\n" in cell for cell in row):
            raise ValueError(f"a table cell cannot hold | or a line break: {row}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def tables() -> dict[str, str]:
    """Each table's marker name and its Markdown, from the definitions."""
    return {
        "errors": _table(
            ("error", "status", "meaning"),
            ((f"`{code}`", *ERROR_MEANINGS[code]) for code in ErrorCode),
        ),
        "close-codes": _table(
            ("close code", "meaning"),
            ((str(code.value), CLOSE_MEANINGS[code]) for code in sorted(CloseCode)),
        ),
        "events": _table(
            ("event", "meaning"),
            ((f"`{event}`", EVENT_MEANINGS[event]) for event in GatewayEvent),
        ),
    }


def _block(name: str) -> re.Pattern[str]:
    begin, end = f"<!-- contract:{name}:begin -->", f"<!-- contract:{name}:end -->"
    return re.compile(f"({re.escape(begin)}\n)(.*?)({re.escape(end)})", re.S)


def fill(text: str, contents: Mapping[str, str]) -> str:
    """`text` with each named block's content replaced; every block must be there once."""
    for name, content in contents.items():
        pattern = _block(name)
        if len(pattern.findall(text)) != 1:
            raise ValueError(f"{DOC} must hold the contract:{name} block once")
        text = pattern.sub(lambda m, c=content: m.group(1) + c + m.group(3), text)
    return text


def block(text: str, name: str) -> str | None:
    """What is between a named block's markers, or None without them."""
    found = _block(name).search(text)
    return found.group(2) if found else None
