"""The local pods' readiness probe: a raw HTTP GET /health on their port."""

from __future__ import annotations

import asyncio


async def health_ok(port: int, budget: float) -> bool:
    """GET /health answers 200 within `budget` seconds (the request queues on the
    listening socket until the server is up)."""
    try:
        async with asyncio.timeout(budget):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"GET /health HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
                status = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return False
    return status.startswith(b"HTTP/1.1 200")
