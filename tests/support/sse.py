"""A small server-sent events reader over an httpx stream, for the pool feed tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Event:
    event: str
    data: dict[str, Any]


class SseReader:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, timeout: float = 15) -> Event:
        """The next event (comments and `retry:` skipped); TimeoutError if none comes."""
        async with asyncio.timeout(timeout):
            name, data = "message", ""
            async for line in self._lines:
                if line == "":
                    if data:
                        return Event(name, json.loads(data))
                    continue
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "event":
                    name = value
                elif field == "data":
                    data += value
            raise EOFError("the stream ended")

    async def until(self, pred: Any, timeout: float = 15) -> Event:
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next(timeout)
                if pred(event):
                    return event


@contextlib.asynccontextmanager
async def open_feed(client: httpx.AsyncClient, url: str) -> AsyncIterator[SseReader]:
    async with client.stream("GET", url, timeout=httpx.Timeout(30, read=None)) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseReader(response)


class Tiles:
    """The page's model of the grid: a snapshot, then diffs applied in order."""

    def __init__(self, snapshot: Event) -> None:
        assert snapshot.event == "snapshot"
        self.seq = snapshot.data["seq"]
        self.tiles = {t["pod"]: t["state"] for t in snapshot.data["tiles"]}
        self.total = snapshot.data["total"]
        self.nodes: dict[str, dict[str, Any]] = {n["name"]: n for n in snapshot.data["nodes"]}
        self.node_total = snapshot.data["node_total"]

    def apply(self, diff: Event) -> None:
        assert diff.event == "diff"
        assert diff.data["seq"] == self.seq + 1, "a gap in the feed"
        self.seq = diff.data["seq"]
        for pod in diff.data["remove"]:
            del self.tiles[pod]
        for tile in diff.data["set"]:
            self.tiles[tile["pod"]] = tile["state"]
        self.total = diff.data["total"]
        if "nodes" in diff.data:  # only when a node changed: the whole list again
            self.nodes = {n["name"]: n for n in diff.data["nodes"]}
            self.node_total = diff.data["node_total"]

    def states(self, state: str) -> set[str]:
        return {pod for pod, s in self.tiles.items() if s == state}
