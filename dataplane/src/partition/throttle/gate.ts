// The throttle's gate in front of the express app: it sees every request first, on the raw
// node:http objects, so that a refusal costs no routing, no body parser and no request log
// line (refusals are counted in meshwork_throttled_requests_total and summarised in the log
// every few seconds instead). In order:
//   1. health and metrics routes pass untouched, always;
//   2. while the event loop lags past its threshold: 503 `overloaded` (event_loop_lag);
//   3. when the adaptive concurrency limit is reached: 503 `overloaded` (concurrency), before
//      any other work, since under overload most requests end here; long polls are not
//      counted under the limit, since they wait idle by design;
//   4. with a bearer token: authenticate once (the principal is handed to the routes in
//      res.locals, where principalOf finds it), then the user's and device's buckets:
//      429 `rate_limited`;
//   5. a place under the concurrency limit is taken (503 if it filled meanwhile), and only
//      then the request's token and declared body are charged to its buckets, so a refused
//      request costs the client nothing.
// Requests without a token skip 4 and meet the route's own 401. A request takes its place
// only after its buckets admitted it, so one client's flood is refused by its own buckets
// and never occupies the places other clients need.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { ApiError, healthPaths, sessionTokenOf } from '@meshwork/contract';
import type { Principal } from '../auth.ts';
import type { Logger } from 'pino';
import type { Ticket } from './adaptive-limit.ts';
import type { Client, ThrottleReason } from './client-limits.ts';
import { overloadRetryAfterSeconds, type Throttle } from './throttle.ts';
import { retryAfterSeconds } from './token-bucket.ts';

// Every operations path, and the /healthz folder the deep check lives in (any check added there is exempt too).
const healthFolder = healthPaths.deep.slice(0, healthPaths.deep.lastIndexOf('/'));
const exemptPaths = new Set<string>([...Object.values(healthPaths), healthFolder]);

/** Whether a path is a health or metrics route, which no limit ever applies to. */
export function isExemptPath(path: string): boolean {
  // Routing ignores case and a trailing slash; so does the exemption.
  const normal = path.length > 1 && path.endsWith('/') ? path.slice(0, -1).toLowerCase() : path.toLowerCase();
  return exemptPaths.has(normal) || normal.startsWith(`${healthFolder}/`);
}

const longPollPath = /^\/v1\/(notifications|objects\/[^/]+\/changes)\/?$/i;

/** Whether a request is a long poll: `GET /v1/notifications` or `.../changes` with a non-zero `wait`. */
export function isLongPollRequest(method: string | undefined, url: string): boolean {
  const query = url.indexOf('?');
  if (method !== 'GET' || query === -1 || !longPollPath.test(url.slice(0, query))) return false;
  const wait = new URLSearchParams(url.slice(query + 1)).get('wait');
  return wait !== null && wait !== '' && Number(wait) !== 0;
}

// A body this large makes the request a transfer: its latency is the client's bandwidth,
// not this process's load, so it is not a sample for the adaptive limit.
const transferBytes = 64 * 1024;

/** The declared request body size: 0 without a body, undefined when chunked. */
function declaredLength(req: IncomingMessage): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined) return req.headers['transfer-encoding'] === undefined ? 0 : undefined;
  const bytes = Number(header);
  return Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : undefined;
}

/** A refusal's status, headers and body, ready to write. */
interface Refusal {
  status: 429 | 503;
  headers: Record<string, string | number>;
  body: Buffer;
}

function refusal(code: 'overloaded' | 'rate_limited', reason: ThrottleReason, retryAfter: number, message: string): Refusal {
  const error = new ApiError(code, message, { details: { reason, retryAfterSeconds: retryAfter } });
  const body = Buffer.from(JSON.stringify(error.toJSON()));
  return {
    status: error.status as Refusal['status'],
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': body.length,
      'Retry-After': String(retryAfter),
      'Cache-Control': 'no-store',
    },
    body,
  };
}

function refuse(res: ServerResponse, answer: Refusal): void {
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body);
}

/** What the gate needs: the throttle (its limits and the refusal counters it records), an authenticate function, a logger for its own bugs. */
export interface GateDeps {
  throttle: Pick<Throttle, 'count' | 'concurrency' | 'clients' | 'eventLoop' | 'now'>;
  /** The principal of an Authorization header or session cookie; rejects (401, or a store failure) as the routes would. */
  authenticate(header: string | undefined, cookie?: string): Promise<Principal>;
  logger: Pick<Logger, 'error'>;
}

/** Holds the request's place under the concurrency limit until its response headers go out. */
function holdPlace(throttle: GateDeps['throttle'], res: ServerResponse, ticket: Ticket, sample: boolean): void {
  let released = false;
  const release = (sampled: boolean): void => {
    if (released) return;
    released = true;
    throttle.concurrency.release(ticket, throttle.now(), sampled);
  };
  // The place is given back when the headers are written, not when the body ends: a
  // streamed download then holds no place while the client reads it at its own pace.
  // Node's implicit headers (res.end, res.write) go through writeHead as well.
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  const releasingWriteHead = (...args: unknown[]): ServerResponse => {
    release(sample);
    return writeHead(...args);
  };
  res.writeHead = releasingWriteHead;
  // A client gone before the answer: its latency says nothing.
  res.once('close', () => release(false));
}

/** Charges the response's bytes (and a chunked request's) to the client when the exchange ends. */
function meterBytes(
  throttle: GateDeps['throttle'],
  req: IncomingMessage,
  res: ServerResponse,
  client: Client,
  declared: number | undefined,
): void {
  const socket = req.socket;
  const writtenBefore = socket.bytesWritten;
  const readBefore = socket.bytesRead;
  res.once('close', () => {
    const received = declared === undefined ? Math.max(0, socket.bytesRead - readBefore) : 0;
    throttle.clients.chargeBytes(client, throttle.now(), Math.max(0, socket.bytesWritten - writtenBefore) + received);
  });
}

/** What the gate hands to the routes: express keeps a res.locals that is already set. */
function handOver(res: ServerResponse, locals: { principal?: Principal; authError?: unknown }): void {
  const fresh: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  (res as ServerResponse & { locals?: object }).locals = Object.assign(fresh, locals);
}

/** Wraps the partition's request listener (its express app) in the throttle. */
export function throttleGate(deps: GateDeps, app: RequestListener): RequestListener {
  const { throttle, logger } = deps;

  // Under overload most answers are this one: built once per limit value.
  let overloaded: { limit: number; answer: Refusal } | undefined;
  const refuseOverloaded = (res: ServerResponse): void => {
    throttle.count('concurrency');
    const limit = throttle.concurrency.limit;
    if (overloaded?.limit !== limit) {
      const message = `the partition is overloaded (${limit} requests in progress, its current limit); retry after ${overloadRetryAfterSeconds} s`;
      overloaded = { limit, answer: refusal('overloaded', 'concurrency', overloadRetryAfterSeconds, message) };
    }
    refuse(res, overloaded.answer);
  };

  /** Step 5: a place under the limit (not for long polls), then the charge. False if refused. */
  const admit = (
    req: IncomingMessage,
    res: ServerResponse,
    longPoll: boolean,
    client: Client | undefined,
    declared: number | undefined,
  ): boolean => {
    if (!longPoll) {
      const ticket = throttle.concurrency.tryAcquire(throttle.now());
      if (ticket === undefined) {
        refuseOverloaded(res);
        return false;
      }
      holdPlace(throttle, res, ticket, (declared ?? 0) <= transferBytes);
    }
    if (client !== undefined) {
      throttle.clients.charge(client, throttle.now(), declared ?? 0);
      meterBytes(throttle, req, res, client, declared);
    }
    return true;
  };

  return (req, res) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    if (isExemptPath(query === -1 ? url : url.slice(0, query))) {
      app(req, res);
      return;
    }
    if (throttle.eventLoop.shedding) {
      throttle.count('event_loop_lag');
      const message = `the partition is overloaded (its event loop runs ${Math.round(throttle.eventLoop.lagMs)} ms late); retry after ${overloadRetryAfterSeconds} s`;
      refuse(res, refusal('overloaded', 'event_loop_lag', overloadRetryAfterSeconds, message));
      return;
    }
    const longPoll = isLongPollRequest(req.method, url);
    if (!longPoll && throttle.concurrency.full) {
      refuseOverloaded(res);
      return;
    }
    const declared = declaredLength(req);
    const authorization = req.headers.authorization;
    const cookie = req.headers.cookie;
    if (authorization === undefined && sessionTokenOf(cookie) === undefined) {
      if (admit(req, res, longPoll, undefined, declared)) app(req, res);
      return;
    }
    const admitPrincipal = (principal: Principal): void => {
      let client: Client | undefined;
      // The administrator is one trusted caller: only the process's limits apply to it.
      if (principal.kind !== 'admin') {
        client = principal.kind === 'device' ? { userId: principal.userId, deviceId: principal.deviceId } : { userId: principal.userId };
        const refused = throttle.clients.check(client, throttle.now());
        if (refused !== undefined) {
          throttle.count(refused.reason);
          const seconds = retryAfterSeconds(refused.retryAfterMs);
          refuse(res, refusal('rate_limited', refused.reason, seconds, `${refused.message}; retry after ${seconds} s`));
          return;
        }
      }
      if (!admit(req, res, longPoll, client, declared)) return;
      handOver(res, { principal });
      app(req, res);
    };
    // Not authenticated (or the store failed): the route answers, as it would have.
    const admitUnauthenticated = (err: unknown): void => {
      if (!admit(req, res, longPoll, undefined, declared)) return;
      handOver(res, { authError: err });
      app(req, res);
    };
    deps
      .authenticate(authorization, cookie)
      .then(admitPrincipal, admitUnauthenticated)
      .catch((err: unknown) => {
        // A bug here must cost one request, not the process (an unhandled rejection would).
        logger.error({ err, method: req.method, url: req.url }, 'Failed in the throttle gate');
        if (res.headersSent) res.destroy();
        else refuseInternal(res);
      });
  };
}

function refuseInternal(res: ServerResponse): void {
  const body = JSON.stringify(new ApiError('internal', 'internal error').toJSON());
  res.writeHead(500, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
