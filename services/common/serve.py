"""Run an ASGI app under uvicorn with a graceful WebSocket drain.

On SIGTERM uvicorn closes open WebSockets with 1012. A pod going away is
"going away" (1001) to its peers, so the server first stops accepting, then
asks every tracked WebSocket handler to close with 1001, and only then lets
uvicorn finish its own shutdown.

Every listener cuts a request head that takes longer than `head_timeout`
(`headtimeout.py`). A side app (the provisioner's metrics) is served by a
second uvicorn server in the same event loop, on a socket bound beforehand
(`listen`), so that a port that cannot be had is an error at start; it starts
after the main server and stops with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState

from services.common.headtimeout import DEFAULT_HEAD_TIMEOUT, head_timeout_protocol
from services.common.wire import CloseCode

log = logging.getLogger(__name__)

BACKLOG = 2048  # uvicorn's default listen backlog


class Drain:
    """Tracks WebSocket handler tasks so shutdown can close them with 1001."""

    def __init__(self) -> None:
        self.draining = False
        self._tasks: set[asyncio.Task[object]] = set()
        self.exit_server: Callable[[], None] | None = None  # set by the server it drains

    def request_exit(self) -> None:
        """Shut the server down as SIGTERM does, but as a planned exit (status 0)."""
        if self.exit_server is not None:
            self.exit_server()
        else:  # not under `run`: the signal does it
            os.kill(os.getpid(), signal.SIGTERM)

    @contextlib.asynccontextmanager
    async def track(self, websocket: WebSocket) -> AsyncIterator[None]:
        """Wrap a handler's body: on drain it is cancelled and the socket closed with 1001."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Drain.track needs a running task")
        self._tasks.add(task)
        try:
            yield
        except asyncio.CancelledError:
            if not self.draining:
                raise
            task.uncancel()
            if websocket.application_state == WebSocketState.CONNECTED:
                try:
                    await websocket.close(CloseCode.GOING_AWAY, "server shutting down")
                except Exception as exc:  # the peer may be gone already
                    log.info("drain_close_failed", extra={"error": repr(exc)[:200]})
        finally:
            self._tasks.discard(task)

    async def close_all(self, grace: float) -> None:
        self.draining = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)


class SendAfterClose:
    """ASGI wrapper: a send on a socket uvicorn has already closed is an OSError.

    When a client breaks the protocol (1002, 1007, 1009), uvicorn's WebSocket
    layer closes the socket itself, and a handler that was just answering an
    earlier frame gets RuntimeError, where the ASGI spec asks for an OSError.
    Starlette turns an OSError into WebSocketDisconnect, which handlers expect.
    """

    _CLOSED = "after sending 'websocket.close'"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return

        async def checked(message: Message) -> None:
            try:
                await send(message)
            except RuntimeError as exc:
                if self._CLOSED not in str(exc):
                    raise
                raise ConnectionResetError(str(exc)) from exc

        await self.app(scope, receive, checked)


class SideServer(uvicorn.Server):
    """A second server in the main server's loop: that one owns the signals and stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class GracefulServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        drain: Drain,
        drain_timeout: float,
        sides: Sequence[tuple[SideServer, socket.socket]] = (),
    ) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_timeout = drain_timeout
        self.sides = list(sides)
        self._side_tasks: list[asyncio.Task[None]] = []
        drain.exit_server = self._exit

    def _exit(self) -> None:
        self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # the app's lifespan has started: its side apps may serve
            self._side_tasks = [
                asyncio.create_task(side.serve(sockets=[sock])) for side, sock in self.sides
            ]

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for side, _ in self.sides:
            side.should_exit = True  # they stop meanwhile: scrapes matter no more
        await self.drain.close_all(self.drain_timeout)
        await super().shutdown(sockets)
        await asyncio.gather(*self._side_tasks)


def raise_descriptor_limit() -> None:
    """Raise the soft limit on open descriptors to the hard one, as Go programs do.

    A container may start with a soft limit of 1024: a thousand slow clients
    inside one head deadline would leave no descriptor to accept anyone else.
    The event loop uses epoll, so nothing here is bound to select()'s 1024.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:  # e.g. an unlimited hard limit: keep the soft one
        log.warning("descriptor_limit_kept", extra={"soft": soft, "error": str(exc)})
        return
    log.info("descriptor_limit_raised", extra={"from": soft, "to": hard})


def listen(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A listening TCP socket on host:port, as uvicorn would bind it; OSError if taken."""
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return socket.create_server(address, family=family, backlog=backlog)


def _config(app: ASGIApp, head_timeout: float, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        # httptools, as "auto" picks it, with the request-head deadline.
        http=head_timeout_protocol(head_timeout),
        backlog=BACKLOG,
        # uvicorn's defaults, named here: idle keep-alive connections close after
        # 5 s; no cap on connections (limit_concurrency answers 503 to everyone
        # once slow clients hold the slots; the head deadline bounds them instead).
        timeout_keep_alive=5,
        limit_concurrency=None,
        log_config=None,
        access_log=False,
        **options,
    )


def run(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    drain: Drain,
    listen_fd: int | None = None,
    ws_max_size: int = 1 << 20,
    grace: float = 5.0,
    forwarded_allow_ips: str | None = None,
    head_timeout: float = DEFAULT_HEAD_TIMEOUT,
    side_apps: Sequence[tuple[ASGIApp, socket.socket]] = (),
) -> None:
    """Serve `app` until SIGTERM or SIGINT (or `drain.request_exit`), then drain.

    `side_apps`: (app, listening socket) pairs served beside it, plain HTTP with
    no WebSocket and no lifespan of their own.
    """
    raise_descriptor_limit()
    config = _config(
        SendAfterClose(app),
        head_timeout,
        host=host,
        port=port,
        ws_max_size=ws_max_size,
        ws_per_message_deflate=False,  # small frames; compression only adds latency
        timeout_graceful_shutdown=max(1, int(grace)),
        forwarded_allow_ips=forwarded_allow_ips,
    )
    sides = [
        (
            SideServer(
                _config(
                    side,
                    head_timeout,
                    ws="none",
                    lifespan="off",
                    timeout_graceful_shutdown=max(1, int(grace)),
                )
            ),
            sock,
        )
        for side, sock in side_apps
    ]
    server = GracefulServer(config, drain, drain_timeout=grace / 2, sides=sides)
    sockets = [socket.socket(fileno=listen_fd)] if listen_fd is not None else None
    server.run(sockets=sockets)
