/**
 * WebSocket close codes (docs/api.md, "WebSocket frames and close codes"):
 * the server's, `CloseCode` of its OpenAPI document (generated, each
 * explained there), and what the page does when the gateway's socket closes
 * with each.
 */

import { CloseCode as ServerCloseCode } from './contract.gen';

export const CloseCode = {
  /** The page's own close: the session is over. */
  NORMAL: 1000,
  ...ServerCloseCode,
} as const;

export type CloseAction =
  /** The session is gone (4404) or expired (4408): offer a new one. */
  | { kind: 'ended'; reason: 'ended' | 'expired'; message: string }
  /** Retrying would fail the same way (policy, frame size): stop and say why. */
  | { kind: 'fatal'; message: string }
  /** The connection dropped: reconnect with backoff. */
  | { kind: 'retry'; message: string };

export function classifyClose(code: number, reason = ''): CloseAction {
  const why = reason ? `: ${reason}` : '';
  switch (code) {
    case CloseCode.SESSION_ENDED:
      return { kind: 'ended', reason: 'ended', message: 'Your session has ended.' };
    case CloseCode.SESSION_EXPIRED:
      return { kind: 'ended', reason: 'expired', message: 'Your session expired.' };
    case CloseCode.POLICY_VIOLATION:
      return { kind: 'fatal', message: `The gateway refused the connection (policy${why}).` };
    case CloseCode.MESSAGE_TOO_BIG:
      return { kind: 'fatal', message: `The gateway rejected a message as too big${why}.` };
    case CloseCode.GOING_AWAY:
      return { kind: 'retry', message: 'The server is going away; reconnecting.' };
    case CloseCode.SERVICE_RESTART:
      return {
        kind: 'retry',
        message: 'The gateway is restarting; reconnecting through another replica.',
      };
    case CloseCode.INTERNAL_ERROR:
      return { kind: 'retry', message: `The gateway hit an internal error${why}; reconnecting.` };
    default:
      // 1006 (no close frame at all), 1003 and any other code.
      return { kind: 'retry', message: `Connection lost (code ${code}${why}); reconnecting.` };
  }
}
