/**
 * The event timeline: what happened to the session, in order, each step of an
 * incident timed from the incident's start. All incident state lives here.
 *
 * An incident starts with the "Kill my pod" click, or with the first
 * disruption the gateway reports when nobody clicked (the pod died on its
 * own); the pod answering at that moment is the one being replaced. It ends
 * with the first pong from a pod that took over: another pod, or the same one
 * once the gateway said it reconnected (upstream_ready). The last entry of an
 * incident is therefore the user-visible recovery time. A failed kill request
 * ends it too.
 */

import type { AnatomyStep } from './anatomy';
import type { GatewayEvent } from './frames';

export type Tone = 'info' | 'warn' | 'ok' | 'error';

export interface TimelineEntry {
  id: number;
  /** Epoch ms on this machine when the page saw it. */
  wallMs: number;
  /** ms since the incident began, or null outside one. */
  sinceMs: number | null;
  text: string;
  tone: Tone;
  /** A replacement pod's start, phase by phase (replacement anatomy). */
  anatomy?: readonly AnatomyStep[];
}

export interface Clock {
  /** Monotonic ms (performance.now()): incident timing. */
  mono: () => number;
  /** Epoch ms: when each entry happened. */
  wall: () => number;
}

/** How each gateway event is logged, and whether it starts an incident. */
const GATEWAY_EVENT_LOG: Record<
  GatewayEvent,
  { text: (pod: string, reason: string | undefined) => string; tone: Tone; disruption: boolean }
> = {
  pod_killed: {
    // node_lost: nobody deleted it; the cluster gave up on its node and replaces it.
    text: (p, reason) =>
      reason === 'node_lost' ? `Pod${p} lost with its node: being replaced` : `Pod${p} killed`,
    tone: 'warn',
    disruption: true,
  },
  upstream_lost: {
    text: (p) => `Gateway lost its connection to pod${p}`,
    tone: 'warn',
    disruption: true,
  },
  pod_replaced: { text: (p) => `Replacement pod${p} created`, tone: 'info', disruption: false },
  upstream_ready: { text: (p) => `Gateway connected to pod${p}`, tone: 'ok', disruption: false },
  session_expiring: { text: () => 'Session expires soon', tone: 'warn', disruption: false },
};

interface Incident {
  /** mono time it began. */
  start: number;
  /** The pod answering when it began, if known. */
  pod: string | null;
  /** The gateway has reconnected since (upstream_ready). */
  reconnected: boolean;
}

export class Timeline {
  private readonly clock: Clock;
  private readonly maxEntries: number;
  private items: TimelineEntry[] = [];
  private nextId = 1;
  private incident: Incident | null = null;

  constructor(clock: Clock, maxEntries = 100) {
    this.clock = clock;
    this.maxEntries = maxEntries;
  }

  /** Oldest first; a new array after every change (React compares by reference). */
  get entries(): readonly TimelineEntry[] {
    return this.items;
  }

  get inIncident(): boolean {
    return this.incident !== null;
  }

  /** Log a step; inside an incident it is timed from the incident's start. */
  add(text: string, tone: Tone = 'info'): void {
    const mono = this.clock.mono();
    const entry: TimelineEntry = {
      id: this.nextId++,
      wallMs: this.clock.wall(),
      sinceMs: this.incident === null ? null : Math.max(0, mono - this.incident.start),
      text,
      tone,
    };
    const next = [...this.items, entry];
    this.items = next.length > this.maxEntries ? next.slice(-this.maxEntries) : next;
  }

  /** The visitor asked to kill `pod` (the pod answering now): an incident starts. */
  killRequested(pod: string | null): void {
    this.begin(pod, `Kill requested for pod ${pod ?? ''}`.trim(), 'warn');
  }

  /**
   * The visitor asked to restart the gateway replica holding their socket: an
   * incident starts; it ends with the first pong after the page reconnected
   * (through another replica) and the gateway reached the pod again.
   */
  gatewayKillRequested(pod: string | null): void {
    this.begin(pod, 'Gateway restart requested', 'warn');
  }

  /** How the replacement `pod` started, phase by phase: its own entry. */
  addAnatomy(pod: string, steps: readonly AnatomyStep[]): void {
    this.add(`How replacement pod ${pod} started`, 'info');
    const entry = this.items.at(-1);
    if (entry) this.items = [...this.items.slice(0, -1), { ...entry, anatomy: steps }];
  }

  /** The kill request failed: the incident is over, nothing will recover. */
  killFailed(detail: string): void {
    this.end(`Kill failed: ${detail}`, 'error');
  }

  /**
   * A gateway event (`reason`: the frame's, if any). A disruption outside an incident starts
   * one, taking `answeringPod` (the pod the page was talking to) as the pod being replaced.
   */
  gatewayEvent(
    event: GatewayEvent,
    pod: string | undefined,
    answeringPod: string | null,
    reason?: string,
  ): void {
    const how = GATEWAY_EVENT_LOG[event];
    const text = how.text(pod ? ` ${pod}` : '', reason);
    if (this.incident === null && how.disruption) {
      this.begin(answeringPod, text, how.tone);
      return;
    }
    this.add(text, how.tone);
    if (this.incident !== null && event === 'upstream_ready') this.incident.reconnected = true;
  }

  /** An event name this page does not know: logged by its name. */
  unknownEvent(name: string, pod: string | undefined): void {
    this.add(`Gateway event: ${name}${pod ? ` ${pod}` : ''}`, 'info');
  }

  /**
   * A pong from `pod` (when the frame names one); `answeringPod` is the pod
   * the page believed it was talking to. Ends the incident when the pod took
   * over, and otherwise notes a change of pod.
   */
  pong(pod: string | undefined, answeringPod: string | null): void {
    if (!pod) return;
    const incident = this.incident;
    if (incident !== null) {
      if (pod !== incident.pod || incident.reconnected) {
        this.end(`Pongs resumed from pod ${pod}`, 'ok');
      }
    } else if (answeringPod !== null && pod !== answeringPod) {
      this.add(`Now answered by pod ${pod}`, 'info');
    }
  }

  /** A new session: nothing logged, no incident. */
  clear(): void {
    this.items = [];
    this.incident = null;
  }

  private begin(pod: string | null, text: string, tone: Tone): void {
    this.incident = { start: this.clock.mono(), pod, reconnected: false };
    this.add(text, tone);
  }

  private end(text: string, tone: Tone): void {
    this.add(text, tone);
    this.incident = null;
  }
}
