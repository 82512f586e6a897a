/**
 * The event timeline: what happened to the session, in order, each step timed
 * from the start of the incident it belongs to.
 *
 * An incident starts with the "Kill my pod" click, or with the first
 * disruption the gateway reports when nobody clicked (the pod died on its
 * own). It ends when a pong arrives from the pod that took over, so the last
 * entry of an incident is the user-visible recovery time.
 */

export type Tone = 'info' | 'warn' | 'ok' | 'error';

export interface TimelineEntry {
  id: number;
  /** Epoch ms on this machine when the page saw it. */
  wallMs: number;
  /** ms since the incident began (the kill click), or null outside one. */
  sinceMs: number | null;
  text: string;
  tone: Tone;
}

/** Gateway event names (DESIGN.md); anything else is shown by its name. */
export type GatewayEventName =
  | 'pod_killed'
  | 'pod_replaced'
  | 'upstream_lost'
  | 'upstream_ready'
  | 'session_expiring';

const DISRUPTIONS = new Set<string>(['pod_killed', 'upstream_lost']);

export function describeGatewayEvent(event: string, pod: string | undefined): {
  text: string;
  tone: Tone;
} {
  const p = pod ? ` ${pod}` : '';
  switch (event) {
    case 'pod_killed':
      return { text: `Pod${p} killed`, tone: 'warn' };
    case 'upstream_lost':
      return { text: `Gateway lost its connection to pod${p}`, tone: 'warn' };
    case 'pod_replaced':
      return { text: `Replacement pod${p} created`, tone: 'info' };
    case 'upstream_ready':
      return { text: `Gateway connected to pod${p}`, tone: 'ok' };
    case 'session_expiring':
      return { text: 'Session expires soon', tone: 'warn' };
    default:
      return { text: `Gateway event: ${event}${p}`, tone: 'info' };
  }
}

export class Timeline {
  readonly maxEntries: number;
  private items: TimelineEntry[] = [];
  private nextId = 1;
  private incidentStart: number | null = null;

  constructor(maxEntries = 100) {
    this.maxEntries = maxEntries;
  }

  get entries(): readonly TimelineEntry[] {
    return this.items;
  }

  get inIncident(): boolean {
    return this.incidentStart !== null;
  }

  /** Start timing an incident at `mono` (e.g. the kill click) and log it. */
  beginIncident(mono: number, wallMs: number, text: string, tone: Tone = 'warn'): TimelineEntry {
    this.incidentStart = mono;
    return this.add(mono, wallMs, text, tone);
  }

  /** Log the incident's last step (recovery) and stop timing. */
  endIncident(mono: number, wallMs: number, text: string, tone: Tone = 'ok'): TimelineEntry {
    const e = this.add(mono, wallMs, text, tone);
    this.incidentStart = null;
    return e;
  }

  /** Log a gateway event; a disruption outside an incident starts one. */
  gatewayEvent(mono: number, wallMs: number, event: string, pod?: string): TimelineEntry {
    const { text, tone } = describeGatewayEvent(event, pod);
    if (this.incidentStart === null && DISRUPTIONS.has(event)) {
      return this.beginIncident(mono, wallMs, text, tone);
    }
    return this.add(mono, wallMs, text, tone);
  }

  add(mono: number, wallMs: number, text: string, tone: Tone = 'info'): TimelineEntry {
    const entry: TimelineEntry = {
      id: this.nextId++,
      wallMs,
      sinceMs: this.incidentStart === null ? null : Math.max(0, mono - this.incidentStart),
      text,
      tone,
    };
    // Replace the array (not push) so React sees a new value.
    const next = [...this.items, entry];
    this.items = next.length > this.maxEntries ? next.slice(-this.maxEntries) : next;
    return entry;
  }

  clear(): void {
    this.items = [];
    this.incidentStart = null;
  }
}
