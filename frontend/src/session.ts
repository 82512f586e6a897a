/**
 * SessionController: one visitor's session, outside React.
 *
 * It claims a pod (POST /session, only when asked), keeps the gateway
 * WebSocket open (GatewaySocket, reconnecting with backoff), has the Pinger
 * send a ping every interval into a PingTracker, and turns gateway events and
 * pongs into the Timeline. React reads immutable snapshots through
 * subscribe()/getSnapshot() (useSyncExternalStore); the chart reads the
 * tracker directly, so pongs at 10 Hz do not re-render the page.
 */

import * as realApi from './api';
import { ApiError, type CreatedSession } from './api';
import { GatewaySocket } from './gatewaySocket';
import { buildAnatomy } from './lib/anatomy';
import type { CloseAction } from './lib/closeCodes';
import { formatMs } from './lib/format';
import type { GatewayEvent, GatewayFrame } from './lib/frames';
import { resolveWsUrl } from './lib/http';
import { PingTracker } from './lib/pingTracker';
import { historyCapacity, type Settings } from './lib/settings';
import { Timeline, type Tone } from './lib/timeline';
import { Pinger } from './pinger';
import { idleView, type SessionView } from './sessionView';

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

const defaultDeps = (): Deps => ({
  api: realApi,
  // Through globalThis so that merely building the defaults cannot throw
  // where WebSocket is missing (Node 20, for the unit tests).
  WebSocketImpl: globalThis.WebSocket,
  pageHref: () => window.location.href,
  mono: () => performance.now(),
  wall: () => Date.now(),
  random: Math.random,
});

/** How often GET /session refreshes the pod card (also refreshed on events). */
const STATUS_REFRESH_MS = 10_000;
/** Asking for a replacement's start phases: tries, and the pause between them. */
const ANATOMY_TRIES = 8;
const ANATOMY_RETRY_MS = 250;

/** A pod being replaced: what the replacement anatomy is built from. */
interface Replacement {
  /** Epoch ms of the kill: the gateway's pod_killed `at` once heard, the click before. */
  killedAtMs: number;
  heardKill: boolean;
  oldPod: string | null;
  newPod: string | null;
  /** The gateway's upstream_ready `at` for the new pod, and when the page saw it. */
  connectedAtMs: number;
  connectedSeenMs: number;
}

export class SessionController {
  readonly settings: Settings;
  private readonly deps: Deps;
  private listeners = new Set<() => void>();
  private view: SessionView;

  private readonly timeline: Timeline;
  private readonly socket: GatewaySocket;
  private readonly pinger: Pinger;
  private statusTimer: ReturnType<typeof setInterval> | null = null;
  private startClickMono = 0;
  private replacement: Replacement | null = null;
  /** Bumped per session so late callbacks of an old session are ignored. */
  private generation = 0;

  constructor(settings: Settings, deps: Partial<Deps> = {}) {
    this.settings = settings;
    this.deps = { ...defaultDeps(), ...deps };
    this.timeline = new Timeline({ mono: this.deps.mono, wall: this.deps.wall });
    this.socket = new GatewaySocket({
      WebSocketImpl: this.deps.WebSocketImpl,
      random: this.deps.random,
      events: {
        connecting: (again) =>
          this.update({ link: again ? 'reconnecting' : 'connecting', reconnectAt: null }),
        cannotOpen: (exc) =>
          this.update({ link: 'stopped', message: `Cannot open the WebSocket: ${errText(exc)}` }),
        opened: (again) => this.onOpen(again),
        frame: (frame) => this.onFrame(frame),
        closed: (action) => this.onClose(action),
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
    this.statusTimer = setInterval(() => void this.refreshStatus(), STATUS_REFRESH_MS);
  }

  /** Kill the session's pod (after the visitor confirmed). */
  async kill(): Promise<void> {
    const s = this.view.session;
    if (this.view.phase !== 'live' || !s || this.view.killing) return;
    const gen = this.generation;
    this.timeline.killRequested(this.view.pod?.name ?? null);
    this.replacementStarts(this.deps.wall(), false, this.view.pod?.name ?? null);
    this.update({ killing: true });
    try {
      await this.deps.api.killPod(s.session_id);
      if (gen !== this.generation) return;
      this.log('Provisioner deleted the pod; replacement on its way', 'info');
    } catch (exc) {
      if (gen !== this.generation) return;
      // 404 is also the answer while the pod is already being replaced, so
      // ask whether the session itself is gone before ending it here.
      if (exc instanceof ApiError && exc.status === 404) void this.refreshStatus();
      this.replacement = null;
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

  // --- the gateway socket ---------------------------------------------------

  private onOpen(again: boolean): void {
    if (again) this.log('Reconnected to the gateway', 'ok');
    this.update({ link: 'open', message: null, reconnectAt: null });
    // Pings sent before the gateway reaches the pod would be dropped.
    this.pinger.awaitUpstream();
  }

  private onFrame(frame: GatewayFrame): void {
    switch (frame.type) {
      case 'pong':
        this.onPong(frame.seq, frame.pod, frame.node);
        break;
      case 'event':
        this.onEvent(frame.event, frame.pod, frame.at, frame.gateway);
        break;
      case 'unknown_event':
        this.timeline.unknownEvent(frame.name, frame.pod);
        this.update({});
        break;
      case 'error':
        this.log(`Gateway error: ${frame.text}`, 'error');
        break;
    }
  }

  private onPong(seq: number, pod: string | undefined, node: string | undefined): void {
    const mono = this.deps.mono();
    const rtt = this.view.tracker.receive(seq, mono);
    if (rtt === null) return;
    this.socket.resetBackoff();
    this.pinger.pongArrived();
    const patch: Partial<SessionView> = {};
    if (this.view.firstPongMs === null) patch.firstPongMs = mono - this.startClickMono;
    const r = this.replacement;
    if (r !== null && r.newPod !== null) {
      // The first pong since the gateway connected to the replacement (it relays
      // only from the pod it is connected to, whatever name the pong carries).
      this.replacement = null;
      void this.recordAnatomy(r, this.deps.wall());
    }
    const current = this.view.pod;
    if (pod && pod !== current?.name) {
      const status = this.view.status;
      const startedAt = status?.pod?.name === pod ? status.pod.started_at : null;
      patch.pod = { name: pod, node: node ?? '', startedAt };
      void this.refreshStatus();
    } else if (node && current && node !== current.node) {
      patch.pod = { ...current, node };
    }
    this.timeline.pong(pod, current?.name ?? null);
    if (Object.keys(patch).length > 0 || this.view.timeline !== this.timeline.entries) {
      this.update(patch);
    }
  }

  private onEvent(
    event: GatewayEvent,
    pod: string | undefined,
    at: number | undefined,
    gateway: string | undefined,
  ): void {
    const patch: Partial<SessionView> = {};
    if (gateway && gateway !== this.view.gateway) {
      if (this.view.gateway !== null) this.log(`Now through gateway replica ${gateway}`, 'ok');
      patch.gateway = gateway;
    }
    this.timeline.gatewayEvent(event, pod, this.view.pod?.name ?? null);
    switch (event) {
      case 'upstream_lost':
        this.pinger.upstreamLost();
        break;
      case 'upstream_ready': {
        this.pinger.upstreamReady();
        if (pod) {
          patch.gatewayPod = pod;
          if (pod === this.view.replacementPod) patch.replacementPod = null;
        }
        const r = this.replacement;
        if (r !== null && pod && pod !== r.oldPod) {
          r.newPod = pod;
          r.connectedSeenMs = this.deps.wall();
          r.connectedAtMs = at ?? r.connectedSeenMs;
        }
        void this.refreshStatus();
        break;
      }
      case 'pod_replaced':
        if (pod) patch.replacementPod = pod;
        void this.refreshStatus();
        break;
      case 'session_expiring':
        void this.refreshStatus();
        break;
      case 'pod_killed': {
        const r = this.replacement;
        if (r === null) {
          this.replacementStarts(at ?? this.deps.wall(), at !== undefined, pod ?? null);
        } else if (!r.heardKill && at !== undefined) {
          r.killedAtMs = at; // the server's clock, like the pod's own times
          r.heardKill = true;
        }
        break;
      }
      default:
        event satisfies never; // every GatewayEvent has its case
    }
    this.update(patch);
  }

  // --- replacement anatomy ----------------------------------------------------

  private replacementStarts(atMs: number, heard: boolean, oldPod: string | null): void {
    this.replacement = {
      killedAtMs: atMs,
      heardKill: heard,
      oldPod,
      newPod: null,
      connectedAtMs: 0,
      connectedSeenMs: 0,
    };
  }

  /**
   * The replacement answered: ask for its start phases (a replica's watch may
   * be a moment behind, so a few times) and put them on the timeline.
   */
  private async recordAnatomy(r: Replacement, firstPongSeenMs: number): Promise<void> {
    const s = this.view.session;
    if (!s || r.newPod === null) return;
    const gen = this.generation;
    for (let attempt = 0; attempt < ANATOMY_TRIES; attempt++) {
      if (attempt > 0) await new Promise((ok) => setTimeout(ok, ANATOMY_RETRY_MS));
      if (gen !== this.generation) return;
      let status;
      try {
        status = await this.deps.api.getSession(s.session_id);
      } catch {
        continue;
      }
      if (gen !== this.generation) return;
      const pod = status.pod;
      if (pod?.name !== r.newPod || !pod.phases || pod.phases.ready === null) continue;
      const steps = buildAnatomy({
        killedAtMs: r.killedAtMs,
        phases: pod.phases,
        connectedAtMs: r.connectedAtMs,
        connectedSeenMs: r.connectedSeenMs,
        firstPongSeenMs,
      });
      this.timeline.addAnatomy(r.newPod, steps);
      this.update({});
      return;
    }
  }

  private onClose(action: CloseAction): void {
    this.pinger.stop();
    this.view.tracker.abandonPending();
    if (this.view.phase !== 'live') return;
    if (action.kind === 'ended') {
      this.finish(action.reason, action.message);
      return;
    }
    if (action.kind === 'fatal') {
      this.log(action.message, 'error');
      this.update({ link: 'stopped', message: action.message, reconnectAt: null });
      return;
    }
    // A drop: keep the chart's clock running (gaps) and come back with backoff.
    if (this.socket.everOpened) this.pinger.keepClock();
    const { delayMs, attempt } = this.socket.reconnectLater();
    if (attempt === 1) this.log(action.message, 'warn');
    this.update({
      link: 'reconnecting',
      message: action.message,
      reconnectAt: this.deps.wall() + delayMs,
      reconnectAttempt: attempt,
    });
    // If the session is gone, the status call says so (404) and ends it.
    void this.refreshStatus();
  }

  // --- status ---------------------------------------------------------------

  private async refreshStatus(): Promise<void> {
    const s = this.view.session;
    if (!s || this.view.phase !== 'live') return;
    const gen = this.generation;
    try {
      const status = await this.deps.api.getSession(s.session_id);
      if (gen !== this.generation || this.view.phase !== 'live') return;
      const pod = this.view.pod;
      const patch: Partial<SessionView> = { status };
      const sp = status.pod;
      if (pod && sp && sp.name === pod.name && pod.startedAt !== sp.started_at) {
        patch.pod = { ...pod, startedAt: sp.started_at, node: pod.node || sp.node };
      }
      this.update(patch);
    } catch (exc) {
      if (gen !== this.generation) return;
      // A 404 means the session is over; other failures (network blips) are
      // retried by the next refresh.
      if (exc instanceof ApiError && exc.status === 404) {
        this.finish('ended', 'Your session has ended.');
      }
    }
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
    this.replacement = null;
    if (this.statusTimer !== null) clearInterval(this.statusTimer);
    this.statusTimer = null;
    this.view.tracker.abandonPending();
  }

  private newTracker(): PingTracker {
    return new PingTracker({
      capacity: historyCapacity(this.settings),
      timeoutMs: this.settings.timeoutMs,
    });
  }
}

function errText(exc: unknown): string {
  if (exc instanceof ApiError) return exc.detail;
  if (exc instanceof Error) return exc.message;
  return String(exc);
}
