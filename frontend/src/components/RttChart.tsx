import { useEffect, useRef } from 'react';
import { formatClock } from '../lib/format';
import type { PingTracker } from '../lib/pingTracker';
import type { TimelineEntry } from '../lib/timeline';
import { RttPlot, type Marker, type Palette } from './rttPlot';

interface Props {
  tracker: PingTracker;
  /** Timeline entries; incident steps are drawn as vertical markers. */
  timeline: readonly TimelineEntry[];
  /** Seconds shown before the history fills (the window then grows to it). */
  minWindowSec?: number;
}

function palette(): Palette {
  const css = getComputedStyle(document.documentElement);
  const v = (name: string, fallback: string): string =>
    css.getPropertyValue(name).trim() || fallback;
  return {
    line: v('--chart-line', '#1f5fd1'),
    fill: v('--chart-fill', 'rgba(31, 95, 209, 0.12)'),
    grid: v('--chart-grid', 'rgba(0, 0, 0, 0.08)'),
    axis: v('--text-muted', '#555c68'),
    warn: v('--warn', '#b45309'),
    ok: v('--ok', '#15803d'),
  };
}

function chartHeight(width: number): number {
  return width < 520 ? 200 : 280;
}

/** Incident steps (and disruptions outside one) as chart markers. */
function markers(timeline: readonly TimelineEntry[]): Marker[] {
  return timeline
    .filter((e) => e.sinceMs !== null || e.tone === 'warn')
    .map((e) => ({ x: e.wallMs / 1000, tone: e.tone === 'ok' ? 'ok' : 'warn' }));
}

/**
 * Live RTT chart on a canvas (`rttPlot.ts`). A requestAnimationFrame loop
 * hands it the tracker's ring buffer only when the tracker changed, so 10
 * pongs a second cost 10 redraws, not 60, and nothing re-renders through
 * React. The legend under it names the ping under the pointer.
 */
export function RttChart({ tracker, timeline, minWindowSec = 30 }: Props) {
  const hostRef = useRef<HTMLDivElement | null>(null);
  const sentRef = useRef<HTMLSpanElement | null>(null);
  const rttRef = useRef<HTMLSpanElement | null>(null);
  const plotRef = useRef<RttPlot | null>(null);
  const timelineRef = useRef(timeline);
  timelineRef.current = timeline;

  useEffect(() => {
    plotRef.current?.setMarkers(markers(timeline));
  }, [timeline]);

  useEffect(() => {
    const host = hostRef.current;
    if (!host) return undefined;
    let raf = 0;
    let drawn = -1;
    let firstPlotted = false;
    let data = tracker.chartData();
    const dark = window.matchMedia('(prefers-color-scheme: dark)');
    const show = (el: HTMLElement | null, text: string): void => {
      if (el && el.textContent !== text) el.textContent = text;
    };
    const plot = new RttPlot(host, {
      palette: palette(),
      minWindowSec,
      // No ping under the pointer: a dash, as before any data.
      onHover: (i) => {
        const x = i === null ? undefined : data[0][i];
        const y = i === null ? undefined : data[1][i];
        show(sentRef.current, x === undefined ? '—' : formatClock(x * 1000));
        show(rttRef.current, y === undefined ? '—' : y === null ? 'lost' : `${y.toFixed(1)} ms`);
      },
    });
    plotRef.current = plot;
    plot.setMarkers(markers(timelineRef.current));

    const resize = (): void => {
      const width = Math.max(200, host.clientWidth);
      plot.setSize(width, chartHeight(width));
    };
    const frame = (): void => {
      raf = requestAnimationFrame(frame);
      const changed = tracker.version !== drawn;
      if (changed) {
        drawn = tracker.version;
        data = tracker.chartData();
        plot.setData(data);
      }
      plot.render();
      if (changed && !firstPlotted && data[1].some((y) => y !== null)) {
        firstPlotted = true;
        // Read by the e2e test: Start click -> first pong on screen.
        performance.mark('pingpod:first-plot');
        host.dataset.plotted = 'true';
      }
    };

    resize();
    raf = requestAnimationFrame(frame);
    const ro = new ResizeObserver(resize);
    ro.observe(host);
    const onTheme = (): void => plot.setPalette(palette());
    dark.addEventListener('change', onTheme);
    return () => {
      cancelAnimationFrame(raf);
      ro.disconnect();
      dark.removeEventListener('change', onTheme);
      plot.destroy();
      plotRef.current = null;
    };
  }, [tracker, minWindowSec]);

  return (
    <div
      ref={hostRef}
      className="chart"
      data-testid="chart"
      role="img"
      aria-label="Round-trip time of each ping over the last minutes; gaps are lost pings. Figures are in the statistics panel."
    >
      <div className="chart-legend">
        <span>
          <b>Sent:</b> <span ref={sentRef}>—</span>
        </span>
        <span>
          <i className="chart-marker" /> <b>RTT:</b> <span ref={rttRef}>—</span>
        </span>
      </div>
    </div>
  );
}
