/**
 * What the session controller's parts share: the injectable dependencies
 * (Deps) and the SessionContext through which the status poll, the
 * replacement anatomy and the event handlers read the current snapshot and
 * update it.
 */

import * as realApi from './api';
import { ApiError } from './api';
import type { Timeline, Tone } from './lib/timeline';
import type { SessionView } from './sessionView';

export interface Deps {
  api: Pick<
    typeof realApi,
    'createSession' | 'getSession' | 'killPod' | 'killGateway' | 'endSession' | 'endSessionOnUnload'
  >;
  WebSocketImpl: typeof WebSocket;
  pageHref: () => string;
  mono: () => number;
  wall: () => number;
  random: () => number;
}

export const defaultDeps = (): Deps => ({
  api: realApi,
  // Through globalThis so that merely building the defaults cannot throw
  // where WebSocket is missing (Node 20, for the unit tests).
  WebSocketImpl: globalThis.WebSocket,
  pageHref: () => window.location.href,
  mono: () => performance.now(),
  wall: () => Date.now(),
  random: Math.random,
});

/** The controller as its parts see it. */
export interface SessionContext {
  readonly deps: Deps;
  readonly timeline: Timeline;
  /** The current snapshot (ask again after every await). */
  view(): SessionView;
  /** Bumped per session so late callbacks of an old session are ignored. */
  generation(): number;
  update(patch: Partial<SessionView>): void;
  log(text: string, tone?: Tone): void;
  /** The session is over: by the server ('ended', 'expired') or the visitor ('user'). */
  finish(reason: 'ended' | 'expired' | 'user', message: string): void;
}

export function errText(exc: unknown): string {
  if (exc instanceof ApiError) return exc.detail;
  if (exc instanceof Error) return exc.message;
  return String(exc);
}
