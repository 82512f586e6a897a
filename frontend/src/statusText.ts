/** The one-line status the header shows for a session snapshot. */

import type { SessionView } from './sessionView';

export type StatusTone = 'idle' | 'busy' | 'ok' | 'warn' | 'error';

export function statusText(v: SessionView, nowMs: number): { text: string; tone: StatusTone } {
  switch (v.phase) {
    case 'idle':
      return { text: 'Ready: press Start to get a pod of your own.', tone: 'idle' };
    case 'claiming':
      return { text: 'Claiming a pod from the warm pool…', tone: 'busy' };
    case 'limited': {
      // The server's own words are in the notice under the Start button.
      const left = v.retryAt === null ? 0 : Math.max(0, Math.ceil((v.retryAt - nowMs) / 1000));
      return {
        text: left > 0 ? `The demo is busy. Retry in ${left} s.` : 'The demo was busy. Try again now.',
        tone: 'warn',
      };
    }
    case 'error':
      return { text: v.message ?? 'Something went wrong.', tone: 'error' };
    case 'ended':
      return { text: `${v.message ?? 'Session ended.'} Start a new one whenever you like.`, tone: 'idle' };
    case 'live':
      switch (v.link) {
        case 'open':
          return { text: `Connected to pod ${v.pod?.name ?? ''}`.trim(), tone: 'ok' };
        case 'connecting':
          return { text: 'Connecting to your pod…', tone: 'busy' };
        case 'reconnecting': {
          if (v.reconnectAt === null) return { text: 'Reconnecting…', tone: 'warn' };
          const left = Math.max(0, Math.ceil((v.reconnectAt - nowMs) / 1000));
          return {
            text: `Connection lost. Reconnecting in ${left} s (attempt ${v.reconnectAttempt})…`,
            tone: 'warn',
          };
        }
        case 'stopped':
          return { text: v.message ?? 'Disconnected.', tone: 'error' };
        default:
          return { text: 'Connecting…', tone: 'busy' };
      }
    default:
      return { text: '', tone: 'idle' };
  }
}
