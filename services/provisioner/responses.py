"""JSON error bodies: the only shape an error leaves the provisioner in."""

from __future__ import annotations

import math
from collections.abc import Mapping

from starlette.responses import JSONResponse

from services.provisioner.errors import ErrorCode, LimitExceeded, ProvisionerError


def error_response(
    status: int, code: ErrorCode, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def from_error(exc: ProvisionerError) -> JSONResponse:
    headers = None
    if isinstance(exc, LimitExceeded):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    return error_response(exc.status, exc.code, exc.detail, headers)
