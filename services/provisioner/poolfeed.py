"""The pool feed: `GET /pool/feed`, the pool grid's tiles and the nodes as server-sent events.

One producer per replica reads the backend's own view of the pool
(`Backend.pool_pods()`: the watch caches on Kubernetes, the process table
locally) when it changes, gathering what changes within `INTERVAL` into one
message, and every open stream gets that message. Tiles carry pod names and
states only: no session id or key, so the feed is the same for everyone and
the page marks its own pod by name. Nodes (`Backend.pool_nodes()`) carry their
name, instance type, capacity type, state and count of pool pods.

Messages (`data:` is JSON, typed in `bodies.py`; docs/architecture.md, "The pool feed"):

- `event: snapshot`, first on every stream:
  `{"seq", "at", "tiles": [{"pod", "state"}], "total", "nodes": [node], "node_total"}`,
  oldest pod and node first;
- `event: diff`, then: `{"seq", "at", "set": [{"pod", "state"}], "remove": [pod], "total"}`,
  plus `"nodes"` and `"node_total"` when a node changed: the whole short list again.

`seq` goes up by one per diff; a page that sees a gap reconnects for a new
snapshot. `total` counts every pool pod, `tiles` at most `FEED_MAX_TILES` of
them (those not warm first), and `nodes` at most `MAX_NODES` (those holding
pool pods first). Bounds: streams per client address
(`FEED_PER_IP`) and in all (`FEED_MAX_STREAMS`), 429 beyond; a stream whose
client falls `BACKLOG` messages behind ends rather than queueing more, and so
does one whose send is stuck for `SEND_TIMEOUT` seconds (the page's
EventSource reconnects and starts from a new snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from services.common.ratelimit import ConnectionCounter
from services.provisioner.backends.base import Backend, MemberState, NodeBrief, PoolMember
from services.provisioner.bodies import FeedDiff, FeedNode, FeedSnapshot, FeedTile
from services.provisioner.errors import BackendUnavailable, ErrorCode, LimitExceeded
from services.provisioner.metrics import Metrics
from services.provisioner.settings import Settings

log = logging.getLogger(__name__)

INTERVAL = 0.25  # seconds: at most one message per stream per interval
BACKLOG = 8  # messages a stream may have waiting before it is ended
SEND_TIMEOUT = 10.0  # seconds a send may be stuck (a client that stopped reading)
KEEPALIVE = 15  # seconds between SSE comments on a quiet stream (proxies, dead peers)
RECONNECT_MS = 1000  # what EventSource waits before reconnecting
_SAFETY_WAKE = 5.0  # re-read the pool this often even without a change signal
# Nodes on the strip: the public feed stays small whatever the cluster's size;
# past this the page says "and N more" (`node_total` counts them all).
MAX_NODES = 50


def shown(members: list[PoolMember], limit: int) -> dict[str, MemberState]:
    """The tiles: at most `limit`, those not warm first, in creation order."""
    picked = sorted(members, key=lambda m: (m.state == MemberState.WARM, m.created, m.pod))
    picked = sorted(picked[:limit], key=lambda m: (m.created, m.pod))
    return {m.pod: m.state for m in picked}


def shown_nodes(nodes: list[NodeBrief], limit: int) -> list[FeedNode]:
    """The strip: at most `limit` nodes, those holding pool pods first, oldest first."""
    picked = sorted(nodes, key=lambda n: (n.pods == 0, n.created, n.name))
    picked = sorted(picked[:limit], key=lambda n: (n.created, n.name))
    return [
        {
            "name": n.name,
            "instance_type": n.instance_type,
            "capacity_type": n.capacity_type,
            "state": n.state,
            "pods": n.pods,
        }
        for n in picked
    ]


class FeedStream:
    """One client's stream: a bounded backlog of messages."""

    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.backlog: deque[ServerSentEvent] = deque()
        self.ended = False
        self.dropped = False
        self.closed = False
        self._wake = asyncio.Event()

    def push(self, message: ServerSentEvent) -> None:
        if self.ended:
            return
        if len(self.backlog) >= BACKLOG:
            self.dropped = True  # a client this far behind would only fall further
            self.end()
            return
        self.backlog.append(message)
        self._wake.set()

    def end(self) -> None:
        self.ended = True
        self._wake.set()

    async def messages(self) -> AsyncIterator[ServerSentEvent]:
        while True:
            if self.ended:
                return
            while self.backlog and not self.ended:
                yield self.backlog.popleft()
            if self.ended:
                return
            await self._wake.wait()
            self._wake.clear()


class PoolFeed:
    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        self.clock = clock
        self.max_tiles = settings.feed_max_tiles
        self.max_streams = settings.feed_max_streams
        self.per_ip = ConnectionCounter(settings.feed_per_ip)
        self.streams: set[FeedStream] = set()
        self.seq = 0
        self.tiles: dict[str, MemberState] = {}
        self.total = 0
        self.nodes: list[FeedNode] = []
        self.node_total = 0
        self.ending = False  # this replica is going away: no new streams
        self._task: asyncio.Task[None] | None = None

    # the producer

    def start(self) -> None:
        self.refresh()
        self._task = asyncio.create_task(self._run(), name="pool-feed")

    async def aclose(self) -> None:
        self.end_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            changed = self.backend.pool_changed()  # taken before reading: no change missed
            self.refresh()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_SAFETY_WAKE):
                    await changed.wait()
            # Whatever else changes meanwhile goes out in the same message.
            await asyncio.sleep(INTERVAL)

    def refresh(self) -> None:
        """Read the pool; if the tiles or nodes changed, send every stream the difference."""
        members = self.backend.pool_pods()
        tiles = shown(members, self.max_tiles)
        all_nodes = self.backend.pool_nodes()
        nodes = shown_nodes(all_nodes, MAX_NODES)
        nodes_changed = nodes != self.nodes or len(all_nodes) != self.node_total
        if tiles == self.tiles and len(members) == self.total and not nodes_changed:
            return
        changed: list[FeedTile] = [
            {"pod": p, "state": s} for p, s in tiles.items() if self.tiles.get(p) != s
        ]
        removed = [p for p in self.tiles if p not in tiles]
        self.seq += 1
        self.tiles, self.total = tiles, len(members)
        body: FeedDiff = {
            "seq": self.seq,
            "at": self._at(),
            "set": changed,
            "remove": removed,
            "total": self.total,
        }
        if nodes_changed:
            self.nodes, self.node_total = nodes, len(all_nodes)
            body["nodes"], body["node_total"] = nodes, self.node_total
        message = ServerSentEvent(event="diff", data=json.dumps(body))
        for stream in list(self.streams):
            stream.push(message)
            if stream.dropped:
                self.close_stream(stream, "backlog")

    def snapshot(self) -> ServerSentEvent:
        tiles: list[FeedTile] = [{"pod": p, "state": s} for p, s in self.tiles.items()]
        body: FeedSnapshot = {
            "seq": self.seq,
            "at": self._at(),
            "tiles": tiles,
            "total": self.total,
            "nodes": self.nodes,
            "node_total": self.node_total,
        }
        return ServerSentEvent(event="snapshot", data=json.dumps(body), retry=RECONNECT_MS)

    def _at(self) -> float:
        return round(self.clock() * 1000, 3)

    # streams

    def open(self, ip: str) -> FeedStream:
        """A new stream starting from the current snapshot; 429 past the bounds."""
        if self.ending:
            raise BackendUnavailable("this replica is restarting; try again")
        if len(self.streams) >= self.max_streams:
            self.metrics.rejections.labels("feed_full").inc()
            raise LimitExceeded(
                ErrorCode.TOO_MANY_STREAMS, "the pool feed is full; try again soon", 5
            )
        if not self.per_ip.acquire(ip):
            self.metrics.rejections.labels("feed_per_ip").inc()
            raise LimitExceeded(
                ErrorCode.TOO_MANY_STREAMS, "too many pool feeds from your address; close one", 5
            )
        stream = FeedStream(ip)
        stream.push(self.snapshot())  # before any await: the next diff follows it
        self.streams.add(stream)
        self.metrics.feed_streams.inc()
        return stream

    def end_all(self) -> None:
        """End every stream (this replica is going away): the pages reconnect elsewhere."""
        self.ending = True
        for stream in list(self.streams):
            stream.end()

    def close_stream(self, stream: FeedStream, why: str = "") -> None:
        stream.end()
        if stream.closed:
            return
        stream.closed = True
        self.streams.discard(stream)
        self.per_ip.release(stream.ip)
        self.metrics.feed_streams.dec()
        if why:
            self.metrics.feed_dropped.labels(why).inc()
            log.info("feed_dropped", extra={"why": why})

    def response(self, stream: FeedStream) -> FeedResponse:
        return FeedResponse(self, stream)


class FeedResponse(EventSourceResponse):
    """The stream as SSE; whatever ends it (client gone, dropped, shutdown) closes it once."""

    def __init__(self, feed: PoolFeed, stream: FeedStream) -> None:
        super().__init__(
            stream.messages(),
            ping=KEEPALIVE,
            send_timeout=SEND_TIMEOUT,
            headers={"Cache-Control": "no-store"},
        )
        self._feed = feed
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            # The client stopped reading; the server closes the connection.
            self._feed.close_stream(self._stream, "send_timeout")
        finally:
            self._feed.close_stream(self._stream)
