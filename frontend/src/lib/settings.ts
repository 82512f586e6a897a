/**
 * Page settings from the query string, e.g. `/?interval=250&timeout=3000`.
 * Out-of-range values are clamped, so a typo cannot make the page ping the
 * gateway into a rate-limit close (1008).
 */

export interface Settings {
  /** ms between pings. */
  intervalMs: number;
  /** ms after which an unanswered ping counts as lost. */
  timeoutMs: number;
  /** Chart history, seconds (the ring buffer holds history / interval pings). */
  historySec: number;
  /** Rolling window of the stats panel, seconds. */
  statsWindowSec: number;
}

export const DEFAULTS: Settings = {
  intervalMs: 100,
  timeoutMs: 2000,
  historySec: 180,
  statsWindowSec: 30,
};

const LIMITS: Record<keyof Settings, [number, number]> = {
  intervalMs: [50, 5000],
  timeoutMs: [200, 30_000],
  historySec: [30, 900],
  statsWindowSec: [5, 600],
};

const PARAMS: Record<string, keyof Settings> = {
  interval: 'intervalMs',
  timeout: 'timeoutMs',
  history: 'historySec',
  window: 'statsWindowSec',
};

export function parseSettings(search: string): Settings {
  const q = new URLSearchParams(search);
  const out: Settings = { ...DEFAULTS };
  for (const [param, key] of Object.entries(PARAMS)) {
    const raw = q.get(param);
    if (raw === null || raw.trim() === '') continue;
    const n = Number(raw);
    if (!Number.isFinite(n)) continue;
    const [lo, hi] = LIMITS[key];
    out[key] = Math.min(hi, Math.max(lo, n));
  }
  return out;
}

/** Ring buffer size for the chart history at the ping interval. */
export function historyCapacity(s: Settings): number {
  return Math.max(2, Math.ceil((s.historySec * 1000) / s.intervalMs));
}
