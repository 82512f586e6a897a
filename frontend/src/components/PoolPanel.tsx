import { usePool } from '../hooks/usePool';

/** The warm pool as the provisioner reports it (GET /pool every 3 s). */
export function PoolPanel({ refreshKey }: { refreshKey: unknown }) {
  const { pool, error } = usePool(3000, refreshKey);
  const cells: [string, string, number | undefined][] = [
    ['warm', 'Warm', pool?.warm],
    ['starting', 'Starting', pool?.starting],
    ['assigned', 'In use', pool?.assigned],
    ['capacity', 'Capacity', pool?.capacity],
  ];
  return (
    <section className="panel pool" aria-labelledby="pool-title">
      <h2 id="pool-title">
        Warm pool{' '}
        {pool && <span className="muted small">target {pool.target}</span>}
      </h2>
      <dl className="pool-grid">
        {cells.map(([id, label, value]) => (
          <div key={id}>
            <dt>{label}</dt>
            <dd data-testid={`pool-${id}`}>{value ?? '—'}</dd>
          </div>
        ))}
      </dl>
      {error && <p className="muted small">Pool status unavailable: {error}</p>}
    </section>
  );
}
