import { useEffect, useState } from 'react';
import { getConfig, type PageConfig } from '../api';

const OFF: PageConfig = { gateway_kill: false };

/** GET /config once: what this deployment offers (nothing extra until it answers). */
export function useConfig(): PageConfig {
  const [config, setConfig] = useState<PageConfig>(OFF);
  useEffect(() => {
    let stopped = false;
    getConfig()
      .then((c) => {
        if (!stopped) setConfig({ ...OFF, ...c });
      })
      .catch(() => undefined); // an older server: offer nothing extra
    return () => {
      stopped = true;
    };
  }, []);
  return config;
}
