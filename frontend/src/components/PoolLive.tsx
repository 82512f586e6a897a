import { usePoolFeed } from '../hooks/usePoolFeed';
import { NodeStrip } from './NodeStrip';
import { PoolGrid } from './PoolGrid';

/** The pool grid and the node strip, from one pool feed (one stream per page). */
export function PoolLive({ mine }: { mine: readonly string[] }) {
  const feed = usePoolFeed();
  return (
    <>
      <PoolGrid feed={feed} mine={mine} />
      <NodeStrip nodes={feed.nodes} total={feed.nodeTotal} live={feed.link === 'live'} />
    </>
  );
}
