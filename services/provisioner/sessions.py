"""Session rules: ids, the hash stored in labels, expiry. Pure: no I/O, no clock."""

from __future__ import annotations

import hashlib
import re
import secrets
from enum import StrEnum

from services.provisioner.errors import SessionNotFound

# 32 random bytes (256 bits), url-safe base64 without padding: 43 characters.
_TOKEN_BYTES = 32
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
# A label value holds at most 63 characters; 40 hex digits keep 160 bits.
_KEY_HEX = 40


class EndReason(StrEnum):
    DELETED = "deleted"
    IDLE = "idle"
    EXPIRED = "expired"


def new_session_id() -> str:
    """An unguessable token: the capability for the session. Never logged or stored."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def session_key(session_id: str) -> str:
    """The hash that backends store (labels, logs) instead of the id itself.

    Raises SessionNotFound for anything that is not a well-formed id, so a
    malformed id and an unknown one are indistinguishable to a caller.
    """
    if not _ID_PATTERN.fullmatch(session_id):
        raise SessionNotFound()
    return hashlib.sha256(session_id.encode()).hexdigest()[:_KEY_HEX]


def end_reason(
    *, now: float, expires_at: float, last_active: float, idle_timeout: float
) -> EndReason | None:
    """Why a session should end now, or None if it lives on."""
    if now >= expires_at:
        return EndReason.EXPIRED
    if now - last_active >= idle_timeout:
        return EndReason.IDLE
    return None


def touch_interval(idle_timeout: float) -> float:
    """How often an open WebSocket refreshes last-active: well inside the idle timeout."""
    return max(0.2, min(15.0, idle_timeout / 3))


def expiring_warning(max_lifetime: float) -> float:
    """Seconds before the hard expiry at which the browser is told."""
    return min(30.0, max_lifetime / 10)
