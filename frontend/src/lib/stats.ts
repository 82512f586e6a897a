/**
 * Latency statistics over a set of round-trip times.
 *
 * Pure functions: no clock, no DOM. `summarize` is what the stats panel shows;
 * the helpers are exported for the tests and for anyone who needs one figure.
 */

export interface RttStats {
  /** Most recent answered ping in the window (ms), or null if none. */
  last: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  /** Mean absolute difference between consecutive RTTs (ms), RFC 3550 style. */
  jitter: number | null;
  /** Lost / (received + lost), 0..100. Pings still in flight are not counted. */
  lossPct: number | null;
  received: number;
  lost: number;
}

export const EMPTY_STATS: RttStats = {
  last: null,
  p50: null,
  p95: null,
  p99: null,
  jitter: null,
  lossPct: null,
  received: 0,
  lost: 0,
};

/**
 * Percentile of an ascending-sorted array with linear interpolation between
 * closest ranks (the "R-7" method used by numpy's default and spreadsheets).
 * Returns null for an empty array.
 */
export function percentile(sorted: readonly number[], p: number): number | null {
  const n = sorted.length;
  if (n === 0) return null;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile out of range: ${p}`);
  const rank = (p / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (rank - lo);
}

/**
 * Jitter as the mean absolute difference between consecutive RTTs, in the
 * order they were sent. Fewer than two values have no jitter (null).
 */
export function jitter(rtts: readonly number[]): number | null {
  if (rtts.length < 2) return null;
  let sum = 0;
  for (let i = 1; i < rtts.length; i++) {
    sum += Math.abs((rtts[i] as number) - (rtts[i - 1] as number));
  }
  return sum / (rtts.length - 1);
}

/**
 * Summarize a window of ping outcomes in send order: a number is an answered
 * ping's RTT in ms, null a lost one. Pings still in flight must be left out by
 * the caller.
 */
export function summarize(outcomes: readonly (number | null)[]): RttStats {
  const rtts: number[] = [];
  let lost = 0;
  for (const o of outcomes) {
    if (o === null) lost++;
    else rtts.push(o);
  }
  const total = rtts.length + lost;
  if (total === 0) return EMPTY_STATS;
  const sorted = [...rtts].sort((x, y) => x - y);
  return {
    last: rtts.length > 0 ? (rtts[rtts.length - 1] as number) : null,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    jitter: jitter(rtts),
    lossPct: (lost / total) * 100,
    received: rtts.length,
    lost,
  };
}
