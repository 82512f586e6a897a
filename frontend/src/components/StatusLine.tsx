import { useNow } from '../hooks/useNow';
import type { SessionView } from '../sessionView';
import { statusText } from '../statusText';

/** The live status line; aria-live so changes are announced. */
export function StatusLine({ view }: { view: SessionView }) {
  const ticking = view.phase === 'limited' || view.link === 'reconnecting';
  const now = useNow(500, ticking);
  const { text, tone } = statusText(view, now);
  return (
    <p
      className={`status status-${tone}`}
      data-testid="status"
      data-phase={view.phase}
      data-link={view.link ?? ''}
      role="status"
      aria-live="polite"
    >
      <span className="status-dot" aria-hidden="true" />
      {text}
    </p>
  );
}
