/**
 * What the page does when the gateway's WebSocket closes, by close code
 * (DESIGN.md, "HTTP / WebSocket contract").
 */

export type CloseAction =
  /** The session is gone (4404) or expired (4408): offer a new one. */
  | { kind: 'ended'; reason: 'ended' | 'expired'; message: string }
  /** Retrying would fail the same way (policy, frame size): stop and say why. */
  | { kind: 'fatal'; message: string }
  /** The connection dropped: reconnect with backoff. */
  | { kind: 'retry'; message: string };

export const CLOSE_SESSION_UNKNOWN = 4404;
export const CLOSE_SESSION_EXPIRED = 4408;

export function classifyClose(code: number, reason = ''): CloseAction {
  const why = reason ? `: ${reason}` : '';
  switch (code) {
    case CLOSE_SESSION_UNKNOWN:
      return { kind: 'ended', reason: 'ended', message: 'Your session has ended.' };
    case CLOSE_SESSION_EXPIRED:
      return { kind: 'ended', reason: 'expired', message: 'Your session expired.' };
    case 1008:
      return { kind: 'fatal', message: `The gateway refused the connection (policy${why}).` };
    case 1009:
      return { kind: 'fatal', message: `The gateway rejected a message as too big${why}.` };
    case 1001:
      return { kind: 'retry', message: 'The server is going away; reconnecting.' };
    case 1011:
      return { kind: 'retry', message: `The gateway hit an internal error${why}; reconnecting.` };
    default:
      return { kind: 'retry', message: `Connection lost (code ${code}${why}); reconnecting.` };
  }
}
