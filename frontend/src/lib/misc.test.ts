import { describe, expect, it } from 'vitest';
import { classifyClose } from './closeCodes';
import { formatAge, formatMs, formatPct, formatSince, sentence } from './format';
import { parseRetryAfter, resolveWsUrl } from './http';
import { DEFAULTS, historyCapacity, parseSettings } from './settings';

describe('classifyClose', () => {
  it('ends the session on 4404 and 4408', () => {
    expect(classifyClose(4404)).toMatchObject({ kind: 'ended', reason: 'ended' });
    expect(classifyClose(4408)).toMatchObject({ kind: 'ended', reason: 'expired' });
  });

  it('stops on policy and size violations, which would recur', () => {
    expect(classifyClose(1008, 'too many messages')).toMatchObject({ kind: 'fatal' });
    expect(classifyClose(1008, 'too many messages').message).toContain('too many messages');
    expect(classifyClose(1009).kind).toBe('fatal');
  });

  it('reconnects after drops, server restarts and internal errors', () => {
    for (const code of [1001, 1006, 1011, 1012, 1000]) {
      expect(classifyClose(code).kind).toBe('retry');
    }
  });
});

describe('1012 (service restart)', () => {
  it('reconnects, through another gateway replica', () => {
    expect(classifyClose(1012)).toEqual({
      kind: 'retry',
      message: 'The gateway is restarting; reconnecting through another replica.',
    });
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('12', now)).toBe(12);
    expect(parseRetryAfter(' 3 ', now)).toBe(3);
  });
  it('reads an HTTP-date', () => {
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
  });
  it('falls back when missing or garbage', () => {
    expect(parseRetryAfter(null, now)).toBe(5);
    expect(parseRetryAfter('soon', now, 7)).toBe(7);
    expect(parseRetryAfter('-1', now, 7)).toBe(7);
  });
});

describe('resolveWsUrl', () => {
  it('resolves a path against the page with the matching scheme', () => {
    expect(resolveWsUrl('/session/abc/ws', 'http://127.0.0.1:8000/')).toBe(
      'ws://127.0.0.1:8000/session/abc/ws',
    );
    expect(resolveWsUrl('/session/abc/ws', 'https://demo.example.com/?interval=50')).toBe(
      'wss://demo.example.com/session/abc/ws',
    );
  });
  it('keeps an absolute ws URL', () => {
    expect(resolveWsUrl('wss://x.example/ws', 'http://127.0.0.1/')).toBe('wss://x.example/ws');
  });
});

describe('parseSettings', () => {
  it('has defaults', () => {
    expect(parseSettings('')).toEqual(DEFAULTS);
  });
  it('reads and clamps the query string', () => {
    const s = parseSettings('?interval=250&timeout=1&window=abc');
    expect(s.intervalMs).toBe(250);
    expect(s.timeoutMs).toBe(200);
    expect(s.statsWindowSec).toBe(DEFAULTS.statsWindowSec);
    expect(parseSettings('?interval=1').intervalMs).toBe(50);
  });
  it('sizes the ring buffer for the history', () => {
    expect(historyCapacity({ ...DEFAULTS, intervalMs: 100, historySec: 180 })).toBe(1800);
  });
});

describe('format', () => {
  it('formats durations', () => {
    expect(formatMs(null)).toBe('—');
    expect(formatMs(1.234)).toBe('1.23 ms');
    expect(formatMs(12.34)).toBe('12.3 ms');
    expect(formatMs(250.4)).toBe('250 ms');
    expect(formatMs(1500)).toBe('1.50 s');
    expect(formatAge(5.9)).toBe('5 s');
    expect(formatAge(125)).toBe('2 min 05 s');
    expect(formatAge(3720)).toBe('1 h 02 min');
    expect(formatPct(0)).toBe('0 %');
    expect(formatPct(2.5)).toBe('2.5 %');
    expect(formatSince(0)).toBe('+0 ms');
    expect(formatSince(183.6)).toBe('+184 ms');
    expect(formatSince(1250)).toBe('+1.25 s');
  });

  it('ends server messages as sentences', () => {
    expect(sentence('try again shortly')).toBe('try again shortly.');
    expect(sentence('Done! ')).toBe('Done!');
    expect(sentence('')).toBe('');
  });
});
