// Builds the web UI into web/dist: index.html and hashed files under assets/, which the gateway
// serves (dataplane/src/gateway/web.ts). JSX is compiled for Preact; no inline script or style,
// so the gateway's Content-Security-Policy needs no 'unsafe-inline'.
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2022',
  },
});
