import { describe, expect, it } from 'vitest';
import { parseFeedEvent, PoolTiles, type FeedMessage } from './poolFeed';

const snap = (seq: number, tiles: [string, string][], total = tiles.length): string =>
  JSON.stringify({ seq, at: 0, tiles: tiles.map(([pod, state]) => ({ pod, state })), total });
const diff = (seq: number, set: [string, string][], remove: string[], total: number): string =>
  JSON.stringify({ seq, at: 0, set: set.map(([pod, state]) => ({ pod, state })), remove, total });

function msg(event: string, data: string): FeedMessage {
  const m = parseFeedEvent(event, data);
  if (m === null) throw new Error(`not parsed: ${event} ${data}`);
  return m;
}

describe('parseFeedEvent', () => {
  it('reads snapshots and diffs', () => {
    expect(msg('snapshot', snap(3, [['a', 'warm']]))).toEqual({
      kind: 'snapshot',
      seq: 3,
      tiles: [{ pod: 'a', state: 'warm' }],
      total: 1,
    });
    expect(msg('diff', diff(4, [['b', 'starting']], ['a'], 1))).toMatchObject({
      kind: 'diff',
      set: [{ pod: 'b', state: 'starting' }],
      remove: ['a'],
    });
  });

  it('refuses anything malformed rather than trusting it', () => {
    expect(parseFeedEvent('snapshot', 'not json')).toBeNull();
    expect(parseFeedEvent('snapshot', '{"seq":1,"tiles":[],"total":"x"}')).toBeNull();
    expect(parseFeedEvent('snapshot', snap(1, [['a', 'exploded']]))).toBeNull();
    expect(parseFeedEvent('diff', '{"seq":1,"set":[],"remove":[3],"total":0}')).toBeNull();
    expect(parseFeedEvent('other', snap(1, []))).toBeNull();
  });
});

describe('PoolTiles', () => {
  it('applies diffs in order, keeping the tiles in arrival order', () => {
    const m = new PoolTiles();
    expect(m.apply(msg('snapshot', snap(1, [['a', 'warm'], ['b', 'warm']])))).toBe(true);
    expect(m.apply(msg('diff', diff(2, [['a', 'assigned'], ['c', 'starting']], [], 3)))).toBe(true);
    expect(m.apply(msg('diff', diff(3, [['c', 'warm']], ['b'], 2)))).toBe(true);
    expect(m.tiles).toEqual([
      { pod: 'a', state: 'assigned' },
      { pod: 'c', state: 'warm' },
    ]);
    expect(m.total).toBe(2);
    expect(m.synced).toBe(true);
  });

  it('gives a new array on every change (React compares by reference)', () => {
    const m = new PoolTiles();
    m.apply(msg('snapshot', snap(1, [['a', 'warm']])));
    const before = m.tiles;
    m.apply(msg('diff', diff(2, [['a', 'assigned']], [], 1)));
    expect(m.tiles).not.toBe(before);
  });

  it('says a gap in seq means starting again from a snapshot', () => {
    const m = new PoolTiles();
    expect(m.apply(msg('diff', diff(1, [], [], 0)))).toBe(false); // no snapshot yet
    m.apply(msg('snapshot', snap(5, [['a', 'warm']])));
    expect(m.apply(msg('diff', diff(7, [['b', 'warm']], [], 2)))).toBe(false);
    expect(m.synced).toBe(false);
    expect(m.tiles).toEqual([]);
    expect(m.apply(msg('snapshot', snap(7, [['a', 'warm'], ['b', 'warm']])))).toBe(true);
    expect(m.tiles.map((t) => t.pod)).toEqual(['a', 'b']);
  });

  it('counts pods beyond the tiles shown', () => {
    const m = new PoolTiles();
    m.apply(msg('snapshot', snap(1, [['a', 'assigned']], 250)));
    expect(m.tiles.length).toBe(1);
    expect(m.total).toBe(250);
  });
});
