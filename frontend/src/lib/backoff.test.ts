import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff';

describe('Backoff', () => {
  it('doubles the upper bound each attempt up to the maximum', () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0.999999 });
    const delays = Array.from({ length: 7 }, () => b.next());
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
    expect(b.attempts).toBe(7);
  });

  it('never waits less than half the bound (equal jitter)', () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([50, 100, 200, 400, 500]);
  });

  it('spreads delays with randomness inside [bound/2, bound]', () => {
    const b = new Backoff({ baseMs: 500, maxMs: 15_000 });
    for (let i = 0; i < 40; i++) {
      const bound = Math.min(15_000, 500 * 2 ** i);
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(bound / 2);
      expect(d).toBeLessThanOrEqual(bound);
    }
  });

  it('gives different browsers different delays', () => {
    let seed = 1;
    const lcg = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const delays = new Set(
      Array.from({ length: 20 }, () => new Backoff({ random: lcg }).next()),
    );
    expect(delays.size).toBeGreaterThan(5);
  });

  it('starts over after reset', () => {
    const b = new Backoff({ baseMs: 100, maxMs: 10_000, random: () => 1 - Number.EPSILON });
    b.next();
    b.next();
    b.next();
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(100);
  });

  it('survives very many attempts without overflow', () => {
    const b = new Backoff({ baseMs: 100, maxMs: 5000, random: () => 0.5 });
    let d = 0;
    for (let i = 0; i < 2000; i++) d = b.next();
    expect(d).toBe(3750);
  });

  it('rejects nonsense bounds', () => {
    expect(() => new Backoff({ baseMs: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ baseMs: 1000, maxMs: 10 })).toThrow(RangeError);
  });
});
