"""A server under WebSocket test (the echo server or the gateway), reached with the
raw client of tests/support/rawws.py, and the reading every case ends with: the
answers up to a pong, then a normal close."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.rawws import CLOSE, Opcode, RawClient, close_payload
from tests.support.servers import Server, start_server
from tests.support.wsfuzz import strict_json


@dataclass
class Target:
    """A server under test, the WebSocket URLs to open on it, and its message allowance."""

    name: str
    server: Server
    urls: list[str]  # WebSocket URLs to fuzz (the gateway: one per session)
    rate: int  # messages per second (and burst) a socket may send
    greets: bool  # the gateway says `upstream_ready` before pongs can flow

    @property
    def pid(self) -> int:
        return self.server.proc.pid

    def url(self, i: int = 0) -> str:
        return self.urls[i % len(self.urls)]

    async def open(self, i: int = 0, **kwargs: Any) -> RawClient:
        client = await RawClient.open(self.url(i), **kwargs)
        if self.greets:
            frame = await client.next_frame(10)
            assert frame is not None and frame.opcode is Opcode.TEXT, frame
            greeting = strict_json(bytes(frame.data).decode())
            assert greeting["event"] == "upstream_ready", greeting
        return client


def start_diag_server(
    tmp: Path, env: dict[str, str], ready: str, *, metrics: bool = False
) -> Server:
    """The service `DIAG_SERVICE` names, with the test-only `GET /_diag/tasks`."""
    return start_server("tests.support.diag_server", tmp, env, ready, metrics=metrics)


@dataclass
class Replies:
    texts: list[dict[str, Any]]  # the server's answers, events left out
    control_pongs: list[bytes]


async def replies_until_pong(client: RawClient, seq: int) -> Replies:
    """Every answer up to the pong for `seq`; fails if the connection ends first."""
    replies = Replies([], [])
    while True:
        frame = await client.next_frame(10)
        assert frame is not None, f"the connection ended before the pong {seq}: {replies}"
        if frame.opcode is Opcode.CLOSE:
            close = client.protocol.close_rcvd
            pytest.fail(f"closed with {close} before the pong {seq}: {replies}")
        if frame.opcode is Opcode.PONG:
            replies.control_pongs.append(bytes(frame.data))
        if frame.opcode is not Opcode.TEXT:
            continue
        reply = strict_json(bytes(frame.data).decode())
        assert isinstance(reply, dict), reply
        if reply.get("type") == "event":
            continue
        replies.texts.append(reply)
        if reply.get("type") == "pong" and reply.get("seq") == seq:
            return replies


async def close_normally(client: RawClient) -> None:
    """Close with 1000: the server must echo it and end the connection."""
    await client.send(CLOSE, close_payload(1000))
    outcome = await client.outcome(10)
    client.writer.close()
    assert outcome.close_code == 1000
