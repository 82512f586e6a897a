"""The WebSocket wire vocabulary: close codes and the gateway's event names.

Shared by the echo server, the gateway and the graceful drain in `serve`. The
provisioner's OpenAPI document carries both, with the meanings below, as the
component schemas `CloseCode` and `GatewayEvent`; the page's copy and the
tables in docs/api.md are generated from there (`python -m scripts.contract`).
The values are the protocol: never renumber or rename them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum, StrEnum
from typing import Final, Literal


class CloseCode(IntEnum):
    """The code of a WebSocket close frame the server sends."""

    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    SESSION_ENDED = 4404
    SESSION_EXPIRED = 4408


CLOSE_MEANINGS: Final[Mapping[CloseCode, str]] = {
    CloseCode.GOING_AWAY: "the provisioner is shutting down (graceful drain)",
    CloseCode.PROTOCOL_ERROR: (
        "a frame that breaks RFC 6455: reserved bits or opcode, a fragmented or"
        " over-125-byte control frame, a stray continuation, an unmasked frame, a bad close"
        " frame (protocol layer)"
    ),
    CloseCode.UNSUPPORTED_DATA: "a binary frame",
    CloseCode.INVALID_DATA: "a text frame or close reason that is not UTF-8 (protocol layer)",
    CloseCode.POLICY_VIOLATION: "message rate exceeded (`WS_MAX_MESSAGES_PER_SECOND`)",
    CloseCode.MESSAGE_TOO_BIG: "a frame over `MAX_FRAME_BYTES` (closed by uvicorn)",
    CloseCode.INTERNAL_ERROR: "internal error",
    CloseCode.SERVICE_RESTART: (
        'this gateway replica is restarting ("kill my gateway"): reconnect, to another replica'
    ),
    CloseCode.SESSION_ENDED: "session unknown, ended or deleted",
    CloseCode.SESSION_EXPIRED: "session expired (idle or lifetime)",
}


class GatewayEvent(StrEnum):
    """`{"type": "event", "event": <name>, "pod": ..., "at": ms}` frames of the gateway."""

    POD_KILLED = "pod_killed"
    POD_REPLACED = "pod_replaced"
    UPSTREAM_LOST = "upstream_lost"
    UPSTREAM_READY = "upstream_ready"
    SESSION_EXPIRING = "session_expiring"


EVENT_MEANINGS: Final[Mapping[GatewayEvent, str]] = {
    GatewayEvent.POD_KILLED: "the session's pod is being deleted",
    GatewayEvent.POD_REPLACED: "its replacement exists (not Ready yet)",
    GatewayEvent.UPSTREAM_LOST: (
        "the gateway's connection to the pod closed: pings get no pong until `upstream_ready`"
    ),
    GatewayEvent.UPSTREAM_READY: "the gateway is connected to a pod (the first time too)",
    GatewayEvent.SESSION_EXPIRING: "the session's lifetime ends soon (`at`: when it ends)",
}


# The `reason` of a `pod_killed` frame when the cluster took the pod rather than a
# delete (then there is none): its node stopped answering (NotReady or unreachable),
# and the pod is evicted when its toleration of that runs out, or already was.
KilledReason = Literal["node_lost"]
NODE_LOST: Final[KilledReason] = "node_lost"
