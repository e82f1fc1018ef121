// Graceful drain on SIGTERM: stop accepting connections, answer requests that still arrive on
// kept-alive sockets with 503 + Retry-After + Connection: close, release long polls, let
// in-flight requests finish, and close a kept-alive socket only once it has been idle and quiet
// for a while. Closing a socket the moment it falls idle (what http.Server#close and
// closeIdleConnections do) races the client's next request on it, which is then reset: a client
// in a loop sends its next request within a millisecond of the last answer, before or while
// the server closes, and HTTP/1.1 has no way to tell it the socket is going away.
import { Server as NetServer, type Socket } from 'node:net';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { ProcessHealth } from '../health/health.ts';
import { operationsPaths } from './routes/operations.ts';

/** Seconds a client is told to wait before retrying (another member answers at once). */
export const drainRetryAfterSeconds = 1;

/**
 * How long a kept-alive socket must have carried no byte, with no request on it, before the
 * drain closes it. A client that sends again sooner gets 503 + Connection: close instead.
 */
export const drainQuietMs = 1000;
// How often the drain looks for sockets it may close.
const sweepIntervalMs = 100;

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
 * Follows the connections of an HTTP server from its start: which sockets are open, which have
 * a request being answered, and how many bytes each had read when its last answer ended (more
 * since then is a next request arriving). Listeners are shared functions, not closures per
 * request, since idle long polls are counted in bytes.
 */
export class ConnectionTracker {
  readonly server: Server;
  readonly #sockets = new Set<Socket>();
  // Answers not yet closed, per socket (pipelined requests queue on one socket).
  readonly #busy = new Map<Socket, number>();
  readonly #readWhenIdle = new WeakMap<Socket, number>();

  constructor(server: Server) {
    this.server = server;
    const sockets = this.#sockets;
    const busy = this.#busy;
    const readWhenIdle = this.#readWhenIdle;
    const onSocketClose = function (this: Socket): void {
      sockets.delete(this);
      busy.delete(this);
    };
    const onResponseClose = function (this: ServerResponse): void {
      const socket = this.req.socket;
      const left = (busy.get(socket) ?? 1) - 1;
      if (left > 0) busy.set(socket, left);
      else busy.delete(socket);
      readWhenIdle.set(socket, socket.bytesRead);
    };
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', onSocketClose);
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      busy.set(req.socket, (busy.get(req.socket) ?? 0) + 1);
      res.on('close', onResponseClose);
    });
  }

  /** Sockets with no request on them and none arriving, with their byte counts now. */
  idle(): { socket: Socket; bytes: number }[] {
    const idle: { socket: Socket; bytes: number }[] = [];
    for (const socket of this.#sockets) {
      if (this.#isIdle(socket)) idle.push({ socket, bytes: socket.bytesRead + socket.bytesWritten });
    }
    return idle;
  }

  /** Whether `socket` has no request being answered and has read nothing since its last answer. */
  isIdle(socket: Socket): boolean {
    return this.#sockets.has(socket) && this.#isIdle(socket);
  }

  #isIdle(socket: Socket): boolean {
    return !this.#busy.has(socket) && socket.bytesRead === (this.#readWhenIdle.get(socket) ?? 0);
  }
}

/**
 * Stops the tracked server accepting, releases long polls, and resolves true once every
 * connection has closed, or false when `deadlineMs` passed first (the remaining sockets are
 * then destroyed). Requests keep being answered on open sockets (the app's drain gate turns
 * them away with Connection: close); a socket is closed here once it has been idle and has
 * carried no byte for `quietMs`.
 */
export async function drainServer(
  connections: ConnectionTracker,
  longPolls: DrainableLongPolls | undefined,
  deadlineMs: number,
  quietMs = drainQuietMs,
): Promise<boolean> {
  const { server } = connections;
  // net.Server's close, not http.Server's: the latter also destroys every socket idle at this
  // instant, whose client may be sending its next request right now.
  const closed = new Promise<true>((resolve) => NetServer.prototype.close.call(server, () => resolve(true)));
  longPolls?.drain(drainRetryAfterSeconds);
  const quietSince = new Map<Socket, { bytes: number; at: number }>();
  const sweep = (): void => {
    const now = performance.now();
    const quiet: { socket: Socket; bytes: number }[] = [];
    const seen = new Set<Socket>();
    for (const candidate of connections.idle()) {
      seen.add(candidate.socket);
      const mark = quietSince.get(candidate.socket);
      if (mark === undefined || mark.bytes !== candidate.bytes) quietSince.set(candidate.socket, { bytes: candidate.bytes, at: now });
      else if (now - mark.at >= quietMs) quiet.push(candidate);
    }
    for (const socket of quietSince.keys()) if (!seen.has(socket)) quietSince.delete(socket);
    if (quiet.length === 0) return;
    // After this turn's I/O poll: a request already in the socket's receive buffer is read
    // first, and the socket is then no longer idle.
    setImmediate(() => {
      for (const { socket, bytes } of quiet) {
        if (connections.isIdle(socket) && socket.bytesRead + socket.bytesWritten === bytes) socket.destroy();
      }
    });
  };
  const sweeper = setInterval(sweep, sweepIntervalMs);
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
