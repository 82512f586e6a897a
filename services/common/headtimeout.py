"""A deadline for the request head, which uvicorn does not have.

uvicorn waits for a request line and its headers as long as a client likes: a
client that connects and says nothing, trickles header lines, or sends half a
WebSocket upgrade holds a socket and a descriptor until it goes, and so do a
thousand of them. Its keep-alive timer does not cover that: it runs only
between requests, the first byte of the next one stops it, and only a response
arms it again, so stray line ends after a request keep a connection forever.

`head_timeout_protocol(seconds)` is uvicorn's httptools protocol (the one
`http="auto"` picks when httptools is installed, pinned here) with one timer:
armed when the connection is made and whenever bytes arrive with no request
under way (or a pipelined request begins), disarmed when the head is
complete. When it fires the connection is closed without a response, as
uvicorn closes an idle keep-alive connection. An upgrade is handed to the
WebSocket protocol only once its head is complete, so the timer covers the
handshake request too; after that the WebSocket's own ping timeout applies.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

DEFAULT_HEAD_TIMEOUT = 10.0


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; a head not complete in `head_timeout` s is cut."""

    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self._arm_head_timer()  # bytes of a new head (or of nothing at all)
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_timer()  # a pipelined request, while the one before is answered

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.debug("request_head_timeout", extra={"client": self.client})
            self.transport.close()


def head_timeout_protocol(seconds: float) -> type[HeadTimeoutProtocol]:
    """The protocol class to give uvicorn (`Config(http=...)`) for this deadline."""
    if seconds <= 0:
        raise ValueError(f"a head timeout must be > 0 s, got {seconds}")
    return type("HeadTimeoutProtocol", (HeadTimeoutProtocol,), {"head_timeout": seconds})
