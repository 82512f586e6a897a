"""Errors of the provisioner, mapped to the protocol only at the edge.

ProvisionerError
├── NotOffered          403  a feature this deployment does not offer
├── SessionNotFound     404  unknown, ended or malformed session id
├── PodNotRunning       409  the session exists but has no running pod right now
├── LimitExceeded       429  rate limit or capacity; carries retry_after seconds
├── BackendUnavailable  503  the pod backend (Kubernetes API) cannot be reached
└── ConfigError              a setting is missing or malformed (names the key)
"""

from __future__ import annotations


class ProvisionerError(Exception):
    status = 500
    code = "internal"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotOffered(ProvisionerError):
    status = 403

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class SessionNotFound(ProvisionerError):
    status = 404
    code = "session_not_found"

    def __init__(
        self, detail: str = "no such session (it may have ended or expired)", reason: str = ""
    ) -> None:
        super().__init__(detail)
        self.reason = reason  # an EndReason value when the backend knows why it ended


class PodNotRunning(ProvisionerError):
    status = 409
    code = "pod_not_running"

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
    code = "backend_unavailable"


class ConfigError(ProvisionerError):
    code = "config"

    def __init__(self, key: str, expected: str, got: str | None) -> None:
        super().__init__(f"{key}: expected {expected}, got {got!r}")
        self.key = key
