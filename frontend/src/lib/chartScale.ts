/**
 * The RTT chart's geometry without a canvas: the axes' ranges, where their
 * ticks go, the runs of answered pings between gaps, and which ping is under
 * the pointer. `src/components/rttPlot.ts` draws with it.
 */

/** Time-axis steps, seconds: each divides the next larger unit of the clock. */
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

/** RTT-axis steps, ms: 1, 2, 2.5 and 5 times a power of ten. */
const VALUE_STEPS = [-2, -1, 0, 1, 2, 3, 4].flatMap((e) => [1, 2, 2.5, 5].map((m) => m * 10 ** e));

/**
 * The time axis, epoch seconds: the data's span, but at least `minWindowSec`
 * from the first ping, so the line grows from the left until the history is
 * full. With no data, the last `minWindowSec` before `nowSec`.
 */
export function xRange(
  xs: readonly number[],
  minWindowSec: number,
  nowSec: number,
): [number, number] {
  const first = xs[0];
  const last = xs[xs.length - 1];
  if (first === undefined || last === undefined) return [nowSec - minWindowSec, nowSec];
  return last - first < minWindowSec ? [first, first + minWindowSec] : [first, last];
}

/** The RTT axis, ms: from 0 to 15 % above the highest RTT, at least 2 ms. */
export function yRange(ys: readonly (number | null)[]): [number, number] {
  let max = -Infinity;
  for (const y of ys) if (y !== null && y > max) max = y;
  const top = Number.isFinite(max) ? max * 1.15 : 10;
  return [0, Math.max(2, top)];
}

/** The smallest step that leaves at least `minGapPx` between ticks. */
function pickStep(
  span: number,
  lengthPx: number,
  minGapPx: number,
  steps: readonly number[],
): number {
  const perPx = span / Math.max(1, lengthPx);
  return steps.find((s) => s / perPx >= minGapPx) ?? (steps[steps.length - 1] as number);
}

/** Multiples of `step` in [min, max], counted from `origin`. */
function multiples(min: number, max: number, step: number, origin = 0): number[] {
  const out: number[] = [];
  const last = Math.floor((max - origin) / step + 1e-9);
  for (let k = Math.ceil((min - origin) / step - 1e-9); k <= last; k++) {
    out.push(k * step + origin + 0); // + 0: no -0 tick
  }
  return out;
}

/**
 * Time ticks (epoch seconds) at least `minGapPx` apart, on round local clock
 * times: `utcOffsetSec` is the local zone's offset (east of UTC positive), so
 * a 30 min step falls on :00 and :30 even where the offset is 5 h 30 min.
 */
export function timeTicks(
  min: number,
  max: number,
  lengthPx: number,
  minGapPx: number,
  utcOffsetSec: number,
): number[] {
  return multiples(min, max, pickStep(max - min, lengthPx, minGapPx, TIME_STEPS), -utcOffsetSec);
}

/** RTT ticks (ms) at least `minGapPx` apart, with the decimals their step needs. */
export function valueTicks(
  min: number,
  max: number,
  lengthPx: number,
  minGapPx: number,
): { values: number[]; decimals: number } {
  const step = pickStep(max - min, lengthPx, minGapPx, VALUE_STEPS);
  // The steps print exactly ("0.25", "2.5", "20"): their decimals are the labels'.
  const decimals = (String(step).split('.')[1] ?? '').length;
  const values = multiples(min, max, step).map((v) => Number(v.toFixed(decimals)));
  return { values, decimals };
}

/** Runs of answered pings, as [start, end) index pairs; nulls (lost, in flight) split them. */
export function runs(ys: readonly (number | null)[]): [number, number][] {
  const out: [number, number][] = [];
  let start = -1;
  for (let i = 0; i <= ys.length; i++) {
    const answered = i < ys.length && ys[i] !== null;
    if (answered && start < 0) start = i;
    if (!answered && start >= 0) {
      out.push([start, i]);
      start = -1;
    }
  }
  return out;
}

/** Index of the ping sent closest to `x` (xs ascending), or null with no pings. */
export function closestIndex(xs: readonly number[], x: number): number | null {
  if (xs.length === 0) return null;
  let lo = 0;
  let hi = xs.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if ((xs[mid] as number) <= x) lo = mid;
    else hi = mid;
  }
  return Math.abs((xs[hi] as number) - x) < Math.abs((xs[lo] as number) - x) ? hi : lo;
}
