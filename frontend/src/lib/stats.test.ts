import { describe, expect, it } from 'vitest';
import { EMPTY_STATS, jitter, percentile, summarize } from './stats';

describe('percentile', () => {
  it('is null for no data', () => {
    expect(percentile([], 50)).toBeNull();
  });

  it('returns the only value for a single sample', () => {
    expect(percentile([7], 0)).toBe(7);
    expect(percentile([7], 99)).toBe(7);
  });

  it('interpolates between closest ranks', () => {
    const xs = [1, 2, 3, 4];
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile(xs, 50)).toBe(2.5);
    expect(percentile(xs, 100)).toBe(4);
    // rank = 0.95 * 3 = 2.85 -> 3 + 0.85 * (4 - 3)
    expect(percentile(xs, 95)).toBeCloseTo(3.85, 10);
  });

  it('matches numpy for 1..100', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBeCloseTo(50.5, 10);
    expect(percentile(xs, 95)).toBeCloseTo(95.05, 10);
    expect(percentile(xs, 99)).toBeCloseTo(99.01, 10);
  });

  it('rejects a percentile outside 0..100', () => {
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe('jitter', () => {
  it('needs two samples', () => {
    expect(jitter([])).toBeNull();
    expect(jitter([5])).toBeNull();
  });

  it('is the mean absolute difference of consecutive RTTs', () => {
    expect(jitter([10, 10, 10])).toBe(0);
    // |12-10| + |9-12| + |9-9| = 5 over 3 steps
    expect(jitter([10, 12, 9, 9])).toBeCloseTo(5 / 3, 10);
  });

  it('depends on order, unlike the percentiles', () => {
    expect(jitter([1, 2, 3, 4])).toBe(1);
    expect(jitter([1, 4, 2, 3])).toBe(2);
  });
});

describe('summarize', () => {
  it('is empty for no outcomes', () => {
    expect(summarize([])).toEqual(EMPTY_STATS);
  });

  it('counts lost pings as loss, not as zero latency', () => {
    const s = summarize([10, null, 20, null]);
    expect(s.received).toBe(2);
    expect(s.lost).toBe(2);
    expect(s.lossPct).toBe(50);
    expect(s.p50).toBe(15);
    expect(s.last).toBe(20);
    // Jitter skips the gap: only 10 -> 20.
    expect(s.jitter).toBe(10);
  });

  it('has loss but no latency figures when every ping was lost', () => {
    const s = summarize([null, null]);
    expect(s.lossPct).toBe(100);
    expect(s.last).toBeNull();
    expect(s.p50).toBeNull();
    expect(s.p99).toBeNull();
    expect(s.jitter).toBeNull();
  });

  it('takes percentiles over sorted values without mutating the input', () => {
    const input = [30, 10, 20];
    const s = summarize(input);
    expect(input).toEqual([30, 10, 20]);
    expect(s.p50).toBe(20);
    expect(s.last).toBe(20);
    expect(s.lossPct).toBe(0);
  });

  it('orders the percentiles', () => {
    const input = Array.from({ length: 500 }, (_, i) => ((i * 7919) % 97) + 1);
    const s = summarize(input);
    expect(s.p50).not.toBeNull();
    expect(s.p50! <= s.p95! && s.p95! <= s.p99!).toBe(true);
  });
});
