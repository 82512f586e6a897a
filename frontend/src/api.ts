/**
 * The provisioner's HTTP API (docs/architecture.md, "HTTP / WebSocket
 * contract"), same origin. Every non-2xx answer becomes an ApiError carrying
 * the server's `{error, detail}` body and, for 429, the Retry-After delay.
 */

import type { PodPhases } from './lib/anatomy';
import { parseRetryAfter } from './lib/http';

export interface PodInfo {
  name: string;
  node: string;
  /** Epoch seconds. */
  started_at: number;
}

export interface CreatedSession {
  session_id: string;
  ws_url: string;
  pod: PodInfo;
  warm: boolean;
  assign_ms: number;
}

export interface SessionStatus {
  session_id?: string;
  /** null while the session has no pod (between a pod's death and its replacement). */
  pod: (PodInfo & { phase: string; ready: boolean; phases?: PodPhases | null }) | null;
  replacements: number;
  /** Epoch seconds. */
  created_at: number;
  expires_at: number;
}

/** GET /config: what this deployment offers the page. */
export interface PageConfig {
  /** Whether "Kill my gateway" is offered (Kubernetes, two replicas or more, allowed). */
  gateway_kill: boolean;
}

export interface PoolStatus {
  warm: number;
  starting: number;
  assigned: number;
  target: number;
  capacity: number;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  /** Seconds to wait before retrying (429/503), else null. */
  readonly retryAfterSec: number | null;

  constructor(status: number, code: string, detail: string, retryAfterSec: number | null) {
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
  let code = `http_${res.status}`;
  let detail = res.statusText || `HTTP ${res.status}`;
  try {
    const body: unknown = await res.json();
    if (isRecord(body)) {
      if (typeof body.error === 'string') code = body.error;
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
