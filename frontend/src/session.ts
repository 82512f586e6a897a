/**
 * SessionController: one visitor's session, outside React.
 *
 * It claims a pod (POST /session, only when asked), keeps the gateway
 * WebSocket open (GatewaySocket, reconnecting with backoff), has the Pinger
 * send a ping every interval into a PingTracker, and turns gateway events and
 * pongs into the Timeline. React reads immutable snapshots through
 * subscribe()/getSnapshot() (useSyncExternalStore); the chart reads the
 * tracker directly, so pongs at 10 Hz do not re-render the page.
 *
 * This file holds the store and the actions (start, kill, end, ...); its
 * parts: sessionEvents.ts (what the socket tells: opens, frames, closes),
 * replacementAnatomy.ts (a replaced pod's start phases), statusPoll.ts
 * (GET /session), sessionContext.ts (Deps and what the parts share).
 */

import { ApiError, type CreatedSession } from './api';
import { GatewaySocket } from './gatewaySocket';
import { formatMs } from './lib/format';
import { resolveWsUrl } from './lib/http';
import { PingTracker } from './lib/pingTracker';
import { historyCapacity, type Settings } from './lib/settings';
import { Timeline, type Tone } from './lib/timeline';
import { Pinger } from './pinger';
import { ReplacementAnatomy } from './replacementAnatomy';
import { defaultDeps, errText, type Deps, type SessionContext } from './sessionContext';
import { SessionEvents } from './sessionEvents';
import { idleView, type SessionView } from './sessionView';
import { StatusPoll } from './statusPoll';

export type { Deps } from './sessionContext';

export class SessionController {
  readonly settings: Settings;
  private readonly deps: Deps;
  private listeners = new Set<() => void>();
  private view: SessionView;

  private readonly timeline: Timeline;
  private readonly socket: GatewaySocket;
  private readonly pinger: Pinger;
  private readonly status: StatusPoll;
  private readonly anatomy: ReplacementAnatomy;
  private readonly events: SessionEvents;
  private startClickMono = 0;
  /** Bumped per session so late callbacks of an old session are ignored. */
  private generation = 0;

  constructor(settings: Settings, deps: Partial<Deps> = {}) {
    this.settings = settings;
    this.deps = { ...defaultDeps(), ...deps };
    this.timeline = new Timeline({ mono: this.deps.mono, wall: this.deps.wall });
    const ctx: SessionContext = {
      deps: this.deps,
      timeline: this.timeline,
      view: () => this.view,
      generation: () => this.generation,
      update: (patch) => this.update(patch),
      log: (text, tone) => this.log(text, tone),
      finish: (reason, message) => this.finish(reason, message),
    };
    this.socket = new GatewaySocket({
      WebSocketImpl: this.deps.WebSocketImpl,
      random: this.deps.random,
      events: {
        connecting: (again) =>
          this.update({ link: again ? 'reconnecting' : 'connecting', reconnectAt: null }),
        cannotOpen: (exc) =>
          this.update({ link: 'stopped', message: `Cannot open the WebSocket: ${errText(exc)}` }),
        opened: (again) => this.events.opened(again),
        frame: (frame) => this.events.frame(frame),
        closed: (action) => this.events.closed(action),
      },
    });
    this.pinger = new Pinger({
      intervalMs: settings.intervalMs,
      tracker: () => this.view.tracker,
      canSend: () => this.socket.isOpen,
      send: (frame) => this.socket.send(frame),
      mono: this.deps.mono,
      wall: this.deps.wall,
    });
    this.status = new StatusPoll(ctx);
    this.anatomy = new ReplacementAnatomy(ctx);
    this.events = new SessionEvents(ctx, {
      socket: this.socket,
      pinger: this.pinger,
      anatomy: this.anatomy,
      status: this.status,
      startClickMono: () => this.startClickMono,
    });
    this.view = idleView(this.newTracker());
  }

  // --- useSyncExternalStore -------------------------------------------------

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getSnapshot = (): SessionView => this.view;

  private update(patch: Partial<SessionView>): void {
    this.view = { ...this.view, ...patch, timeline: this.timeline.entries };
    for (const fn of this.listeners) fn();
  }

  private log(text: string, tone: Tone = 'info'): void {
    this.timeline.add(text, tone);
    this.update({});
  }

  // --- actions --------------------------------------------------------------

  /** Claim a pod and connect. Only ever called from a click. */
  async start(): Promise<void> {
    if (this.view.phase === 'claiming' || this.view.phase === 'live') return;
    this.teardown();
    const gen = ++this.generation;
    this.startClickMono = this.deps.mono();
    this.timeline.clear();
    this.update({
      ...idleView(this.newTracker()),
      phase: 'claiming',
      message: 'Claiming a pod from the warm pool…',
    });
    let created: CreatedSession;
    try {
      created = await this.deps.api.createSession();
    } catch (exc) {
      if (gen !== this.generation) return;
      this.failStart(exc);
      return;
    }
    if (gen !== this.generation) {
      // Superseded (page hidden, say) while claiming: give the pod back.
      this.deps.api.endSessionOnUnload(created.session_id);
      return;
    }
    const how = created.warm ? 'warm' : 'cold';
    this.log(`Claimed pod ${created.pod.name} (${how}, ${formatMs(created.assign_ms)})`, 'ok');
    this.update({
      phase: 'live',
      session: created,
      message: null,
      pod: { name: created.pod.name, node: created.pod.node, startedAt: created.pod.started_at },
    });
    this.socket.open(resolveWsUrl(created.ws_url, this.deps.pageHref()));
    this.status.start();
  }

  /** Kill the session's pod (after the visitor confirmed). */
  async kill(): Promise<void> {
    const s = this.view.session;
    if (this.view.phase !== 'live' || !s || this.view.killing) return;
    const gen = this.generation;
    this.timeline.killRequested(this.view.pod?.name ?? null);
    this.anatomy.starts(this.deps.wall(), false, this.view.pod?.name ?? null);
    this.update({ killing: true });
    try {
      await this.deps.api.killPod(s.session_id);
      if (gen !== this.generation) return;
      this.log('Provisioner deleted the pod; replacement on its way', 'info');
    } catch (exc) {
      if (gen !== this.generation) return;
      // 404 is also the answer while the pod is already being replaced, so
      // ask whether the session itself is gone before ending it here.
      if (exc instanceof ApiError && exc.status === 404) void this.status.refresh();
      this.anatomy.clear();
      this.timeline.killFailed(errText(exc));
    } finally {
      if (gen === this.generation) this.update({ killing: false });
    }
  }

  /**
   * Restart the gateway replica holding this socket (DELETE /session/{id}/gateway).
   * The socket then closes with 1012 and the page reconnects through another
   * replica; the timeline shows the move.
   */
  async killGateway(): Promise<void> {
    const s = this.view.session;
    if (this.view.phase !== 'live' || !s || this.view.gatewayKilling) return;
    const gen = this.generation;
    this.timeline.gatewayKillRequested(this.view.pod?.name ?? null);
    this.update({ gatewayKilling: true });
    try {
      await this.deps.api.killGateway(s.session_id);
      if (gen !== this.generation) return;
      const via = this.view.gateway ? ` ${this.view.gateway}` : '';
      this.log(`Gateway replica${via} is draining: it leaves the load balancer, then closes`);
    } catch (exc) {
      if (gen !== this.generation) return;
      this.timeline.killFailed(errText(exc));
    } finally {
      if (gen === this.generation) this.update({ gatewayKilling: false });
    }
  }

  /** End the session on request (DELETE /session/{id}). */
  async end(): Promise<void> {
    const s = this.view.session;
    if (!s || this.view.phase !== 'live') return;
    const id = s.session_id;
    this.finish('user', 'You ended the session.');
    try {
      await this.deps.api.endSession(id);
    } catch (exc) {
      if (!(exc instanceof ApiError && exc.status === 404)) {
        this.log(`Ending the session failed: ${errText(exc)}`, 'error');
      }
    }
  }

  /** Reconnect now, after a fatal close or to skip the backoff wait. */
  reconnectNow(): void {
    if (this.view.phase !== 'live' || this.view.link === 'open' || this.view.link === 'connecting') {
      return;
    }
    this.socket.reconnectNow();
  }

  /** The page is going away: end the session so its pod is released now. */
  pageHide(): void {
    const s = this.view.session;
    if (s && this.view.phase === 'live') {
      this.deps.api.endSessionOnUnload(s.session_id);
      this.finish('user', 'The session ended when the page was closed.');
    } else if (this.view.phase === 'claiming') {
      // The claim's answer will be released when it arrives (see start()).
      this.generation++;
      this.update({ phase: 'idle', message: null });
    }
  }

  dispose(): void {
    this.generation++;
    this.teardown();
    this.listeners.clear();
  }

  // --- endings --------------------------------------------------------------

  private failStart(exc: unknown): void {
    if (exc instanceof ApiError && exc.status === 429) {
      const sec = exc.retryAfterSec ?? 5;
      this.update({
        phase: 'limited',
        message: exc.detail,
        retryAt: this.deps.wall() + sec * 1000,
      });
      return;
    }
    this.update({ phase: 'error', message: `Could not start a session: ${errText(exc)}` });
  }

  /** The session is over: by the server ('ended', 'expired') or the visitor ('user'). */
  private finish(reason: 'ended' | 'expired' | 'user', message: string): void {
    if (this.view.phase !== 'live' && this.view.phase !== 'claiming') return;
    this.generation++;
    this.teardown();
    this.timeline.add(message, reason === 'user' ? 'info' : 'warn');
    this.update({
      phase: 'ended',
      link: null,
      message,
      reconnectAt: null,
      killing: false,
      gatewayKilling: false,
    });
  }

  private teardown(): void {
    this.pinger.stop();
    this.socket.close();
    this.anatomy.clear();
    this.status.stop();
    this.view.tracker.abandonPending();
  }

  private newTracker(): PingTracker {
    return new PingTracker({
      capacity: historyCapacity(this.settings),
      timeoutMs: this.settings.timeoutMs,
    });
  }
}
