"""The WebSocket wire vocabulary: close codes and the gateway's event names.

Shared by the echo server, the gateway and the graceful drain in `serve`; the
browser page mirrors both (docs/architecture.md, "HTTP / WebSocket contract").
The values are the protocol: never renumber or rename them.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final, Literal


class CloseCode(IntEnum):
    GOING_AWAY = 1001  # the server is shutting down
    # A frame that breaks RFC 6455 (reserved bits or opcodes, a fragmented or oversized
    # control frame, an unmasked or stray continuation frame): sent by the protocol layer.
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003  # a binary frame
    INVALID_DATA = 1007  # a text frame (or close reason) that is not UTF-8: protocol layer
    POLICY_VIOLATION = 1008  # too many messages per second
    MESSAGE_TOO_BIG = 1009  # a frame over MAX_FRAME_BYTES (sent by uvicorn itself)
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012  # this gateway replica is restarting: reconnect (to another)
    SESSION_ENDED = 4404  # unknown, ended or deleted session
    SESSION_EXPIRED = 4408  # ended by the idle timeout or the lifetime


class GatewayEvent(StrEnum):
    """`{"type": "event", "event": <name>, "pod": ..., "at": ms}` frames of the gateway."""

    POD_KILLED = "pod_killed"  # the session's pod is being deleted
    POD_REPLACED = "pod_replaced"  # its replacement exists (not yet Ready)
    UPSTREAM_LOST = "upstream_lost"  # the gateway's connection to the pod closed
    UPSTREAM_READY = "upstream_ready"  # the gateway is connected to a pod (first time too)
    SESSION_EXPIRING = "session_expiring"  # the lifetime ends soon (`at`: when)


# The `reason` of a `pod_killed` frame when the cluster took the pod rather than a
# delete (then there is none): its node stopped answering (NotReady or unreachable),
# and the pod is evicted when its toleration of that runs out, or already was.
KilledReason = Literal["node_lost"]
NODE_LOST: Final[KilledReason] = "node_lost"
