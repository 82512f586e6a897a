/**
 * What the gateway socket tells the session: opens, frames (pongs and gateway
 * events, turned into timeline entries and snapshot patches) and closes.
 */

import type { GatewaySocket } from './gatewaySocket';
import type { CloseAction } from './lib/closeCodes';
import type { GatewayEvent, GatewayFrame } from './lib/frames';
import type { Pinger } from './pinger';
import type { ReplacementAnatomy } from './replacementAnatomy';
import type { SessionContext } from './sessionContext';
import type { SessionView } from './sessionView';
import type { StatusPoll } from './statusPoll';

/** The controller's other parts the handlers drive. */
export interface SessionEventParts {
  socket: GatewaySocket;
  pinger: Pinger;
  anatomy: ReplacementAnatomy;
  status: StatusPoll;
  /** performance.now() of the click that started this session. */
  startClickMono(): number;
}

export class SessionEvents {
  private readonly ctx: SessionContext;
  private readonly socket: GatewaySocket;
  private readonly pinger: Pinger;
  private readonly anatomy: ReplacementAnatomy;
  private readonly status: StatusPoll;
  private readonly startClickMono: () => number;

  constructor(ctx: SessionContext, parts: SessionEventParts) {
    this.ctx = ctx;
    this.socket = parts.socket;
    this.pinger = parts.pinger;
    this.anatomy = parts.anatomy;
    this.status = parts.status;
    this.startClickMono = parts.startClickMono;
  }

  opened(again: boolean): void {
    if (again) this.ctx.log('Reconnected to the gateway', 'ok');
    this.ctx.update({ link: 'open', message: null, reconnectAt: null });
    // Pings sent before the gateway reaches the pod would be dropped.
    this.pinger.awaitUpstream();
  }

  frame(frame: GatewayFrame): void {
    switch (frame.type) {
      case 'pong':
        this.onPong(frame.seq, frame.pod, frame.node);
        break;
      case 'event':
        this.onEvent(frame.event, frame.pod, frame.at, frame.gateway, frame.reason);
        break;
      case 'unknown_event':
        this.ctx.timeline.unknownEvent(frame.name, frame.pod);
        this.ctx.update({});
        break;
      case 'error':
        this.ctx.log(`Gateway error: ${frame.text}`, 'error');
        break;
    }
  }

  closed(action: CloseAction): void {
    const ctx = this.ctx;
    this.pinger.stop();
    ctx.view().tracker.abandonPending();
    if (ctx.view().phase !== 'live') return;
    if (action.kind === 'ended') {
      ctx.finish(action.reason, action.message);
      return;
    }
    if (action.kind === 'fatal') {
      ctx.log(action.message, 'error');
      ctx.update({ link: 'stopped', message: action.message, reconnectAt: null });
      return;
    }
    // A drop: keep the chart's clock running (gaps) and come back with backoff.
    if (this.socket.everOpened) this.pinger.keepClock();
    const { delayMs, attempt } = this.socket.reconnectLater();
    if (attempt === 1) ctx.log(action.message, 'warn');
    ctx.update({
      link: 'reconnecting',
      message: action.message,
      reconnectAt: ctx.deps.wall() + delayMs,
      reconnectAttempt: attempt,
    });
    // If the session is gone, the status call says so (404) and ends it.
    void this.status.refresh();
  }

  private onPong(seq: number, pod: string | undefined, node: string | undefined): void {
    const ctx = this.ctx;
    const mono = ctx.deps.mono();
    const rtt = ctx.view().tracker.receive(seq, mono);
    if (rtt === null) return;
    this.socket.resetBackoff();
    this.pinger.pongArrived();
    const patch: Partial<SessionView> = {};
    if (ctx.view().firstPongMs === null) patch.firstPongMs = mono - this.startClickMono();
    this.anatomy.pong();
    const current = ctx.view().pod;
    if (pod && pod !== current?.name) {
      const status = ctx.view().status;
      const startedAt = status?.pod?.name === pod ? status.pod.started_at : null;
      patch.pod = { name: pod, node: node ?? '', startedAt };
      void this.status.refresh();
    } else if (node && current && node !== current.node) {
      patch.pod = { ...current, node };
    }
    ctx.timeline.pong(pod, current?.name ?? null);
    if (Object.keys(patch).length > 0 || ctx.view().timeline !== ctx.timeline.entries) {
      ctx.update(patch);
    }
  }

  private onEvent(
    event: GatewayEvent,
    pod: string | undefined,
    at: number | undefined,
    gateway: string | undefined,
    reason: string | undefined,
  ): void {
    const ctx = this.ctx;
    const patch: Partial<SessionView> = {};
    if (gateway && gateway !== ctx.view().gateway) {
      if (ctx.view().gateway !== null) ctx.log(`Now through gateway replica ${gateway}`, 'ok');
      patch.gateway = gateway;
    }
    ctx.timeline.gatewayEvent(event, pod, ctx.view().pod?.name ?? null, reason);
    switch (event) {
      case 'upstream_lost':
        this.pinger.upstreamLost();
        break;
      case 'upstream_ready': {
        this.pinger.upstreamReady();
        if (pod) {
          patch.gatewayPod = pod;
          if (pod === ctx.view().replacementPod) patch.replacementPod = null;
        }
        this.anatomy.upstreamReady(pod, at);
        void this.status.refresh();
        break;
      }
      case 'pod_replaced':
        if (pod) patch.replacementPod = pod;
        void this.status.refresh();
        break;
      case 'session_expiring':
        void this.status.refresh();
        break;
      case 'pod_killed':
        this.anatomy.podKilled(pod, at);
        break;
      default:
        event satisfies never; // every GatewayEvent has its case
    }
    ctx.update(patch);
  }
}
