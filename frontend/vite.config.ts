import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

// The provisioner serves the build from frontend/dist at the site root and
// answers the API on the same origin; `npm run dev` proxies to a local one.
const backend = process.env.PINGPOD_BACKEND ?? 'http://127.0.0.1:8000';

export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: true,
  },
  server: {
    proxy: {
      '/session': { target: backend, ws: true },
      '/pool': backend,
      '/config': backend,
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
