import { describe, expect, it } from 'vitest';
import { buildAnatomy, formatSpan, hasRanges, PHASES, type AnatomyInput } from './anatomy';

const T = 1_800_000_000; // epoch seconds

function local(): AnatomyInput {
  // Millisecond times (the local driver's clock): one figure per phase.
  return {
    killedAtMs: T * 1000,
    phases: {
      created: T + 0.004,
      scheduled: T + 0.005,
      started: T + 0.017,
      ready: T + 0.142,
      resolution: 0.001,
    },
    connectedAtMs: T * 1000 + 150,
    connectedSeenMs: 50_000,
    firstPongSeenMs: 50_012,
  };
}

describe('buildAnatomy', () => {
  it('gives every phase, in order, with its duration since the one before', () => {
    const steps = buildAnatomy(local());
    expect(steps.map((s) => s.phase)).toEqual([...PHASES]);
    expect(steps.map((s) => s.text)).toEqual([
      '4.0 ms',
      '1.0 ms',
      '12 ms',
      '125 ms',
      '8.0 ms',
      '12 ms',
    ]);
    expect(steps.every((s) => s.lo === s.hi)).toBe(true);
    expect(hasRanges(steps)).toBe(false);
  });

  it('shows second-resolution Kubernetes times as the ranges they allow', () => {
    // Killed at 10.700; the pod's times all fall in second 10, or 11 for Ready.
    const steps = buildAnatomy({
      killedAtMs: (T + 10.7) * 1000,
      phases: { created: T + 10, scheduled: T + 10, started: T + 10, ready: T + 11, resolution: 1 },
      connectedAtMs: (T + 11.4) * 1000,
      connectedSeenMs: 1000,
      firstPongSeenMs: 1009,
    });
    const by = Object.fromEntries(steps.map((s) => [s.phase, s]));
    // Created in [10, 11), after the kill at 10.7: within 300 ms of it.
    expect(by.created).toMatchObject({ lo: 0, text: '< 300 ms' });
    expect(by.created!.hi).toBeCloseTo(300);
    // Both in second 10: less than a second apart, and nothing finer is claimed.
    expect(by.scheduled).toMatchObject({ lo: 0, hi: 1000, text: '< 1.00 s' });
    // 10 -> 11: anywhere from just over 0 to just under 2 s.
    expect(by.ready).toMatchObject({ lo: 0, hi: 2000 });
    // Ready in [11, 12), connected at 11.4: under 400 ms.
    expect(by.connected!.text).toBe('< 400 ms');
    expect(by['first-pong']!.text).toBe('9.0 ms');
    expect(hasRanges(steps)).toBe(true);
  });

  it('keeps a phase the server did not record, and times the next from the last known', () => {
    const input = local();
    input.phases.scheduled = null;
    const steps = buildAnatomy(input);
    expect(steps.map((s) => s.phase)).toEqual([...PHASES]);
    expect(steps[1]).toMatchObject({ phase: 'scheduled', lo: null, text: 'not recorded' });
    expect(steps[2]!.text).toBe('13 ms'); // created -> started
  });

  it('never shows a negative duration', () => {
    const input = local();
    input.connectedAtMs = T * 1000 + 100; // a gateway clock a little behind
    const steps = buildAnatomy(input);
    expect(steps[4]).toMatchObject({ lo: 0, hi: 0, text: '0.0 ms' });
  });
});

describe('formatSpan', () => {
  it('always carries a unit', () => {
    expect(formatSpan(12, 12)).toBe('12 ms');
    expect(formatSpan(0, 1000)).toBe('< 1.00 s');
    expect(formatSpan(120, 1100)).toBe('120 ms – 1.10 s');
    expect(formatSpan(2500, 2500)).toBe('2.50 s');
  });
});
