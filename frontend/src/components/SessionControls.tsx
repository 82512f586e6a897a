import { useNow } from '../hooks/useNow';
import { sentence } from '../lib/format';
import type { SessionView } from '../sessionView';

interface Props {
  view: SessionView;
  onStart: () => void;
  onEnd: () => void;
  onReconnect: () => void;
}

/** Start / new session / end session, with the 429 countdown. */
export function SessionControls({ view, onStart, onEnd, onReconnect }: Props) {
  const waiting = view.phase === 'limited' && view.retryAt !== null;
  const now = useNow(250, waiting);
  const left = waiting && view.retryAt !== null ? Math.ceil((view.retryAt - now) / 1000) : 0;

  if (view.phase === 'live') {
    return (
      <div className="controls">
        {view.link === 'stopped' && (
          <button type="button" className="btn" data-testid="reconnect" onClick={onReconnect}>
            Reconnect
          </button>
        )}
        <button type="button" className="btn" data-testid="end" onClick={onEnd}>
          End session
        </button>
      </div>
    );
  }
  const claiming = view.phase === 'claiming';
  const label = claiming
    ? 'Claiming a pod…'
    : left > 0
      ? `Try again in ${left} s`
      : view.phase === 'ended' || view.phase === 'limited' || view.phase === 'error'
        ? 'Start a new session'
        : 'Start';
  return (
    <div className="controls">
      <button
        type="button"
        className="btn btn-primary btn-big"
        data-testid="start"
        disabled={claiming || left > 0}
        aria-busy={claiming}
        onClick={onStart}
      >
        {claiming && <span className="spinner" aria-hidden="true" />}
        {label}
      </button>
      {view.phase === 'limited' && (
        <p className="notice notice-warn" data-testid="limit-message" role="alert">
          {sentence(view.message ?? 'The demo is busy.')}
          {left > 0 && (
            <>
              {' '}
              Retry in <span data-testid="retry-countdown">{left}</span> s.
            </>
          )}
        </p>
      )}
      {view.phase === 'error' && (
        <p className="notice notice-error" data-testid="error-message" role="alert">
          {view.message}
        </p>
      )}
    </div>
  );
}
