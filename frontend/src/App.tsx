import { useSyncExternalStore } from 'react';
import { KillControl } from './components/KillControl';
import { KillGatewayControl } from './components/KillGatewayControl';
import { PodCard } from './components/PodCard';
import { PoolLive } from './components/PoolLive';
import { PoolPanel } from './components/PoolPanel';
import { RttChart } from './components/RttChart';
import { SessionControls } from './components/SessionControls';
import { StatsPanel } from './components/StatsPanel';
import { StatusLine } from './components/StatusLine';
import { Timeline } from './components/Timeline';
import { useConfig } from './hooks/useConfig';
import type { SessionController } from './session';

export function App({ controller }: { controller: SessionController }) {
  const view = useSyncExternalStore(controller.subscribe, controller.getSnapshot);
  const { settings } = controller;
  const config = useConfig();
  const live = view.phase === 'live';
  const mine = live
    ? [view.pod?.name, view.gatewayPod, view.replacementPod].filter((p): p is string => Boolean(p))
    : [];
  const start = (): void => {
    performance.clearMarks('pingpod:first-plot');
    performance.mark('pingpod:start');
    void controller.start();
  };
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to the chart
      </a>
      <header className="top">
        <div className="brand">
          <h1>pingpod</h1>
          <p className="muted">
            A Kubernetes pod of your own, from a warm pool, and the WebSocket latency to it.
          </p>
        </div>
        <StatusLine view={view} />
      </header>
      <main id="main" className="layout">
        <div className="col col-main">
          <section className="panel chart-panel" aria-labelledby="chart-title">
            <div className="chart-head">
              <h2 id="chart-title">
                Round-trip time{' '}
                <span className="muted small">one ping every {settings.intervalMs} ms</span>
              </h2>
              <div className="actions">
                <SessionControls
                  view={view}
                  onStart={start}
                  onEnd={() => void controller.end()}
                  onReconnect={() => controller.reconnectNow()}
                />
                {live && (
                  <KillControl
                    podName={view.pod?.name ?? null}
                    disabled={view.link !== 'open'}
                    killing={view.killing}
                    onKill={() => void controller.kill()}
                  />
                )}
                {live && config.gateway_kill && (
                  <KillGatewayControl
                    gateway={view.gateway}
                    disabled={view.link !== 'open'}
                    killing={view.gatewayKilling}
                    onKill={() => void controller.killGateway()}
                  />
                )}
              </div>
            </div>
            <RttChart tracker={view.tracker} timeline={view.timeline} />
          </section>
          <Timeline entries={view.timeline} />
        </div>
        <div className="col col-side">
          <StatsPanel tracker={view.tracker} windowSec={settings.statsWindowSec} active={live} />
          <PodCard view={view} />
          <PoolPanel refreshKey={`${view.phase}:${view.session?.session_id ?? ''}`} />
          <PoolLive mine={mine} />
        </div>
      </main>
      <footer className="foot muted small">
        Lost pings (no pong within {settings.timeoutMs / 1000} s) are drawn as gaps. Closing the
        page ends your session.
      </footer>
    </>
  );
}
