// The operator's HTTP endpoints: /metrics for Prometheus, /healthz (the process answers)
// and /readyz (its caches are synced, so it could lead).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { healthPaths } from '@meshwork/contract';

export interface OperatorServerOptions {
  host: string;
  port: number;
  registry: Registry;
  ready: () => boolean;
}

/** Starts the HTTP server and resolves once it listens. */
export async function startOperatorServer(options: OperatorServerOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { Allow: 'GET' }).end();
      return;
    }
    if (path === healthPaths.metrics) {
      options.registry.metrics().then(
        (body) => res.writeHead(200, { 'Content-Type': options.registry.contentType }).end(body),
        (err: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(err)),
      );
      return;
    }
    if (path === '/healthz' || path === healthPaths.live) {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      return;
    }
    if (path === healthPaths.ready) {
      const ready = options.ready();
      res.writeHead(ready ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ready ? 'ok' : 'caches not synced');
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return server;
}
