import { useEffect, useRef } from 'react';
import { hasRanges, type AnatomyStep } from '../lib/anatomy';
import { formatClock, formatSince } from '../lib/format';
import type { TimelineEntry } from '../lib/timeline';

/** A replacement's start, phase by phase, each with its duration since the one before. */
function Anatomy({ steps }: { steps: readonly AnatomyStep[] }) {
  return (
    <div className="anatomy-wrap">
      <ol className="anatomy" data-testid="anatomy">
        {steps.map((s) => (
          <li key={s.phase} className="anatomy-step" data-phase={s.phase}>
            <span className="anatomy-label">{s.label}</span>
            <span className="anatomy-dur" data-lo={s.lo ?? undefined} data-hi={s.hi ?? undefined}>
              {s.text}
            </span>
          </li>
        ))}
      </ol>
      {hasRanges(steps) && (
        <p className="muted small anatomy-note">
          Kubernetes records these times to the second, so a duration between them is shown as
          the range they allow.
        </p>
      )}
    </div>
  );
}

interface Props {
  entries: readonly TimelineEntry[];
}

/**
 * What happened, oldest first, each incident step with its time since the
 * kill click. role="log" is an implicit polite live region: screen readers
 * announce new entries without stealing focus.
 */
export function Timeline({ entries }: Props) {
  const listRef = useRef<HTMLOListElement | null>(null);
  useEffect(() => {
    const el = listRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [entries]);
  return (
    <section className="panel timeline" aria-labelledby="timeline-title">
      <h2 id="timeline-title">Event timeline</h2>
      <ol
        ref={listRef}
        className="events"
        role="log"
        aria-live="polite"
        aria-relevant="additions"
        data-testid="event-log"
        tabIndex={0}
        aria-labelledby="timeline-title"
      >
        {entries.length === 0 && <li className="muted">Nothing yet.</li>}
        {entries.map((e) => (
          <li key={e.id} className={`event tone-${e.tone}`} data-tone={e.tone}>
            <time className="event-time muted" dateTime={new Date(e.wallMs).toISOString()}>
              {formatClock(e.wallMs)}
            </time>
            <span className="event-text">
              {e.text}
              {e.anatomy && <Anatomy steps={e.anatomy} />}
            </span>
            {e.sinceMs !== null && (
              <span className="event-since" data-testid="event-since">
                {formatSince(e.sinceMs)}
              </span>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}
