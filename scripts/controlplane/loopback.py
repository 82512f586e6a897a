"""A minimal JSON client for loopback endpoints (no kubernetes client import on the hot path).

Startup polls many endpoints many times; the standard library keeps that fast
and free of extra dependencies. TLS is always verified against the test CA.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


class HttpError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass
class Endpoint:
    """``host:port`` over http, or https verified with ``ca`` and optionally a client cert."""

    host: str
    port: int
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    token: str | None = None
    timeout: float = 5.0

    def _connection(self) -> http.client.HTTPConnection:
        if self.ca is None:
            return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if self.cert is not None:
            ctx.load_cert_chain(str(self.cert), str(self.key) if self.key else None)
        return http.client.HTTPSConnection(self.host, self.port, context=ctx, timeout=self.timeout)

    def raw(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, str]:
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn = self._connection()
        try:
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, text = self.raw(method, path, body)
        if status >= 300:
            raise HttpError(status, method, path, text)
        return json.loads(text) if text else None

    def ok(self, path: str) -> bool:
        """True when GET ``path`` answers 200; any connection error counts as not yet."""
        try:
            status, _ = self.raw("GET", path)
        except (OSError, http.client.HTTPException):
            return False
        return status == 200
