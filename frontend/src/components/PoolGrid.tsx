import type { PoolFeedView } from '../hooks/usePoolFeed';
import type { TileState } from '../lib/poolFeed';

const LABELS: Record<TileState, string> = {
  warm: 'warm',
  starting: 'starting',
  assigned: 'in use',
  terminating: 'terminating',
};

interface Props {
  /** The pool feed (`usePoolFeed`), which the node strip reads too. */
  feed: PoolFeedView;
  /** The visitor's pods (the current one and a replacement on its way), by name. */
  mine: readonly string[];
}

/**
 * Every pool pod as a tile, live from the pool feed (server-sent events).
 * The feed names no session: the page marks its own pods by name.
 */
export function PoolGrid({ feed, mine }: Props) {
  const { tiles, total, link } = feed;
  const hidden = Math.max(0, total - tiles.length);
  return (
    <section className="panel pool-live" aria-labelledby="pool-live-title">
      <h2 id="pool-live-title">
        Pool, live{' '}
        <span className="muted small" data-testid="pool-grid-link" data-link={link}>
          {link === 'live' ? `${total} pods` : link === 'retrying' ? 'unavailable, retrying' : 'connecting…'}
        </span>
      </h2>
      <ul className="tiles" data-testid="pool-grid" aria-label="Pool pods">
        {tiles.map((t) => {
          const own = mine.includes(t.pod);
          return (
            <li
              key={t.pod}
              className={`tile tile-${t.state}${own ? ' tile-mine' : ''}`}
              data-testid="pool-tile"
              data-state={t.state}
              data-mine={own ? 'true' : undefined}
              data-pod={t.pod}
              title={`${t.pod}: ${LABELS[t.state]}${own ? ' (yours)' : ''}`}
            >
              <span className="tile-name mono">{t.pod.slice(-6)}</span>
              <span className="visually-hidden">
                {t.pod}, {LABELS[t.state]}
                {own ? ', yours' : ''}
              </span>
            </li>
          );
        })}
      </ul>
      {hidden > 0 && <p className="muted small">and {hidden} more</p>}
      <p className="legend muted small" aria-hidden="true">
        {(Object.keys(LABELS) as TileState[]).map((s) => (
          <span key={s} className={`legend-item tile-${s}`}>
            {LABELS[s]}
          </span>
        ))}
        <span className="legend-item tile-mine">yours</span>
      </p>
    </section>
  );
}
