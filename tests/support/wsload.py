"""A bounded load of visitors on a provisioner: sessions claimed, WebSockets pinging.

Every visitor has an address of its own, sent as ``X-Forwarded-For`` as the
load balancer (or the port-forward) in front of the provisioner does, so the
per-address limits see many visitors, as they would in production. Each socket
pings below the per-socket message limit; the load runs on an event loop in a
thread of its own until :meth:`PingLoad.stop` or its time bound, and the
sessions are ended on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin


def visitor_address(n: int) -> str:
    """TEST-NET-3 (RFC 5737): never a real visitor's."""
    return f"203.0.113.{n + 1}"


@dataclass
class LoadFigures:
    sessions: int = 0
    sockets: int = 0
    pings: int = 0
    pongs: int = 0
    closes: Counter[str] = field(default_factory=Counter)  # close code: sockets
    # Seconds from the start of the load to the first close the load did not ask for.
    first_unasked_close: float | None = None
    claim_retries: int = 0


@dataclass(frozen=True)
class LoadShape:
    sessions: int  # claimed at the start
    sockets_per_session: int  # each from its own address
    rate: float  # pings a second per socket at most (the deployed limit is 50)
    seconds: float  # the bound: the load stops by itself after this


class PingLoad:
    """``with PingLoad(base, ws_base, origin, shape).running() as load:`` ... ``load.stop()``."""

    def __init__(self, base_url: str, ws_base: str, origin: str, shape: LoadShape) -> None:
        self.base_url, self.ws_base, self.origin, self.shape = base_url, ws_base, origin, shape
        self.figures = LoadFigures()
        self._stopped = threading.Event()
        self._started = time.monotonic()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._sessions: list[tuple[str, str]] = []  # (session id, the claimant's address)

    @contextlib.contextmanager
    def running(self, claim_timeout: float = 60.0) -> Iterator[PingLoad]:
        """Claim the sessions, start the sockets; stop and end the sessions on the way out."""
        with httpx.Client(base_url=self.base_url, timeout=15) as http:
            try:
                self._claim(http, claim_timeout)
                self._started = time.monotonic()
                self._thread = threading.Thread(target=self._run, name="ping-load", daemon=True)
                self._thread.start()
                yield self
            finally:
                self.stop()
                for sid, address in self._sessions:
                    http.delete(f"/session/{sid}", headers=self._headers(address))
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(30)

    def _headers(self, address: str) -> dict[str, str]:
        return {"Origin": self.origin, "X-Forwarded-For": address}

    def _claim(self, http: httpx.Client, timeout: float) -> None:
        """One session per claimant; a cold pool answers 429 with Retry-After: wait, retry."""
        deadline = time.monotonic() + timeout
        for n in range(self.shape.sessions):
            address = visitor_address(n)
            while True:
                answer = http.post("/session", headers=self._headers(address))
                if answer.status_code == 201:
                    self._sessions.append((answer.json()["session_id"], address))
                    break
                if answer.status_code != 429 or time.monotonic() > deadline:
                    raise AssertionError(f"claim {n}: {answer.status_code} {answer.text}")
                self.figures.claim_retries += 1
                time.sleep(float(answer.headers.get("Retry-After", "1")))
        self.figures.sessions = len(self._sessions)

    def _run(self) -> None:
        try:
            asyncio.run(self._sockets())
        except BaseException as exc:  # re-raised in the test's thread by running()
            self._error = exc

    async def _sockets(self) -> None:
        per = self.shape.sockets_per_session
        tasks = [
            asyncio.create_task(self._socket(sid, visitor_address(100 + i * per + j)))
            for i, (sid, _) in enumerate(self._sessions)
            for j in range(per)
        ]
        # The bound: stop() or the time, whichever comes first.
        await asyncio.to_thread(self._stopped.wait, self.shape.seconds)
        self._stopped.set()
        await asyncio.gather(*tasks)

    async def _socket(self, sid: str, address: str) -> None:
        url = f"{self.ws_base}/session/{sid}/ws"
        async with connect(
            url,
            origin=Origin(self.origin),
            additional_headers={"X-Forwarded-For": address},
            open_timeout=30,
            compression=None,
        ) as ws:
            self.figures.sockets += 1
            reader = asyncio.create_task(self._read(ws))
            interval, seq = 1 / self.shape.rate, 0
            next_at = time.monotonic()
            try:
                while not self._stopped.is_set() and not reader.done():
                    seq += 1
                    await ws.send(json.dumps({"type": "ping", "seq": seq, "t": time.time() * 1000}))
                    self.figures.pings += 1
                    next_at += interval
                    delay = next_at - time.monotonic()
                    if delay < 0:
                        # Behind (a busy machine): skip the missed pings rather than
                        # send them at once, which the per-socket limit would refuse.
                        next_at, delay = time.monotonic(), 0.0
                    await asyncio.sleep(delay)
            except websockets.ConnectionClosed:
                pass
            finally:
                await ws.close()
                await reader

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                if isinstance(message, str) and '"pong"' in message:
                    self.figures.pongs += 1
        except websockets.ConnectionClosed:
            pass
        code = ws.close_code
        self.figures.closes[str(code)] += 1
        if not self._stopped.is_set() and self.figures.first_unasked_close is None:
            self.figures.first_unasked_close = time.monotonic() - self._started
