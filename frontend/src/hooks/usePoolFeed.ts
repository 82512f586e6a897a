import { useEffect, useState } from 'react';
import { parseFeedEvent, PoolTiles, type StripNode, type Tile } from '../lib/poolFeed';

export type FeedLink = 'connecting' | 'live' | 'retrying';

export interface PoolFeedView {
  tiles: readonly Tile[];
  /** Every pool pod (the grid shows at most about 200). */
  total: number;
  /** The node strip, with the nodes that just left (marked gone). */
  nodes: readonly StripNode[];
  /** Every node (the strip shows at most 50). */
  nodeTotal: number;
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
  const [view, setView] = useState<PoolFeedView>({
    tiles: [],
    total: 0,
    nodes: [],
    nodeTotal: 0,
    link: 'connecting',
  });
  useEffect(() => {
    const model = new PoolTiles();
    let source: EventSource | null = null;
    let retry: ReturnType<typeof setTimeout> | null = null;
    let pruning: ReturnType<typeof setTimeout> | null = null;
    let link: FeedLink = 'connecting';
    let stopped = false;

    const publish = (state: FeedLink): void => {
      link = state;
      if (stopped) return;
      const { tiles, total, nodes, nodeTotal } = model;
      setView({ tiles, total, nodes, nodeTotal, link });
      schedulePrune();
    };
    // A node that left stays on the strip, marked gone, for a moment: then it goes.
    const schedulePrune = (): void => {
      if (pruning !== null) clearTimeout(pruning);
      const due = model.nextPrune();
      pruning =
        due === null
          ? null
          : setTimeout(() => {
              pruning = null;
              if (model.prune()) publish(link);
              else schedulePrune(); // a timer a little early: not due yet
            }, Math.max(0, due - Date.now()));
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
      if (pruning !== null) clearTimeout(pruning);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [url]);
  return view;
}
