import type { SessionView } from '../sessionView';
import { formatAge, formatMs } from '../lib/format';
import { useNow } from '../hooks/useNow';

interface Props {
  view: SessionView;
}

/** The visitor's pod: name, node, age, replacements, and how the claim went. */
export function PodCard({ view }: Props) {
  const live = view.phase === 'live';
  const now = useNow(1000, live);
  const pod = view.pod;
  const s = view.session;
  const age = pod?.startedAt != null ? now / 1000 - pod.startedAt : null;
  const expiresIn = view.status ? view.status.expires_at - now / 1000 : null;
  return (
    <section className="panel pod" aria-labelledby="pod-title">
      <h2 id="pod-title">Your pod</h2>
      <dl className="kv">
        <dt>Name</dt>
        <dd className="mono" data-testid="pod-name">
          {pod?.name ?? '—'}
        </dd>
        <dt>Node</dt>
        <dd className="mono" data-testid="pod-node">
          {pod?.node || '—'}
        </dd>
        <dt>Age</dt>
        <dd data-testid="pod-age">{live ? formatAge(age) : '—'}</dd>
        <dt>Replacements</dt>
        <dd data-testid="replacements">{view.status?.replacements ?? (s ? 0 : '—')}</dd>
        <dt>Claim</dt>
        <dd data-testid="claim">
          {s ? (
            <>
              <span className={`badge ${s.warm ? 'badge-ok' : 'badge-warn'}`}>
                {s.warm ? 'warm' : 'cold'}
              </span>{' '}
              in {formatMs(s.assign_ms)}
            </>
          ) : (
            '—'
          )}
        </dd>
        <dt>First pong</dt>
        <dd data-testid="first-pong">
          {view.firstPongMs !== null ? `${formatMs(view.firstPongMs)} after Start` : '—'}
        </dd>
        {live && expiresIn !== null && (
          <>
            <dt>Expires in</dt>
            <dd data-testid="expires-in">{formatAge(expiresIn)}</dd>
          </>
        )}
      </dl>
    </section>
  );
}
