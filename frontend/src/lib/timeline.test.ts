import { describe, expect, it } from 'vitest';
import { GATEWAY_EVENTS } from './frames';
import { Timeline } from './timeline';

/** A timeline on a hand-driven clock: wall time is mono + 1000. */
function timeline(maxEntries?: number) {
  const clock = { now: 0 };
  const tl = new Timeline({ mono: () => clock.now, wall: () => 1000 + clock.now }, maxEntries);
  const at = (ms: number): Timeline => {
    clock.now = ms;
    return tl;
  };
  return { tl, at };
}

const since = (tl: Timeline): (number | null)[] => tl.entries.map((e) => e.sinceMs);
const texts = (tl: Timeline): string[] => tl.entries.map((e) => e.text);

describe('Timeline', () => {
  it('times a kill from the click to the first pong of the new pod', () => {
    const { tl, at } = timeline();
    at(0).add('Claimed pod a');
    at(100).killRequested('a');
    at(112).gatewayEvent('pod_killed', 'a', 'a');
    at(130).gatewayEvent('upstream_lost', 'a', 'a');
    at(300).gatewayEvent('pod_replaced', 'b', 'a');
    at(400).gatewayEvent('upstream_ready', 'b', 'a');
    at(450).pong('b', 'a');
    at(500).add('later');
    expect(since(tl)).toEqual([null, 0, 12, 30, 200, 300, 350, null]);
    expect(texts(tl)).toEqual([
      'Claimed pod a',
      'Kill requested for pod a',
      'Pod a killed',
      'Gateway lost its connection to pod a',
      'Replacement pod b created',
      'Gateway connected to pod b',
      'Pongs resumed from pod b',
      'later',
    ]);
    expect(tl.entries.map((e) => e.wallMs)).toEqual([1000, 1100, 1112, 1130, 1300, 1400, 1450, 1500]);
    expect(tl.inIncident).toBe(false);
  });

  it('ignores late pongs from the killed pod until the gateway reconnects', () => {
    const { tl, at } = timeline();
    at(0).killRequested('a');
    at(20).pong('a', 'a'); // answered by the dying pod before it went
    expect(tl.inIncident).toBe(true);
    at(50).gatewayEvent('upstream_lost', 'a', 'a');
    at(80).gatewayEvent('upstream_ready', 'a', 'a'); // same pod name, reconnected
    at(90).pong('a', 'a');
    expect(tl.inIncident).toBe(false);
    expect(tl.entries.at(-1)).toMatchObject({ text: 'Pongs resumed from pod a', sinceMs: 90, tone: 'ok' });
  });

  it('starts an incident on a disruption nobody asked for, with the pod answering then', () => {
    const { tl, at } = timeline();
    at(1000).gatewayEvent('upstream_lost', 'a', 'a');
    expect(tl.inIncident).toBe(true);
    at(1100).pong('a', 'a'); // a stray pong from the same pod does not end it
    expect(tl.inIncident).toBe(true);
    at(1250).gatewayEvent('upstream_ready', 'a', 'a');
    at(1300).pong('a', 'a');
    expect(since(tl)).toEqual([0, 250, 300]);
    expect(tl.inIncident).toBe(false);
  });

  it('ends an incident at once on a pong from another pod', () => {
    const { tl, at } = timeline();
    at(0).gatewayEvent('pod_killed', 'a', 'a');
    at(70).pong('b', 'a');
    expect(texts(tl)).toEqual(['Pod a killed', 'Pongs resumed from pod b']);
    expect(since(tl)).toEqual([0, 70]);
  });

  it('says when the cluster took the pod with its node, and times the move from then', () => {
    const { tl, at } = timeline();
    at(0).gatewayEvent('pod_killed', 'a', 'a', 'node_lost');
    expect(tl.inIncident).toBe(true);
    at(10).gatewayEvent('upstream_lost', 'a', 'a');
    at(900).gatewayEvent('pod_replaced', 'b', 'a');
    at(1200).gatewayEvent('upstream_ready', 'b', 'a');
    at(1250).pong('b', 'a');
    expect(texts(tl)).toEqual([
      'Pod a lost with its node: being replaced',
      'Gateway lost its connection to pod a',
      'Replacement pod b created',
      'Gateway connected to pod b',
      'Pongs resumed from pod b',
    ]);
    expect(since(tl)).toEqual([0, 10, 900, 1200, 1250]);
    expect(tl.entries[0]?.tone).toBe('warn');
  });

  it('ends the incident when the kill request fails', () => {
    const { tl, at } = timeline();
    at(0).killRequested('a');
    at(40).killFailed('pod_not_running');
    expect(tl.inIncident).toBe(false);
    expect(tl.entries.at(-1)).toMatchObject({
      text: 'Kill failed: pod_not_running',
      tone: 'error',
      sinceMs: 40,
    });
    at(60).pong('a', 'a');
    expect(tl.entries).toHaveLength(2);
  });

  it('notes a change of pod outside an incident, and only a change', () => {
    const { tl, at } = timeline();
    at(0).pong('a', 'a');
    at(10).pong(undefined, 'a');
    at(20).pong('b', null); // no pod known yet: nothing to compare
    expect(tl.entries).toHaveLength(0);
    at(30).pong('b', 'a');
    expect(tl.entries.map((e) => [e.text, e.sinceMs])).toEqual([['Now answered by pod b', null]]);
  });

  it('does not start an incident on events that are not disruptions', () => {
    const { tl, at } = timeline();
    for (const event of GATEWAY_EVENTS) {
      if (event === 'pod_killed' || event === 'upstream_lost') continue;
      at(5).gatewayEvent(event, 'a', 'a');
    }
    at(10).unknownEvent('pod_rescheduled', 'b');
    at(20).gatewayEvent('session_expiring', undefined, 'a');
    expect(tl.inIncident).toBe(false);
    expect(since(tl).every((s) => s === null)).toBe(true);
    expect(texts(tl).slice(-2)).toEqual(['Gateway event: pod_rescheduled b', 'Session expires soon']);
  });

  it('restarts the clock when the visitor kills during an incident', () => {
    const { tl, at } = timeline();
    at(0).gatewayEvent('upstream_lost', 'a', 'a');
    at(500).killRequested('a');
    at(600).pong('b', 'a');
    expect(since(tl)).toEqual([0, 0, 100]);
  });

  it('forgets everything on clear', () => {
    const { tl, at } = timeline();
    at(0).killRequested('a');
    tl.clear();
    expect(tl.entries).toEqual([]);
    expect(tl.inIncident).toBe(false);
    at(10).pong('b', 'a');
    expect(texts(tl)).toEqual(['Now answered by pod b']);
  });

  it('keeps a bounded history, a new array after each change', () => {
    const { tl, at } = timeline(3);
    const seen = new Set<readonly unknown[]>();
    for (let i = 0; i < 5; i++) {
      at(i).add(`e${i}`);
      seen.add(tl.entries);
    }
    expect(texts(tl)).toEqual(['e2', 'e3', 'e4']);
    expect(seen.size).toBe(5);
  });
});
