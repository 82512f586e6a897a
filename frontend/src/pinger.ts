/**
 * The ping beat: one ping per interval over the gateway socket, recorded in
 * the session's PingTracker.
 *
 * The gateway drops pings while it has no connection to the pod, and says so
 * with `upstream_lost` / `upstream_ready` events. Pings are therefore held
 * until the pod is reachable, and ticks while it is not (or while the socket
 * itself is down) are recorded as lost without being sent: the chart shows
 * the outage as a gap of the right width at once, not after the timeout.
 */

import type { PingTracker } from './lib/pingTracker';

/**
 * A gateway that never says upstream_ready (another implementation) gets
 * pings this long after the socket opens anyway.
 */
export const UPSTREAM_WAIT_MS = 1000;

/** After this long without upstream_ready, pings go out again as probes. */
export const UPSTREAM_PROBE_MS = 3000;

export interface PingerOptions {
  intervalMs: number;
  /** The current session's tracker. */
  tracker: () => PingTracker;
  /** Send a text frame; false when there is no open socket. */
  send: (frame: string) => boolean;
  /** True when a frame could be sent now (socket open). */
  canSend: () => boolean;
  mono: () => number;
  wall: () => number;
}

export class Pinger {
  private readonly o: PingerOptions;
  private beat: ReturnType<typeof setInterval> | null = null;
  private holdTimer: ReturnType<typeof setTimeout> | null = null;
  /** mono time of upstream_lost, until upstream_ready or a pong. */
  private downSince: number | null = null;

  constructor(options: PingerOptions) {
    this.o = options;
  }

  /** The socket opened: start once the gateway reaches the pod (or after a while). */
  awaitUpstream(): void {
    this.stop();
    this.downSince = null;
    this.holdTimer = setTimeout(() => this.start(), UPSTREAM_WAIT_MS);
  }

  /** Ping at once (a first pong should not wait for the beat), then on the beat. */
  start(): void {
    this.stop();
    this.tick();
    this.beat = setInterval(() => this.tick(), this.o.intervalMs);
  }

  /** Keep the clock while disconnected: every tick is a gap until start(). */
  keepClock(): void {
    this.stop();
    this.beat = setInterval(() => this.tick(), this.o.intervalMs);
  }

  stop(): void {
    if (this.beat !== null) clearInterval(this.beat);
    this.beat = null;
    if (this.holdTimer !== null) clearTimeout(this.holdTimer);
    this.holdTimer = null;
  }

  /** Gateway: no pod. Pings relayed to the dead one will never be answered. */
  upstreamLost(): void {
    this.downSince = this.o.mono();
    this.o.tracker().abandonPending();
  }

  /** Gateway: connected to a pod. Ping now: that pong marks the recovery. */
  upstreamReady(): void {
    this.downSince = null;
    this.start();
  }

  /** Any pong proves the path works. */
  pongArrived(): void {
    this.downSince = null;
  }

  private tick(): void {
    const t = this.o.tracker();
    const mono = this.o.mono();
    t.expire(mono);
    const podDown = this.downSince !== null && mono - this.downSince < UPSTREAM_PROBE_MS;
    if (!podDown && this.o.canSend()) {
      const seq = t.send(mono, this.o.wall());
      this.o.send(JSON.stringify({ type: 'ping', seq, t: Math.round(mono * 1000) / 1000 }));
    } else {
      t.skip(mono, this.o.wall());
    }
  }
}
