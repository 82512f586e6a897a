"""Errors of the provisioner, mapped to the protocol only at the edge.

ProvisionerError
├── OriginNotAllowed    403  a state change from a page of a foreign origin
├── NotOffered          403  a feature this deployment does not offer
├── SessionNotFound     404  unknown, ended or malformed session id
├── PodNotRunning       409  the session exists but has no running pod right now
├── LimitExceeded       429  rate limit or capacity; carries retry_after seconds
├── BackendUnavailable  503  the pod backend (Kubernetes API) cannot be reached
└── ConfigError              a setting is missing or malformed (names the key)

`ErrorCode` lists every `error` value a response can carry, and
`ERROR_MEANINGS` says what each means: the OpenAPI document (`openapi.py`)
enumerates and describes them from there, and the page's types and the table
in docs/api.md are generated from that (`python -m scripts.contract`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class ErrorCode(StrEnum):
    """The `error` of a `{"error": ..., "detail": ...}` body."""

    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    SESSION_NOT_FOUND = "session_not_found"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    POD_NOT_RUNNING = "pod_not_running"
    UPGRADE_REQUIRED = "upgrade_required"
    RATE_LIMITED = "rate_limited"
    AT_CAPACITY = "at_capacity"
    POOL_EMPTY = "pool_empty"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    TOO_MANY_STREAMS = "too_many_streams"
    GATEWAY_KILL_OFF = "gateway_kill_off"
    HTTP_ERROR = "http_error"
    INTERNAL = "internal"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    NOT_READY = "not_ready"
    DRAINING = "draining"


# Each code's HTTP status and meaning: one entry per code (a test holds it to that).
ERROR_MEANINGS: Final[Mapping[ErrorCode, tuple[str, str]]] = {
    ErrorCode.ORIGIN_NOT_ALLOWED: (
        "403",
        "a state change (or a WebSocket) from an Origin that is not allowed",
    ),
    ErrorCode.SESSION_NOT_FOUND: ("404", "unknown, ended or malformed session id"),
    ErrorCode.NOT_FOUND: ("404", "no such path"),
    ErrorCode.METHOD_NOT_ALLOWED: ("405", "the path does not take this method (see `Allow`)"),
    ErrorCode.POD_NOT_RUNNING: ("409", "the session's replacement pod is still starting"),
    ErrorCode.UPGRADE_REQUIRED: ("426", "plain HTTP to the WebSocket path"),
    ErrorCode.RATE_LIMITED: ("429", "too many requests from this address (or session)"),
    ErrorCode.AT_CAPACITY: ("429", "`MAX_SESSIONS` reached, or the cluster's quota"),
    ErrorCode.POOL_EMPTY: ("429", "no pod Ready within `CLAIM_TIMEOUT`, or enough claims wait"),
    ErrorCode.TOO_MANY_CONNECTIONS: ("429", "`WS_PER_IP` WebSockets already open"),
    ErrorCode.TOO_MANY_STREAMS: ("429", "`FEED_PER_IP` or `FEED_MAX_STREAMS` pool feeds open"),
    ErrorCode.GATEWAY_KILL_OFF: ("403", '"kill my gateway" is not offered here'),
    ErrorCode.HTTP_ERROR: ("4xx", "any other client error"),
    ErrorCode.INTERNAL: ("500", "a defect, never the client's doing"),
    ErrorCode.BACKEND_UNAVAILABLE: ("503", "the pod platform cannot be reached"),
    ErrorCode.NOT_READY: ("503", "`/ready`: the backend is not reachable or not synced"),
    ErrorCode.DRAINING: ("503", "`/ready`: this replica is restarting (kill my gateway)"),
}


class ProvisionerError(Exception):
    status = 500
    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class OriginNotAllowed(ProvisionerError):
    status = 403
    code = ErrorCode.ORIGIN_NOT_ALLOWED


class NotOffered(ProvisionerError):
    status = 403

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class SessionNotFound(ProvisionerError):
    status = 404
    code = ErrorCode.SESSION_NOT_FOUND

    def __init__(
        self, detail: str = "no such session (it may have ended or expired)", reason: str = ""
    ) -> None:
        super().__init__(detail)
        self.reason = reason  # an EndReason value when the backend knows why it ended


class PodNotRunning(ProvisionerError):
    status = 409
    code = ErrorCode.POD_NOT_RUNNING

    def __init__(self, detail: str = "the session's pod is being replaced; try again") -> None:
        super().__init__(detail)


class LimitExceeded(ProvisionerError):
    status = 429

    def __init__(self, code: ErrorCode, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.code = code
        self.retry_after = retry_after


class BackendUnavailable(ProvisionerError):
    status = 503
    code = ErrorCode.BACKEND_UNAVAILABLE


class ConfigError(ProvisionerError):
    """Raised while settings are read, before anything is served (status and code unused)."""

    def __init__(self, key: str, expected: str, got: str | None) -> None:
        super().__init__(f"{key}: expected {expected}, got {got!r}")
        self.key = key
