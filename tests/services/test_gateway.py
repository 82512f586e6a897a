"""The WebSocket gateway: relay, kill and recovery, abuse controls."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from tests.support.servers import Server, StartProvisioner, new_session
from tests.support.wsclient import close_code, is_event, next_json, ping, until


async def test_ping_pong_through_gateway(provisioner: Server) -> None:
    session = new_session(provisioner)
    async with connect(provisioner.ws + session["ws_url"]) as ws:
        ready = await next_json(ws)
        assert ready["type"] == "event" and ready["event"] == "upstream_ready"
        assert ready["pod"] == session["pod"]["name"]
        for seq in range(20):
            await ping(ws, seq)
            pong = await next_json(ws)
            assert pong["type"] == "pong" and pong["seq"] == seq
            assert pong["pod"] == session["pod"]["name"]
    httpx.delete(provisioner.url + f"/session/{session['session_id']}")


async def test_kill_replaces_pod_and_pongs_resume(provisioner: Server) -> None:
    session = new_session(provisioner)
    sid, first_pod = session["session_id"], session["pod"]["name"]
    async with connect(provisioner.ws + session["ws_url"]) as ws:
        await until(ws, is_event("upstream_ready"))
        killed = httpx.delete(provisioner.url + f"/session/{sid}/pod")
        assert killed.status_code == 202 and killed.json()["killed"] == first_pod
        seen: list[str] = []
        pong = await until(
            ws,
            lambda f: (
                (f["type"] == "event" and seen.append(f["event"]) is not None)
                or (f["type"] == "pong" and f["pod"] != first_pod)
            ),
        )
        assert seen[0] == "pod_killed"
        assert "upstream_lost" in seen and "pod_replaced" in seen
        assert seen[-1] == "upstream_ready"
        new_pod = pong["pod"]
        status = httpx.get(provisioner.url + f"/session/{sid}").json()
        assert status["replacements"] == 1 and status["pod"]["name"] == new_pod
        for seq in range(5):  # and the new pod keeps answering
            await ping(ws, seq)
            assert (await until(ws, lambda f: f["type"] == "pong"))["pod"] == new_pod
    httpx.delete(provisioner.url + f"/session/{sid}")


async def test_unknown_session_websocket_is_closed_4404(provisioner: Server) -> None:
    for sid in ("B" * 43, "not-an-id"):
        async with connect(provisioner.ws + f"/session/{sid}/ws") as ws:
            assert await close_code(ws) == 4404


async def test_wrong_origin_is_refused_403(provisioner: Server) -> None:
    session = new_session(provisioner)
    url = provisioner.ws + session["ws_url"]
    with pytest.raises(websockets.InvalidStatus) as info:
        async with connect(url, origin="https://evil.example"):  # type: ignore[arg-type]
            pass
    assert info.value.response.status_code == 403
    async with connect(url, origin=provisioner.url) as ws:  # type: ignore[arg-type]
        assert (await next_json(ws))["event"] == "upstream_ready"
    httpx.delete(provisioner.url + f"/session/{session['session_id']}")


async def test_bad_frames_close_only_their_own_socket(provisioner: Server) -> None:
    good = new_session(provisioner)
    async with connect(provisioner.ws + good["ws_url"]) as healthy:
        await next_json(healthy)
        cases: list[tuple[str | bytes, int]] = [("x" * 5000, 1009), (b"\x00", 1003)]
        for frame, code in cases:
            bad = new_session(provisioner)
            async with connect(provisioner.ws + bad["ws_url"], max_size=None) as ws:
                await next_json(ws)
                await ws.send(frame)
                assert await close_code(ws) == code
            httpx.delete(provisioner.url + f"/session/{bad['session_id']}")
        # Malformed JSON reaches the pod, which answers with an error frame.
        await healthy.send("{not json")
        assert (await next_json(healthy))["error"] == "bad_json"
        await ping(healthy, 1)
        assert (await next_json(healthy))["type"] == "pong"
    httpx.delete(provisioner.url + f"/session/{good['session_id']}")


async def test_message_flood_closes_1008(start_provisioner: StartProvisioner) -> None:
    # A low limit, so that even a slow, loaded machine reads the flood faster than it.
    server = start_provisioner(WS_MAX_MESSAGES_PER_SECOND="5")
    flood, calm = new_session(server), new_session(server)
    async with (
        connect(server.ws + flood["ws_url"]) as ws,
        connect(server.ws + calm["ws_url"]) as ok,
    ):
        await next_json(ws)
        await next_json(ok)
        for seq in range(50):
            await ping(ws, seq)
        assert await close_code(ws) == 1008
        await ping(ok, 1)
        assert (await until(ok, lambda f: f["type"] == "pong"))["seq"] == 1


async def test_websockets_per_ip_are_capped(start_provisioner: StartProvisioner) -> None:
    server = start_provisioner(WS_PER_IP="2")
    session = new_session(server)
    url = server.ws + session["ws_url"]
    async with connect(url) as first, connect(url) as second:
        await next_json(first)
        await next_json(second)
        with pytest.raises(websockets.InvalidStatus) as info:
            async with connect(url):
                pass
        assert info.value.response.status_code == 429
    # The slots come back once the server has seen the sockets close.
    for _ in range(50):
        try:
            async with connect(url) as again:
                assert (await next_json(again))["event"] == "upstream_ready"
                return
        except websockets.InvalidStatus:
            await asyncio.sleep(0.05)
    pytest.fail("WebSocket slots were not released after close")


async def test_ending_the_session_closes_the_socket_4404(provisioner: Server) -> None:
    session = new_session(provisioner)
    async with connect(provisioner.ws + session["ws_url"]) as ws:
        await next_json(ws)
        httpx.delete(provisioner.url + f"/session/{session['session_id']}")
        assert await close_code(ws) == 4404
