/**
 * Reconnect delays: exponential backoff with jitter.
 *
 * delay(n) = random in [cap_n / 2, cap_n] where cap_n = min(max, base * 2^n)
 * ("equal jitter" in the AWS architecture blog's terms). Half the delay is
 * guaranteed, so a flapping gateway is not hammered, and the random half
 * spreads many browsers that lost the same provisioner replica at once.
 */

export interface BackoffOptions {
  /** First delay's upper bound, ms. */
  baseMs?: number;
  /** Upper bound of any delay, ms. */
  maxMs?: number;
  /** Source of randomness in [0, 1); injectable for tests. */
  random?: () => number;
}

export class Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
  private readonly random: () => number;
  private attempt = 0;

  constructor({ baseMs = 500, maxMs = 15_000, random = Math.random }: BackoffOptions = {}) {
    if (!(baseMs > 0) || !(maxMs >= baseMs)) {
      throw new RangeError(`invalid backoff bounds: base=${baseMs} max=${maxMs}`);
    }
    this.baseMs = baseMs;
    this.maxMs = maxMs;
    this.random = random;
  }

  /** Number of delays handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next attempt, ms; advances the attempt counter. */
  next(): number {
    // 2^attempt overflows to Infinity long after it passed maxMs; min() copes.
    const cap = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt++;
    const half = cap / 2;
    return Math.round(half + this.random() * half);
  }

  /** Call after a connection that worked: the next delay is short again. */
  reset(): void {
    this.attempt = 0;
  }
}
