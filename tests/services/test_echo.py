"""The echo server over real sockets."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest
import websockets
from websockets.asyncio.client import connect

from tests.support.servers import Server
from tests.support.wsclient import next_json, ping


async def test_ping_gets_pong_with_pod_and_node(echo: Server) -> None:
    async with connect(echo.ws + "/ws") as ws:
        t = time.time() * 1000
        await ws.send(json.dumps({"type": "ping", "seq": 7, "t": t}))
        pong = await next_json(ws)
        received = time.time() * 1000
    assert pong["type"] == "pong" and pong["seq"] == 7 and pong["t"] == t
    assert pong["pod"] == "echo-test" and pong["node"] == "n1"
    assert t <= pong["server_ts"] <= received  # epoch milliseconds, stamped on the way


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", "bad_json"),
        ('{"type":"hello"}', "unknown_type"),
        ("[1,2]", "unknown_type"),
        ('{"type":"ping","seq":"1","t":0}', "bad_ping"),
    ],
)
async def test_bad_input_gets_error_frame_and_connection_survives(
    echo: Server, frame: str, error: str
) -> None:
    async with connect(echo.ws + "/ws") as ws:
        await ws.send(frame)
        assert (await next_json(ws))["error"] == error
        await ping(ws, 1)
        assert (await next_json(ws))["type"] == "pong"


async def test_oversize_frame_closes_1009_and_server_stays_up(echo: Server) -> None:
    async with connect(echo.ws + "/ws", max_size=None) as ws:
        await ws.send("x" * 5000)
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    async with connect(echo.ws + "/ws") as ws:
        await ping(ws, 1)
        assert (await next_json(ws))["type"] == "pong"


async def test_binary_frame_closes_1003(echo: Server) -> None:
    async with connect(echo.ws + "/ws") as ws:
        await ws.send(b"\x00\x01")
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1003


async def test_message_flood_closes_1008(echo: Server) -> None:
    async with connect(echo.ws + "/ws") as ws:
        with pytest.raises(websockets.ConnectionClosed) as info:
            for seq in range(2000):  # far past 100/s even on a loaded machine
                await ping(ws, seq)
            while True:
                await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008


async def test_health(echo: Server) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        response = await client.get(echo.url + "/health")
    assert response.json() == {"status": "ok", "pod": "echo-test"}


async def test_sigterm_closes_sockets_1001_and_exits(echo: Server) -> None:
    async with connect(echo.ws + "/ws") as ws:
        await ping(ws, 1)
        await next_json(ws)
        echo.proc.send_signal(signal.SIGTERM)
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    code = await asyncio.to_thread(echo.proc.wait, 10)
    # uvicorn re-raises the signal after its graceful shutdown, as a shell expects.
    assert code in (0, -signal.SIGTERM)
