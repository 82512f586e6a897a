import { describe, expect, it } from 'vitest';
import { PingTracker } from './pingTracker';

const WALL0 = 1_700_000_000_000;

/** Send a ping at `mono` ms (wall clock in step). */
function send(t: PingTracker, mono: number): number {
  return t.send(mono, WALL0 + mono);
}

describe('PingTracker', () => {
  it('measures RTT from its own send time', () => {
    const t = new PingTracker({ capacity: 10, timeoutMs: 2000 });
    const seq = send(t, 1000);
    expect(t.pending).toBe(1);
    expect(t.receive(seq, 1012.5)).toBe(12.5);
    expect(t.received).toBe(1);
    expect(t.pending).toBe(0);
  });

  it('ignores unknown, duplicate and malformed pongs', () => {
    const t = new PingTracker({ capacity: 10, timeoutMs: 2000 });
    const seq = send(t, 0);
    expect(t.receive(seq + 1, 5)).toBeNull();
    expect(t.receive(0, 5)).toBeNull();
    expect(t.receive(-3, 5)).toBeNull();
    expect(t.receive(1.5, 5)).toBeNull();
    expect(t.receive(seq, 5)).toBe(5);
    expect(t.receive(seq, 6)).toBeNull();
    expect(t.received).toBe(1);
  });

  it('marks pings without a pong within the timeout as lost (null gaps)', () => {
    const t = new PingTracker({ capacity: 100, timeoutMs: 2000 });
    const a = send(t, 0);
    const b = send(t, 100);
    const c = send(t, 200);
    t.receive(a, 10);
    t.receive(c, 215);
    expect(t.expire(2099)).toBe(0);
    expect(t.expire(2100)).toBe(1); // b, sent at 100
    expect(t.lost).toBe(1);
    const [xs, ys] = t.chartData();
    expect(xs).toEqual([WALL0 / 1000, (WALL0 + 100) / 1000, (WALL0 + 200) / 1000]);
    expect(ys).toEqual([10, null, 15]);
    // Its pong arriving later changes nothing.
    expect(t.receive(b, 2500)).toBeNull();
    expect(t.received).toBe(2);
    void b;
  });

  it('counts a pong slower than the timeout as lost even before expire() runs', () => {
    const t = new PingTracker({ capacity: 10, timeoutMs: 2000 });
    const seq = send(t, 0);
    expect(t.receive(seq, 2500)).toBeNull();
    expect(t.lost).toBe(1);
    expect(t.chartData()[1]).toEqual([null]);
    expect(t.expire(5000)).toBe(0);
    expect(t.lost).toBe(1);
  });

  it('draws in-flight pings as gaps but leaves them out of the stats', () => {
    const t = new PingTracker({ capacity: 10, timeoutMs: 2000 });
    t.receive(send(t, 0), 20);
    send(t, 100);
    expect(t.chartData()[1]).toEqual([20, null]);
    const s = t.stats(150, 30_000);
    expect(s.received).toBe(1);
    expect(s.lost).toBe(0);
    expect(s.lossPct).toBe(0);
  });

  it('records unsent ticks (no connection) as lost at once', () => {
    const t = new PingTracker({ capacity: 10, timeoutMs: 2000 });
    t.receive(send(t, 0), 10);
    t.skip(100, WALL0 + 100);
    t.skip(200, WALL0 + 200);
    t.receive(send(t, 300), 312);
    expect(t.chartData()[1]).toEqual([10, null, null, 12]);
    expect(t.lost).toBe(2);
    expect(t.stats(400, 10_000).lossPct).toBe(50);
  });

  it('abandons everything in flight when the connection closes', () => {
    const t = new PingTracker({ capacity: 10, timeoutMs: 2000 });
    const a = send(t, 0);
    send(t, 100);
    send(t, 200);
    t.receive(a, 5);
    expect(t.abandonPending()).toBe(2);
    expect(t.pending).toBe(0);
    expect(t.lost).toBe(2);
    expect(t.chartData()[1]).toEqual([5, null, null]);
    expect(t.expire(10_000)).toBe(0);
  });

  it('keeps only the last `capacity` pings, oldest first', () => {
    const t = new PingTracker({ capacity: 4, timeoutMs: 2000 });
    for (let i = 0; i < 10; i++) {
      const seq = send(t, i * 100);
      t.receive(seq, i * 100 + i + 1);
    }
    const [xs, ys] = t.chartData();
    expect(ys).toEqual([7, 8, 9, 10]);
    expect(xs).toEqual([6, 7, 8, 9].map((i) => (WALL0 + i * 100) / 1000));
    // A pong for an evicted ping finds nothing.
    expect(t.receive(2, 5000)).toBeNull();
  });

  it('counts an in-flight ping overwritten by the ring as lost', () => {
    const t = new PingTracker({ capacity: 2, timeoutMs: 10_000 });
    send(t, 0);
    send(t, 1);
    send(t, 2); // evicts seq 1, still in flight
    expect(t.lost).toBe(1);
    expect(t.pending).toBe(2);
  });

  it('computes rolling-window stats over recent sends only', () => {
    const t = new PingTracker({ capacity: 1000, timeoutMs: 2000 });
    // 0..9 s: 100 ms RTTs; 10..19 s: 10 ms RTTs and one loss.
    for (let i = 0; i < 20; i++) {
      const mono = i * 1000;
      const seq = send(t, mono);
      if (i === 15) continue;
      t.receive(seq, mono + (i < 10 ? 100 : 10));
    }
    t.expire(30_000);
    const recent = t.stats(19_500, 10_000);
    expect(recent.received).toBe(9);
    expect(recent.lost).toBe(1);
    expect(recent.lossPct).toBeCloseTo(10, 10);
    expect(recent.p50).toBe(10);
    expect(recent.p99).toBe(10);
    expect(recent.jitter).toBe(0);
    const all = t.stats(19_500, 60_000);
    expect(all.received).toBe(19);
    expect(all.p99).toBe(100);
  });

  it('bumps its version on every change (the chart redraws only then)', () => {
    const t = new PingTracker({ capacity: 10, timeoutMs: 100 });
    const v0 = t.version;
    const seq = send(t, 0);
    const v1 = t.version;
    expect(v1).toBeGreaterThan(v0);
    t.expire(50);
    expect(t.version).toBe(v1);
    t.receive(seq, 20);
    expect(t.version).toBeGreaterThan(v1);
  });

  it('stays bounded and correct over a long run with random loss', () => {
    const cap = 1800;
    const t = new PingTracker({ capacity: cap, timeoutMs: 2000 });
    let seed = 42;
    const rnd = () => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    };
    let answered = 0;
    let dropped = 0;
    const inflight: [number, number][] = [];
    for (let i = 0; i < 20_000; i++) {
      const now = i * 100;
      t.expire(now);
      while (inflight.length > 0 && inflight[0]![1] <= now) {
        const [seq, at] = inflight.shift()!;
        t.receive(seq, at);
      }
      const seq = send(t, now);
      if (rnd() < 0.05) dropped++;
      else {
        answered++;
        inflight.push([seq, now + 5 + rnd() * 20]);
      }
    }
    for (const [seq, at] of inflight) t.receive(seq, at);
    t.expire(20_000 * 100 + 5000);
    expect(t.received).toBe(answered);
    expect(t.lost).toBe(dropped);
    expect(t.chartData()[0]).toHaveLength(cap);
  });
});
