/**
 * SessionController: one visitor's session, outside React.
 *
 * It claims a pod (POST /session, only when asked), keeps the gateway
 * WebSocket open (reconnecting with backoff), sends a ping every interval,
 * feeds pongs and losses into a PingTracker, and turns gateway events into the
 * timeline. React reads immutable snapshots through subscribe()/getSnapshot()
 * (useSyncExternalStore); the chart reads the tracker directly, so pongs at
 * 10 Hz do not re-render the page.
 */

import * as realApi from './api';
import { ApiError, type CreatedSession } from './api';
import { Backoff } from './lib/backoff';
import { classifyClose } from './lib/closeCodes';
import { formatMs } from './lib/format';
import { parseFrame } from './lib/frames';
import { resolveWsUrl } from './lib/http';
import { PingTracker } from './lib/pingTracker';
import { historyCapacity, type Settings } from './lib/settings';
import { Timeline } from './lib/timeline';
import { Pinger } from './pinger';
import type { SessionView } from './sessionView';

export type { Link, Phase, PodView, SessionView } from './sessionView';

export interface Deps {
  api: Pick<
    typeof realApi,
    'createSession' | 'getSession' | 'killPod' | 'endSession' | 'endSessionOnUnload'
  >;
  WebSocketImpl: typeof WebSocket;
  pageHref: () => string;
  mono: () => number;
  wall: () => number;
  random: () => number;
}

const WS_OPEN = 1;

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

export class SessionController {
  readonly settings: Settings;
  private readonly deps: Deps;
  private listeners = new Set<() => void>();
  private view: SessionView;

  private timeline = new Timeline();
  private backoff: Backoff;
  private ws: WebSocket | null = null;
  private everOpened = false;
  private readonly pinger: Pinger;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private statusTimer: ReturnType<typeof setInterval> | null = null;
  private startClickMono = 0;
  /** Pod answering when the current incident began, and whether recovery was signalled. */
  private incidentPod: string | null = null;
  private incidentRecovering = false;
  /** Bumped per session so late callbacks of an old session are ignored. */
  private generation = 0;

  constructor(settings: Settings, deps: Partial<Deps> = {}) {
    this.settings = settings;
    this.deps = { ...defaultDeps(), ...deps };
    this.backoff = new Backoff({ random: this.deps.random });
    this.pinger = new Pinger({
      intervalMs: settings.intervalMs,
      tracker: () => this.view.tracker,
      canSend: () => this.ws !== null && this.ws.readyState === WS_OPEN,
      send: (frame) => {
        if (!this.ws || this.ws.readyState !== WS_OPEN) return false;
        this.ws.send(frame);
        return true;
      },
      mono: this.deps.mono,
      wall: this.deps.wall,
    });
    this.view = { ...this.blankView(), timeline: [] };
  }

  // --- useSyncExternalStore -------------------------------------------------

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getSnapshot = (): SessionView => this.view;

  /** The view with no session: where the page starts, and where Start starts from. */
  private blankView(): Omit<SessionView, 'timeline'> {
    return {
      phase: 'idle',
      link: null,
      message: null,
      retryAt: null,
      reconnectAt: null,
      reconnectAttempt: 0,
      session: null,
      status: null,
      pod: null,
      tracker: this.newTracker(),
      killing: false,
      firstPongMs: null,
      endedReason: null,
    };
  }

  private update(patch: Partial<SessionView>): void {
    this.view = { ...this.view, ...patch, timeline: this.timeline.entries };
    for (const fn of this.listeners) fn();
  }

  private log(text: string, tone: 'info' | 'warn' | 'ok' | 'error' = 'info'): void {
    this.timeline.add(this.deps.mono(), this.deps.wall(), text, tone);
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
    this.backoff.reset();
    this.everOpened = false;
    this.update({
      ...this.blankView(),
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
    this.connect();
    this.statusTimer = setInterval(() => void this.refreshStatus(), STATUS_REFRESH_MS);
  }

  /** Kill the session's pod (after the visitor confirmed). */
  async kill(): Promise<void> {
    const s = this.view.session;
    if (this.view.phase !== 'live' || !s || this.view.killing) return;
    const gen = this.generation;
    this.incidentPod = this.view.pod?.name ?? null;
    this.incidentRecovering = false;
    this.timeline.beginIncident(
      this.deps.mono(),
      this.deps.wall(),
      `Kill requested for pod ${this.incidentPod ?? ''}`.trim(),
    );
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
      this.timeline.endIncident(
        this.deps.mono(),
        this.deps.wall(),
        `Kill failed: ${errText(exc)}`,
        'error',
      );
    } finally {
      if (gen === this.generation) this.update({ killing: false });
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
    this.clearReconnect();
    this.connect();
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

  // --- connection -----------------------------------------------------------

  private connect(): void {
    const s = this.view.session;
    if (!s) return;
    this.dropSocket();
    const url = resolveWsUrl(s.ws_url, this.deps.pageHref());
    let ws: WebSocket;
    try {
      ws = new this.deps.WebSocketImpl(url);
    } catch (exc) {
      this.update({ link: 'stopped', message: `Cannot open the WebSocket: ${errText(exc)}` });
      return;
    }
    this.ws = ws;
    this.update({ link: this.everOpened ? 'reconnecting' : 'connecting', reconnectAt: null });
    ws.onopen = () => this.onOpen(ws);
    ws.onmessage = (ev: MessageEvent) => this.onMessage(ws, ev.data);
    ws.onclose = (ev: CloseEvent) => this.onClose(ws, ev.code, ev.reason);
    // onerror is always followed by onclose, which decides what to do.
  }

  private onOpen(ws: WebSocket): void {
    if (ws !== this.ws) return;
    if (this.everOpened) this.log('Reconnected to the gateway', 'ok');
    this.everOpened = true;
    this.update({ link: 'open', message: null, reconnectAt: null });
    // Pings sent before the gateway reaches the pod would be dropped.
    this.pinger.awaitUpstream();
  }

  private onMessage(ws: WebSocket, data: unknown): void {
    if (ws !== this.ws) return;
    const frame = parseFrame(data);
    if (frame === null) return;
    if (frame.type === 'pong') this.onPong(frame.seq, frame.pod, frame.node);
    else if (frame.type === 'event') this.onEvent(frame.event, frame.pod);
    else this.log(`Gateway error: ${frame.text}`, 'error');
  }

  private onPong(seq: number, pod: string | undefined, node: string | undefined): void {
    const mono = this.deps.mono();
    const rtt = this.view.tracker.receive(seq, mono);
    if (rtt === null) return;
    this.backoff.reset();
    this.pinger.pongArrived();
    const patch: Partial<SessionView> = {};
    if (this.view.firstPongMs === null) patch.firstPongMs = mono - this.startClickMono;
    const current = this.view.pod;
    if (pod && pod !== current?.name) {
      const status = this.view.status;
      const startedAt = status?.pod?.name === pod ? status.pod.started_at : null;
      patch.pod = { name: pod, node: node ?? '', startedAt };
      void this.refreshStatus();
    } else if (node && current && node !== current.node) {
      patch.pod = { ...current, node };
    }
    if (this.timeline.inIncident && pod && (pod !== this.incidentPod || this.incidentRecovering)) {
      this.timeline.endIncident(mono, this.deps.wall(), `Pongs resumed from pod ${pod}`, 'ok');
      this.incidentPod = null;
      this.incidentRecovering = false;
    } else if (!this.timeline.inIncident && patch.pod && current && patch.pod.name !== current.name) {
      this.timeline.add(mono, this.deps.wall(), `Now answered by pod ${pod ?? ''}`, 'info');
    }
    if (Object.keys(patch).length > 0 || this.view.timeline !== this.timeline.entries) {
      this.update(patch);
    }
  }

  private onEvent(event: string, pod: string | undefined): void {
    const mono = this.deps.mono();
    const wasIncident = this.timeline.inIncident;
    this.timeline.gatewayEvent(mono, this.deps.wall(), event, pod);
    if (!wasIncident && this.timeline.inIncident) {
      this.incidentPod = this.view.pod?.name ?? null;
      this.incidentRecovering = false;
    }
    if (event === 'upstream_lost') this.pinger.upstreamLost();
    else if (event === 'upstream_ready') this.pinger.upstreamReady();
    if (event === 'upstream_ready' || event === 'pod_replaced') {
      if (event === 'upstream_ready') this.incidentRecovering = true;
      void this.refreshStatus();
    } else if (event === 'session_expiring') {
      void this.refreshStatus();
    }
    this.update({});
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.ws = null;
    this.pinger.stop();
    this.view.tracker.abandonPending();
    if (this.view.phase !== 'live') return;
    const action = classifyClose(code, reason);
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
    if (this.everOpened) this.pinger.keepClock();
    const delay = this.backoff.next();
    const attempt = this.backoff.attempts;
    if (attempt === 1) this.log(action.message, 'warn');
    this.update({
      link: 'reconnecting',
      message: action.message,
      reconnectAt: this.deps.wall() + delay,
      reconnectAttempt: attempt,
    });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
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
      this.handleGone(exc);
      // Other failures (network blips) are retried by the next refresh.
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

  /** A 404 from the API means the session is over; returns whether it was one. */
  private handleGone(exc: unknown): boolean {
    if (exc instanceof ApiError && exc.status === 404) {
      this.finish('ended', 'Your session has ended.');
      return true;
    }
    return false;
  }

  private finish(reason: 'ended' | 'expired' | 'user', message: string): void {
    if (this.view.phase !== 'live' && this.view.phase !== 'claiming') return;
    this.generation++;
    this.teardown();
    this.timeline.add(this.deps.mono(), this.deps.wall(), message, reason === 'user' ? 'info' : 'warn');
    this.update({
      phase: 'ended',
      link: null,
      message,
      reconnectAt: null,
      killing: false,
      endedReason: reason,
    });
  }

  private teardown(): void {
    this.pinger.stop();
    this.clearReconnect();
    if (this.statusTimer !== null) clearInterval(this.statusTimer);
    this.statusTimer = null;
    this.dropSocket();
    this.view.tracker.abandonPending();
  }

  /** Close the current socket, if any, without hearing from it again. */
  private dropSocket(): void {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close(1000, 'session over');
    } catch {
      // Already closing.
    }
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
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
