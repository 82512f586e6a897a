"""The echo server: `WS /ws` answers pings with pongs, `GET /health` for probes."""

from __future__ import annotations

import json
import logging
import math
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.common.ratelimit import TokenBucket
from services.common.serve import Drain
from services.common.wire import CloseCode
from services.echo.settings import EchoSettings

log = logging.getLogger(__name__)


def _error(code: str, detail: str) -> str:
    return json.dumps({"type": "error", "error": code, "detail": detail})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    # json.loads accepts NaN and Infinity, which JSON.parse in the page does not.
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def pong_for(text: str, settings: EchoSettings) -> str:
    """The reply to one text frame: a pong, or an error frame for bad input."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the stack
        return _error("bad_json", "frames must be JSON objects")
    if not isinstance(message, dict) or message.get("type") != "ping":
        return _error("unknown_type", 'only {"type":"ping"} is understood')
    seq, sent = message.get("seq"), message.get("t")
    if not _is_int(seq) or not _is_number(sent):
        return _error("bad_ping", "ping needs an integer seq and a finite numeric t")
    return json.dumps(
        {
            "type": "pong",
            "seq": seq,
            "t": sent,
            "pod": settings.pod_name,
            "node": settings.node_name,
            "server_ts": time.time() * 1000,
        },
        separators=(",", ":"),
    )


def create_app(settings: EchoSettings, drain: Drain | None = None) -> Starlette:
    drain = drain or Drain()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "pod": settings.pod_name})

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        bucket = TokenBucket(
            rate=settings.max_messages_per_second, burst=settings.max_messages_per_second
        )
        async with drain.track(websocket):
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    if bucket.take(time.monotonic()) > 0:
                        await websocket.close(CloseCode.POLICY_VIOLATION, "too many messages")
                        return
                    text = message.get("text")
                    if text is None:
                        await websocket.close(
                            CloseCode.UNSUPPORTED_DATA, "binary frames are not supported"
                        )
                        return
                    await websocket.send_text(pong_for(text, settings))
            except WebSocketDisconnect:
                return

    return Starlette(
        routes=[Route("/health", health), WebSocketRoute("/ws", ws)],
    )
