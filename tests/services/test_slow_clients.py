"""Slow clients: a request head that never completes is cut off (HEADER_TIMEOUT).

uvicorn itself waits for a request head forever: a client that connects and
says nothing, trickles its header lines, sends half a WebSocket upgrade, or
keeps an idle keep-alive connection open with stray line ends would hold a
socket and a descriptor for as long as it likes. Each kind here must be closed
(without a response) once its head has taken HEADER_TIMEOUT. A thousand of
them at once must not stop a normal visitor from claiming and pinging, and the
server's descriptors must come back to where they were, while the slow clients
are still trickling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import socket
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from scripts.procinfo import open_fds
from services.provisioner.errors import ConfigError
from services.provisioner.settings import Settings
from tests.support.servers import Server, StartProvisioner, start_server
from tests.support.wsclient import is_event, next_json, until

HEAD_TIMEOUT = 2  # seconds: the per-kind tests' setting
TRICKLE_EVERY = 0.5  # seconds between a slow client's header lines
# Liveness bounds, far above the settings: a server that never cuts fails here.
CUT_BOUND = 30.0
BASELINE_BOUND = 60.0
FLOOD = 1000
FLOOD_HEAD_TIMEOUT = 15  # margin for the normal client's rounds on a busy machine


def _head(path: str, *extra: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *extra]
    return "".join(f"{line}\r\n" for line in lines).encode()


# What each kind sends first, and then again and again, never ending its head.
KINDS: dict[str, tuple[bytes, bytes]] = {
    "silent": (b"", b""),
    "trickled-head": (_head("/health"), b"X-Slow: 1\r\n"),
    "partial-upgrade": (
        _head(
            "/session/AAAA/ws",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Version: 13",
        ),
        b"X-Slow: 1\r\n",
    ),
    # A whole request first, then only line ends: uvicorn's keep-alive timer stops
    # at the first byte and is armed again only after a response.
    "keep-alive-crlf": (_head("/health") + b"\r\n", b"\r\n"),
}


@dataclass
class SlowClient:
    """A non-blocking socket that sends part of a head, then a little more now and then."""

    sock: socket.socket
    again: bytes
    received: bytearray = field(default_factory=bytearray)
    closed_by_server: bool = False

    @classmethod
    async def open(cls, port: int, kind: str) -> SlowClient:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            first, again = KINDS[kind]
            await loop.sock_sendall(sock, first)
        except BaseException:
            sock.close()
            raise
        return cls(sock, again)

    def poll(self) -> bool:
        """Whether the server has closed the connection (keeping what it sent)."""
        if not self.closed_by_server:
            try:
                while data := self.sock.recv(4096):
                    self.received += data
                self.closed_by_server = True  # end of stream
            except BlockingIOError:
                pass  # open, nothing to read
            except OSError:  # reset
                self.closed_by_server = True
        return self.closed_by_server

    def trickle(self) -> None:
        if self.again and not self.poll():
            try:
                self.sock.send(self.again)
            except BlockingIOError:
                pass
            except OSError:
                self.closed_by_server = True

    def close(self) -> None:
        self.sock.close()


async def _trickle_forever(clients: list[SlowClient]) -> None:
    """One task for all of them: a little more of each head every TRICKLE_EVERY seconds."""
    while True:
        for client in clients:
            client.trickle()
        await asyncio.sleep(TRICKLE_EVERY)


@contextlib.asynccontextmanager
async def trickling(clients: list[SlowClient]) -> AsyncIterator[None]:
    task = asyncio.create_task(_trickle_forever(clients))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _wait_cut(client: SlowClient, bound: float) -> float:
    """Seconds until the server closed `client`; fails past `bound`."""
    started = time.monotonic()
    while not client.poll():
        if time.monotonic() - started > bound:
            pytest.fail(f"still open after {bound:.0f} s: the head was never cut off")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def slow_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        "services.provisioner",
        tmp_path_factory.mktemp("slow"),
        {"POOL_SIZE": "1", "HEADER_TIMEOUT": str(HEAD_TIMEOUT)},
        "/ready",
    )
    yield server
    server.stop()


@pytest.mark.parametrize("kind", list(KINDS))
async def test_an_unfinished_head_is_cut_off(slow_target: Server, kind: str) -> None:
    client = await SlowClient.open(slow_target.port, kind)
    try:
        async with trickling([client]):
            took = await _wait_cut(client, CUT_BOUND)
    finally:
        client.close()
    print(f"{kind}: closed after {took:.1f} s (HEADER_TIMEOUT={HEAD_TIMEOUT})")
    answered = bytes(client.received)
    if kind == "keep-alive-crlf":  # its one whole request was answered, nothing more
        assert answered.startswith(b"HTTP/1.1 200 "), answered[:200]
        assert answered.count(b"HTTP/1.1 ") == 1, answered
    else:  # closed without a response, as an idle keep-alive connection is
        assert answered == b"", answered[:200]
    # The server is as responsive as before.
    assert httpx.get(slow_target.url + "/health", timeout=10).status_code == 200


# -- a thousand at once ----------------------------------------------------------------------------


def fd_count(server: Server) -> int:
    return len(open_fds(server.proc.pid))


def steady_fd_count(server: Server, bound: float = 30) -> int:
    """The descriptor count once it holds still for a second."""
    deadline = time.monotonic() + bound
    last, since = fd_count(server), time.monotonic()
    while time.monotonic() - since < 1.0:
        if time.monotonic() > deadline:
            pytest.fail(f"the server's descriptors never settled (last {last})")
        time.sleep(0.1)
        now = fd_count(server)
        if now != last:
            last, since = now, time.monotonic()
    return last


@pytest.fixture
def many_descriptors() -> Iterator[None]:
    """Raise this process's soft descriptor limit for the test: the slow clients are
    its sockets (the server raises its own, see the test below)."""
    need = FLOOD + 512
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.fail(f"the test needs {need} descriptors; the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def normal_visit(server: Server) -> tuple[float, float]:
    """Claim, ping over the gateway, end: (claim seconds, ping round trip seconds)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        started = time.perf_counter()
        created = await http.post("/session")
        claimed = time.perf_counter() - started
        assert created.status_code == 201, created.text
        session = created.json()
        try:
            async with connect(server.ws + session["ws_url"], open_timeout=60) as ws:
                await until(ws, is_event("upstream_ready"), timeout=60)
                sent = time.perf_counter()
                await ws.send(json.dumps({"type": "ping", "seq": 1, "t": 0}))
                while (frame := await next_json(ws, timeout=60)).get("type") != "pong":
                    pass
                rtt = time.perf_counter() - sent
                assert frame["seq"] == 1
        finally:
            ended = await http.delete(f"/session/{session['session_id']}")
            assert ended.status_code == 204, ended.text
    return claimed, rtt


async def normal_rounds(server: Server, rounds: int = 5) -> tuple[float, float]:
    """Median claim and ping times of a few visits, in milliseconds."""
    results = [await normal_visit(server) for _ in range(rounds)]
    return (
        statistics.median(r[0] for r in results) * 1000,
        statistics.median(r[1] for r in results) * 1000,
    )


async def open_slow_clients(port: int, count: int) -> list[SlowClient]:
    """`count` slow clients of every kind but the keep-alive one, at most 100 connecting."""
    kinds = ["silent", "trickled-head", "partial-upgrade"]
    gate = asyncio.Semaphore(100)

    async def one(i: int) -> SlowClient:
        async with gate:
            return await SlowClient.open(port, kinds[i % len(kinds)])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


@pytest.mark.usefixtures("many_descriptors")
async def test_a_thousand_slow_clients_do_not_stop_a_visitor(
    start_provisioner: StartProvisioner, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_provisioner(
        POOL_SIZE="2",
        POOL_HEADROOM="0",  # a fixed pool: the same children before and after
        HEADER_TIMEOUT=str(FLOOD_HEAD_TIMEOUT),
    )
    server.wait_pool(2)
    alone = await normal_rounds(server)
    server.wait_pool(2)
    baseline = steady_fd_count(server)

    clients = await open_slow_clients(server.port, FLOOD)
    try:
        async with trickling(clients):
            # Every slow client is connected and held before the visitor comes.
            deadline = time.monotonic() + CUT_BOUND
            while fd_count(server) < baseline + FLOOD:
                if time.monotonic() > deadline:
                    pytest.fail(f"{fd_count(server) - baseline} of {FLOOD} slow clients held")
                await asyncio.sleep(0.1)
            crowded = await normal_rounds(server)
            # ... and they still were when the visitor was done.
            still_open = sum(not c.poll() for c in clients)
            assert still_open == FLOOD, f"only {still_open} slow clients were still connected"
            with capsys.disabled():
                print(
                    f"\nnormal client alone: claim {alone[0]:.1f} ms, ping {alone[1]:.1f} ms; "
                    f"with {FLOOD} slow clients: claim {crowded[0]:.1f} ms, "
                    f"ping {crowded[1]:.1f} ms"
                )
            # The server lets go of every one while they are still trickling.
            deadline = time.monotonic() + FLOOD_HEAD_TIMEOUT + BASELINE_BOUND
            while (now := fd_count(server)) > baseline:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"the server still holds {now - baseline} descriptors over its "
                        f"baseline of {baseline}"
                    )
                await asyncio.sleep(0.2)
            cut = sum(c.poll() for c in clients)
            assert cut == FLOOD, f"{FLOOD - cut} slow clients were not closed by the server"
            assert not any(c.received for c in clients)
    finally:
        for client in clients:
            client.close()
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200


def open_files_limit(pid: int) -> tuple[int, int]:
    """The process's soft and hard RLIMIT_NOFILE, from /proc/<pid>/limits."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-files line")


def test_the_descriptor_limit_is_raised_to_the_hard_one(
    start_provisioner: StartProvisioner,
) -> None:
    # A container's soft limit may be 1024: a thousand slow clients within one
    # HEADER_TIMEOUT would then leave no descriptor to accept a visitor with.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(512, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        server = start_provisioner(POOL_SIZE="1")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert open_files_limit(server.proc.pid) == (hard, hard)


def test_head_timeout_setting() -> None:
    assert Settings.from_env({}).header_timeout == 10.0
    assert Settings.from_env({"HEADER_TIMEOUT": "2.5"}).header_timeout == 2.5
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ConfigError) as refused:
            Settings.from_env({"HEADER_TIMEOUT": bad})
        assert refused.value.key == "HEADER_TIMEOUT", bad
