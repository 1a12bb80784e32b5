import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The console is a static build served by the API at /console (api/console.ts): no CDN, no server
// of its own. Preact's JSX through Vite's own transform (no plugin to install).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 400 },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  logLevel: 'warn',
});
