"""The JSON bodies of the API, the gateway's frames and the pool feed's events, as types.

Handlers build these TypedDicts (pyright checks every key and type), and
`openapi.py` derives the document's JSON schemas from the same classes with
pydantic, so the schema cannot drift from what the code sends. Every object
is closed (`additionalProperties: false`): a field added to a response must
be added here, where the schema sees it.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, NotRequired

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from services.common.wire import GatewayEvent, KilledReason
from services.provisioner.backends.base import CapacityType, MemberState, NodeState
from services.provisioner.errors import ErrorCode

_CLOSED = ConfigDict(extra="forbid")

EpochSeconds = Annotated[float, Field(description="seconds since the Unix epoch")]
EpochMs = Annotated[float, Field(description="milliseconds since the Unix epoch")]
SessionId = Annotated[
    str,
    Field(
        description="the session's 256-bit capability token (URL-safe base64, 43 characters)",
        pattern=r"^[A-Za-z0-9_-]{43}$",
    ),
]


@with_config(_CLOSED)
class PodBrief(TypedDict):
    """The pod a new session was given."""

    name: str
    node: Annotated[str, Field(description="the node (or local host) it runs on")]
    started_at: EpochSeconds


@with_config(_CLOSED)
class SessionCreated(TypedDict):
    """`POST /session`: a Ready pod of one's own."""

    session_id: SessionId
    ws_url: Annotated[str, Field(description="the gateway WebSocket, relative to the page")]
    pod: PodBrief
    warm: Annotated[bool, Field(description="true if the pod came from the warm pool")]
    assign_ms: Annotated[float, Field(description="time the claim took in the provisioner, ms")]
    expires_at: EpochSeconds


@with_config(_CLOSED)
class StartPhases(TypedDict):
    """When the pod got through each step of its start (null: not yet)."""

    created: EpochSeconds
    scheduled: EpochSeconds | None
    started: Annotated[EpochSeconds | None, Field(description="its containers started")]
    ready: EpochSeconds | None
    resolution: Annotated[
        float, Field(description="seconds: 1 on Kubernetes (each time starts its second)")
    ]


@with_config(_CLOSED)
class PodStatus(TypedDict):
    """A session's current pod."""

    name: str
    node: str
    phase: Annotated[str, Field(description="the pod's phase, e.g. Pending or Running")]
    ready: bool
    started_at: EpochSeconds
    phases: Annotated[
        StartPhases | None, Field(description="its start, step by step (replacement anatomy)")
    ]


@with_config(_CLOSED)
class SessionStatus(TypedDict):
    """`GET /session/{session_id}`."""

    session_id: SessionId
    pod: Annotated[
        PodStatus | None, Field(description="null for a moment while a replacement is created")
    ]
    replacements: Annotated[int, Field(description="pods killed in this session so far", ge=0)]
    created_at: EpochSeconds
    expires_at: EpochSeconds
    last_active: EpochSeconds


@with_config(_CLOSED)
class PodKilled(TypedDict):
    """`DELETE /session/{session_id}/pod`: the pod is going, a replacement follows."""

    killed: Annotated[str, Field(description="the name of the pod deleted")]
    replacement: Literal["pending"]


@with_config(_CLOSED)
class PoolCounts(TypedDict):
    """`GET /pool`: pool members by state."""

    warm: Annotated[int, Field(description="Ready and free", ge=0)]
    starting: Annotated[int, Field(description="free, not Ready yet, or asked for", ge=0)]
    assigned: Annotated[int, Field(description="sessions", ge=0)]
    target: Annotated[int, Field(description="free pods the pool aims to keep", ge=0)]
    capacity: Annotated[int, Field(description="MAX_SESSIONS", ge=0)]


@with_config(_CLOSED)
class Health(TypedDict):
    status: Literal["ok"]


@with_config(_CLOSED)
class Readiness(TypedDict):
    status: Literal["ready"]


@with_config(_CLOSED)
class ErrorBody(TypedDict):
    """Every error: a stable code to branch on and a sentence for people."""

    error: ErrorCode
    detail: str


# The gateway's frames (JSON text, docs/architecture.md "HTTP / WebSocket contract").


@with_config(_CLOSED)
class PingFrame(TypedDict):
    """Browser to pod, relayed as it is."""

    type: Literal["ping"]
    seq: int
    t: Annotated[float, Field(description="the browser's clock when sent, ms")]


@with_config(_CLOSED)
class PongFrame(TypedDict):
    """Pod to browser: the answer to a ping, relayed as it is."""

    type: Literal["pong"]
    seq: int
    t: Annotated[float, Field(description="the ping's `t`, echoed")]
    pod: str
    node: str
    server_ts: EpochMs


@with_config(_CLOSED)
class EventFrame(TypedDict):
    """The gateway's own news of the session."""

    type: Literal["event"]
    event: GatewayEvent
    pod: Annotated[str, Field(description="the pod concerned (empty for session_expiring)")]
    at: EpochMs
    gateway: Annotated[str, Field(description="the provisioner replica relaying this socket")]
    reason: NotRequired[
        Annotated[
            KilledReason,
            Field(
                description="pod_killed only, when the cluster took the pod (none: it was "
                "deleted): node_lost, its node stopped answering and it is, or will be, evicted"
            ),
        ]
    ]


@with_config(_CLOSED)
class EchoErrorFrame(TypedDict):
    """The pod's answer to a frame it cannot read (bad_json, unknown_type, bad_ping)."""

    type: Literal["error"]
    error: str
    detail: str


@with_config(_CLOSED)
class FeatureConfig(TypedDict):
    """`GET /config`: what the page may offer."""

    gateway_kill: Annotated[bool, Field(description="whether Kill my gateway is offered")]


@with_config(_CLOSED)
class GatewayDraining(TypedDict):
    """`DELETE /session/{session_id}/gateway`."""

    gateway: Literal["draining"]
    drain_delay: Annotated[float, Field(description="seconds before its sockets close")]


# The pool feed (`GET /pool/feed`, server-sent events; `poolfeed.py`).

FeedSeq = Annotated[
    int, Field(description="+1 per diff: a gap means a message was missed (reconnect)", ge=0)
]
FeedTotal = Annotated[int, Field(description="every pool pod, shown or not", ge=0)]


@with_config(_CLOSED)
class FeedTile(TypedDict):
    """A pool pod on the page's grid: its name and state, never its session."""

    pod: str
    state: MemberState


FeedNodeTotal = Annotated[int, Field(description="every node, shown or not", ge=0)]


@with_config(_CLOSED)
class FeedNode(TypedDict):
    """A node on the page's node strip (locally: this machine, the one node)."""

    name: Annotated[str, Field(description="the node's name (locally: the host name)")]
    instance_type: Annotated[
        str, Field(description="its instance type label, e.g. t4g.small (locally: the arch)")
    ]
    capacity_type: CapacityType
    state: NodeState
    pods: Annotated[int, Field(description="pool and session pods on it", ge=0)]


@with_config(_CLOSED)
class FeedSnapshot(TypedDict):
    """`event: snapshot`, first on every stream: every tile shown, oldest pod first,
    and every node shown, oldest first."""

    seq: FeedSeq
    at: EpochMs
    tiles: list[FeedTile]
    total: FeedTotal
    nodes: list[FeedNode]
    node_total: FeedNodeTotal


@with_config(_CLOSED)
class FeedDiff(TypedDict):
    """`event: diff`: what changed since the previous message."""

    seq: FeedSeq
    at: EpochMs
    set: Annotated[list[FeedTile], Field(description="tiles added or whose state changed")]
    remove: Annotated[list[str], Field(description="pods no longer shown")]
    total: FeedTotal
    nodes: NotRequired[
        Annotated[
            list[FeedNode],
            Field(description="only when a node changed: every node shown, replacing the last"),
        ]
    ]
    node_total: NotRequired[FeedNodeTotal]


# Each event's name and the type of its `data:` line (JSON).
FEED_EVENTS: Final[dict[str, Any]] = {"snapshot": FeedSnapshot, "diff": FeedDiff}
