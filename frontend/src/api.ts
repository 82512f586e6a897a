/**
 * The provisioner's HTTP API (docs/architecture.md, "HTTP / WebSocket
 * contract"), same origin. Every non-2xx answer becomes an ApiError carrying
 * the server's `{error, detail}` body and, for 429, the Retry-After delay.
 */

import type {
  ErrorCode,
  FeatureConfig,
  PodStatus,
  PoolCounts,
  SessionCreated,
  SessionStatus as ServerSessionStatus,
} from './lib/contract.gen';
import { parseRetryAfter } from './lib/http';

// The bodies as the page reads them: the fields it uses, picked from the
// server's types (lib/contract.gen.ts, generated from its OpenAPI document).

export type CreatedSession = Pick<
  SessionCreated,
  'session_id' | 'ws_url' | 'pod' | 'warm' | 'assign_ms'
>;

export type SessionPod = Pick<PodStatus, 'name' | 'node' | 'started_at' | 'phase' | 'ready'> &
  Partial<Pick<PodStatus, 'phases'>>;

export interface SessionStatus
  extends Pick<ServerSessionStatus, 'replacements' | 'created_at' | 'expires_at'>,
    Partial<Pick<ServerSessionStatus, 'session_id'>> {
  /** null while the session has no pod (between a pod's death and its replacement). */
  pod: SessionPod | null;
}

/** GET /config: what this deployment offers the page. */
export type PageConfig = FeatureConfig;

export type PoolStatus = PoolCounts;

/**
 * An error's code: the server's `error` (ErrorCode), `network` when it could
 * not be reached, `http_<status>` when the answer carried no code (a proxy's
 * error page, say).
 */
export type ApiErrorCode = ErrorCode | 'network' | `http_${number}`;

export class ApiError extends Error {
  readonly status: number;
  readonly code: ApiErrorCode;
  readonly detail: string;
  /** Seconds to wait before retrying (429/503), else null. */
  readonly retryAfterSec: number | null;

  constructor(status: number, code: ApiErrorCode, detail: string, retryAfterSec: number | null) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.retryAfterSec = retryAfterSec;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

async function toError(res: Response): Promise<ApiError> {
  let code: ApiErrorCode = `http_${res.status}`;
  let detail = res.statusText || `HTTP ${res.status}`;
  try {
    const body: unknown = await res.json();
    if (isRecord(body)) {
      // The provisioner serving this page sends only its own codes: no list to check
      // against is shipped (it would only grow the bundle).
      if (typeof body.error === 'string') code = body.error as ErrorCode;
      if (typeof body.detail === 'string' && body.detail) detail = body.detail;
    }
  } catch {
    // Not JSON (a proxy's HTML error page, say): keep the status text.
  }
  const retry =
    res.status === 429 || res.status === 503
      ? parseRetryAfter(res.headers.get('Retry-After'), Date.now())
      : null;
  return new ApiError(res.status, code, detail, retry);
}

async function request(method: string, path: string, init: RequestInit = {}): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: { Accept: 'application/json' },
      cache: 'no-store',
      ...init,
    });
  } catch (exc) {
    if (exc instanceof DOMException && exc.name === 'AbortError') throw exc;
    throw new ApiError(0, 'network', 'The server could not be reached.', null);
  }
  if (!res.ok) throw await toError(res);
  return res;
}

function sessionPath(id: string): string {
  return `/session/${encodeURIComponent(id)}`;
}

export async function createSession(): Promise<CreatedSession> {
  const res = await request('POST', '/session');
  return (await res.json()) as CreatedSession;
}

export async function getSession(id: string): Promise<SessionStatus> {
  const res = await request('GET', sessionPath(id));
  return (await res.json()) as SessionStatus;
}

export async function killPod(id: string): Promise<void> {
  await request('DELETE', `${sessionPath(id)}/pod`);
}

/** Restart the provisioner replica holding this session's WebSocket. */
export async function killGateway(id: string): Promise<void> {
  await request('DELETE', `${sessionPath(id)}/gateway`);
}

export async function getConfig(): Promise<PageConfig> {
  const res = await request('GET', '/config');
  return (await res.json()) as PageConfig;
}

export async function endSession(id: string): Promise<void> {
  await request('DELETE', sessionPath(id));
}

/**
 * End the session while the page unloads: sendBeacon can only POST, so a
 * keepalive fetch carries the DELETE past the page's lifetime.
 */
export function endSessionOnUnload(id: string): void {
  try {
    void fetch(sessionPath(id), { method: 'DELETE', keepalive: true }).catch(() => undefined);
  } catch {
    // The page is going away; there is nobody left to tell.
  }
}

export async function getPool(signal?: AbortSignal): Promise<PoolStatus> {
  const res = await request('GET', '/pool', { signal });
  return (await res.json()) as PoolStatus;
}
