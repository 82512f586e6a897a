import { describe, expect, it } from 'vitest';
import { GONE_MS, parseFeedEvent, PoolTiles, type FeedMessage, type FeedNode } from './poolFeed';

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
      nodes: { nodes: [], total: 0 },
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

const node = (name: string, over: Partial<FeedNode> = {}): FeedNode => ({
  name,
  instance_type: 't4g.small',
  capacity_type: 'spot',
  state: 'ready',
  pods: 0,
  ...over,
});
const snapN = (seq: number, nodes: FeedNode[], nodeTotal = nodes.length): string =>
  JSON.stringify({ seq, at: 0, tiles: [], total: 0, nodes, node_total: nodeTotal });
const diffN = (seq: number, nodes?: FeedNode[], nodeTotal = nodes?.length): string =>
  JSON.stringify({
    seq,
    at: 0,
    set: [],
    remove: [],
    total: 0,
    ...(nodes ? { nodes, node_total: nodeTotal } : {}),
  });
const names = (m: PoolTiles): string[] => m.nodes.map((n) => n.name);

describe('the node strip', () => {
  it('reads nodes in snapshots, and in diffs only when they changed', () => {
    const s = msg('snapshot', snapN(1, [node('n1', { pods: 3, capacity_type: 'on-demand' })], 4));
    expect(s).toMatchObject({ nodes: { nodes: [node('n1', { pods: 3, capacity_type: 'on-demand' })], total: 4 } });
    expect(msg('diff', diffN(2))).not.toHaveProperty('nodes');
    expect(msg('diff', diffN(2, [node('n2')]))).toMatchObject({ nodes: { nodes: [node('n2')], total: 1 } });
  });

  it('refuses malformed nodes rather than trusting them', () => {
    expect(parseFeedEvent('snapshot', snapN(1, [node('n', { pods: -1 })]))).toBeNull();
    expect(parseFeedEvent('snapshot', snapN(1, [node('n', { pods: 1.5 })]))).toBeNull();
    const bad = [{ ...node('n'), capacity_type: 'free' }] as unknown as FeedNode[];
    expect(parseFeedEvent('snapshot', snapN(1, bad))).toBeNull();
    const badState = [{ ...node('n'), state: 'exploded' }] as unknown as FeedNode[];
    expect(parseFeedEvent('diff', diffN(2, badState))).toBeNull();
    expect(parseFeedEvent('diff', JSON.stringify({ seq: 2, set: [], remove: [], total: 0, nodes: 'n1' }))).toBeNull();
  });

  it('marks nodes added after the first snapshot as fresh, not those already there', () => {
    const m = new PoolTiles();
    m.apply(msg('snapshot', snapN(1, [node('n1', { pods: 2 })])), 0);
    expect(m.nodes).toEqual([{ ...node('n1', { pods: 2 }), fresh: false, gone: false }]);
    m.apply(msg('diff', diffN(2, [node('n1', { pods: 2 }), node('n2', { state: 'not_ready' })])), 100);
    expect(m.nodes.map((n) => [n.name, n.fresh, n.state])).toEqual([
      ['n1', false, 'ready'],
      ['n2', true, 'not_ready'],
    ]);
    // It stays fresh as it changes; pod counts follow the feed.
    m.apply(msg('diff', diffN(3, [node('n1', { pods: 1 }), node('n2', { pods: 1 })])), 200);
    expect(m.nodes.map((n) => [n.name, n.fresh, n.pods])).toEqual([
      ['n1', false, 1],
      ['n2', true, 1],
    ]);
    // A diff without nodes leaves the strip as it is (the same array).
    const before = m.nodes;
    m.apply(msg('diff', diffN(4)), 300);
    expect(m.nodes).toBe(before);
  });

  it('keeps a node that left, marked gone, in its place for GONE_MS', () => {
    const m = new PoolTiles();
    m.apply(msg('snapshot', snapN(1, [node('a'), node('b', { state: 'leaving' }), node('c')])), 0);
    m.apply(msg('diff', diffN(2, [node('a'), node('c')])), 1000);
    expect(names(m)).toEqual(['a', 'b', 'c']);
    expect(m.nodes[1]).toMatchObject({ name: 'b', gone: true });
    expect(m.nodeTotal).toBe(2);
    expect(m.nextPrune()).toBe(1000 + GONE_MS);
    expect(m.prune(1000 + GONE_MS - 1)).toBe(false);
    expect(m.prune(1000 + GONE_MS)).toBe(true);
    expect(names(m)).toEqual(['a', 'c']);
    expect(m.nextPrune()).toBeNull();
  });

  it('brings a gone node back, and forgets gone ones on a gap', () => {
    const m = new PoolTiles();
    m.apply(msg('snapshot', snapN(1, [node('a'), node('b')])), 0);
    m.apply(msg('diff', diffN(2, [node('a')])), 10);
    m.apply(msg('diff', diffN(3, [node('a'), node('b')])), 20);
    expect(m.nodes.map((n) => [n.name, n.gone])).toEqual([
      ['a', false],
      ['b', false],
    ]);
    expect(m.nextPrune()).toBeNull();
    m.apply(msg('diff', diffN(4, [node('a')])), 30);
    expect(m.apply(msg('diff', diffN(9, [node('a')])), 40)).toBe(false);
    expect(m.nodes).toEqual([]);
    expect(m.nextPrune()).toBeNull();
  });

  it('counts nodes beyond the strip, and takes a snapshot without nodes as none', () => {
    const m = new PoolTiles();
    m.apply(msg('snapshot', snapN(1, [node('a')], 60)));
    expect(m.nodeTotal).toBe(60);
    m.reset();
    m.apply(msg('snapshot', snap(1, [['p', 'warm']])));
    expect(m.nodes).toEqual([]);
    expect(m.tiles.length).toBe(1);
  });
});
