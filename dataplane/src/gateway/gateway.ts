// The gateway's request path: plan the route (routing.ts), find the partition that owns the
// slot in the watched slot table and a ready member of it, admit the request under the
// partition's adaptive limit, forward it (proxy.ts) and stream the answer back. A partition's
// 421 never reaches the client: the gateway lists the slot map again and repeats the request,
// which it can do while the body has not been sent (no body, a small body it holds, or a
// stream whose first byte has not left); otherwise the client gets 503 with Retry-After. A
// member that is down, says it is draining, or breaks off before the body left is set aside and
// another is tried. What a partition does wrong is answered in the error catalogue's envelope:
// 502 for garbage or a broken connection, 504 for one that stops answering, 503 for none ready.
import type { Agent, IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import { ApiError, processGcPacer, type SlotMapRecord } from '@meshwork/contract';
import type { Logger } from 'pino';
import type { DataplaneMetrics } from '../telemetry/metrics.ts';
import type { Tracing } from '../telemetry/tracing.ts';
import type { AdaptiveLimit } from './admission.ts';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers.ts';
import type { MemberStates } from './members.ts';
import { ClientGone, forward, type ForwardBody, type ForwardOutcome } from './proxy.ts';
import { planRoute, type RoutePlan } from './routing.ts';
import type { PartitionView, SlotTable } from './slot-table.ts';

/** A request as either server hands it over (HTTP/1.1, or HTTP/2 through the compatibility API). */
export type GatewayRequest = IncomingMessage | Http2ServerRequest;
/** The matching response. */
export type GatewayResponse = ServerResponse | Http2ServerResponse;

/** Marks a request WebDAV makes in process (ADR 46), not one a client sent. */
export const inProcessCall: unique symbol = Symbol('meshwork.inProcessCall');

/** Whether `req` is a call WebDAV made in process, whose client request has a log line of its own. */
export function isInProcessCall(req: object): boolean {
  return inProcessCall in req;
}

/** A body up to this size, declared by Content-Length, is held so that it can be sent again after a 421. */
export const replayableBodyBytes = 64 * 1024;
// An answer read to decide on it (a 421, a 503) is at most this long; a longer one is passed on.
const peekBytes = 64 * 1024;
// While the gateway's own event loop lags more than this (mean ms), answer times measure the gateway.
const selfLagMs = 10;
// A request is tried this many times at most: the first member, then after a 421 or a member that failed.
const maxAttempts = 3;

/** What the request path needs. */
export interface GatewayDeps {
  slots: { readonly table: SlotTable; refresh(): Promise<void> };
  members: MemberStates;
  limitOf(partition: string): AdaptiveLimit;
  agents: { regular: Agent; longPoll: Agent };
  /** How long a member may stay silent (no byte either way), a long poll's wait added. */
  upstreamTimeoutMs: number;
  /** The gateway's own event-loop lag (mean ms of the last sample). */
  loopLagMs(): number;
  /** The scheme clients reach the gateway by, for X-Forwarded-Proto. */
  proto: 'https' | 'http';
  logger: Logger;
  metrics: GatewayMetrics;
  tracing: Tracing;
}

/** The gateway's own metrics beside the data plane's RED metrics. */
export interface GatewayMetrics {
  http: DataplaneMetrics;
  /** Exchanges with partitions by partition and outcome. */
  upstream(partition: string, outcome: string): void;
  /** Requests refused by the gateway's admission, by partition. */
  shed(partition: string): void;
  /** Requests repeated, by reason (misdirected, unreachable, draining, broken). */
  retried(reason: string): void;
}

/** Answers an error in the catalogue's envelope, or cuts the response if its headers are gone. */
export function sendError(res: GatewayResponse, error: ApiError, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(error.toJSON());
  const headers: Record<string, string> = {
    ...error.headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
  };
  // Only HTTP/1.1 has connection headers; a body still arriving would otherwise be read as the next request.
  if (close && !isHttp2(res)) headers.connection = 'close';
  (res as ServerResponse).writeHead(error.status, headers);
  res.end(body);
}

function isHttp2(res: GatewayResponse): res is Http2ServerResponse {
  return 'stream' in res && res.stream !== undefined;
}

function unavailable(message: string): ApiError {
  return new ApiError('partition_unavailable', message, { headers: { 'Retry-After': '1' } });
}

/** Whether the request carries a body, and how long it says it is. */
function bodyOf(req: GatewayRequest): { present: boolean; length: number | undefined } {
  const declared = req.headers['content-length'];
  const length = declared === undefined ? undefined : Number(declared);
  if (length === 0) return { present: false, length: 0 };
  if (length !== undefined && Number.isFinite(length)) return { present: true, length };
  if ('stream' in req && req.stream !== undefined) return { present: !req.stream.endAfterHeaders, length: undefined };
  return { present: (req as IncomingMessage).headers['transfer-encoding'] !== undefined, length: undefined };
}

async function readAll(stream: Readable, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

const knownAreas = new Set(['objects', 'devices', 'users', 'me', 'notifications', 'blocks', 'slots']);
const knownParts = new Set(['entries', 'changes', 'content', 'members', 'presence', 'quota', 'token']);

/** The route label of a request for metrics: its area, never ids, and only names the API has (a client cannot add labels). */
export function routeLabel(pathname: string): string {
  const [, , area, id, sub] = pathname.split('/');
  if (area === undefined || !knownAreas.has(area)) return '/v1/other';
  if (id === undefined || id === '') return `/v1/${area}`;
  if (area === 'me') return knownParts.has(id) ? `/v1/me/${id}` : '/v1/me/other';
  if (sub === undefined) return `/v1/${area}/:id`;
  return `/v1/${area}/:id/${knownParts.has(sub) ? sub : 'other'}`;
}

// The methods a request is labelled by: the API's and WebDAV's. HTTP/2 lets a client send any
// token as its method, and a client must not be able to add labels.
const labelledMethods = new Set('GET HEAD POST PUT PATCH DELETE OPTIONS PROPFIND PROPPATCH MKCOL COPY MOVE LOCK UNLOCK'.split(' '));

/** A request's method as a label: one of the API's or WebDAV's, or `other`. */
export function methodLabel(method: string | undefined): string {
  return method !== undefined && labelledMethods.has(method) ? method : 'other';
}

/**
 * Counts and times a request by method (methodLabel) and route (never a raw path), and writes its one
 * `Served request` line (at info unless told) once its answer is closed: status 499 when the client
 * went away before the answer was complete. Called inside the request's context, for its trace ids.
 */
export function observeRequest(
  deps: { metrics: Pick<GatewayMetrics, 'http'>; logger: Logger; tracing: Pick<Tracing, 'activeIds'> },
  rawMethod: string | undefined,
  route: string,
  res: GatewayResponse,
  level: 'info' | 'debug' = 'info',
): void {
  const started = performance.now();
  const method = methodLabel(rawMethod);
  const { http } = deps.metrics;
  // Read here, inside the request's context: 'close' is emitted outside it.
  const ids = deps.tracing.activeIds();
  http.httpRequestsInFlight.inc();
  res.once('close', () => {
    http.httpRequestsInFlight.dec();
    const status = res.writableFinished ? res.statusCode : 499;
    const ms = performance.now() - started;
    http.httpRequestDuration.observe({ method, route, status: String(status) }, ms / 1000);
    deps.logger[level]({ ...ids, method, route, status, ms: Math.round(ms * 10) / 10 }, 'Served request');
  });
}

/** The gateway's handler of `/v1` requests. */
export class GatewayRouter {
  readonly #deps: GatewayDeps;
  #anyTurn = 0;

  constructor(deps: GatewayDeps) {
    this.#deps = deps;
  }

  /** `GET /v1/slots`: the slot map the gateway routes by. */
  slotsAnswer(): { partitions: SlotMapRecord[]; served: Record<string, string> } {
    return { partitions: [...this.#deps.slots.table.records], served: this.#deps.slots.table.served() };
  }

  /** Serves one `/v1` request. */
  async serve(req: GatewayRequest, res: GatewayResponse, pathname: string, search: string): Promise<void> {
    const route = routeLabel(pathname);
    // A call WebDAV makes in process is logged at debug: the WebDAV request has its own line.
    observeRequest(this.#deps, req.method, route, res, isInProcessCall(req) ? 'debug' : 'info');
    const plan = planRoute(req.method ?? 'GET', pathname, search, req.headers.authorization, req.headers.cookie);
    const clientGone = new ClientGone();
    // The client went away before its answer was complete: whatever is in flight upstream goes too.
    res.once('close', () => {
      if (!res.writableFinished) clientGone.notify();
    });
    let body: ForwardBody = { kind: 'none' };
    const declared = bodyOf(req);
    if (declared.present) {
      if (declared.length !== undefined && declared.length <= replayableBodyBytes) {
        let bytes: Buffer | undefined;
        try {
          bytes = await readAll(req, replayableBodyBytes);
        } catch {
          // The client broke off while sending; nobody is left to answer.
          return;
        }
        if (bytes === undefined) {
          sendError(
            res,
            new ApiError('invalid_request', 'the body is longer than its Content-Length', { details: { field: 'body' } }),
            true,
          );
          return;
        }
        body = { kind: 'buffered', bytes };
      } else body = { kind: 'stream', stream: req };
    }
    const headers = upstreamRequestHeaders(req.headers, {
      address: req.socket?.remoteAddress,
      proto: this.#deps.proto,
      host: (req.headers[':authority'] as string | undefined) ?? req.headers.host,
    });
    await this.#forwardWithRetries(req, res, plan, body, headers, clientGone, route);
  }

  async #forwardWithRetries(
    req: GatewayRequest,
    res: GatewayResponse,
    plan: RoutePlan,
    body: ForwardBody,
    headers: ReturnType<typeof upstreamRequestHeaders>,
    clientGone: ClientGone,
    route: string,
  ): Promise<void> {
    const { members, metrics } = this.#deps;
    const tried = new Set<string>();
    let refreshed = false;
    // Why the last member tried failed, answered when no other member is left to try.
    let lastFailure: ApiError | undefined;
    // A streamed body whose first byte has left cannot be sent again.
    let bodyGone = false;
    for (let attempt = 1; ; attempt++) {
      const partition = this.#partitionFor(plan);
      if (partition === undefined) {
        if (!refreshed) {
          refreshed = true;
          await this.#refresh();
          continue;
        }
        const what = plan.target.kind === 'slot' ? `slot ${plan.target.slot}` : 'any slot';
        sendError(res, unavailable(`no partition serves ${what} now; retry`), body.kind === 'stream');
        return;
      }
      const member = members.pick(partition, tried);
      if (member === undefined) {
        sendError(res, lastFailure ?? unavailable(`no member of partition ${partition.name} is ready; retry`), body.kind === 'stream');
        return;
      }
      tried.add(member.url);
      const limit = plan.longPoll ? undefined : this.#deps.limitOf(partition.name);
      if (limit !== undefined && !limit.tryAcquire()) {
        metrics.shed(partition.name);
        sendError(
          res,
          new ApiError('overloaded', `partition ${partition.name} is at its concurrency limit at the gateway (${limit.limit}); retry`, {
            details: { reason: 'gateway_concurrency', retryAfterSeconds: 1 },
            headers: { 'Retry-After': '1' },
          }),
          body.kind === 'stream',
        );
        return;
      }
      // Each attempt is a client span of its own, child of the request's server span; the member's
      // server span continues from it (without export, the client's traceparent goes through as sent).
      const method = req.method ?? 'GET';
      const span = this.#deps.tracing.startClientSpan(`partition ${method} ${route}`, {
        'http.request.method': method,
        'meshwork.partition': partition.name,
        'meshwork.member': member.url,
        'meshwork.attempt': attempt,
      });
      const attemptHeaders = span ? { ...headers } : headers;
      span?.inject(attemptHeaders as Record<string, string>);
      const sentAt = performance.now();
      const outcome = await forward({
        base: member.url,
        method,
        path: req.url ?? '/',
        headers: attemptHeaders,
        body,
        agent: plan.longPoll ? this.#deps.agents.longPoll : this.#deps.agents.regular,
        idleTimeoutMs: this.#deps.upstreamTimeoutMs + plan.waitSeconds * 1000,
        clientGone,
      });
      if (span) {
        if (outcome.kind === 'answer') {
          const status = outcome.response.statusCode ?? 0;
          // Ends once the answer is relayed, drained or dropped.
          outcome.response.once('close', () => span.end({ status }));
        } else span.end({ error: outcome.kind });
      }
      // A streamed body's answer waits for the body: its time says nothing of the partition's load.
      // Nor does it while the gateway's own loop lags: the time is then the gateway's queue.
      const measurable = outcome.kind === 'answer' && body.kind !== 'stream' && this.#deps.loopLagMs() < selfLagMs;
      const latencyMs = measurable ? performance.now() - sentAt : undefined;
      const release = (overloaded: boolean): void => limit?.complete({ overloaded, latencyMs }, Date.now());
      if (body.kind === 'stream' && outcome.kind !== 'unreachable' && outcome.kind !== 'aborted')
        bodyGone = bodyGone || outcome.kind === 'answer' || outcome.bodySent;
      const canRepeat = attempt < maxAttempts && !bodyGone && !clientGone.gone;
      const decision = await this.#decide(outcome, canRepeat, member.url);
      metrics.upstream(partition.name, decision.label);
      if (decision.kind === 'repeat') {
        release(decision.pressure);
        lastFailure = decision.failure;
        metrics.retried(decision.label);
        if (decision.refresh) {
          refreshed = true;
          await this.#refresh();
          // The map changed: the new owner's members have not been tried.
          tried.clear();
        }
        continue;
      }
      if (decision.kind === 'error') {
        release(decision.pressure);
        sendError(res, decision.error, body.kind === 'stream' && !(req as IncomingMessage).complete);
        return;
      }
      await this.#relay(decision, res, () => release(decision.response.statusCode === 503));
      return;
    }
  }

  /** The address of a member of the partition that owns a relay's device (`GET /v1/devices/{id}/relay`), for its WebSocket upgrade. */
  relayMember(pathname: string, authorization: string | undefined): string | undefined {
    const partition = this.#partitionFor(planRoute('GET', pathname, '', authorization));
    return partition === undefined ? undefined : this.#deps.members.pick(partition)?.url;
  }

  #partitionFor(plan: RoutePlan): PartitionView | undefined {
    const { table } = this.#deps.slots;
    if (plan.target.kind === 'slot') {
      const owner = table.ownerOf(plan.target.slot);
      return owner !== undefined && this.#deps.members.serves(owner) ? owner : undefined;
    }
    const serving = table.owning.filter((p) => this.#deps.members.serves(p));
    if (serving.length === 0) return undefined;
    return serving[this.#anyTurn++ % serving.length];
  }

  async #refresh(): Promise<void> {
    try {
      await this.#deps.slots.refresh();
    } catch (err) {
      this.#deps.logger.warn({ err }, 'Failed to list the slot map again; routing by the watched map');
    }
  }

  /** What to do with an exchange's outcome. */
  async #decide(
    outcome: ForwardOutcome,
    canRepeat: boolean,
    memberUrl: string,
  ): Promise<
    | { kind: 'repeat'; label: string; refresh: boolean; pressure: boolean; failure: ApiError }
    | { kind: 'error'; label: string; error: ApiError; pressure: boolean }
    | { kind: 'relay'; label: string; response: IncomingMessage; request: { destroy(): void }; peeked: Buffer | undefined }
  > {
    const { members } = this.#deps;
    switch (outcome.kind) {
      case 'aborted':
        return { kind: 'error', label: 'client_gone', error: unavailable('the client went away'), pressure: false };
      case 'unreachable': {
        members.set(memberUrl, 'unready');
        const code = (outcome.error as NodeJS.ErrnoException).code ?? 'error';
        const error = unavailable(`the partition member could not be reached (${code}); retry`);
        if (canRepeat) return { kind: 'repeat', label: 'unreachable', refresh: false, pressure: false, failure: error };
        return { kind: 'error', label: 'unreachable', error, pressure: false };
      }
      case 'timeout':
        return {
          kind: 'error',
          label: 'timeout',
          error: new ApiError('gateway_timeout', 'the partition did not answer in time', { headers: { 'Retry-After': '1' } }),
          pressure: true,
        };
      case 'broken': {
        const code = (outcome.error as NodeJS.ErrnoException).code ?? 'error';
        const error = new ApiError('bad_gateway', `the partition's answer was not valid HTTP or its connection broke (${code})`, {
          headers: { 'Retry-After': '1' },
        });
        if (canRepeat) return { kind: 'repeat', label: 'broken', refresh: false, pressure: false, failure: error };
        return { kind: 'error', label: 'broken', error, pressure: false };
      }
      case 'answer': {
        const { response } = outcome;
        const status = response.statusCode ?? 0;
        if (status === 421) {
          response.resume();
          const moved = unavailable('the slot is moving between partitions; retry');
          if (canRepeat) return { kind: 'repeat', label: 'misdirected', refresh: true, pressure: false, failure: moved };
          // The slot moved while the body was on its way: the client must send it again.
          await this.#refresh();
          return {
            kind: 'error',
            label: 'misdirected',
            error: unavailable('the slot moved to another partition while the request was sent; send it again'),
            pressure: false,
          };
        }
        if (status === 503) {
          const peeked = await peek(response);
          if (peeked === undefined) {
            outcome.request.destroy();
            return {
              kind: 'error',
              label: 'garbage',
              error: new ApiError('bad_gateway', 'the partition answered 503 with a body that could not be read', {
                headers: { 'Retry-After': '1' },
              }),
              pressure: true,
            };
          }
          const code = errorCode(peeked);
          if (code === 'draining') {
            members.set(memberUrl, 'unready');
            const draining = unavailable('the partition member is shutting down; retry');
            if (canRepeat) return { kind: 'repeat', label: 'draining', refresh: false, pressure: false, failure: draining };
          }
          return { kind: 'relay', label: `status_${status}`, response, request: outcome.request, peeked };
        }
        if (status < 100 || status > 599) {
          outcome.request.destroy();
          return {
            kind: 'error',
            label: 'garbage',
            error: new ApiError('bad_gateway', `the partition answered status ${status}`, { headers: { 'Retry-After': '1' } }),
            pressure: false,
          };
        }
        return { kind: 'relay', label: `status_${Math.floor(status / 100)}xx`, response, request: outcome.request, peeked: undefined };
      }
    }
  }

  /** Streams the member's answer to the client with back-pressure; cut short if either side breaks. */
  async #relay(
    decision: { response: IncomingMessage; request: { destroy(): void }; peeked: Buffer | undefined },
    res: GatewayResponse,
    done: () => void,
  ): Promise<void> {
    const { response, peeked } = decision;
    // pipe() with its ends handled here rather than pipeline(): pipeline builds and aborts an
    // AbortController per stream, a measurable share of the gateway's CPU per request.
    await new Promise<void>((resolve) => {
      let settled = false;
      const settle = (): void => {
        if (settled) return;
        settled = true;
        done();
        resolve();
      };
      // The client went away mid-answer: the member's side goes too.
      res.once('close', () => {
        if (!response.complete) decision.request.destroy();
        settle();
      });
      // The member broke off mid-answer: the client sees a short body, as from the partition itself.
      response.once('error', () => res.destroy());
      response.once('close', () => {
        if (!response.complete) res.destroy();
      });
      try {
        (res as ServerResponse).writeHead(response.statusCode ?? 502, downstreamResponseHeaders(response.headers));
      } catch (err) {
        this.#deps.logger.debug({ err }, 'Failed to relay an answer');
        decision.request.destroy();
        res.destroy();
        settle();
        return;
      }
      if (peeked !== undefined) res.end(peeked);
      else {
        // A streamed answer (content, blocks): the young generation is collected as its bytes pass (ADR 75).
        response.on('data', (chunk: Buffer) => processGcPacer.streamed(chunk.length));
        response.pipe(res as NodeJS.WritableStream);
      }
    });
  }
}

/** Reads a short answer whole; undefined when it is longer than `peekBytes` or breaks off. */
async function peek(response: IncomingMessage): Promise<Buffer | undefined> {
  try {
    return await readAll(response, peekBytes);
  } catch {
    return undefined;
  }
}

function errorCode(body: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { code?: unknown } };
    return typeof parsed.error?.code === 'string' ? parsed.error.code : undefined;
  } catch {
    return undefined;
  }
}
