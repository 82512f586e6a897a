/**
 * Replacement anatomy: how a killed pod's replacement got to the first pong,
 * phase by phase (docs/architecture.md, "Replacement anatomy").
 *
 * created, scheduled, containers started and Ready come from the server (the
 * pod's creationTimestamp and conditions on Kubernetes, the driver's own
 * clock locally); connected is the gateway's upstream_ready (server clock);
 * first pong is measured here, from upstream_ready reaching the page. Each
 * phase's duration runs from the phase before it.
 *
 * Kubernetes keeps its times to the second (resolution 1 s): a time t stands
 * for some moment in [t, t + 1 s). So a duration between two such times is
 * only known to lie in a range, and it is shown as one ("< 1 s",
 * "120 ms – 1.1 s"), never as a made-up exact figure.
 */

export const PHASES = ['created', 'scheduled', 'started', 'ready', 'connected', 'first-pong'] as const;
export type PhaseName = (typeof PHASES)[number];

export const PHASE_LABELS: Record<PhaseName, string> = {
  created: 'Pod created',
  scheduled: 'Scheduled',
  started: 'Containers started',
  ready: 'Ready',
  connected: 'Gateway connected',
  'first-pong': 'First pong',
};

/** GET /session/{id}'s `pod.phases`: epoch seconds, null until reached. */
export interface PodPhases {
  created: number;
  scheduled: number | null;
  started: number | null;
  ready: number | null;
  /** Seconds: how finely the server recorded these times. */
  resolution: number;
}

export interface AnatomyInput {
  /** Epoch ms the pod was killed (the gateway's pod_killed `at`, else the click). */
  killedAtMs: number;
  phases: PodPhases;
  /** Epoch ms the gateway connected to the replacement (its upstream_ready `at`). */
  connectedAtMs: number;
  /** This page's clock: when upstream_ready arrived, and the first pong after it. */
  connectedSeenMs: number;
  firstPongSeenMs: number;
}

export interface AnatomyStep {
  phase: PhaseName;
  label: string;
  /** The duration since the previous phase, in ms: exact when lo === hi. Null: not recorded. */
  lo: number | null;
  hi: number | null;
  text: string;
}

/** Below this much uncertainty (ms) a duration is shown as one figure. */
const EXACT_MS = 10;

interface Point {
  at: number; // epoch ms: the start of the interval
  res: number; // ms: the true moment is in [at, at + res)
}

function fmt(ms: number): string {
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** A duration known to lie in [lo, hi] ms, with its unit. */
export function formatSpan(lo: number, hi: number): string {
  if (hi - lo <= EXACT_MS) return fmt((lo + hi) / 2);
  if (lo <= 0) return `< ${fmt(hi)}`;
  return `${fmt(lo)} – ${fmt(hi)}`;
}

function span(from: Point, to: Point): { lo: number; hi: number } {
  // Causal order: a phase never ends before the one it follows.
  const lo = Math.max(0, to.at - (from.at + from.res));
  const hi = Math.max(lo, to.at + to.res - from.at);
  if (from.res + to.res <= EXACT_MS) {
    const d = Math.max(0, to.at - from.at);
    return { lo: d, hi: d };
  }
  return { lo, hi };
}

export function buildAnatomy(input: AnatomyInput): AnatomyStep[] {
  const res = input.phases.resolution * 1000;
  const server = (s: number | null): Point | null => (s === null ? null : { at: s * 1000, res });
  const points: Record<Exclude<PhaseName, 'first-pong'>, Point | null> = {
    created: server(input.phases.created),
    scheduled: server(input.phases.scheduled),
    started: server(input.phases.started),
    ready: server(input.phases.ready),
    connected: { at: input.connectedAtMs, res: 0 },
  };
  const steps: AnatomyStep[] = [];
  let previous: Point = { at: input.killedAtMs, res: 0 };
  for (const phase of ['created', 'scheduled', 'started', 'ready', 'connected'] as const) {
    const point = points[phase];
    if (point === null) {
      steps.push({ phase, label: PHASE_LABELS[phase], lo: null, hi: null, text: 'not recorded' });
      continue;
    }
    const { lo, hi } = span(previous, point);
    steps.push({ phase, label: PHASE_LABELS[phase], lo, hi, text: formatSpan(lo, hi) });
    previous = point;
  }
  const pong = Math.max(0, input.firstPongSeenMs - input.connectedSeenMs);
  steps.push({
    phase: 'first-pong',
    label: PHASE_LABELS['first-pong'],
    lo: pong,
    hi: pong,
    text: formatSpan(pong, pong),
  });
  return steps;
}

/** Whether any step is a range (the page then says why). */
export function hasRanges(steps: readonly AnatomyStep[]): boolean {
  return steps.some((s) => s.lo !== null && s.hi !== null && s.hi - s.lo > EXACT_MS);
}
