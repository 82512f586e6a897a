/**
 * The pool grid's model: the provisioner's pool feed (GET /pool/feed,
 * server-sent events; docs/architecture.md, "The pool feed") applied in
 * order. A snapshot replaces everything; each diff must follow the previous
 * message (`seq` + 1), otherwise the model says so and the page reconnects
 * for a new snapshot. Tiles keep the order they arrived in (oldest first).
 */

export const TILE_STATES = ['warm', 'starting', 'assigned', 'terminating'] as const;
export type TileState = (typeof TILE_STATES)[number];

export interface Tile {
  pod: string;
  state: TileState;
}

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

export type FeedMessage =
  | { kind: 'snapshot'; seq: number; tiles: Tile[]; total: number }
  | { kind: 'diff'; seq: number; set: Tile[]; remove: string[]; total: number };

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
    return t && { kind: 'snapshot', seq, tiles: t, total };
  }
  if (event === 'diff') {
    const set = tiles(v.set);
    const remove = v.remove;
    if (!set || !Array.isArray(remove) || !remove.every((p) => typeof p === 'string')) return null;
    return { kind: 'diff', seq, set, remove: remove as string[], total };
  }
  return null;
}

export class PoolTiles {
  private map = new Map<string, TileState>();
  private seq: number | null = null;
  private count = 0;
  private list: readonly Tile[] = [];

  /** Tiles, oldest first; a new array after every change. */
  get tiles(): readonly Tile[] {
    return this.list;
  }

  /** Every pool pod, including those beyond the tiles shown. */
  get total(): number {
    return this.count;
  }

  get synced(): boolean {
    return this.seq !== null;
  }

  /** Apply one message; false when a diff does not follow on (reconnect for a snapshot). */
  apply(m: FeedMessage): boolean {
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
    this.seq = m.seq;
    this.count = m.total;
    this.list = [...this.map].map(([pod, state]) => ({ pod, state }));
    return true;
  }

  reset(): void {
    this.map.clear();
    this.seq = null;
    this.count = 0;
    this.list = [];
  }
}
