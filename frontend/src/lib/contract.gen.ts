/**
 * The provisioner's wire contract, generated from its OpenAPI document
 * (GET /openapi.json, built from services/provisioner/bodies.py, errors.py and
 * services/common/wire.py) by `python -m scripts.contract`. Do not edit:
 * tests/services/test_wire_contract.py fails when this file is not what the
 * running provisioner's document gives.
 */

/** How the node is bought: spot capacity can be taken back at two minutes' notice. */
export const CapacityType = {
  /** spot capacity: cheaper, and the cloud may take it back at 2 min notice */
  SPOT: 'spot',
  /** on-demand: kept until the cluster removes it (locally: this machine) */
  ON_DEMAND: 'on-demand',
  /** neither Karpenter's nor EKS's capacity-type label is on the node */
  UNKNOWN: 'unknown',
} as const;
export type CapacityType = (typeof CapacityType)[keyof typeof CapacityType];

/** The code of a WebSocket close frame the server sends. */
export const CloseCode = {
  /** the provisioner is shutting down (graceful drain) */
  GOING_AWAY: 1001,
  /** a frame that breaks RFC 6455: reserved bits or opcode, a fragmented or over-125-byte control frame, a stray continuation, an unmasked frame, a bad close frame (protocol layer) */
  PROTOCOL_ERROR: 1002,
  /** a binary frame */
  UNSUPPORTED_DATA: 1003,
  /** a text frame or close reason that is not UTF-8 (protocol layer) */
  INVALID_DATA: 1007,
  /** message rate exceeded (`WS_MAX_MESSAGES_PER_SECOND`) */
  POLICY_VIOLATION: 1008,
  /** a frame over `MAX_FRAME_BYTES` (closed by uvicorn) */
  MESSAGE_TOO_BIG: 1009,
  /** internal error */
  INTERNAL_ERROR: 1011,
  /** this gateway replica is restarting ("kill my gateway"): reconnect, to another replica */
  SERVICE_RESTART: 1012,
  /** session unknown, ended or deleted */
  SESSION_ENDED: 4404,
  /** session expired (idle or lifetime) */
  SESSION_EXPIRED: 4408,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** The pod's answer to a frame it cannot read (bad_json, unknown_type, bad_ping). */
export interface EchoErrorFrame {
  type: 'error';
  error: string;
  detail: string;
}

/** Every error: a stable code to branch on and a sentence for people. */
export interface ErrorBody {
  error: ErrorCode;
  detail: string;
}

/** The `error` of a `{"error": ..., "detail": ...}` body. */
export const ErrorCode = {
  /** 403: a state change (or a WebSocket) from an Origin that is not allowed */
  ORIGIN_NOT_ALLOWED: 'origin_not_allowed',
  /** 404: unknown, ended or malformed session id */
  SESSION_NOT_FOUND: 'session_not_found',
  /** 404: no such path */
  NOT_FOUND: 'not_found',
  /** 405: the path does not take this method (see `Allow`) */
  METHOD_NOT_ALLOWED: 'method_not_allowed',
  /** 409: the session's replacement pod is still starting */
  POD_NOT_RUNNING: 'pod_not_running',
  /** 426: plain HTTP to the WebSocket path */
  UPGRADE_REQUIRED: 'upgrade_required',
  /** 429: too many requests from this address (or session) */
  RATE_LIMITED: 'rate_limited',
  /** 429: `MAX_SESSIONS` reached, or the cluster's quota */
  AT_CAPACITY: 'at_capacity',
  /** 429: no pod Ready within `CLAIM_TIMEOUT`, or enough claims wait */
  POOL_EMPTY: 'pool_empty',
  /** 429: `WS_PER_IP` WebSockets already open */
  TOO_MANY_CONNECTIONS: 'too_many_connections',
  /** 429: `FEED_PER_IP` or `FEED_MAX_STREAMS` pool feeds open */
  TOO_MANY_STREAMS: 'too_many_streams',
  /** 403: "kill my gateway" is not offered here */
  GATEWAY_KILL_OFF: 'gateway_kill_off',
  /** 4xx: any other client error */
  HTTP_ERROR: 'http_error',
  /** 500: a defect, never the client's doing */
  INTERNAL: 'internal',
  /** 503: the pod platform cannot be reached */
  BACKEND_UNAVAILABLE: 'backend_unavailable',
  /** 503: `/ready`: the backend is not reachable or not synced */
  NOT_READY: 'not_ready',
  /** 503: `/ready`: this replica is restarting (kill my gateway) */
  DRAINING: 'draining',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The gateway's own news of the session. */
export interface EventFrame {
  type: 'event';
  event: GatewayEvent;
  /** the pod concerned (empty for session_expiring) */
  pod: string;
  /** milliseconds since the Unix epoch */
  at: number;
  /** the provisioner replica relaying this socket */
  gateway: string;
  /** pod_killed only, when the cluster took the pod (none: it was deleted): node_lost, its node stopped answering and it is, or will be, evicted */
  reason?: 'node_lost';
}

/** `GET /config`: what the page may offer. */
export interface FeatureConfig {
  /** whether Kill my gateway is offered */
  gateway_kill: boolean;
}

/** `event: diff`: what changed since the previous message. */
export interface FeedDiff {
  /** +1 per diff: a gap means a message was missed (reconnect) */
  seq: number;
  /** milliseconds since the Unix epoch */
  at: number;
  /** tiles added or whose state changed */
  set: FeedTile[];
  /** pods no longer shown */
  remove: string[];
  /** every pool pod, shown or not */
  total: number;
  /** only when a node changed: every node shown, replacing the last */
  nodes?: FeedNode[];
  /** every node, shown or not */
  node_total?: number;
}

/** A node on the page's node strip (locally: this machine, the one node). */
export interface FeedNode {
  /** the node's name (locally: the host name) */
  name: string;
  /** its instance type label, e.g. t4g.small (locally: the arch) */
  instance_type: string;
  capacity_type: CapacityType;
  state: NodeState;
  /** pool and session pods on it */
  pods: number;
}

/**
 * `event: snapshot`, first on every stream: every tile shown, oldest pod first,
 * and every node shown, oldest first.
 */
export interface FeedSnapshot {
  /** +1 per diff: a gap means a message was missed (reconnect) */
  seq: number;
  /** milliseconds since the Unix epoch */
  at: number;
  tiles: FeedTile[];
  /** every pool pod, shown or not */
  total: number;
  nodes: FeedNode[];
  /** every node, shown or not */
  node_total: number;
}

/** A pool pod on the page's grid: its name and state, never its session. */
export interface FeedTile {
  pod: string;
  state: MemberState;
}

/** `DELETE /session/{session_id}/gateway`. */
export interface GatewayDraining {
  gateway: 'draining';
  /** seconds before its sockets close */
  drain_delay: number;
}

/** `{"type": "event", "event": <name>, "pod": ..., "at": ms}` frames of the gateway. */
export const GatewayEvent = {
  /** the session's pod is being deleted */
  POD_KILLED: 'pod_killed',
  /** its replacement exists (not Ready yet) */
  POD_REPLACED: 'pod_replaced',
  /** the gateway's connection to the pod closed: pings get no pong until `upstream_ready` */
  UPSTREAM_LOST: 'upstream_lost',
  /** the gateway is connected to a pod (the first time too) */
  UPSTREAM_READY: 'upstream_ready',
  /** the session's lifetime ends soon (`at`: when it ends) */
  SESSION_EXPIRING: 'session_expiring',
} as const;
export type GatewayEvent = (typeof GatewayEvent)[keyof typeof GatewayEvent];

export interface Health {
  status: 'ok';
}

/** A pool pod as the page's pool grid shows it. */
export const MemberState = {
  WARM: 'warm',
  STARTING: 'starting',
  ASSIGNED: 'assigned',
  TERMINATING: 'terminating',
} as const;
export type MemberState = (typeof MemberState)[keyof typeof MemberState];

/** A node as the page's node strip shows it. */
export const NodeState = {
  /** Ready: takes pods */
  READY: 'ready',
  /** not Ready: joining (not reported yet) or lost (stopped answering) */
  NOT_READY: 'not_ready',
  /** being removed: deleted, cordoned, or chosen by Karpenter to go */
  LEAVING: 'leaving',
} as const;
export type NodeState = (typeof NodeState)[keyof typeof NodeState];

/** Browser to pod, relayed as it is. */
export interface PingFrame {
  type: 'ping';
  seq: number;
  /** the browser's clock when sent, ms */
  t: number;
}

/** The pod a new session was given. */
export interface PodBrief {
  name: string;
  /** the node (or local host) it runs on */
  node: string;
  /** seconds since the Unix epoch */
  started_at: number;
}

/** `DELETE /session/{session_id}/pod`: the pod is going, a replacement follows. */
export interface PodKilled {
  /** the name of the pod deleted */
  killed: string;
  replacement: 'pending';
}

/** A session's current pod. */
export interface PodStatus {
  name: string;
  node: string;
  /** the pod's phase, e.g. Pending or Running */
  phase: string;
  ready: boolean;
  /** seconds since the Unix epoch */
  started_at: number;
  /** its start, step by step (replacement anatomy) */
  phases: StartPhases | null;
}

/** Pod to browser: the answer to a ping, relayed as it is. */
export interface PongFrame {
  type: 'pong';
  seq: number;
  /** the ping's `t`, echoed */
  t: number;
  pod: string;
  node: string;
  /** milliseconds since the Unix epoch */
  server_ts: number;
}

/** `GET /pool`: pool members by state. */
export interface PoolCounts {
  /** Ready and free */
  warm: number;
  /** free, not Ready yet, or asked for */
  starting: number;
  /** sessions */
  assigned: number;
  /** free pods the pool aims to keep */
  target: number;
  /** MAX_SESSIONS */
  capacity: number;
}

export interface Readiness {
  status: 'ready';
}

/** `POST /session`: a Ready pod of one's own. */
export interface SessionCreated {
  /** the session's 256-bit capability token (URL-safe base64, 43 characters) */
  session_id: string;
  /** the gateway WebSocket, relative to the page */
  ws_url: string;
  pod: PodBrief;
  /** true if the pod came from the warm pool */
  warm: boolean;
  /** time the claim took in the provisioner, ms */
  assign_ms: number;
  /** seconds since the Unix epoch */
  expires_at: number;
}

/** `GET /session/{session_id}`. */
export interface SessionStatus {
  /** the session's 256-bit capability token (URL-safe base64, 43 characters) */
  session_id: string;
  /** null for a moment while a replacement is created */
  pod: PodStatus | null;
  /** pods killed in this session so far */
  replacements: number;
  /** seconds since the Unix epoch */
  created_at: number;
  /** seconds since the Unix epoch */
  expires_at: number;
  /** seconds since the Unix epoch */
  last_active: number;
}

/** When the pod got through each step of its start (null: not yet). */
export interface StartPhases {
  /** seconds since the Unix epoch */
  created: number;
  scheduled: number | null;
  /** its containers started */
  started: number | null;
  ready: number | null;
  /** seconds: 1 on Kubernetes (each time starts its second) */
  resolution: number;
}
