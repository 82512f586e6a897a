/**
 * The pool grid's model: the provisioner's pool feed (GET /pool/feed,
 * server-sent events; docs/architecture.md, "The pool feed") applied in
 * order. A snapshot replaces everything; each diff must follow the previous
 * message (`seq` + 1), otherwise the model says so and the page reconnects
 * for a new snapshot. Tiles keep the order they arrived in (oldest first).
 *
 * The nodes come whole (a snapshot, or a diff whose node list changed). A node
 * that appears after the snapshot is marked `fresh`; one that disappears is
 * kept, marked `gone`, for GONE_MS, so that a node leaving is seen going.
 */

export const TILE_STATES = ['warm', 'starting', 'assigned', 'terminating'] as const;
export type TileState = (typeof TILE_STATES)[number];

export interface Tile {
  pod: string;
  state: TileState;
}

export const NODE_STATES = ['ready', 'not_ready', 'leaving'] as const;
export type NodeState = (typeof NODE_STATES)[number];
export const CAPACITY_TYPES = ['spot', 'on-demand', 'unknown'] as const;
export type CapacityType = (typeof CAPACITY_TYPES)[number];

export interface FeedNode {
  name: string;
  instance_type: string;
  capacity_type: CapacityType;
  state: NodeState;
  pods: number;
}

/** A node on the strip: as the feed says, and whether it is new or gone since the snapshot. */
export interface StripNode extends FeedNode {
  fresh: boolean;
  gone: boolean;
}

/** How long a node that left stays on the strip, marked gone. */
export const GONE_MS = 4000;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function isState(v: unknown): v is TileState {
  return typeof v === 'string' && (TILE_STATES as readonly string[]).includes(v);
}

function tiles(v: unknown): Tile[] | null {
  if (!Array.isArray(v)) return null;
  const out: Tile[] = [];
  for (const t of v) {
    if (!isRecord(t) || typeof t.pod !== 'string' || !isState(t.state)) return null;
    out.push({ pod: t.pod, state: t.state });
  }
  return out;
}

function oneOf<T extends string>(list: readonly T[], v: unknown): v is T {
  return typeof v === 'string' && (list as readonly string[]).includes(v);
}

/** The node list, [] when absent (a server from before nodes), null when malformed. */
function nodes(v: unknown): FeedNode[] | null {
  if (v === undefined) return [];
  if (!Array.isArray(v)) return null;
  const out: FeedNode[] = [];
  for (const n of v) {
    if (
      !isRecord(n) ||
      typeof n.name !== 'string' ||
      typeof n.instance_type !== 'string' ||
      !oneOf(CAPACITY_TYPES, n.capacity_type) ||
      !oneOf(NODE_STATES, n.state) ||
      !Number.isInteger(n.pods) ||
      (n.pods as number) < 0
    ) {
      return null;
    }
    const { name, instance_type, capacity_type, state } = n;
    out.push({ name, instance_type, capacity_type, state, pods: n.pods as number });
  }
  return out;
}

/** The nodes part of a message: the whole list and its total, or none when unchanged. */
export interface NodeList {
  nodes: FeedNode[];
  total: number;
}

export type FeedMessage =
  | { kind: 'snapshot'; seq: number; tiles: Tile[]; total: number; nodes: NodeList }
  | { kind: 'diff'; seq: number; set: Tile[]; remove: string[]; total: number; nodes?: NodeList };

function nodeList(v: Record<string, unknown>): NodeList | null {
  const list = nodes(v.nodes);
  if (list === null) return null;
  const total = v.node_total === undefined ? list.length : v.node_total;
  return Number.isInteger(total) ? { nodes: list, total: total as number } : null;
}

/** An SSE event of the feed, or null when it is malformed (then it is not trusted). */
export function parseFeedEvent(event: string, data: string): FeedMessage | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isRecord(v) || !Number.isInteger(v.seq) || !Number.isInteger(v.total)) return null;
  const seq = v.seq as number;
  const total = v.total as number;
  if (event === 'snapshot') {
    const t = tiles(v.tiles);
    const n = nodeList(v);
    return t && n && { kind: 'snapshot', seq, tiles: t, total, nodes: n };
  }
  if (event === 'diff') {
    const set = tiles(v.set);
    const remove = v.remove;
    if (!set || !Array.isArray(remove) || !remove.every((p) => typeof p === 'string')) return null;
    const out: FeedMessage = { kind: 'diff', seq, set, remove: remove as string[], total };
    if (v.nodes === undefined) return out;
    const n = nodeList(v);
    return n && { ...out, nodes: n };
  }
  return null;
}

export class PoolTiles {
  private map = new Map<string, TileState>();
  private seq: number | null = null;
  private count = 0;
  private list: readonly Tile[] = [];
  private strip: readonly StripNode[] = [];
  private goneAt = new Map<string, number>();
  private nodeCount = 0;

  /** Tiles, oldest first; a new array after every change. */
  get tiles(): readonly Tile[] {
    return this.list;
  }

  /** Every pool pod, including those beyond the tiles shown. */
  get total(): number {
    return this.count;
  }

  /** The node strip, oldest first, with the nodes gone in the last GONE_MS. */
  get nodes(): readonly StripNode[] {
    return this.strip;
  }

  /** Every node, including those beyond the strip shown. */
  get nodeTotal(): number {
    return this.nodeCount;
  }

  get synced(): boolean {
    return this.seq !== null;
  }

  /** Apply one message; false when a diff does not follow on (reconnect for a snapshot). */
  apply(m: FeedMessage, now = Date.now()): boolean {
    if (m.kind === 'snapshot') {
      this.map = new Map(m.tiles.map((t) => [t.pod, t.state]));
    } else {
      if (this.seq === null || m.seq !== this.seq + 1) {
        this.reset();
        return false;
      }
      for (const pod of m.remove) this.map.delete(pod);
      for (const t of m.set) this.map.set(t.pod, t.state);
    }
    const first = this.seq === null;
    this.seq = m.seq;
    this.count = m.total;
    this.list = [...this.map].map(([pod, state]) => ({ pod, state }));
    if (m.nodes) this.applyNodes(m.nodes, first, now);
    return true;
  }

  private applyNodes(next: NodeList, initial: boolean, now: number): void {
    const before = new Map(this.strip.map((n, i) => [n.name, { node: n, index: i }]));
    const out: StripNode[] = next.nodes.map((n) => {
      this.goneAt.delete(n.name);
      const was = before.get(n.name)?.node;
      // New on the strip after the stream's first snapshot: it was added meanwhile.
      const fresh = was === undefined || was.gone ? !initial : was.fresh;
      return { ...n, fresh, gone: false };
    });
    if (!initial) {
      const names = new Set(next.nodes.map((n) => n.name));
      for (const [name, { node, index }] of before) {
        if (names.has(name)) continue;
        if (!this.goneAt.has(name)) this.goneAt.set(name, now);
        out.splice(Math.min(index, out.length), 0, { ...node, gone: true });
      }
    } else {
      this.goneAt.clear();
    }
    this.nodeCount = next.total;
    this.strip = out;
    this.prune(now);
  }

  /** Drop the nodes gone for GONE_MS or longer; true when the strip changed. */
  prune(now = Date.now()): boolean {
    const expired = [...this.goneAt].filter(([, at]) => now - at >= GONE_MS).map(([n]) => n);
    if (expired.length === 0) return false;
    for (const name of expired) this.goneAt.delete(name);
    const drop = new Set(expired);
    this.strip = this.strip.filter((n) => !(n.gone && drop.has(n.name)));
    return true;
  }

  /** When the next gone node is due to leave the strip, or null if none is. */
  nextPrune(): number | null {
    const times = [...this.goneAt.values()];
    return times.length ? Math.min(...times) + GONE_MS : null;
  }

  reset(): void {
    this.map.clear();
    this.seq = null;
    this.count = 0;
    this.list = [];
    this.strip = [];
    this.goneAt.clear();
    this.nodeCount = 0;
  }
}
