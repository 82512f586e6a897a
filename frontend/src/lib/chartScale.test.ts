import { describe, expect, it } from 'vitest';
import { closestIndex, runs, timeTicks, valueTicks, xRange, yRange } from './chartScale';

describe('xRange', () => {
  it('shows the last window before now when there is no data', () => {
    expect(xRange([], 30, 1000)).toEqual([970, 1000]);
  });

  it('grows from the first ping until the window is full', () => {
    expect(xRange([100, 101, 105], 30, 2000)).toEqual([100, 130]);
  });

  it('spans the data once it is longer than the window', () => {
    expect(xRange([100, 150, 280], 30, 2000)).toEqual([100, 280]);
  });
});

describe('yRange', () => {
  it('starts at 0 and leaves 15 % above the highest RTT', () => {
    expect(yRange([10, null, 40, 20])).toEqual([0, 46]);
  });

  it('is at least 2 ms high', () => {
    expect(yRange([0.4, 0.5])).toEqual([0, 2]);
  });

  it('is 0..10 ms with nothing answered', () => {
    expect(yRange([])).toEqual([0, 10]);
    expect(yRange([null, null])).toEqual([0, 10]);
  });
});

describe('timeTicks', () => {
  it('picks the smallest clock step at least the gap apart', () => {
    // 180 s over 720 px is 4 px a second: 80 px needs 20 s, so 30 s.
    expect(timeTicks(1000, 1180, 720, 80, 0)).toEqual([1020, 1050, 1080, 1110, 1140, 1170]);
  });

  it('falls on round local times in a zone with a half-hour offset', () => {
    // 5 h 30 min east of UTC: local midnight is 18:30 UTC the day before.
    const offset = 5.5 * 3600;
    const localMidnight = 86_400 * 20_000 - offset;
    const ticks = timeTicks(localMidnight - 3600, localMidnight + 3600, 200, 80, offset);
    expect(ticks).toContain(localMidnight);
    for (const t of ticks) expect((t + offset) % 1800).toBe(0);
  });

  it('includes both ends when they fall on a step', () => {
    expect(timeTicks(0, 10, 1000, 80, 0)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe('valueTicks', () => {
  it('uses steps of 1, 2, 2.5 and 5 times a power of ten', () => {
    expect(valueTicks(0, 46, 150, 30)).toEqual({ values: [0, 10, 20, 30, 40], decimals: 0 });
    expect(valueTicks(0, 2, 150, 30)).toEqual({ values: [0, 0.5, 1, 1.5, 2], decimals: 1 });
    expect(valueTicks(0, 11.5, 150, 30).values).toEqual([0, 2.5, 5, 7.5, 10]);
    expect(valueTicks(0, 11.5, 150, 30).decimals).toBe(1);
  });

  it('keeps ticks at least the gap apart', () => {
    const { values } = valueTicks(0, 1234, 200, 30);
    const px = 200 / 1234;
    for (let i = 1; i < values.length; i++) {
      expect(((values[i] as number) - (values[i - 1] as number)) * px).toBeGreaterThanOrEqual(30);
    }
  });
});

describe('runs', () => {
  it('splits the line at lost and in-flight pings', () => {
    expect(runs([1, 2, null, 3, null, null, 4, 5])).toEqual([
      [0, 2],
      [3, 4],
      [6, 8],
    ]);
  });

  it('has no run without an answer', () => {
    expect(runs([])).toEqual([]);
    expect(runs([null, null])).toEqual([]);
  });
});

describe('closestIndex', () => {
  it('finds the ping sent nearest the pointer', () => {
    const xs = [10, 10.1, 10.2, 10.3];
    expect(closestIndex(xs, 10.14)).toBe(1);
    expect(closestIndex(xs, 10.16)).toBe(2);
    expect(closestIndex(xs, 5)).toBe(0);
    expect(closestIndex(xs, 99)).toBe(3);
    expect(closestIndex([7], 0)).toBe(0);
  });

  it('is null without pings', () => {
    expect(closestIndex([], 1)).toBeNull();
  });
});
