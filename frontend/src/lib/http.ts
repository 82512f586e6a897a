/** Small pure helpers for the HTTP side of the contract. */

/**
 * Seconds to wait from a `Retry-After` header: either delay-seconds or an
 * HTTP-date (RFC 9110 section 10.2.3). Missing or unparsable: `fallback`.
 */
export function parseRetryAfter(value: string | null, nowMs: number, fallback = 5): number {
  if (value === null) return fallback;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  // An HTTP-date names its day and month; Date.parse alone would read "-1" as a year.
  if (!/^[A-Za-z]{3},/.test(v)) return fallback;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return fallback;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/**
 * The WebSocket URL for a `ws_url` from POST /session. A path (the contract's
 * form) is resolved against the page, with ws: or wss: matching the page's
 * http: or https:. An absolute ws(s) URL is used as it is.
 */
export function resolveWsUrl(wsUrl: string, pageHref: string): string {
  const url = new URL(wsUrl, pageHref);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  return url.toString();
}
