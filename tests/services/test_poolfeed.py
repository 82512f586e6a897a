"""The pool feed (GET /pool/feed): live tiles from the backend's own view of the
pool, over real server-sent events from a real provisioner (local backend)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import platform
import re
import socket

from services.provisioner.backends import make_backend
from services.provisioner.metrics import Metrics
from services.provisioner.poolfeed import BACKLOG, INTERVAL, PoolFeed
from services.provisioner.settings import Settings
from tests.support.clock import FakeClock
from tests.support.polling import eventually
from tests.support.servers import StartProvisioner
from tests.support.sse import SseReader, Tiles, open_feed

STATES = {"warm", "starting", "assigned", "terminating"}


async def follow(feed: SseReader, tiles: Tiles, pred: object, timeout: float = 20) -> None:
    """Apply diffs until `pred(tiles)` holds."""
    async with asyncio.timeout(timeout):
        while not pred(tiles):  # type: ignore[operator]
            tiles.apply(await feed.next(timeout))


async def test_the_feed_starts_with_the_pool_and_names_no_session(
    start_provisioner: StartProvisioner,
) -> None:
    server = start_provisioner(POOL_SIZE="3")
    server.wait_pool(3)
    async with server.aclient() as client:
        session = (await client.post("/session")).json()
        async with open_feed(client, "/pool/feed") as feed:
            first = await feed.next()
            tiles = Tiles(first)
            assert set(tiles.tiles.values()) <= STATES
            assert tiles.total == len(tiles.tiles) >= 3
            # The snapshot is the last message's state: the claim shows within an interval.
            mine = session["pod"]["name"]
            await follow(feed, tiles, lambda t: t.tiles.get(mine) == "assigned")
            assert set(tiles.tiles.values()) <= STATES
            raw = json.dumps(first.data)
            # Pod names and states only: no session id, and no session key (40 hex digits).
            assert session["session_id"] not in raw
            assert not re.search(r"[0-9a-f]{40}", raw)
            assert "session" not in raw


async def test_the_feed_shows_a_claim_the_refill_and_a_replacement(
    start_provisioner: StartProvisioner,
) -> None:
    server = start_provisioner(POOL_SIZE="2")
    server.wait_pool(2)
    async with server.aclient() as client, open_feed(client, "/pool/feed") as feed:
        tiles = Tiles(await feed.next())
        await follow(feed, tiles, lambda t: len(t.states("warm")) == 2)
        session = (await client.post("/session")).json()
        mine = session["pod"]["name"]
        # The claimed pod turns assigned, and the pool refills to two warm pods.
        await follow(feed, tiles, lambda t: t.tiles.get(mine) == "assigned")
        await follow(feed, tiles, lambda t: len(t.states("warm")) == 2)

        killed = await client.delete(f"/session/{session['session_id']}/pod")
        assert killed.status_code == 202
        # The killed pod leaves the grid and its replacement is the session's.
        await follow(feed, tiles, lambda t: mine not in t.tiles)
        status = (await client.get(f"/session/{session['session_id']}")).json()
        replacement = status["pod"]["name"] if status["pod"] else None
        await follow(
            feed,
            tiles,
            lambda t: replacement is not None and t.tiles.get(replacement) == "assigned",
        )
        assert tiles.total == len(tiles.tiles)


async def test_the_machine_is_the_one_node_and_holds_every_pool_pod(
    start_provisioner: StartProvisioner,
) -> None:
    server = start_provisioner(POOL_SIZE="2")
    server.wait_pool(2)
    host = socket.gethostname()
    async with server.aclient() as client, open_feed(client, "/pool/feed") as feed:
        tiles = Tiles(await feed.next())
        assert list(tiles.nodes) == [host] and tiles.node_total == 1
        node = tiles.nodes[host]
        assert node["instance_type"] == platform.machine()
        assert node["capacity_type"] == "on-demand" and node["state"] == "ready"
        await follow(feed, tiles, lambda t: t.nodes[host]["pods"] == t.total == 2)
        # A claim brings the refill's pod: the node's count follows the pool's.
        await client.post("/session")
        await follow(feed, tiles, lambda t: t.nodes[host]["pods"] == t.total >= 3)


async def test_changes_are_sent_at_most_once_an_interval(
    start_provisioner: StartProvisioner,
) -> None:
    server = start_provisioner(POOL_SIZE="4", REFILL_PER_SECOND="50")
    server.wait_pool(4)
    async with server.aclient() as client, open_feed(client, "/pool/feed") as feed:
        await feed.next()

        async def churn() -> None:  # changes far more often than the interval
            while True:
                body = (await client.post("/session")).json()
                await client.delete(f"/session/{body['session_id']}")
                await asyncio.sleep(0.02)

        churning = asyncio.create_task(churn())
        stamps: list[float] = []
        try:
            while len(stamps) < 5:
                event = await feed.next()
                stamps.append(event.data["at"])
        finally:
            churning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await churning
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # The producer sleeps INTERVAL after each message: server stamps are never closer.
    assert min(gaps) >= INTERVAL * 1000 - 1, gaps


async def test_tiles_are_bounded_and_show_sessions_first(
    start_provisioner: StartProvisioner,
) -> None:
    server = start_provisioner(POOL_SIZE="4", FEED_MAX_TILES="2")
    server.wait_pool(4)
    async with server.aclient() as client:
        async with open_feed(client, "/pool/feed") as feed:
            tiles = Tiles(await feed.next())
            await follow(feed, tiles, lambda t: t.total >= 4)
            assert len(tiles.tiles) == 2
        session = (await client.post("/session")).json()
        async with open_feed(client, "/pool/feed") as feed:
            tiles = Tiles(await feed.next())
            mine = session["pod"]["name"]
            # The refill's new pod may be counted a message after the claim shows.
            await follow(feed, tiles, lambda t: t.tiles.get(mine) == "assigned" and t.total >= 5)
            assert len(tiles.tiles) == 2


async def test_streams_per_address_are_bounded(start_provisioner: StartProvisioner) -> None:
    server = start_provisioner(POOL_SIZE="1", FEED_PER_IP="2")
    async with server.aclient() as client:
        async with open_feed(client, "/pool/feed") as one, open_feed(client, "/pool/feed") as two:
            await one.next()
            await two.next()
            refused = await client.get("/pool/feed")
            assert refused.status_code == 429
            assert refused.json()["error"] == "too_many_streams"
            assert refused.headers["Retry-After"]

        # Closed streams give their places back.
        async def reopened() -> bool:
            async with client.stream("GET", "/pool/feed") as again:
                return again.status_code == 200

        await eventually(reopened, "a stream to be accepted again")


async def test_streams_in_all_are_bounded(start_provisioner: StartProvisioner) -> None:
    server = start_provisioner(POOL_SIZE="1", FEED_PER_IP="5", FEED_MAX_STREAMS="1")
    async with server.aclient() as client, open_feed(client, "/pool/feed") as one:
        await one.next()
        refused = await client.get("/pool/feed")
        assert refused.status_code == 429 and refused.json()["error"] == "too_many_streams"


async def test_a_stream_that_falls_behind_is_ended_not_buffered() -> None:
    """In this process, with the real local backend: one stream is read, one never is."""
    # A claim may find the pool still refilling and wait for a cold start, which on a
    # loaded machine takes longer than CLAIM_TIMEOUT's default (as conftest.py allows).
    settings = Settings(backend="local", pool_size=3, refill_per_second=50.0, claim_timeout=30.0)
    metrics = Metrics()
    backend = make_backend(settings, metrics, clock=FakeClock())
    await backend.start()
    try:
        await eventually(lambda: len(backend.pool_pods()) >= 3 and backend.ready())
        feed = PoolFeed(settings, backend, metrics)
        feed.refresh()
        stuck = feed.open("10.0.0.1")  # never read
        read = feed.open("10.0.0.2")
        received: list[str] = []

        async def reader() -> None:
            async for message in read.messages():
                received.append(str(message.event))

        reading = asyncio.create_task(reader())
        keys = (f"{n:040x}" for n in range(100))
        for _ in range(BACKLOG):  # two changes a round: a claim, then its end
            key = next(keys)
            await backend.claim(key, now=0, expires_at=1e12)
            feed.refresh()
            await backend.release(key)
            feed.refresh()
            await asyncio.sleep(0)
        assert stuck.dropped and stuck.ended
        assert len(stuck.backlog) <= BACKLOG
        assert stuck not in feed.streams and read in feed.streams
        assert not read.dropped
        assert received.count("diff") >= BACKLOG
        assert metrics.feed_dropped.labels("backlog")._value.get() == 1
        feed.end_all()
        await reading
    finally:
        await backend.aclose()
