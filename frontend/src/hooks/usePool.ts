import { useEffect, useState } from 'react';
import { getPool, type PoolStatus } from '../api';

export interface PoolView {
  pool: PoolStatus | null;
  error: string | null;
}

/**
 * GET /pool every `everyMs`, paused while the tab is hidden. A change of
 * `refreshKey` (the visitor's session started or ended) polls at once.
 */
export function usePool(everyMs = 3000, refreshKey: unknown = null): PoolView {
  const [view, setView] = useState<PoolView>({ pool: null, error: null });
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    let ctrl: AbortController | null = null;
    let stopped = false;

    const poll = async (): Promise<void> => {
      timer = null;
      if (document.visibilityState === 'visible') {
        ctrl = new AbortController();
        try {
          const pool = await getPool(ctrl.signal);
          if (!stopped) setView({ pool, error: null });
        } catch (exc) {
          if (stopped) return;
          const msg = exc instanceof Error ? exc.message : String(exc);
          setView((v) => ({ ...v, error: msg }));
        }
      }
      if (!stopped) timer = setTimeout(() => void poll(), everyMs);
    };
    const onVisible = (): void => {
      if (document.visibilityState === 'visible' && timer !== null) {
        clearTimeout(timer);
        void poll();
      }
    };
    void poll();
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      ctrl?.abort();
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [everyMs, refreshKey]);
  return view;
}
