/** What the page shows of a session: the immutable snapshot React renders. */

import type { CreatedSession, SessionStatus } from './api';
import type { PingTracker } from './lib/pingTracker';
import type { TimelineEntry } from './lib/timeline';

export type Phase = 'idle' | 'claiming' | 'live' | 'limited' | 'error' | 'ended';
export type Link = 'connecting' | 'open' | 'reconnecting' | 'stopped';

export interface PodView {
  name: string;
  node: string;
  /** Epoch seconds, when known for this pod. */
  startedAt: number | null;
}

export interface SessionView {
  phase: Phase;
  /** The gateway connection, while live. */
  link: Link | null;
  /** What to tell the visitor about the current phase, if anything. */
  message: string | null;
  /** Epoch ms after which Start may be clicked again (after a 429). */
  retryAt: number | null;
  /** Epoch ms of the next reconnect attempt, while reconnecting. */
  reconnectAt: number | null;
  reconnectAttempt: number;
  session: CreatedSession | null;
  status: SessionStatus | null;
  pod: PodView | null;
  timeline: readonly TimelineEntry[];
  tracker: PingTracker;
  killing: boolean;
  /** A "Kill my gateway" request is under way. */
  gatewayKilling: boolean;
  /** The replacement pod the gateway announced (pod_replaced), until it connects to it. */
  replacementPod: string | null;
  /** The pod the gateway last connected to (upstream_ready), by its platform name. */
  gatewayPod: string | null;
  /** The provisioner replica relaying the socket, as the gateway names itself. */
  gateway: string | null;
  /** ms from the Start click to the first pong. */
  firstPongMs: number | null;
}

/** The view with no session: where the page starts, and where Start starts from. */
export function idleView(tracker: PingTracker): SessionView {
  return {
    phase: 'idle',
    link: null,
    message: null,
    retryAt: null,
    reconnectAt: null,
    reconnectAttempt: 0,
    session: null,
    status: null,
    pod: null,
    timeline: [],
    tracker,
    killing: false,
    gatewayKilling: false,
    replacementPod: null,
    gatewayPod: null,
    gateway: null,
    firstPongMs: null,
  };
}
