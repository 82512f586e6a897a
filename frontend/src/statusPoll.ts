/**
 * Status polling: GET /session refreshes the pod card every
 * STATUS_REFRESH_MS (and whenever an event calls refresh()); a 404 ends the
 * session.
 */

import { ApiError } from './api';
import type { SessionContext } from './sessionContext';
import type { SessionView } from './sessionView';

/** How often GET /session refreshes the pod card (also refreshed on events). */
const STATUS_REFRESH_MS = 10_000;

export class StatusPoll {
  private readonly ctx: SessionContext;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(ctx: SessionContext) {
    this.ctx = ctx;
  }

  start(): void {
    this.timer = setInterval(() => void this.refresh(), STATUS_REFRESH_MS);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  async refresh(): Promise<void> {
    const ctx = this.ctx;
    const s = ctx.view().session;
    if (!s || ctx.view().phase !== 'live') return;
    const gen = ctx.generation();
    try {
      const status = await ctx.deps.api.getSession(s.session_id);
      if (gen !== ctx.generation() || ctx.view().phase !== 'live') return;
      const pod = ctx.view().pod;
      const patch: Partial<SessionView> = { status };
      const sp = status.pod;
      if (pod && sp && sp.name === pod.name && pod.startedAt !== sp.started_at) {
        patch.pod = { ...pod, startedAt: sp.started_at, node: pod.node || sp.node };
      }
      ctx.update(patch);
    } catch (exc) {
      if (gen !== ctx.generation()) return;
      // A 404 means the session is over; other failures (network blips) are
      // retried by the next refresh.
      if (exc instanceof ApiError && exc.status === 404) {
        ctx.finish('ended', 'Your session has ended.');
      }
    }
  }
}
