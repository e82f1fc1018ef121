// Per-request telemetry: the server span (continuing the caller's W3C trace), the RED histogram
// by route pattern, requests in flight, bytes in and out, and one log line per request.
import type { Socket } from 'node:net';
import type { Request, RequestHandler } from 'express';
import type { PartitionContext } from './context.ts';

/** The route label of a request that matched no route (404s, scans for random paths). */
export const unmatchedRoute = 'unmatched';

/** The express route pattern that served a request ("/v1/objects/:id"), never the raw path. */
export function routeOf(req: Request): string {
  const route = req.route as { path?: unknown } | undefined;
  return typeof route?.path === 'string' ? `${req.baseUrl}${route.path}` : unmatchedRoute;
}

// Bytes a socket had carried when its previous request ended: a request's bytes are the
// difference, which counts headers and streamed bodies alike without touching the streams.
const socketMarks = new WeakMap<Socket, { read: number; written: number }>();

function bytesSinceLastRequest(socket: Socket): { read: number; written: number } {
  const now = { read: socket.bytesRead, written: socket.bytesWritten };
  const mark = socketMarks.get(socket) ?? { read: 0, written: 0 };
  socketMarks.set(socket, now);
  return { read: Math.max(0, now.read - mark.read), written: Math.max(0, now.written - mark.written) };
}

/** Middleware that traces, measures and logs every request. */
export function requestTelemetry({ metrics, tracing, logger }: Pick<PartitionContext, 'metrics' | 'tracing' | 'logger'>): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    const socket = req.socket;
    metrics.httpRequestsInFlight.inc();
    const span = tracing.serveRequest(req, res, () => {
      // Read inside the request's context: 'close' is emitted by the socket, outside it when
      // no span binds the response (export off).
      const ids = tracing.activeIds();
      res.once('close', () => {
        const route = routeOf(req);
        // A response that did not finish was cut short because the client went away.
        const status = res.writableFinished ? res.statusCode : 499;
        const seconds = (performance.now() - started) / 1000;
        const bytes = bytesSinceLastRequest(socket);
        metrics.httpRequestsInFlight.dec();
        metrics.httpRequestDuration.observe({ method: req.method, route, status: String(status) }, seconds);
        metrics.httpRequestBytes.inc({ route }, bytes.read);
        metrics.httpResponseBytes.inc({ route }, bytes.written);
        span?.end(route, status);
        logger.info(
          {
            ...ids,
            method: req.method,
            route,
            status,
            ms: Math.round(seconds * 10_000) / 10,
            bytesIn: bytes.read,
            bytesOut: bytes.written,
          },
          'Served request',
        );
      });
      next();
    });
  };
}
