/**
 * Frames from the gateway (DESIGN.md, "HTTP / WebSocket contract"), parsed
 * into a small typed union. Anything malformed or unknown is null: a bad
 * frame is ignored rather than trusted.
 */

export type GatewayFrame =
  | { type: 'pong'; seq: number; pod?: string; node?: string }
  | { type: 'event'; event: string; pod?: string }
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
      const event = str(m.event);
      if (event === undefined) return null;
      const pod = str(m.pod);
      return pod === undefined ? { type: 'event', event } : { type: 'event', event, pod };
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
