/**
 * Frames from the gateway (docs/architecture.md, "HTTP / WebSocket contract"),
 * parsed into a small typed union. Anything malformed is null: a bad frame is
 * ignored rather than trusted.
 */

import { GatewayEvent, type EventFrame, type PongFrame } from './contract.gen';

/**
 * The gateway's event names, `{"type":"event","event":<name>,"pod":…,"at":ms}`:
 * `GatewayEvent` of the provisioner's OpenAPI document (generated), each
 * explained there.
 */
export { GatewayEvent };
export const GATEWAY_EVENTS: readonly GatewayEvent[] = Object.values(GatewayEvent);

export function isGatewayEvent(name: string): name is GatewayEvent {
  return (GATEWAY_EVENTS as readonly string[]).includes(name);
}

/** Fields `K` of a server frame, and fields `O` that may be missing or malformed (then dropped). */
type Parsed<T, K extends keyof T, O extends keyof T> = Pick<T, K> & Partial<Pick<T, O>>;

export type GatewayFrame =
  | Parsed<PongFrame, 'type' | 'seq', 'pod' | 'node'>
  /** `at`: epoch ms by the server's clock; `gateway`: the provisioner replica relaying the socket;
   * `reason`: why the cluster took the pod, on pod_killed (`node_lost`: its node stopped answering). */
  | Parsed<EventFrame, 'type' | 'event', 'pod' | 'at' | 'gateway' | 'reason'>
  /** An event name this page does not know (a newer gateway): shown by its name. */
  | { type: 'unknown_event'; name: string; pod?: string }
  | { type: 'error'; text: string };

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function parseFrame(data: unknown): GatewayFrame | null {
  if (typeof data !== 'string') return null;
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const m = v as Record<string, unknown>;
  switch (m.type) {
    case 'pong': {
      if (typeof m.seq !== 'number' || !Number.isInteger(m.seq)) return null;
      const f: GatewayFrame = { type: 'pong', seq: m.seq };
      const pod = str(m.pod);
      const node = str(m.node);
      if (pod !== undefined) f.pod = pod;
      if (node !== undefined) f.node = node;
      return f;
    }
    case 'event': {
      const name = str(m.event);
      if (name === undefined) return null;
      const f: GatewayFrame = isGatewayEvent(name)
        ? { type: 'event', event: name }
        : { type: 'unknown_event', name };
      const pod = str(m.pod);
      if (pod !== undefined) f.pod = pod;
      if (f.type === 'event') {
        if (typeof m.at === 'number' && Number.isFinite(m.at)) f.at = m.at;
        const gateway = str(m.gateway);
        if (gateway !== undefined) f.gateway = gateway;
        const reason = str(m.reason);
        if (reason !== undefined) f.reason = reason;
      }
      return f;
    }
    case 'error':
      return {
        type: 'error',
        text: str(m.detail) ?? str(m.message) ?? str(m.error) ?? 'unknown error',
      };
    default:
      return null;
  }
}
