/**
 * WebSocket close codes (docs/architecture.md, "HTTP / WebSocket contract"),
 * as the server defines them (services/common/wire.py, `CloseCode`), and what
 * the page does when the gateway's socket closes with each.
 */

export const CloseCode = {
  /** The page's own close: the session is over. */
  NORMAL: 1000,
  /** The server is shutting down. */
  GOING_AWAY: 1001,
  /** A binary frame. */
  UNSUPPORTED_DATA: 1003,
  /** Too many messages per second. */
  POLICY_VIOLATION: 1008,
  /** A frame over the server's MAX_FRAME_BYTES. */
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  /** This gateway replica is restarting ("kill my gateway"): reconnect, to another one. */
  SERVICE_RESTART: 1012,
  /** Unknown, ended or deleted session. */
  SESSION_ENDED: 4404,
  /** Ended by the idle timeout or the lifetime. */
  SESSION_EXPIRED: 4408,
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
