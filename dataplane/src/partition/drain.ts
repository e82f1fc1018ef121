// Graceful drain on SIGTERM: stop accepting connections, answer requests that still arrive on
// kept-alive sockets with 503 + Retry-After + Connection: close, release long polls, let
// in-flight requests finish, and close every socket as soon as it falls idle.
import type { Server } from 'node:http';
import type { RequestHandler } from 'express';
import type { ProcessHealth } from '../health/health.ts';
import { operationsPaths } from './routes/operations.ts';

/** Seconds a client is told to wait before retrying (another member answers at once). */
export const drainRetryAfterSeconds = 1;

/** Middleware that turns requests away once the process drains (operations routes excepted). */
export function drainGate(health: ProcessHealth): RequestHandler {
  return (req, res, next) => {
    if (!health.draining) {
      next();
      return;
    }
    res.setHeader('Connection', 'close');
    if (operationsPaths.has(req.path)) {
      next();
      return;
    }
    res.setHeader('Retry-After', String(drainRetryAfterSeconds));
    res.status(503).json({ error: { code: 'draining', message: 'this process is shutting down; retry, another member will answer' } });
  };
}

/** Long polls as the drain sees them (implemented by the long-poll module). */
export interface DrainableLongPolls {
  drain(retryAfterSeconds: number): void;
  readonly open: number;
}

/**
 * Stops `server` accepting, releases long polls, and resolves true once every connection has
 * closed, or false when `deadlineMs` passed first (the remaining sockets are then destroyed).
 */
export async function drainServer(server: Server, longPolls: DrainableLongPolls | undefined, deadlineMs: number): Promise<boolean> {
  const closed = new Promise<true>((resolve) => server.close(() => resolve(true)));
  longPolls?.drain(drainRetryAfterSeconds);
  // server.close() closes the sockets idle at that moment; the others fall idle as their
  // requests finish, and are closed here instead of waiting for the keep-alive timeout.
  const sweeper = setInterval(() => server.closeIdleConnections(), 100);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), deadlineMs);
  });
  const drained = await Promise.race([closed, deadline]);
  clearInterval(sweeper);
  clearTimeout(timer);
  if (!drained) server.closeAllConnections();
  return drained;
}
