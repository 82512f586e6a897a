"""A round-robin reverse proxy that plays the ALB in front of provisioner
replicas in the tests (an ALB cannot exist here).

Like the ALB with the load balancer controller, it sends each new request or
WebSocket to the next replica that is ready, and a replica whose `/ready`
fails (checked every `check_every` seconds) gets nothing new; connections
already open stay where they are. It speaks HTTP/1.1 only as far as routing
needs: one request per client connection (it asks both sides for
`Connection: close`), and after an upgrade the bytes are relayed as they are,
so WebSocket frames and close codes pass through untouched, as through an ALB.
It adds `X-Forwarded-For` and keeps `Host`, so the provisioner's same-origin
check sees the page's origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Iterable

from scripts.servers import free_port

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer"}


async def _ready(port: int) -> bool:
    try:
        async with asyncio.timeout(1):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"GET /ready HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")
                status = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return False
    return status.startswith(b"HTTP/1.1 200")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


class RoundRobinProxy:
    def __init__(self, ports: Iterable[int], *, check_every: float = 0.2) -> None:
        self.ports = list(ports)
        self.check_every = check_every
        self.port = free_port()
        self.ready: set[int] = set()
        self.routed: list[int] = []  # the replica each request or WebSocket went to
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._checks: asyncio.Task[None] | None = None
        # Every client connection accepted and not closed yet: one accepted just as the
        # proxy stops may have its handler cancelled before it runs (and closes it).
        self._clients: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> RoundRobinProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def set_ports(self, ports: Iterable[int]) -> None:
        """Replace the replicas (one restarted on another port, say)."""
        self.ports = list(ports)

    async def _start(self) -> None:
        await self._check()
        self._checks = asyncio.create_task(self._check_forever())
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._checks is not None:
            self._checks.cancel()
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer in self._clients:
            writer.close()

    async def _check(self) -> None:
        ports = list(self.ports)
        results = await asyncio.gather(*(_ready(p) for p in ports))
        self.ready = {p for p, ok in zip(ports, results, strict=True) if ok}

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.check_every)
            await self._check()

    def _pick(self) -> int | None:
        candidates = [p for p in self.ports if p in self.ready]
        if not candidates:
            return None
        return candidates[next(self._turn) % len(candidates)]

    def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._clients.add(client_w)
        task = asyncio.ensure_future(self._handle(client_r, client_w))
        task.add_done_callback(lambda _: self._clients.discard(client_w))

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            await self._proxy(client_r, client_w)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # the proxy is stopping: its connections end with it
        finally:
            client_w.close()

    async def _proxy(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        head = await client_r.readuntil(b"\r\n\r\n")
        request_line, *lines = head.decode("latin-1").split("\r\n")
        headers = [tuple(line.split(":", 1)) for line in lines if ":" in line]
        names = {name.strip().lower(): value.strip() for name, value in headers}
        upgrade = names.get("upgrade", "").lower() == "websocket"
        body = b""
        if (length := int(names.get("content-length", "0") or 0)) > 0:
            body = await client_r.readexactly(length)
        port = self._pick()
        if port is None:
            client_w.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Content-Length: 57\r\nConnection: close\r\n\r\n"
                b'{"error": "no_target", "detail": "no replica is ready."}\n'
            )
            await client_w.drain()
            return
        self.routed.append(port)
        peer = client_w.get_extra_info("peername")
        kept = [
            f"{name.strip()}: {value.strip()}"
            for name, value in headers
            if name.strip().lower() not in _HOP_BY_HOP
        ]
        kept.append(f"X-Forwarded-For: {peer[0] if peer else '127.0.0.1'}")
        kept.append("Connection: Upgrade" if upgrade else "Connection: close")
        upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", port)
        try:
            upstream_w.write(("\r\n".join([request_line, *kept]) + "\r\n\r\n").encode("latin-1"))
            upstream_w.write(body)
            await upstream_w.drain()
            down = asyncio.create_task(_pipe(upstream_r, client_w))
            up = asyncio.create_task(_pipe(client_r, upstream_w))
            # The replica's answer (or the WebSocket) ends the exchange; the client's
            # side is relayed meanwhile (WebSocket frames, or nothing). A client that
            # goes away is passed on as an end of stream, as a disconnect.
            await asyncio.wait([down, up], return_when=asyncio.FIRST_COMPLETED)
            if not down.done():
                with contextlib.suppress(OSError):
                    upstream_w.write_eof()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(down, 5)
            for task in (up, down):
                task.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
        finally:
            upstream_w.close()
