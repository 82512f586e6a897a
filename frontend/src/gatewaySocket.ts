/**
 * The session's gateway WebSocket: one socket at a time, frames parsed, closes
 * classified by code, and reconnects delayed by exponential backoff with
 * jitter. What a close means for the session is the controller's call; this
 * class only tells it, and reconnects when asked to.
 */

import { Backoff } from './lib/backoff';
import { classifyClose, CloseCode, type CloseAction } from './lib/closeCodes';
import { parseFrame, type GatewayFrame } from './lib/frames';

const WS_OPEN = 1;

export interface GatewaySocketEvents {
  /** A socket is being opened; `again` once an earlier one of this session had opened. */
  connecting(again: boolean): void;
  /** The WebSocket could not even be created (a bad URL, say). */
  cannotOpen(error: unknown): void;
  opened(again: boolean): void;
  frame(frame: GatewayFrame): void;
  closed(action: CloseAction): void;
}

export interface GatewaySocketOptions {
  WebSocketImpl: typeof WebSocket;
  /** Source of randomness in [0, 1) for the backoff's jitter. */
  random: () => number;
  events: GatewaySocketEvents;
}

export class GatewaySocket {
  private readonly o: GatewaySocketOptions;
  private readonly backoff: Backoff;
  private url: string | null = null;
  private ws: WebSocket | null = null;
  private hasOpened = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(options: GatewaySocketOptions) {
    this.o = options;
    this.backoff = new Backoff({ random: options.random });
  }

  /** True when a frame can be sent now. */
  get isOpen(): boolean {
    return this.ws !== null && this.ws.readyState === WS_OPEN;
  }

  /** Whether a socket of this session has opened yet. */
  get everOpened(): boolean {
    return this.hasOpened;
  }

  /** Connect to a new session's gateway (`url` already resolved to ws: or wss:). */
  open(url: string): void {
    this.close();
    this.url = url;
    this.hasOpened = false;
    this.backoff.reset();
    this.connect();
  }

  /** Send a text frame; false when there is no open socket. */
  send(frame: string): boolean {
    const ws = this.ws;
    if (ws === null || ws.readyState !== WS_OPEN) return false;
    ws.send(frame);
    return true;
  }

  /** A pong arrived, so the path works: the next reconnect waits the shortest delay again. */
  resetBackoff(): void {
    this.backoff.reset();
  }

  /**
   * Reconnect after a backoff delay (call from `closed` for a retry).
   * Returns the delay in ms and which attempt in a row this is.
   */
  reconnectLater(): { delayMs: number; attempt: number } {
    this.clearReconnect();
    const delayMs = this.backoff.next();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delayMs);
    return { delayMs, attempt: this.backoff.attempts };
  }

  /** Reconnect at once: after a fatal close, or to skip the backoff wait. */
  reconnectNow(): void {
    this.clearReconnect();
    this.connect();
  }

  /** Close the socket, if any, without hearing from it again; no reconnect. */
  close(): void {
    this.clearReconnect();
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close(CloseCode.NORMAL, 'session over');
    } catch {
      // Already closing.
    }
  }

  private connect(): void {
    if (this.url === null) return;
    this.close();
    let ws: WebSocket;
    try {
      ws = new this.o.WebSocketImpl(this.url);
    } catch (exc) {
      this.o.events.cannotOpen(exc);
      return;
    }
    this.ws = ws;
    this.o.events.connecting(this.hasOpened);
    ws.onopen = () => {
      if (ws !== this.ws) return;
      const again = this.hasOpened;
      this.hasOpened = true;
      this.o.events.opened(again);
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (ws !== this.ws) return;
      const frame = parseFrame(ev.data);
      if (frame !== null) this.o.events.frame(frame);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.o.events.closed(classifyClose(ev.code, ev.reason));
    };
    // onerror is always followed by onclose, which decides what to do.
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }
}
