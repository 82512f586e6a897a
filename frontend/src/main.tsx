import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { parseSettings } from './lib/settings';
import { SessionController } from './session';
import './styles.css';

const controller = new SessionController(parseSettings(window.location.search));

// End the session when the page goes away, so its pod goes back at once
// instead of idling until the server's timeout. pagehide (not unload) also
// fires for pages entering the back/forward cache.
window.addEventListener('pagehide', () => controller.pageHide());

const root = document.getElementById('root');
if (!root) throw new Error('#root missing from index.html');
createRoot(root).render(
  <StrictMode>
    <App controller={controller} />
  </StrictMode>,
);
