"""WebSocket gateway: `WS /session/{id}/ws` relayed to the session's pod.

The browser's socket outlives the pod: when the upstream dies the gateway
says so with `event` frames, waits for the backend's `pod_ready` event of the
replacement, and reconnects (docs/architecture.md, "Gateway and events").
Pod frames are relayed as they are (no JSON round trip); only the gateway's
own events are encoded here. Close codes and event names:
`services.common.wire`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import websockets
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.asyncio.client import ClientConnection

from services.common.ratelimit import ConnectionCounter, TokenBucket
from services.common.serve import Drain
from services.common.wire import NODE_LOST, CloseCode, GatewayEvent
from services.provisioner.access import origin_allowed
from services.provisioner.backends.base import Backend, Endpoint
from services.provisioner.backends.events import EventKind, SessionEvent
from services.provisioner.bodies import EventFrame
from services.provisioner.drain import ReplicaDrain
from services.provisioner.errors import (
    BackendUnavailable,
    ErrorCode,
    ProvisionerError,
    SessionNotFound,
)
from services.provisioner.metrics import Metrics
from services.provisioner.responses import error_response, from_error
from services.provisioner.sessions import (
    EndReason,
    expiring_warning,
    session_key,
    touch_interval,
)
from services.provisioner.settings import Settings

log = logging.getLogger(__name__)

_RECONNECT_FIRST = 0.02
_RECONNECT_MAX = 1.0
# Backend events the browser is told about, by their gateway names.
_FORWARDED = {
    EventKind.POD_KILLED: GatewayEvent.POD_KILLED,
    EventKind.POD_REPLACED: GatewayEvent.POD_REPLACED,
}


def close_for(reason: str) -> tuple[int, str]:
    if reason in (EndReason.IDLE, EndReason.EXPIRED):
        return CloseCode.SESSION_EXPIRED, f"session expired ({reason})"
    return CloseCode.SESSION_ENDED, "session ended"


async def close_discarding(upstream: ClientConnection) -> None:
    """Close a pod connection, reading (and dropping) what the pod still sends.

    Nobody reads the connection once the relay is over, and the client stops
    reading when its queue is full: the pod's close reply would wait behind
    those frames for the whole close timeout, and the browser's close with it.
    """

    async def discard() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in upstream:
                pass

    reader = asyncio.create_task(discard())
    try:
        await upstream.close()
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


class Gateway:
    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        metrics: Metrics,
        drain: Drain,
        *,
        replica_drain: ReplicaDrain | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.metrics = metrics
        self.drain = drain
        self.replica_drain = replica_drain  # "kill my gateway": this replica's exit
        self.clock = clock
        self.per_ip = ConnectionCounter(settings.ws_per_ip)

    async def handle(self, websocket: WebSocket) -> None:
        if not origin_allowed(
            websocket.headers.get("origin"),
            websocket.headers.get("host"),
            self.settings.allowed_origins,
        ):
            self.metrics.rejections.labels("origin").inc()
            await websocket.send_denial_response(
                error_response(
                    403, ErrorCode.ORIGIN_NOT_ALLOWED, "this origin may not open the gateway"
                )
            )
            return
        try:
            key = session_key(websocket.path_params["session_id"])
            info = await self.backend.get(key)
        except SessionNotFound as exc:
            # Accept, then close with a code the page can read: a browser sees a
            # refused upgrade only as 1006, the same as a network failure.
            await websocket.accept()
            await websocket.close(*close_for(exc.reason))
            return
        except ProvisionerError as exc:
            await websocket.send_denial_response(from_error(exc))
            return
        ip = websocket.client.host if websocket.client else "unknown"
        if not self.per_ip.acquire(ip, shares=self.backend.replicas()):
            self.metrics.rejections.labels("ws_per_ip").inc()
            await websocket.send_denial_response(
                error_response(
                    429,
                    ErrorCode.TOO_MANY_CONNECTIONS,
                    f"at most {self.settings.ws_per_ip} WebSockets per address",
                    {"Retry-After": "5"},
                )
            )
            return
        try:
            await websocket.accept()
            self.metrics.websockets.inc()
            async with self.drain.track(websocket):
                await Relay(self, websocket, key, expires_at=info.expires_at).run()
        finally:
            self.per_ip.release(ip)
            self.metrics.websockets.dec()


class Relay:
    """One browser socket and, in turn, each upstream connection to the session's pod."""

    def __init__(
        self, gateway: Gateway, websocket: WebSocket, key: str, *, expires_at: float
    ) -> None:
        self.gw = gateway
        self.ws = websocket
        self.key = key
        self.expires_at = expires_at
        self.upstream: ClientConnection | None = None
        self.upstream_pod = ""
        self._pod_ready = asyncio.Event()  # set, then replaced, at each `pod_ready` event

    async def run(self) -> None:
        backend = self.gw.backend
        async with backend.subscribe(self.key) as events:
            jobs: list[Coroutine[Any, Any, tuple[int, str] | None]] = [
                self._from_browser(),
                self._from_pods(),
                self._events(events),
                self._keepalive(),
            ]
            if self.gw.replica_drain is not None:
                jobs.append(self._restarting(self.gw.replica_drain))
            tasks = [asyncio.create_task(job) for job in jobs]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if self.upstream is not None:
                    await close_discarding(self.upstream)
            outcome: tuple[int, str] | None = None
            for task in done:
                exc = task.exception()
                if isinstance(exc, WebSocketDisconnect):
                    continue  # the browser went away while a frame was sent to it
                if exc is not None:
                    log.error("gateway_error", extra={"session": self.key[:12]}, exc_info=exc)
                    outcome = (CloseCode.INTERNAL_ERROR, "gateway error")
                else:
                    outcome = task.result()
            await self._last_touch()
            if outcome is not None and self.ws.application_state == WebSocketState.CONNECTED:
                try:
                    await self.ws.close(*outcome)
                except Exception as exc:  # the browser may have gone at the same moment
                    log.info(
                        "close_failed",
                        extra={"session": self.key[:12], "code": outcome[0], "error": repr(exc)},
                    )

    async def _last_touch(self) -> None:
        """The socket counted as activity until now: the idle timeout starts here."""
        try:
            await self.gw.backend.touch(self.key, self.gw.clock())
        except SessionNotFound:
            pass  # it has ended: nothing left to keep alive
        except BackendUnavailable as exc:
            log.warning("touch_failed", extra={"session": self.key[:12], "error": exc.detail})

    async def _send_event(
        self, event: GatewayEvent, pod: str, at: float | None = None, reason: str = ""
    ) -> None:
        at_ms = (at if at is not None else self.gw.clock()) * 1000
        frame: EventFrame = {
            "type": "event",
            "event": event,
            "pod": pod,
            "at": round(at_ms, 3),
            # Which replica relays this socket: the page shows a move to another one.
            "gateway": self.gw.settings.replica,
        }
        if event == GatewayEvent.POD_KILLED and reason == NODE_LOST:
            frame["reason"] = reason  # the cluster took the pod: nobody asked
        await self.ws.send_text(json.dumps(frame))

    async def _restarting(self, drain: ReplicaDrain) -> tuple[int, str]:
        """This replica is going away: close with 1012 so the page reconnects elsewhere."""
        await drain.closing.wait()
        return CloseCode.SERVICE_RESTART, "gateway restarting"

    async def _from_browser(self) -> tuple[int, str] | None:
        settings = self.gw.settings
        bucket = TokenBucket(
            rate=settings.ws_max_messages_per_second, burst=settings.ws_max_messages_per_second
        )
        relayed = self.gw.metrics.relayed.labels("up")
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return None
            if bucket.take(time.monotonic()) > 0:
                return CloseCode.POLICY_VIOLATION, "too many messages"
            text = message.get("text")
            if text is None:
                return CloseCode.UNSUPPORTED_DATA, "binary frames are not supported"
            upstream = self.upstream
            if upstream is None:
                continue  # no pod right now: the ping is lost and the chart shows a gap
            # A pod connection closing under this ping loses the ping, like no pod at
            # all; `_from_pods` sees the close and tells the browser `upstream_lost`.
            with contextlib.suppress(websockets.ConnectionClosed):
                await upstream.send(text)
                relayed.inc()

    async def _from_pods(self) -> tuple[int, str] | None:
        relayed = self.gw.metrics.relayed.labels("down")
        delay = _RECONNECT_FIRST
        lost = ""  # the pod we last lost or failed to reach: wait for another first
        while True:
            try:
                endpoint = await self._next_endpoint(avoid=lost, patience=delay)
            except SessionNotFound as exc:
                return close_for(exc.reason)
            except BackendUnavailable:
                await self._wait_pod_ready(within=delay)
                delay = min(_RECONNECT_MAX, delay * 2)
                continue
            try:
                upstream = await websockets.connect(
                    endpoint.url, open_timeout=3, compression=None, max_size=1 << 16
                )
            except (OSError, TimeoutError, EOFError, websockets.WebSocketException):
                # The backend may still call a dead pod Ready for a moment, or a new
                # one may not accept yet: back off, but wake at once for a new pod.
                lost = endpoint.pod
                delay = min(_RECONNECT_MAX, delay * 2)
                continue
            delay, lost = _RECONNECT_FIRST, endpoint.pod
            self.upstream, self.upstream_pod = upstream, endpoint.pod
            await self._send_event(GatewayEvent.UPSTREAM_READY, endpoint.pod)
            log.info("upstream_ready", extra={"session": self.key[:12], "pod": endpoint.pod})
            with contextlib.suppress(websockets.ConnectionClosed):
                async for frame in upstream:
                    await self.ws.send_text(frame if isinstance(frame, str) else frame.decode())
                    relayed.inc()
            self.upstream = None
            await self._send_event(GatewayEvent.UPSTREAM_LOST, endpoint.pod)
            log.info("upstream_lost", extra={"session": self.key[:12], "pod": endpoint.pod})

    async def _next_endpoint(self, *, avoid: str, patience: float) -> Endpoint:
        """The session's Ready pod. While there is none, wait for `pod_ready`; while
        it is `avoid` (the pod just lost), wait for another up to `patience` seconds
        before trying it anyway."""
        deadline = time.monotonic() + patience
        while True:
            ready = self._pod_ready  # taken before asking, so no event is missed
            endpoint = await self.gw.backend.endpoint(self.key)
            left = deadline - time.monotonic()
            if endpoint is not None and (endpoint.pod != avoid or left <= 0):
                return endpoint
            # The event is enough; the timeout only bounds a wait that missed one.
            within = left if endpoint is not None else _RECONNECT_MAX
            await self._wait_pod_ready(within=within, ready=ready)

    async def _wait_pod_ready(self, *, within: float, ready: asyncio.Event | None = None) -> None:
        """Until the next `pod_ready` (after `ready` was taken), or `within` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await (ready or self._pod_ready).wait()

    async def _events(self, events: asyncio.Queue[SessionEvent]) -> tuple[int, str] | None:
        while True:
            event = await events.get()
            if event.kind == EventKind.SESSION_ENDED:
                return close_for(event.reason)
            if event.kind == EventKind.GATEWAY_DRAIN:
                # The visitor asked to kill the gateway holding their socket: this one.
                if self.gw.replica_drain is not None:
                    self.gw.replica_drain.begin(f"gateway kill for session {self.key[:12]}")
                continue
            if event.kind == EventKind.POD_READY:  # wake `_next_endpoint`
                self._pod_ready.set()
                self._pod_ready = asyncio.Event()
            forwarded = _FORWARDED.get(event.kind)
            if forwarded is not None:
                await self._send_event(forwarded, event.pod, event.at, event.reason)
            upstream = self.upstream
            if event.kind == EventKind.POD_KILLED and upstream and event.pod == self.upstream_pod:
                # Do not wait for the dying pod's connection to time out: move on now.
                await upstream.close(CloseCode.GOING_AWAY, "pod deleted")

    async def _keepalive(self) -> tuple[int, str] | None:
        """Refresh last-active while open, and warn before the hard expiry."""
        settings = self.gw.settings
        interval = touch_interval(settings.session_idle_timeout)
        warn_at = self.expires_at - expiring_warning(settings.session_max_lifetime)
        warned = False
        while True:
            now = self.gw.clock()
            try:
                await self.gw.backend.touch(self.key, now)
            except SessionNotFound as exc:
                return close_for(exc.reason)
            except BackendUnavailable:
                pass  # the next touch may get through; the idle timeout is generous
            if not warned and now >= warn_at:
                warned = True
                await self._send_event(GatewayEvent.SESSION_EXPIRING, "", self.expires_at)
            # Before the warning, wake in time for it.
            wait = interval if warned else min(interval, max(0.05, warn_at - now))
            await asyncio.sleep(wait)
