// One exchange with a partition member: the request goes out over a pooled connection, the
// client's body is streamed into it only once the connection is up (so a member that refuses
// the connection costs no body byte, and the request can go to another member), and the outcome
// says what happened in terms the gateway decides on: an answer (whose body is still to be
// streamed), a connection that never came up, a member that stopped answering, or one that
// broke off or sent something that is not HTTP.
import { request as httpRequest, type Agent, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import { processGcPacer } from '@meshwork/contract';

/** The body of a request to forward: none, bytes held in memory (may be sent again), or the client's stream. */
export type ForwardBody = { kind: 'none' } | { kind: 'buffered'; bytes: Buffer } | { kind: 'stream'; stream: Readable };

/** Tells the exchanges of a request that its client went away (cheaper than an AbortSignal, whose abort builds a DOMException). */
export class ClientGone {
  #gone = false;
  readonly #listeners = new Set<() => void>();

  /** Whether the client went away. */
  get gone(): boolean {
    return this.#gone;
  }

  /** Records that the client went away and tells every listener once. */
  notify(): void {
    if (this.#gone) return;
    this.#gone = true;
    for (const listener of this.#listeners) listener();
    this.#listeners.clear();
  }

  on(listener: () => void): void {
    this.#listeners.add(listener);
  }

  off(listener: () => void): void {
    this.#listeners.delete(listener);
  }
}

/** What to send. */
export interface ForwardRequest {
  /** The member's base URL (`http://host:port`). */
  base: string;
  method: string;
  /** Path and query, as the client sent them. */
  path: string;
  headers: OutgoingHttpHeaders;
  body: ForwardBody;
  agent: Agent | HttpsAgent;
  /** No byte either way for this long is a hang. */
  idleTimeoutMs: number;
  /** Fires when the client went away: the exchange is abandoned. */
  clientGone: ClientGone;
}

/** How an exchange went. */
export type ForwardOutcome =
  | { kind: 'answer'; response: IncomingMessage; request: { destroy(): void } }
  /** The connection did not come up; nothing was sent. */
  | { kind: 'unreachable'; error: Error }
  /** No byte for `idleTimeoutMs` before the answer's headers; `bodySent` whether any body byte left. */
  | { kind: 'timeout'; bodySent: boolean }
  /** The connection broke or the answer was not HTTP. */
  | { kind: 'broken'; error: Error; bodySent: boolean }
  | { kind: 'aborted' };

// Members' base URLs, parsed once (a few per partition; cleared if it ever grows past this).
const parsedBases = new Map<string, URL>();
const maxParsedBases = 1024;

function parseBase(base: string): URL {
  let url = parsedBases.get(base);
  if (url === undefined) {
    if (parsedBases.size >= maxParsedBases) parsedBases.clear();
    url = new URL(base);
    parsedBases.set(base, url);
  }
  return url;
}

/** Sends one request to a member and resolves once its answer's headers arrived or it failed. */
export function forward(req: ForwardRequest): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    const url = parseBase(req.base);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    let connected = false;
    let bodySent = false;
    let settled = false;
    const settle = (outcome: ForwardOutcome): void => {
      if (settled) return;
      settled = true;
      req.clientGone.off(onAbort);
      resolve(outcome);
    };
    const upstream = send({
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port,
      method: req.method,
      path: req.path,
      headers: req.headers,
      agent: req.agent,
    });
    const onAbort = (): void => {
      upstream.destroy();
      settle({ kind: 'aborted' });
    };
    req.clientGone.on(onAbort);
    if (req.clientGone.gone) {
      onAbort();
      return;
    }
    upstream.setTimeout(req.idleTimeoutMs, () => {
      upstream.destroy();
      settle({ kind: 'timeout', bodySent });
    });
    upstream.on('error', (error) => {
      if (!connected) settle({ kind: 'unreachable', error });
      else settle({ kind: 'broken', error, bodySent });
    });
    upstream.on('response', (response) => {
      settle({ kind: 'answer', response, request: upstream });
    });
    const sendBody = (): void => {
      connected = true;
      const body = req.body;
      if (body.kind === 'none') upstream.end();
      else if (body.kind === 'buffered') {
        bodySent = body.bytes.length > 0;
        upstream.end(body.bytes);
      } else {
        // A streamed upload: the young generation is collected as its bytes pass (ADR 75).
        body.stream.on('data', (chunk: Buffer) => {
          bodySent = true;
          processGcPacer.streamed(chunk.length);
        });
        // Back-pressure: the client's stream is read as fast as the member takes it. pipe(), not
        // pipeline(): a failed member must not destroy the client's request, which is answered.
        body.stream.pipe(upstream);
        upstream.once('error', () => body.stream.unpipe(upstream));
      }
    };
    upstream.on('socket', (socket) => {
      // A kept-alive socket is connected already; a new one once its connect event fires.
      if (!socket.connecting) sendBody();
      else socket.once('connect', sendBody);
    });
  });
}
