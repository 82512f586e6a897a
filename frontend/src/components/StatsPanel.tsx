import { useEffect, useState } from 'react';
import { formatMs, formatPct } from '../lib/format';
import type { PingTracker } from '../lib/pingTracker';
import { EMPTY_STATS, type RttStats } from '../lib/stats';

interface Props {
  tracker: PingTracker;
  windowSec: number;
  /** Refresh while true; the figures freeze when the session is over. */
  active: boolean;
}

interface Shown {
  stats: RttStats;
  received: number;
  lost: number;
}

const REFRESH_MS = 250;

/** Rolling-window statistics, recomputed 4 times a second (not per pong). */
export function StatsPanel({ tracker, windowSec, active }: Props) {
  const [shown, setShown] = useState<Shown>({ stats: EMPTY_STATS, received: 0, lost: 0 });

  useEffect(() => {
    const read = (): void =>
      setShown({
        stats: tracker.stats(performance.now(), windowSec * 1000),
        received: tracker.received,
        lost: tracker.lost,
      });
    read();
    if (!active) return undefined;
    const id = setInterval(read, REFRESH_MS);
    return () => clearInterval(id);
  }, [tracker, windowSec, active]);

  const s = shown.stats;
  const items: [string, string, string][] = [
    ['p50', 'p50', formatMs(s.p50)],
    ['p95', 'p95', formatMs(s.p95)],
    ['p99', 'p99', formatMs(s.p99)],
    ['jitter', 'Jitter', formatMs(s.jitter)],
    ['loss', 'Loss', formatPct(s.lossPct)],
  ];
  return (
    <section className="panel stats" aria-labelledby="stats-title">
      <h2 id="stats-title">
        Latency <span className="muted small">last {windowSec} s</span>
      </h2>
      <div className="stat-last">
        <span className="stat-label">Last RTT</span>
        <output className="stat-big" data-testid="rtt-last" data-value={s.last ?? ''}>
          {formatMs(s.last)}
        </output>
      </div>
      <dl className="stat-grid">
        {items.map(([id, label, value]) => (
          <div key={id}>
            <dt>{label}</dt>
            <dd data-testid={`rtt-${id}`}>{value}</dd>
          </div>
        ))}
      </dl>
      <p className="muted small">
        <span data-testid="pong-count" data-value={shown.received}>
          {shown.received}
        </span>{' '}
        pongs, {shown.lost} lost since start
      </p>
    </section>
  );
}
