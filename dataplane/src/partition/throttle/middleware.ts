// How a request meets the throttle, in order:
//   1. health and metrics routes pass untouched, always;
//   2. while the event loop lags past its threshold: 503 `overloaded` (event_loop_lag);
//   3. with a bearer token: authenticate once (principalOf caches the principal for the
//      route), then the user's and device's buckets: 429 `rate_limited`;
//   4. a place under the adaptive concurrency limit, or 503 `overloaded` (concurrency);
//      long polls take none, since they wait idle by design;
//   5. only then are the request's token and declared body charged to its buckets, so a
//      request refused for overload costs the client nothing.
// Requests without a token skip 3 and meet the route's own 401. Per-client bounds come
// before the shared limit so that one client's flood is refused by its own buckets and
// never occupies the places other clients need. Refusals are written straight to the
// response, without express's send, to stay cheap when they are most of the traffic.
import type { Request, RequestHandler, Response } from 'express';
import { principalOf, type PartitionContext } from '../context.ts';
import type { Ticket } from './adaptive-limit.ts';
import type { Client, ThrottleReason } from './client-limits.ts';
import { overloadRetryAfterSeconds } from './throttle.ts';
import { retryAfterSeconds } from './token-bucket.ts';

const exemptPaths = new Set(['/livez', '/readyz', '/metrics']);

/** Whether a path is a health or metrics route, which no limit ever applies to. */
export function isExemptPath(path: string): boolean {
  return exemptPaths.has(path) || path === '/healthz' || path.startsWith('/healthz/');
}

const longPollPath = /^\/v1\/(notifications|objects\/[^/]+\/changes)$/;

/** Whether a request is a long poll (`GET /v1/notifications` or `.../changes` with a `wait`). */
export function isLongPollRequest(req: Request): boolean {
  if (req.method !== 'GET' || !longPollPath.test(req.path)) return false;
  const wait = (req.query as Record<string, unknown>).wait;
  return typeof wait === 'string' && wait !== '' && Number(wait) !== 0;
}

// A body this large makes the request a transfer: its latency is the client's bandwidth,
// not this process's load, so it is not a sample for the adaptive limit.
const transferBytes = 64 * 1024;

/** The declared request body size: 0 without a body, undefined when chunked. */
function declaredLength(req: Request): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined) return req.headers['transfer-encoding'] === undefined ? 0 : undefined;
  const bytes = Number(header);
  return Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : undefined;
}

function refuse(res: Response, status: 429 | 503, code: string, reason: ThrottleReason, retryAfter: number, message: string): void {
  const body = JSON.stringify({ error: { code, message, reason, retryAfterSeconds: retryAfter } });
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Retry-After': String(retryAfter),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

/** Holds the request's place under the concurrency limit until its response headers go out. */
function holdPlace(ctx: PartitionContext, res: Response, ticket: Ticket, sample: boolean): void {
  const { throttle } = ctx;
  let released = false;
  const release = (sampled: boolean): void => {
    if (released) return;
    released = true;
    throttle.concurrency.release(ticket, throttle.now(), sampled);
  };
  // The place is given back when the headers are written, not when the body ends: a
  // streamed download then holds no place while the client reads it at its own pace.
  // Node's implicit headers (res.end, res.write) go through writeHead as well.
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => Response;
  res.writeHead = ((...args: unknown[]) => {
    release(sample);
    return writeHead(...args);
  }) as Response['writeHead'];
  // A client gone before the answer: its latency says nothing.
  res.once('close', () => release(false));
}

/** Charges the response's bytes (and a chunked request's) to the client when the exchange ends. */
function meterBytes(ctx: PartitionContext, req: Request, res: Response, client: Client, declared: number | undefined): void {
  const socket = req.socket;
  const writtenBefore = socket.bytesWritten;
  const readBefore = socket.bytesRead;
  res.once('close', () => {
    const received = declared === undefined ? Math.max(0, socket.bytesRead - readBefore) : 0;
    ctx.throttle.clients.chargeBytes(client, ctx.throttle.now(), Math.max(0, socket.bytesWritten - writtenBefore) + received);
  });
}

/** The throttle as express middleware; mount it before every route it guards. */
export function throttleRequests(ctx: PartitionContext): RequestHandler {
  const { throttle } = ctx;

  /** Steps 4 and 5: a place under the limit (not for long polls), then the charge. Returns false if refused. */
  const admit = (req: Request, res: Response, client: Client | undefined, declared: number | undefined): boolean => {
    if (!isLongPollRequest(req)) {
      const ticket = throttle.concurrency.tryAcquire(throttle.now());
      if (ticket === undefined) {
        throttle.count('concurrency');
        refuse(res, 503, 'overloaded', 'concurrency', overloadRetryAfterSeconds, `the partition is overloaded (${throttle.concurrency.limit} requests in progress, its current limit); retry after ${overloadRetryAfterSeconds} s`);
        return false;
      }
      holdPlace(ctx, res, ticket, (declared ?? 0) <= transferBytes);
    }
    if (client !== undefined) {
      throttle.clients.charge(client, throttle.now(), declared ?? 0);
      meterBytes(ctx, req, res, client, declared);
    }
    return true;
  };

  return (req, res, next) => {
    if (isExemptPath(req.path)) {
      next();
      return;
    }
    if (throttle.eventLoop.shedding) {
      throttle.count('event_loop_lag');
      refuse(res, 503, 'overloaded', 'event_loop_lag', overloadRetryAfterSeconds, `the partition is overloaded (its event loop runs ${Math.round(throttle.eventLoop.lagMs)} ms late); retry after ${overloadRetryAfterSeconds} s`);
      return;
    }
    const declared = declaredLength(req);
    if (req.headers.authorization === undefined) {
      if (admit(req, res, undefined, declared)) next();
      return;
    }
    principalOf(ctx, req, res).then(
      (principal) => {
        let client: Client | undefined;
        // The administrator is one trusted caller: only the process's limits apply to it.
        if (principal.kind !== 'admin') {
          client = principal.kind === 'device' ? { userId: principal.userId, deviceId: principal.deviceId } : { userId: principal.userId };
          const refusal = throttle.clients.check(client, throttle.now());
          if (refusal !== undefined) {
            throttle.count(refusal.reason);
            const seconds = retryAfterSeconds(refusal.retryAfterMs);
            refuse(res, 429, 'rate_limited', refusal.reason, seconds, `${refusal.message}; retry after ${seconds} s`);
            return;
          }
        }
        if (admit(req, res, client, declared)) next();
      },
      (err: unknown) => next(err),
    );
  };
}
