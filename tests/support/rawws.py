"""A WebSocket client on a bare TCP socket, for tests that must break the protocol.

The opening handshake and the server's frames go through websockets' sans-I/O
`ClientProtocol`; what the client sends is raw bytes of our choosing, so a test
can write frames no conforming client would (reserved bits, unknown opcodes,
fragmented control frames, unmasked or truncated frames), stop reading, or drop
the connection with a TCP reset or a bare FIN.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

# Opcodes the protocol defines; every other value of the 4 bits is reserved.
TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    mask: bytes = b"\x5a\xa5\x3c\xc3",
) -> bytes:
    """One frame exactly as given: nothing is checked, so it may break the protocol."""
    head = bytearray([(0x80 if fin else 0) | (rsv & 0b111) << 4 | (opcode & 0xF)])
    mask_bit = 0x80 if masked else 0
    length = len(payload)
    if length < 126:
        head.append(mask_bit | length)
    elif length < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not masked:
        return bytes(head) + payload
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes(head) + mask + body


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


@dataclass(frozen=True)
class Outcome:
    """How the server ended things, as the client saw it."""

    close_code: int | None  # the code of the server's close frame, if one came
    eof: bool  # the TCP connection ended (after the close frame, or without one)


class RawClient:
    """One connection. Frames the server sends are parsed by `ClientProtocol`;
    its automatic replies (to pings and close frames) are not sent unless asked."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        protocol: ClientProtocol,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = protocol
        self.frames: list[Frame] = []  # received and not yet taken
        self.eof = False

    @classmethod
    async def open(
        cls, url: str, *, origin: str | None = None, recv_buffer: int | None = None
    ) -> RawClient:
        """Connect and complete the opening handshake (raises if the server refuses).

        `recv_buffer` shrinks the kernel's receive buffer and the reader's, so that a
        client that stops reading pushes back on the server soon."""
        uri = parse_uri(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if recv_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (uri.host, uri.port))
        except OSError:
            sock.close()
            raise
        limit = recv_buffer if recv_buffer is not None else 1 << 16
        reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
        protocol = ClientProtocol(uri, origin=origin)  # type: ignore[arg-type]
        client = cls(reader, writer, protocol)
        protocol.send_request(protocol.connect())
        client.flush_protocol()
        await client.writer.drain()
        await client.handshake()
        return client

    @classmethod
    async def connect_tcp(cls, url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A bare TCP connection to the server, for partial handshakes."""
        uri = parse_uri(url)
        return await asyncio.open_connection(uri.host, uri.port)

    def flush_protocol(self) -> None:
        """Send what the protocol wants to send (the handshake request, replies)."""
        for data in self.protocol.data_to_send():
            if data:
                self.writer.write(data)

    async def handshake(self, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            done = False
            while not done:
                await self._feed()
                # Frames may arrive in the same read as the response: keep them.
                for event in self.protocol.events_received():
                    if isinstance(event, Response):
                        if self.protocol.handshake_exc is not None:
                            raise self.protocol.handshake_exc
                        done = True
                    elif isinstance(event, Frame):
                        self.frames.append(event)
                if self.eof and not done:
                    raise ConnectionError("connection closed during the handshake")

    async def _feed(self) -> None:
        data = await self.reader.read(1 << 16)
        if data:
            self.protocol.receive_data(data)
        else:
            self.eof = True
            self.protocol.receive_eof()

    # sending

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def send(self, opcode: int, payload: bytes, **kwargs: object) -> None:
        self.writer.write(encode_frame(opcode, payload, **kwargs))  # type: ignore[arg-type]
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def text(self, data: str | bytes) -> None:
        await self.send(TEXT, data.encode() if isinstance(data, str) else data)

    # receiving

    async def next_frame(self, timeout: float = 10) -> Frame | None:
        """The next frame from the server; None once the connection has ended."""
        async with asyncio.timeout(timeout):
            while not self.frames:
                if self.eof:
                    return None
                with contextlib.suppress(ConnectionError):
                    await self._feed()
                    self.frames += [
                        e for e in self.protocol.events_received() if isinstance(e, Frame)
                    ]
                    continue
                self.eof = True
        return self.frames.pop(0)

    async def outcome(self, timeout: float = 10) -> Outcome:
        """Read until the server ends the connection: its close code, if any, and EOF."""
        code: int | None = None
        async with asyncio.timeout(timeout):
            while (frame := await self.next_frame(timeout)) is not None:
                if frame.opcode is Opcode.CLOSE and code is None:
                    rcvd = self.protocol.close_rcvd
                    code = rcvd.code if rcvd is not None else 1005
                    # Answer it, as a conforming client would, so the server may finish.
                    self.flush_protocol()
        return Outcome(close_code=code, eof=True)

    # ending

    def reset(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0): no close frame, no FIN."""
        sock = self.writer.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    def drop(self) -> None:
        """Close the TCP connection (FIN) without a close frame."""
        self.writer.close()

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(2):
                await self.writer.wait_closed()


def reset_tcp(writer: asyncio.StreamWriter) -> None:
    """Abort a bare TCP connection with a reset."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


__all__ = [
    "BINARY",
    "CLOSE",
    "CONT",
    "PING",
    "PONG",
    "TEXT",
    "Opcode",
    "Outcome",
    "RawClient",
    "close_payload",
    "encode_frame",
    "reset_tcp",
]
