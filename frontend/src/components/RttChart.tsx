import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatClock } from '../lib/format';
import type { PingTracker } from '../lib/pingTracker';
import type { TimelineEntry } from '../lib/timeline';

interface Props {
  tracker: PingTracker;
  /** Timeline entries; incident steps are drawn as vertical markers. */
  timeline: readonly TimelineEntry[];
  /** Seconds shown before the history fills (the window then grows to it). */
  minWindowSec?: number;
}

interface Palette {
  line: string;
  fill: string;
  grid: string;
  axis: string;
  warn: string;
  ok: string;
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

/**
 * Live RTT chart. uPlot draws on a canvas; a requestAnimationFrame loop hands
 * it the tracker's ring buffer only when the tracker changed, so 10 pongs a
 * second cost 10 redraws, not 60, and nothing re-renders through React.
 */
export function RttChart({ tracker, timeline, minWindowSec = 30 }: Props) {
  const hostRef = useRef<HTMLDivElement | null>(null);
  const timelineRef = useRef(timeline);
  timelineRef.current = timeline;

  useEffect(() => {
    const host = hostRef.current;
    if (!host) return undefined;
    let plot: uPlot | null = null;
    let raf = 0;
    let drawn = -1;
    let firstPlotted = false;
    const dark = window.matchMedia('(prefers-color-scheme: dark)');

    const markers: uPlot.Plugin = {
      hooks: {
        draw: [
          (u) => {
            const pal = palette();
            const { ctx } = u;
            const { top, height } = u.bbox;
            const xMin = u.scales.x?.min ?? 0;
            const xMax = u.scales.x?.max ?? 0;
            ctx.save();
            ctx.lineWidth = uPlot.pxRatio;
            ctx.setLineDash([4 * uPlot.pxRatio, 3 * uPlot.pxRatio]);
            for (const e of timelineRef.current) {
              if (e.sinceMs === null && e.tone !== 'warn') continue;
              const x = e.wallMs / 1000;
              if (x < xMin || x > xMax) continue;
              const px = Math.round(u.valToPos(x, 'x', true));
              ctx.strokeStyle = e.tone === 'ok' ? pal.ok : pal.warn;
              ctx.beginPath();
              ctx.moveTo(px, top);
              ctx.lineTo(px, top + height);
              ctx.stroke();
            }
            ctx.restore();
          },
        ],
      },
    };

    const build = (): void => {
      plot?.destroy();
      const pal = palette();
      const width = Math.max(200, host.clientWidth);
      const axis = (label: string): uPlot.Axis => ({
        stroke: pal.axis,
        grid: { stroke: pal.grid, width: 1 },
        ticks: { stroke: pal.grid, width: 1 },
        label,
        labelSize: 20,
        font: '12px system-ui, sans-serif',
        labelFont: '12px system-ui, sans-serif',
      });
      const opts: uPlot.Options = {
        width,
        height: chartHeight(width),
        padding: [12, 12, 0, 0],
        cursor: { drag: { x: false, y: false }, points: { size: 6 } },
        legend: { show: true, live: true },
        scales: {
          x: {
            time: true,
            range: (_u, min, max) => {
              if (min === null || max === null || !Number.isFinite(min)) {
                const now = Date.now() / 1000;
                return [now - minWindowSec, now];
              }
              return max - min < minWindowSec ? [min, min + minWindowSec] : [min, max];
            },
          },
          y: {
            range: (_u, _min, max) => {
              const top = max === null || !Number.isFinite(max) ? 10 : max * 1.15;
              return [0, Math.max(2, top)];
            },
          },
        },
        axes: [
          {
            ...axis(''),
            label: undefined,
            labelSize: 0,
            space: 80,
            values: (_u, splits) => splits.map((v) => formatClock(v * 1000)),
          },
          { ...axis('RTT (ms)'), size: 52 },
        ],
        series: [
          {
            label: 'Sent',
            value: (_u, v) => (v === null ? '—' : formatClock(v * 1000)),
          },
          {
            label: 'RTT',
            stroke: pal.line,
            fill: pal.fill,
            width: 1.5,
            spanGaps: false,
            points: { show: false },
            // idx is null while the cursor is off the chart: nothing to show then.
            value: (_u, v, _s, idx) =>
              idx === null ? '—' : v === null ? 'lost' : `${v.toFixed(1)} ms`,
          },
        ],
        plugins: [markers],
      };
      plot = new uPlot(opts, tracker.chartData(), host);
      drawn = tracker.version;
    };

    const frame = (): void => {
      raf = requestAnimationFrame(frame);
      if (!plot || tracker.version === drawn) return;
      drawn = tracker.version;
      const data = tracker.chartData();
      plot.setData(data);
      if (!firstPlotted && data[1].some((y) => y !== null)) {
        firstPlotted = true;
        // Read by the e2e test: Start click -> first pong on screen.
        performance.mark('pingpod:first-plot');
        host.dataset.plotted = 'true';
      }
    };

    build();
    raf = requestAnimationFrame(frame);
    const ro = new ResizeObserver(() => {
      if (!plot) return;
      const width = Math.max(200, host.clientWidth);
      if (width !== plot.width) plot.setSize({ width, height: chartHeight(width) });
    });
    ro.observe(host);
    const onTheme = (): void => build();
    dark.addEventListener('change', onTheme);
    return () => {
      cancelAnimationFrame(raf);
      ro.disconnect();
      dark.removeEventListener('change', onTheme);
      plot?.destroy();
      plot = null;
    };
  }, [tracker, minWindowSec]);

  return (
    <div
      ref={hostRef}
      className="chart"
      data-testid="chart"
      role="img"
      aria-label="Round-trip time of each ping over the last minutes; gaps are lost pings. Figures are in the statistics panel."
    />
  );
}
