"""Errors of the provisioner, mapped to the protocol only at the edge.

ProvisionerError
├── OriginNotAllowed    403  a state change from a page of a foreign origin
├── NotOffered          403  a feature this deployment does not offer
├── SessionNotFound     404  unknown, ended or malformed session id
├── PodNotRunning       409  the session exists but has no running pod right now
├── LimitExceeded       429  rate limit or capacity; carries retry_after seconds
├── BackendUnavailable  503  the pod backend (Kubernetes API) cannot be reached
└── ConfigError              a setting is missing or malformed (names the key)

`ErrorCode` lists every `error` value a response can carry; the OpenAPI
document (`openapi.py`) enumerates them from it.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The `error` of a `{"error": ..., "detail": ...}` body."""

    ORIGIN_NOT_ALLOWED = "origin_not_allowed"  # 403: Origin not in the allow-list
    SESSION_NOT_FOUND = "session_not_found"  # 404: unknown, ended or malformed id
    NOT_FOUND = "not_found"  # 404: no such path
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    POD_NOT_RUNNING = "pod_not_running"  # 409: a replacement is still starting
    UPGRADE_REQUIRED = "upgrade_required"  # 426: plain HTTP to the WebSocket path
    RATE_LIMITED = "rate_limited"  # 429: POST /session per client address
    AT_CAPACITY = "at_capacity"  # 429: MAX_SESSIONS, or the cluster's quota
    POOL_EMPTY = "pool_empty"  # 429: no pod Ready within CLAIM_TIMEOUT
    TOO_MANY_CONNECTIONS = "too_many_connections"  # 429: WS_PER_IP
    TOO_MANY_STREAMS = "too_many_streams"  # 429: FEED_PER_IP or FEED_MAX_STREAMS
    GATEWAY_KILL_OFF = "gateway_kill_off"  # 403: kill my gateway is not offered here
    HTTP_ERROR = "http_error"  # any other 4xx Starlette raises
    INTERNAL = "internal"  # 500: a defect, never a user's doing
    BACKEND_UNAVAILABLE = "backend_unavailable"  # 503: the pod platform cannot be reached
    NOT_READY = "not_ready"  # 503 from /ready


class ProvisionerError(Exception):
    status = 500
    code: str = ErrorCode.INTERNAL

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class OriginNotAllowed(ProvisionerError):
    status = 403
    code = ErrorCode.ORIGIN_NOT_ALLOWED


class NotOffered(ProvisionerError):
    status = 403

    def __init__(self, code: str, detail: str) -> None:
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

    def __init__(self, code: str, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.code = code
        self.retry_after = retry_after


class BackendUnavailable(ProvisionerError):
    status = 503
    code = ErrorCode.BACKEND_UNAVAILABLE


class ConfigError(ProvisionerError):
    code = "config"

    def __init__(self, key: str, expected: str, got: str | None) -> None:
        super().__init__(f"{key}: expected {expected}, got {got!r}")
        self.key = key
