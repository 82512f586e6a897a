"""A test client that keeps a session's WebSocket as the page does: it pings at a
steady rate once the gateway says `upstream_ready`, and when the socket closes
or fails it reconnects, to the next provisioner replica in its list, with a
short backoff. Every ping and pong is recorded with the replica it went through."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

import websockets
from websockets.asyncio.client import ClientConnection, connect


@dataclass
class Pong:
    seq: int
    replica: str  # the ws:// base URL the pong came through
    at: float  # time.monotonic()


@dataclass
class Pinger:
    session_id: str
    ws_path: str
    replicas: list[str]  # ws:// base URLs; on a failure the next one is tried (the last stays)
    hz: float = 10.0
    sent: dict[int, tuple[str, float]] = field(default_factory=dict)  # seq -> (replica, at)
    pongs: list[Pong] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # why each connection ended
    replica: str = ""  # where the socket is (or was last)
    _seq: int = 0

    def pongs_via(self, replica: str, since: float = 0.0) -> list[Pong]:
        return [p for p in self.pongs if p.replica == replica and p.at >= since]

    def lost(self, sent_from: float, sent_until: float) -> list[int]:
        """Pings sent in [sent_from, sent_until] that never got a pong."""
        answered = {p.seq for p in self.pongs}
        return sorted(
            seq
            for seq, (_, at) in self.sent.items()
            if sent_from <= at <= sent_until and seq not in answered
        )

    async def run(self, stop: asyncio.Event) -> None:
        index = 0
        while not stop.is_set():
            self.replica = self.replicas[index]
            try:
                async with connect(self.replica + self.ws_path, open_timeout=5) as ws:
                    await self._session(ws, stop)
                    return
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                self.failures.append(f"{self.replica}: {type(exc).__name__}: {exc}")
            index = min(index + 1, len(self.replicas) - 1)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await stop.wait()

    async def _session(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        ready = asyncio.Event()
        reader = asyncio.create_task(self._read(ws, ready))
        try:
            async with asyncio.timeout(15):
                await ready.wait()
            while not stop.is_set():
                if reader.done():
                    reader.result()  # the connection ended: raise why
                    raise websockets.ConnectionClosedError(None, None)
                self._seq += 1
                self.sent[self._seq] = (self.replica, time.monotonic())
                await ws.send(json.dumps({"type": "ping", "seq": self._seq, "t": 0}))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1 / self.hz):
                        await stop.wait()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.WebSocketException):
                await reader

    async def _read(self, ws: ClientConnection, ready: asyncio.Event) -> None:
        try:
            async for frame in ws:
                message = json.loads(frame)
                if message.get("event") == "upstream_ready":
                    ready.set()
                elif message.get("type") == "pong":
                    self.pongs.append(Pong(message["seq"], self.replica, time.monotonic()))
        finally:
            ready.set()  # also when the socket ends first: `_session` then sees why
