/**
 * The replacement anatomy: from a pod kill (clicked or heard) through the
 * gateway connecting to the new pod to its first pong, then GET /session for
 * the new pod's start phases (retried, a replica's watch may be a moment
 * behind) and the anatomy on the timeline.
 */

import { buildAnatomy } from './lib/anatomy';
import type { SessionContext } from './sessionContext';

/** Asking for a replacement's start phases: tries, and the pause between them. */
const ANATOMY_TRIES = 8;
const ANATOMY_RETRY_MS = 250;

/** A pod being replaced: what the replacement anatomy is built from. */
interface Replacement {
  /** Epoch ms of the kill: the gateway's pod_killed `at` once heard, the click before. */
  killedAtMs: number;
  heardKill: boolean;
  oldPod: string | null;
  newPod: string | null;
  /** The gateway's upstream_ready `at` for the new pod, and when the page saw it. */
  connectedAtMs: number;
  connectedSeenMs: number;
}

export class ReplacementAnatomy {
  private readonly ctx: SessionContext;
  private replacement: Replacement | null = null;

  constructor(ctx: SessionContext) {
    this.ctx = ctx;
  }

  /** A kill was clicked (heard = false) or pod_killed heard with its `at`. */
  starts(atMs: number, heard: boolean, oldPod: string | null): void {
    this.replacement = {
      killedAtMs: atMs,
      heardKill: heard,
      oldPod,
      newPod: null,
      connectedAtMs: 0,
      connectedSeenMs: 0,
    };
  }

  /** No replacement to follow (the kill failed, or the session is torn down). */
  clear(): void {
    this.replacement = null;
  }

  /** The gateway's pod_killed event. */
  podKilled(pod: string | undefined, at: number | undefined): void {
    const r = this.replacement;
    if (r === null) {
      this.starts(at ?? this.ctx.deps.wall(), at !== undefined, pod ?? null);
    } else if (!r.heardKill && at !== undefined) {
      r.killedAtMs = at; // the server's clock, like the pod's own times
      r.heardKill = true;
    }
  }

  /** The gateway's upstream_ready event. */
  upstreamReady(pod: string | undefined, at: number | undefined): void {
    const r = this.replacement;
    if (r !== null && pod && pod !== r.oldPod) {
      r.newPod = pod;
      r.connectedSeenMs = this.ctx.deps.wall();
      r.connectedAtMs = at ?? r.connectedSeenMs;
    }
  }

  /** A pong arrived: if the gateway is connected to the replacement, record its anatomy. */
  pong(): void {
    const r = this.replacement;
    if (r !== null && r.newPod !== null) {
      // The first pong since the gateway connected to the replacement (it relays
      // only from the pod it is connected to, whatever name the pong carries).
      this.replacement = null;
      void this.record(r, this.ctx.deps.wall());
    }
  }

  /**
   * The replacement answered: ask for its start phases (a replica's watch may
   * be a moment behind, so a few times) and put them on the timeline.
   */
  private async record(r: Replacement, firstPongSeenMs: number): Promise<void> {
    const ctx = this.ctx;
    const s = ctx.view().session;
    if (!s || r.newPod === null) return;
    const gen = ctx.generation();
    for (let attempt = 0; attempt < ANATOMY_TRIES; attempt++) {
      if (attempt > 0) await new Promise((ok) => setTimeout(ok, ANATOMY_RETRY_MS));
      if (gen !== ctx.generation()) return;
      let status;
      try {
        status = await ctx.deps.api.getSession(s.session_id);
      } catch {
        continue;
      }
      if (gen !== ctx.generation()) return;
      const pod = status.pod;
      if (pod?.name !== r.newPod || !pod.phases || pod.phases.ready === null) continue;
      const steps = buildAnatomy({
        killedAtMs: r.killedAtMs,
        phases: pod.phases,
        connectedAtMs: r.connectedAtMs,
        connectedSeenMs: r.connectedSeenMs,
        firstPongSeenMs,
      });
      ctx.timeline.addAnatomy(r.newPod, steps);
      ctx.update({});
      return;
    }
  }
}
