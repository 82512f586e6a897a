/**
 * Ping bookkeeping: which pings are in flight, which were answered (RTT) and
 * which were lost, in a bounded ring buffer that the chart reads directly.
 *
 * Every ping gets the next sequence number and a slot `seq % capacity`, so a
 * pong finds its ping in O(1) and memory never grows. A ping with no pong
 * after `timeoutMs` is lost: its value becomes null, which the chart draws as
 * a gap (never as zero). Ticks that could not be sent at all (no connection)
 * are recorded as lost too, so an outage shows as a gap of the right width.
 *
 * Times: `mono` is a monotonic clock in ms (performance.now()) for RTTs and
 * timeouts; `wallMs` is epoch ms for the chart's time axis.
 */

import { EMPTY_STATS, summarize, type RttStats } from './stats';

export interface PingTrackerOptions {
  /** Number of pings kept (e.g. 3 minutes at 100 ms = 1800). */
  capacity: number;
  /** A ping not answered within this many ms is lost. */
  timeoutMs: number;
}

/** undefined: in flight; null: lost; number: RTT in ms. */
type Outcome = number | null | undefined;

export class PingTracker {
  readonly capacity: number;
  readonly timeoutMs: number;
  private readonly seqs: Float64Array;
  private readonly sentAt: Float64Array;
  private readonly wallSec: Float64Array;
  private readonly outcomes: Outcome[];
  /** Next sequence number to hand out; seqs start at 1. */
  private nextSeq = 1;
  /** Every seq below this one is resolved (answered, lost or evicted). */
  private firstPending = 1;
  private receivedTotal = 0;
  private lostTotal = 0;
  /** Bumped on every change: cheap "is the chart stale?" check. */
  private ver = 0;

  constructor({ capacity, timeoutMs }: PingTrackerOptions) {
    if (!Number.isInteger(capacity) || capacity < 2) {
      throw new RangeError(`capacity must be an integer >= 2, got ${capacity}`);
    }
    if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0, got ${timeoutMs}`);
    this.capacity = capacity;
    this.timeoutMs = timeoutMs;
    this.seqs = new Float64Array(capacity).fill(-1);
    this.sentAt = new Float64Array(capacity);
    this.wallSec = new Float64Array(capacity);
    this.outcomes = new Array<Outcome>(capacity).fill(undefined);
  }

  get version(): number {
    return this.ver;
  }

  /** Pongs received since the tracker was created. */
  get received(): number {
    return this.receivedTotal;
  }

  /** Pings lost (timed out or never sent) since the tracker was created. */
  get lost(): number {
    return this.lostTotal;
  }

  /** Pings in flight right now. */
  get pending(): number {
    let n = 0;
    for (let s = this.firstPending; s < this.nextSeq; s++) {
      if (this.outcomes[s % this.capacity] === undefined && this.seqs[s % this.capacity] === s) {
        n++;
      }
    }
    return n;
  }

  /** Record a ping about to be sent; returns its sequence number. */
  send(mono: number, wallMs: number): number {
    return this.record(mono, wallMs, undefined);
  }

  /** Record a tick that could not be sent (no connection): lost at once. */
  skip(mono: number, wallMs: number): void {
    this.lostTotal++;
    this.record(mono, wallMs, null);
  }

  /**
   * A pong arrived for `seq` at `mono`. Returns its RTT in ms, or null when the
   * pong is unknown, a duplicate, or late (its ping already counted as lost).
   */
  receive(seq: number, mono: number): number | null {
    if (!Number.isInteger(seq)) return null;
    const i = seq % this.capacity;
    if (seq < 1 || this.seqs[i] !== seq || this.outcomes[i] !== undefined) return null;
    const rtt = Math.max(0, mono - (this.sentAt[i] as number));
    if (rtt >= this.timeoutMs) {
      // Arrived after the deadline: the chart may already show the gap, and
      // stats must not depend on when expire() happened to run.
      this.resolveLost(i);
      return null;
    }
    this.outcomes[i] = rtt;
    this.receivedTotal++;
    this.ver++;
    return rtt;
  }

  /** Mark pings older than the timeout as lost; returns how many. */
  expire(mono: number): number {
    let n = 0;
    for (; this.firstPending < this.nextSeq; this.firstPending++) {
      const i = this.firstPending % this.capacity;
      if (this.seqs[i] !== this.firstPending || this.outcomes[i] !== undefined) continue;
      // Sends are in clock order, so the first ping not yet overdue ends the scan.
      if (mono - (this.sentAt[i] as number) < this.timeoutMs) break;
      this.resolveLost(i);
      n++;
    }
    return n;
  }

  /** The connection closed: nothing in flight can be answered any more. */
  abandonPending(): number {
    let n = 0;
    for (let s = this.firstPending; s < this.nextSeq; s++) {
      const i = s % this.capacity;
      if (this.seqs[i] === s && this.outcomes[i] === undefined) {
        this.resolveLost(i);
        n++;
      }
    }
    this.firstPending = this.nextSeq;
    return n;
  }

  /**
   * Chart columns, oldest first: x in epoch seconds, y in ms with null for
   * lost and in-flight pings (the chart draws null as a gap).
   */
  chartData(): [number[], (number | null)[]] {
    const start = Math.max(1, this.nextSeq - this.capacity);
    const n = this.nextSeq - start;
    const xs = new Array<number>(n);
    const ys = new Array<number | null>(n);
    for (let k = 0; k < n; k++) {
      const i = (start + k) % this.capacity;
      xs[k] = this.wallSec[i] as number;
      ys[k] = this.outcomes[i] ?? null;
    }
    return [xs, ys];
  }

  /**
   * Statistics over the pings sent in the last `windowMs` before `mono`;
   * pings still in flight are left out.
   */
  stats(mono: number, windowMs: number): RttStats {
    const from = mono - windowMs;
    const out: (number | null)[] = [];
    const oldest = Math.max(1, this.nextSeq - this.capacity);
    for (let s = this.nextSeq - 1; s >= oldest; s--) {
      const i = s % this.capacity;
      if ((this.sentAt[i] as number) < from) break;
      const o = this.outcomes[i];
      if (o !== undefined) out.push(o);
    }
    if (out.length === 0) return EMPTY_STATS;
    out.reverse();
    return summarize(out);
  }

  private record(mono: number, wallMs: number, outcome: null | undefined): number {
    const seq = this.nextSeq++;
    const i = seq % this.capacity;
    if (this.seqs[i] !== -1 && this.outcomes[i] === undefined) {
      // Overwriting a ping still in flight (only possible when capacity *
      // interval < timeout): it can no longer be matched, so it is lost.
      this.lostTotal++;
    }
    this.seqs[i] = seq;
    this.sentAt[i] = mono;
    this.wallSec[i] = wallMs / 1000;
    this.outcomes[i] = outcome;
    if (this.firstPending < seq + 1 - this.capacity) this.firstPending = seq + 1 - this.capacity;
    if (outcome === null && this.firstPending === seq) this.firstPending = seq + 1;
    this.ver++;
    return seq;
  }

  private resolveLost(i: number): void {
    this.outcomes[i] = null;
    this.lostTotal++;
    this.ver++;
  }
}
