import { describe, expect, it } from 'vitest';
import { GATEWAY_EVENTS, isGatewayEvent, parseFrame } from './frames';

describe('parseFrame', () => {
  it('reads pongs as the echo server sends them', () => {
    const raw =
      '{"type":"pong","seq":7,"t":123.4,"pod":"echo-a","node":"n1","server_ts":1795334474493.3}';
    expect(parseFrame(raw)).toEqual({ type: 'pong', seq: 7, pod: 'echo-a', node: 'n1' });
  });

  it('reads gateway events, with or without a pod', () => {
    expect(parseFrame('{"type": "event", "event": "upstream_lost", "pod": "echo-a", "at": 1}')).toEqual(
      { type: 'event', event: 'upstream_lost', pod: 'echo-a', at: 1 },
    );
    expect(parseFrame('{"type":"event","event":"session_expiring","pod":"","at":1}')).toEqual({
      type: 'event',
      event: 'session_expiring',
      at: 1,
    });
  });

  it('knows every event the gateway sends, and tells other names apart', () => {
    for (const event of GATEWAY_EVENTS) {
      expect(parseFrame(JSON.stringify({ type: 'event', event, pod: 'p', at: 1 }))).toEqual({
        type: 'event',
        event,
        pod: 'p',
        at: 1,
      });
    }
    expect(parseFrame('{"type":"event","event":"pod_moved","pod":"echo-b","at":1}')).toEqual({
      type: 'unknown_event',
      name: 'pod_moved',
      pod: 'echo-b',
    });
    expect(parseFrame('{"type":"event","event":"pod_moved","at":1}')).toEqual({
      type: 'unknown_event',
      name: 'pod_moved',
    });
    expect(isGatewayEvent('upstream_ready')).toBe(true);
    expect(isGatewayEvent('pod_ready')).toBe(false); // the backend's, never on the wire
  });

  it('keeps the reason the cluster took a pod, and drops a malformed one', () => {
    expect(parseFrame('{"type":"event","event":"pod_killed","pod":"p","at":1,"reason":"node_lost"}')).toEqual({
      type: 'event',
      event: 'pod_killed',
      pod: 'p',
      at: 1,
      reason: 'node_lost',
    });
    expect(parseFrame('{"type":"event","event":"pod_killed","pod":"p","reason":7}')).toEqual({
      type: 'event',
      event: 'pod_killed',
      pod: 'p',
    });
  });

  it("keeps an event's server time and the replica that relays it", () => {
    expect(
      parseFrame('{"type":"event","event":"upstream_ready","pod":"p","at":1.5,"gateway":"g-1"}'),
    ).toEqual({ type: 'event', event: 'upstream_ready', pod: 'p', at: 1.5, gateway: 'g-1' });
    expect(parseFrame('{"type":"event","event":"pod_killed","at":"soon"}')).toEqual({
      type: 'event',
      event: 'pod_killed',
    });
  });

  it('reads error frames by their most useful field', () => {
    expect(parseFrame('{"type":"error","error":"bad_ping","detail":"ping needs a seq"}')).toEqual({
      type: 'error',
      text: 'ping needs a seq',
    });
    expect(parseFrame('{"type":"error","error":"bad_json"}')).toEqual({
      type: 'error',
      text: 'bad_json',
    });
  });

  it('ignores anything malformed or unknown', () => {
    for (const raw of [
      'not json',
      '42',
      'null',
      '[]',
      '{"type":"pong"}',
      '{"type":"pong","seq":"1"}',
      '{"type":"pong","seq":1.5}',
      '{"type":"event"}',
      '{"type":"hello"}',
    ]) {
      expect(parseFrame(raw)).toBeNull();
    }
    expect(parseFrame(new ArrayBuffer(4))).toBeNull();
  });
});
