"""JSON frames over a websockets client: pings, reading until a frame matches, close codes."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection


async def ping(ws: ClientConnection, seq: int) -> None:
    await ws.send(json.dumps({"type": "ping", "seq": seq, "t": time.time() * 1000}))


async def next_json(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until(ws: ClientConnection, pred: Any, timeout: float = 15) -> dict[str, Any]:
    """Read frames until one matches `pred`; pings are sent meanwhile to keep pongs flowing."""
    deadline = time.monotonic() + timeout
    seq = 10_000
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no matching frame")
        try:
            frame = await next_json(ws, min(left, 0.1))
        except TimeoutError:
            seq += 1
            await ping(ws, seq)
            continue
        if pred(frame):
            return frame


async def close_code(ws: ClientConnection) -> int:
    """Read until the server closes the socket; its close code."""
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd is not None
    return info.value.rcvd.code


def is_event(name: str) -> Any:
    """A predicate for `until`: the gateway's event `name`."""
    return lambda frame: frame.get("type") == "event" and frame.get("event") == name
