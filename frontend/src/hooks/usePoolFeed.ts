import { useEffect, useState } from 'react';
import { parseFeedEvent, PoolTiles, type Tile } from '../lib/poolFeed';

export type FeedLink = 'connecting' | 'live' | 'retrying';

export interface PoolFeedView {
  tiles: readonly Tile[];
  /** Every pool pod (the grid shows at most about 200). */
  total: number;
  link: FeedLink;
}

/** After the server refused the stream (a 429, say), try again this much later. */
const REFUSED_RETRY_MS = 5000;

/**
 * The pool feed (GET /pool/feed) as React state: an EventSource while the tab
 * is visible, closed while it is hidden. EventSource itself reconnects after
 * a dropped connection (the server's `retry`); a diff that does not follow on
 * (`seq`) reopens the stream for a new snapshot; a refused stream is retried.
 */
export function usePoolFeed(url = '/pool/feed'): PoolFeedView {
  const [view, setView] = useState<PoolFeedView>({ tiles: [], total: 0, link: 'connecting' });
  useEffect(() => {
    const model = new PoolTiles();
    let source: EventSource | null = null;
    let retry: ReturnType<typeof setTimeout> | null = null;
    let stopped = false;

    const publish = (link: FeedLink): void => {
      if (!stopped) setView({ tiles: model.tiles, total: model.total, link });
    };
    const close = (): void => {
      if (retry !== null) clearTimeout(retry);
      retry = null;
      source?.close();
      source = null;
    };
    const onMessage = (ev: MessageEvent<string>): void => {
      const m = parseFeedEvent(ev.type, ev.data);
      if (m === null) return;
      if (model.apply(m)) {
        publish('live');
      } else {
        open(); // a gap: start again from a snapshot
      }
    };
    const open = (): void => {
      close();
      if (document.visibilityState !== 'visible') return;
      const es = new EventSource(url);
      source = es;
      es.addEventListener('snapshot', onMessage);
      es.addEventListener('diff', onMessage);
      es.onerror = () => {
        if (es !== source) return;
        if (es.readyState === EventSource.CLOSED) {
          // Refused (not 200): EventSource gives up, so try again later.
          publish('retrying');
          retry = setTimeout(open, REFUSED_RETRY_MS);
        } else {
          publish('connecting'); // it reconnects by itself
        }
      };
    };
    const onVisibility = (): void => {
      if (document.visibilityState === 'visible') {
        if (source === null) open();
      } else {
        close();
      }
    };
    open();
    document.addEventListener('visibilitychange', onVisibility);
    return () => {
      stopped = true;
      close();
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [url]);
  return view;
}
