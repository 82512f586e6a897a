import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, type CreatedSession, type SessionStatus } from './api';
import { DEFAULTS } from './lib/settings';
import { SessionController, type Deps } from './session';

/** A WebSocket double the test drives by hand. */
class FakeSocket {
  static all: FakeSocket[] = [];
  readonly url: string;
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  closedWith: number | null = null;
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;

  constructor(url: string) {
    this.url = url;
    FakeSocket.all.push(this);
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(code = 1000): void {
    this.readyState = 3;
    this.closedWith = code;
  }
  // --- driven by the test
  open(): void {
    this.readyState = 1;
    this.onopen?.(new Event('open'));
  }
  frame(obj: unknown): void {
    this.onmessage?.({ data: JSON.stringify(obj) } as MessageEvent);
  }
  drop(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason } as CloseEvent);
  }
  pings(): number[] {
    return this.sent.filter((m) => m.type === 'ping').map((m) => m.seq as number);
  }
  pong(seq: number, pod = 'echo-a', node = 'node-1'): void {
    this.frame({ type: 'pong', seq, t: 0, pod, node, server_ts: Date.now() });
  }
  event(event: string, pod = '', extra: Record<string, unknown> = {}): void {
    this.frame({ type: 'event', event, pod, at: Date.now(), ...extra });
  }
}

const CREATED: CreatedSession = {
  session_id: 'sid-123',
  ws_url: '/session/sid-123/ws',
  pod: { name: 'echo-a', node: 'node-1', started_at: 1_700_000_000 },
  warm: true,
  assign_ms: 3.2,
};

function status(pod: string, replacements = 0): SessionStatus {
  return {
    pod: { name: pod, node: 'node-1', started_at: 1_700_000_100, phase: 'Running', ready: true },
    replacements,
    created_at: 1_700_000_000,
    expires_at: 1_700_000_900,
  };
}

function setup(api: Partial<Deps['api']> = {}) {
  const calls = {
    getSession: vi.fn(async (_id: string) => status('echo-a')),
    killPod: vi.fn(async (_id: string) => undefined),
    killGateway: vi.fn(async (_id: string) => undefined),
    endSession: vi.fn(async (_id: string) => undefined),
    endSessionOnUnload: vi.fn((_id: string) => undefined),
    createSession: vi.fn(async () => CREATED),
  };
  const ctl = new SessionController(
    { ...DEFAULTS, intervalMs: 100, timeoutMs: 2000 },
    {
      api: { ...calls, ...api },
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
      pageHref: () => 'https://demo.example.com/?interval=100',
      mono: () => Date.now(),
      wall: () => Date.now(),
      random: () => 0.5,
    },
  );
  return { ctl, calls };
}

const last = (): FakeSocket => FakeSocket.all[FakeSocket.all.length - 1]!;

async function live(ctl: SessionController): Promise<FakeSocket> {
  await ctl.start();
  const ws = last();
  ws.open();
  ws.event('upstream_ready', 'echo-a');
  return ws;
}

beforeEach(() => {
  FakeSocket.all = [];
  vi.useFakeTimers();
  vi.setSystemTime(1_800_000_000_000);
});

afterEach(() => {
  vi.useRealTimers();
});

describe('SessionController', () => {
  it('claims only when started, then connects to the resolved wss URL', async () => {
    const { ctl, calls } = setup();
    expect(ctl.getSnapshot().phase).toBe('idle');
    expect(calls.createSession).not.toHaveBeenCalled();
    await ctl.start();
    expect(calls.createSession).toHaveBeenCalledTimes(1);
    expect(last().url).toBe('wss://demo.example.com/session/sid-123/ws');
    expect(ctl.getSnapshot()).toMatchObject({ phase: 'live', link: 'connecting' });
    expect(ctl.getSnapshot().pod?.name).toBe('echo-a');
  });

  it('waits for upstream_ready, then pings at once and on every interval', async () => {
    const { ctl } = setup();
    await ctl.start();
    const ws = last();
    ws.open();
    expect(ctl.getSnapshot().link).toBe('open');
    expect(ws.pings()).toEqual([]);
    ws.event('upstream_ready', 'echo-a');
    expect(ws.pings()).toEqual([1]);
    await vi.advanceTimersByTimeAsync(350);
    expect(ws.pings()).toEqual([1, 2, 3, 4]);
    ws.pong(1);
    expect(ctl.getSnapshot().tracker.received).toBe(1);
    expect(ctl.getSnapshot().firstPongMs).not.toBeNull();
  });

  it('starts pinging anyway when the gateway never says upstream_ready', async () => {
    const { ctl } = setup();
    await ctl.start();
    const ws = last();
    ws.open();
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws.pings()).toEqual([1]);
  });

  it('counts pings without a pong as lost after the timeout', async () => {
    const { ctl } = setup();
    const ws = await live(ctl);
    ws.pong(1);
    await vi.advanceTimersByTimeAsync(2150);
    const t = ctl.getSnapshot().tracker;
    expect(t.received).toBe(1);
    expect(t.lost).toBeGreaterThanOrEqual(1);
    expect(t.chartData()[1][1]).toBeNull();
  });

  it('records a kill: gaps while the pod is gone, recovery on the new pod', async () => {
    const { ctl, calls } = setup();
    const ws = await live(ctl);
    ws.pong(1);
    calls.getSession.mockResolvedValue(status('echo-b', 1));

    await ctl.kill();
    expect(calls.killPod).toHaveBeenCalledWith('sid-123');
    await vi.advanceTimersByTimeAsync(100); // ping 2 goes to the dying pod
    ws.event('pod_killed', 'echo-a');
    ws.event('upstream_lost', 'echo-a');
    const sentBefore = ws.pings().length;
    await vi.advanceTimersByTimeAsync(300); // no pod: ticks are gaps, not sent
    expect(ws.pings().length).toBe(sentBefore);
    const t = ctl.getSnapshot().tracker;
    expect(t.pending).toBe(0);
    expect(t.lost).toBe(4); // ping 2 abandoned, three ticks skipped

    ws.event('pod_replaced', 'echo-b');
    ws.event('upstream_ready', 'echo-b');
    const probe = ws.pings().at(-1)!;
    expect(probe).toBe(sentBefore + 3 + 1);
    ws.pong(probe, 'echo-b', 'node-2');
    await vi.advanceTimersByTimeAsync(0);

    const v = ctl.getSnapshot();
    expect(v.pod).toMatchObject({ name: 'echo-b', node: 'node-2' });
    expect(v.status?.replacements).toBe(1);
    const texts = v.timeline.map((e) => e.text);
    expect(texts).toContain('Kill requested for pod echo-a');
    expect(texts).toContain('Pod echo-a killed');
    expect(texts).toContain('Gateway connected to pod echo-b');
    const resumed = v.timeline.at(-1)!;
    expect(resumed.text).toBe('Pongs resumed from pod echo-b');
    expect(resumed.sinceMs).toBe(400);
  });

  it('times a pod that died on its own from the first disruption', async () => {
    const { ctl } = setup();
    const ws = await live(ctl);
    ws.pong(1);
    await vi.advanceTimersByTimeAsync(50);
    ws.event('upstream_lost', 'echo-a');
    await vi.advanceTimersByTimeAsync(250);
    ws.event('pod_replaced', 'echo-b');
    ws.event('upstream_ready', 'echo-b');
    await vi.advanceTimersByTimeAsync(20);
    ws.pong(ws.pings().at(-1)!, 'echo-b', 'node-2');
    const v = ctl.getSnapshot();
    expect(v.pod).toMatchObject({ name: 'echo-b', node: 'node-2' });
    expect(v.timeline.slice(2).map((e) => [e.text, e.sinceMs])).toEqual([
      ['Gateway lost its connection to pod echo-a', 0],
      ['Replacement pod echo-b created', 250],
      ['Gateway connected to pod echo-b', 250],
      ['Pongs resumed from pod echo-b', 270],
    ]);
  });

  it('ends the incident when the kill is refused', async () => {
    const busy = new ApiError(409, 'pod_not_running', 'a replacement is still starting', null);
    const { ctl } = setup({ killPod: vi.fn(async () => Promise.reject(busy)) });
    const ws = await live(ctl);
    await ctl.kill();
    expect(ctl.getSnapshot().killing).toBe(false);
    expect(ctl.getSnapshot().timeline.at(-1)).toMatchObject({
      text: 'Kill failed: a replacement is still starting',
      tone: 'error',
      sinceMs: 0,
    });
    ws.pong(1);
    expect(ctl.getSnapshot().timeline.at(-1)!.text).toBe(
      'Kill failed: a replacement is still starting',
    );
  });

  it('logs a change of pod outside an incident, and events it does not know by name', async () => {
    const { ctl } = setup();
    const ws = await live(ctl);
    ws.pong(1);
    ws.event('pod_moved', 'echo-c');
    await vi.advanceTimersByTimeAsync(100);
    ws.pong(2, 'echo-c', 'node-3');
    const v = ctl.getSnapshot();
    expect(v.pod).toMatchObject({ name: 'echo-c', node: 'node-3' });
    expect(v.timeline.slice(-2).map((e) => [e.text, e.sinceMs])).toEqual([
      ['Gateway event: pod_moved echo-c', null],
      ['Now answered by pod echo-c', null],
    ]);
  });

  it('probes again when the gateway stays silent after upstream_lost', async () => {
    const { ctl } = setup();
    const ws = await live(ctl);
    ws.event('upstream_lost', 'echo-a');
    const sent = ws.pings().length;
    await vi.advanceTimersByTimeAsync(2900);
    expect(ws.pings().length).toBe(sent);
    await vi.advanceTimersByTimeAsync(300);
    expect(ws.pings().length).toBeGreaterThan(sent);
    ws.pong(ws.pings().at(-1)!);
    expect(ctl.getSnapshot().tracker.received).toBe(1);
  });

  it('reconnects with backoff after a drop, and checks the session meanwhile', async () => {
    const { ctl, calls } = setup();
    const ws = await live(ctl);
    ws.drop(1006);
    const v = ctl.getSnapshot();
    expect(v.link).toBe('reconnecting');
    expect(v.reconnectAttempt).toBe(1);
    // random() = 0.5 -> 375 ms for the first delay (bound 500 ms).
    expect(v.reconnectAt).toBe(Date.now() + 375);
    expect(calls.getSession).toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(374);
    expect(FakeSocket.all).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeSocket.all).toHaveLength(2);
    // Second failure in a row: a longer wait.
    last().drop(1006);
    expect(ctl.getSnapshot().reconnectAt).toBe(Date.now() + 750);
    await vi.advanceTimersByTimeAsync(750);
    const again = last();
    again.open();
    again.event('upstream_ready', 'echo-a');
    expect(ctl.getSnapshot().link).toBe('open');
    again.pong(again.pings()[0]!);
    again.drop(1001);
    expect(ctl.getSnapshot().reconnectAt).toBe(Date.now() + 375); // reset by the pong
  });

  it('ends on 4404 and 4408 without reconnecting', async () => {
    for (const [code, message] of [
      [4404, 'Your session has ended.'],
      [4408, 'Your session expired.'],
    ] as const) {
      const { ctl } = setup();
      const ws = await live(ctl);
      const sockets = FakeSocket.all.length;
      ws.drop(code);
      expect(ctl.getSnapshot()).toMatchObject({ phase: 'ended', link: null, message });
      expect(ctl.getSnapshot().timeline.at(-1)).toMatchObject({ text: message, tone: 'warn' });
      await vi.advanceTimersByTimeAsync(20_000);
      expect(FakeSocket.all).toHaveLength(sockets);
    }
  });

  it('stops on a policy close and reconnects only when asked', async () => {
    const { ctl } = setup();
    const ws = await live(ctl);
    ws.drop(1008, 'too many messages');
    expect(ctl.getSnapshot().link).toBe('stopped');
    expect(ctl.getSnapshot().message).toContain('too many messages');
    await vi.advanceTimersByTimeAsync(20_000);
    expect(FakeSocket.all).toHaveLength(1);
    ctl.reconnectNow();
    expect(FakeSocket.all).toHaveLength(2);
  });

  it('ends when the API says the session is gone (404)', async () => {
    const gone = new ApiError(404, 'session_not_found', 'no such session', null);
    const { ctl } = setup({ getSession: vi.fn(async () => Promise.reject(gone)) });
    const ws = await live(ctl);
    ws.drop(1006);
    await vi.advanceTimersByTimeAsync(0);
    expect(ctl.getSnapshot().phase).toBe('ended');
    await vi.advanceTimersByTimeAsync(20_000);
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('shows the server message and Retry-After on 429', async () => {
    const limited = new ApiError(429, 'at_capacity', 'all 50 session slots are in use', 12);
    const { ctl } = setup({ createSession: vi.fn(async () => Promise.reject(limited)) });
    await ctl.start();
    expect(ctl.getSnapshot()).toMatchObject({
      phase: 'limited',
      message: 'all 50 session slots are in use',
      retryAt: Date.now() + 12_000,
    });
    expect(FakeSocket.all).toHaveLength(0);
  });

  it('releases the session when the page goes away', async () => {
    const { ctl, calls } = setup();
    const ws = await live(ctl);
    ctl.pageHide();
    expect(calls.endSessionOnUnload).toHaveBeenCalledWith('sid-123');
    expect(ctl.getSnapshot().phase).toBe('ended');
    expect(ws.closedWith).toBe(1000);
  });

  it('gives back a pod claimed after the page started to go away', async () => {
    let resolve: (s: CreatedSession) => void = () => undefined;
    const pending = new Promise<CreatedSession>((r) => (resolve = r));
    const { ctl, calls } = setup({ createSession: vi.fn(() => pending) });
    const started = ctl.start();
    ctl.pageHide();
    resolve(CREATED);
    await started;
    expect(calls.endSessionOnUnload).toHaveBeenCalledWith('sid-123');
    expect(FakeSocket.all).toHaveLength(0);
  });

  it('restarts the gateway: 1012, a reconnect through another replica, the session carries on', async () => {
    const { ctl, calls } = setup();
    await ctl.start();
    const ws = last();
    ws.open();
    ws.event('upstream_ready', 'echo-a', { gateway: 'provisioner-1' });
    ws.pong(1);
    expect(ctl.getSnapshot().gateway).toBe('provisioner-1');

    await ctl.killGateway();
    expect(calls.killGateway).toHaveBeenCalledWith('sid-123');
    expect(ctl.getSnapshot().gatewayKilling).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    ws.pong(2); // the draining replica still relays until it closes
    expect(ctl.getSnapshot().timeline.at(-1)?.text).not.toContain('resumed');
    ws.drop(1012, 'gateway restarting');
    expect(ctl.getSnapshot()).toMatchObject({ link: 'reconnecting', phase: 'live' });
    expect(ctl.getSnapshot().message).toContain('another replica');

    await vi.advanceTimersByTimeAsync(600); // the backoff's first delay is at most 500 ms
    const again = last();
    expect(again).not.toBe(ws);
    again.open();
    again.event('upstream_ready', 'echo-a', { gateway: 'provisioner-2' });
    const probe = again.pings().at(-1)!;
    again.pong(probe);

    const v = ctl.getSnapshot();
    expect(v.gateway).toBe('provisioner-2');
    const texts = v.timeline.map((e) => e.text);
    const from = texts.indexOf('Gateway restart requested');
    expect(from).toBeGreaterThanOrEqual(0);
    expect(texts.slice(from)).toEqual([
      'Gateway restart requested',
      'Gateway replica provisioner-1 is draining: it leaves the load balancer, then closes',
      'The gateway is restarting; reconnecting through another replica.',
      'Reconnected to the gateway',
      'Now through gateway replica provisioner-2',
      'Gateway connected to pod echo-a',
      'Pongs resumed from pod echo-a',
    ]);
    expect(v.timeline.at(-1)!.sinceMs).toBeGreaterThan(0);
  });

  it('says when the gateway kill is refused', async () => {
    const refused = new ApiError(403, 'gateway_kill_off', 'killing a gateway is off here', null);
    const { ctl } = setup({ killGateway: vi.fn(async () => Promise.reject(refused)) });
    await live(ctl);
    await ctl.killGateway();
    expect(ctl.getSnapshot().timeline.at(-1)).toMatchObject({
      text: 'Kill failed: killing a gateway is off here',
      tone: 'error',
    });
  });

  it('puts the replacement anatomy on the timeline once the new pod answers', async () => {
    const t0 = Date.now();
    const replaced = status('echo-b', 1);
    replaced.pod!.phases = {
      created: t0 / 1000 + 0.01,
      scheduled: t0 / 1000 + 0.012,
      started: t0 / 1000 + 0.02,
      ready: t0 / 1000 + 0.15,
      resolution: 0.001,
    };
    const notYet = status('echo-b', 1);
    notYet.pod!.phases = { ...replaced.pod!.phases, ready: null };
    const { ctl, calls } = setup();
    const ws = await live(ctl);
    ws.pong(1);
    await ctl.kill();
    ws.event('pod_killed', 'echo-a', { at: t0 });
    ws.event('upstream_lost', 'echo-a');
    ws.event('pod_replaced', 'echo-b');
    expect(ctl.getSnapshot().replacementPod).toBe('echo-b');
    await vi.advanceTimersByTimeAsync(200);
    // The first answer lacks Ready (a replica's cache behind): the page asks again.
    calls.getSession.mockResolvedValueOnce(notYet).mockResolvedValue(replaced);
    ws.event('upstream_ready', 'echo-b', { at: t0 + 160 });
    ws.pong(ws.pings().at(-1)!, 'echo-b');
    await vi.advanceTimersByTimeAsync(1000);

    const v = ctl.getSnapshot();
    expect(v.replacementPod).toBeNull();
    expect(v.gatewayPod).toBe('echo-b');
    const entry = v.timeline.find((e) => e.anatomy);
    expect(entry?.text).toBe('How replacement pod echo-b started');
    expect(entry!.anatomy!.map((s) => [s.phase, s.text])).toEqual([
      ['created', '10 ms'],
      ['scheduled', '2.0 ms'],
      ['started', '8.0 ms'],
      ['ready', '130 ms'],
      ['connected', '10 ms'],
      ['first-pong', '0.0 ms'],
    ]);
  });
});
