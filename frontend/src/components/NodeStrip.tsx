import type { CapacityType, NodeState, StripNode } from '../lib/poolFeed';

const CAPACITY: Record<CapacityType, string> = {
  spot: 'Spot',
  'on-demand': 'on-demand',
  unknown: 'capacity unknown',
};

const STATES: Record<NodeState, string> = {
  ready: '',
  not_ready: 'not ready',
  leaving: 'leaving',
};

interface Props {
  nodes: readonly StripNode[];
  /** Every node, shown or not. */
  total: number;
  live: boolean;
}

function plural(n: number, one: string): string {
  return `${n} ${one}${n === 1 ? '' : 's'}`;
}

/**
 * The nodes next to the pool grid, from the same feed: each node's name,
 * instance type, capacity type and the pool pods it holds. A node added since
 * the page opened is marked new; one that left stays a moment, marked gone.
 */
export function NodeStrip({ nodes, total, live }: Props) {
  const hidden = Math.max(0, total - nodes.filter((n) => !n.gone).length);
  return (
    <section className="panel node-panel" aria-labelledby="nodes-title">
      <h2 id="nodes-title">
        Nodes <span className="muted small">{live ? plural(total, 'node') : ''}</span>
      </h2>
      <ul className="nodes" data-testid="node-strip" aria-label="Nodes">
        {nodes.map((n) => {
          const state = n.gone ? 'gone' : STATES[n.state];
          return (
            <li
              key={n.name}
              className={`node node-${n.state}${n.fresh ? ' node-new' : ''}${n.gone ? ' node-gone' : ''}`}
              data-testid="node"
              data-node={n.name}
              data-state={n.gone ? 'gone' : n.state}
              data-capacity={n.capacity_type}
              data-fresh={n.fresh ? 'true' : undefined}
            >
              <span className="node-name mono" data-testid="node-name">
                {n.name}
              </span>
              <span className="node-type" data-testid="node-type">
                {n.instance_type || 'type unknown'}
              </span>
              <span className={`node-capacity capacity-${n.capacity_type}`} data-testid="node-capacity">
                {CAPACITY[n.capacity_type]}
              </span>
              <span className="node-pods" data-testid="node-pods" data-pods={n.pods}>
                {plural(n.pods, 'pod')}
              </span>
              {(n.fresh || state) && (
                <span className="node-badge">{state || 'new'}</span>
              )}
            </li>
          );
        })}
      </ul>
      {hidden > 0 && <p className="muted small">and {hidden} more</p>}
    </section>
  );
}
