// A `fetch` that hands each request straight to the gateway's router in the same process
// (ADR 46): WebDAV's API client calls it as it would call the network, and the router serves
// the call with exactly the code that serves `/v1` from the public listener (slot routing, 421
// absorption, member choice, admission, the partition's own auth, roles and quotas). Only the
// loopback hop is gone: no HTTP/1.1 serialisation, parsing or socket between WebDAV and the
// router. The request and response the router sees are small stand-ins for Node's: a Readable
// for the body, and a Writable whose writes become the Response's body stream with
// back-pressure both ways.
import { Readable, Writable } from 'node:stream';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { ApiError } from '@meshwork/contract';
import type { Logger } from 'pino';
import { inProcessCall, sendError, type GatewayRequest, type GatewayResponse } from '../gateway.ts';

/** Serves one `/v1` request as the gateway's dispatch does. */
export type ServeApi = (req: GatewayRequest, res: GatewayResponse, pathname: string, search: string) => Promise<void>;

// Statuses whose answer has no body (a Response refuses one).
const nullBodyStatuses = new Set([101, 204, 205, 304]);

/** The request the router reads: method, URL, headers and the body as a stream. */
class InProcessRequest extends Readable {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  // The router reads the client's address for X-Forwarded-For: the gateway itself.
  readonly socket = { remoteAddress: '127.0.0.1' };
  // Logged at debug by the router: the WebDAV request it serves has its own line.
  readonly [inProcessCall] = true;
  complete = false;
  readonly #source: AsyncIterator<Uint8Array> | undefined;
  #bytes: Buffer | undefined;

  constructor(method: string, url: string, headers: IncomingHttpHeaders, body: Buffer | ReadableStream<Uint8Array> | undefined) {
    // One chunk of a block is the whole block: no need to cut it into 16 KiB pieces.
    super({ highWaterMark: 1, objectMode: false });
    this.method = method;
    this.url = url;
    this.headers = headers;
    if (body instanceof ReadableStream) this.#source = body[Symbol.asyncIterator]();
    else this.#bytes = body;
    this.once('end', () => {
      this.complete = true;
    });
  }

  override _read(): void {
    if (this.#source === undefined) {
      const bytes = this.#bytes;
      this.#bytes = undefined;
      if (bytes !== undefined && bytes.length > 0) this.push(bytes);
      this.push(null);
      return;
    }
    this.#source.next().then(
      (step) => {
        if (step.done === true) this.push(null);
        else this.push(Buffer.from(step.value.buffer, step.value.byteOffset, step.value.byteLength));
      },
      (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#source !== undefined && !this.complete) void this.#source.return?.().catch(() => undefined);
    callback(err);
  }
}

/** The response the router writes: its head resolves the fetch, its body feeds the Response's stream. */
class InProcessResponse extends Writable {
  statusCode = 200;
  headersSent = false;
  readonly #method: string;
  readonly #resolve: (response: Response) => void;
  readonly #reject: (err: Error) => void;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #bodyless = false;
  #waiting: (() => void) | undefined;

  constructor(method: string, resolve: (response: Response) => void, reject: (err: Error) => void) {
    super({ highWaterMark: 64 * 1024 });
    this.#method = method;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  writeHead(status: number, headers?: OutgoingHttpHeaders | readonly string[]): this {
    if (this.headersSent) throw new Error('the head was written already');
    this.statusCode = status;
    this.headersSent = true;
    const answer = new Headers();
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2) answer.append(headers[i] as string, headers[i + 1] as string);
    } else if (headers !== undefined) {
      for (const [name, value] of Object.entries(headers as OutgoingHttpHeaders)) {
        if (value === undefined) continue;
        if (Array.isArray(value)) for (const v of value) answer.append(name, v);
        else answer.set(name, String(value));
      }
    }
    this.#bodyless = nullBodyStatuses.has(status) || this.#method === 'HEAD';
    let body: ReadableStream<Uint8Array> | null = null;
    if (!this.#bodyless) {
      body = new ReadableStream<Uint8Array>(
        {
          start: (controller) => {
            this.#controller = controller;
          },
          pull: () => {
            const waiting = this.#waiting;
            this.#waiting = undefined;
            waiting?.();
          },
          cancel: () => {
            this.destroy();
          },
        },
        // Up to this much of an answer waits for its reader, as a socket's buffer would hold it:
        // an answer the caller never reads still ends, and a long one waits for its reader.
        { highWaterMark: 256 * 1024, size: (chunk) => chunk.byteLength },
      );
    }
    this.#resolve(new Response(body, { status, headers: answer }));
    return this;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.headersSent) this.writeHead(this.statusCode);
    const controller = this.#controller;
    if (this.#bodyless || controller === undefined) {
      callback();
      return;
    }
    try {
      controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } catch (err) {
      callback(err as Error);
      return;
    }
    if ((controller.desiredSize ?? 0) > 0) callback();
    else this.#waiting = () => callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.headersSent) this.writeHead(this.statusCode);
    try {
      this.#controller?.close();
    } catch {
      // The reader cancelled the body: nothing is left to close.
    }
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.headersSent) this.#reject(err ?? new Error('the gateway broke off the answer'));
    else if (!this.writableFinished) {
      try {
        this.#controller?.error(err ?? new Error('the gateway broke off the answer'));
      } catch {
        // Closed or cancelled already.
      }
    }
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
    callback(err);
  }
}

function bodyOf(body: RequestInit['body']): Buffer | ReadableStream<Uint8Array> | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ReadableStream) return body as ReadableStream<Uint8Array>;
  throw new TypeError('the in-process fetch sends strings, bytes and streams only');
}

/**
 * A `fetch` that serves each call with `serveApi` in this process. Only `/v1/` paths are served
 * (anything else is the catalogue's 404, as from the public listener); with `elsewhere`, a call
 * to any other origin than its `origin` is made by its `fetch` instead; a call whose signal
 * aborts before the answer's head rejects with the signal's reason and leaves the router's
 * exchange as a client that went away.
 */
export function inProcessFetch(serveApi: ServeApi, logger: Logger, elsewhere?: { origin: string; fetch: typeof fetch }): typeof fetch {
  return (input, init = {}) => {
    const href = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const url = new URL(href);
    // A URL the API handed out at another address (a block's presigned URL at the store, ADR 80) goes out over the network.
    if (elsewhere !== undefined && url.origin !== elsewhere.origin) return elsewhere.fetch(input, init);
    const method = (init.method ?? 'GET').toUpperCase();
    const headers: IncomingHttpHeaders = { host: url.host };
    new Headers(init.headers).forEach((value, name) => {
      headers[name] = value;
    });
    const body = bodyOf(init.body);
    if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length);
    else if (body !== undefined) {
      delete headers['content-length'];
      headers['transfer-encoding'] = 'chunked';
    }
    const pathAndQuery = `${url.pathname}${url.search}`;
    const signal = init.signal ?? undefined;
    return new Promise<Response>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const req = new InProcessRequest(method, pathAndQuery, headers, body);
      const res = new InProcessResponse(method, resolve, reject);
      // A body that fails to arrive is a caller that went away mid-request: the response closes,
      // which the router takes as a client gone (its upstream exchange is cut). Errors are
      // handled here, as a socket's are by the HTTP server: none may reach the process.
      req.on('error', () => res.destroy());
      res.on('error', () => undefined);
      if (signal !== undefined) {
        const onAbort = (): void => {
          if (!res.headersSent) reject(signal.reason as Error);
          // Destroyed without an error: nobody listens for one on the response, as on a socket that closed.
          res.destroy();
          req.destroy();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        res.once('close', () => signal.removeEventListener('abort', onAbort));
      }
      if (!url.pathname.startsWith('/v1/')) {
        sendError(res as unknown as GatewayResponse, new ApiError('not_found', `no route for ${method} ${url.pathname}`));
        return;
      }
      serveApi(req as unknown as GatewayRequest, res as unknown as GatewayResponse, url.pathname, url.search.slice(1)).catch(
        (err: unknown) => {
          logger.error({ err }, 'Failed an internal API request');
          sendError(res as unknown as GatewayResponse, new ApiError('internal', 'the gateway failed to serve the request'));
        },
      );
    });
  };
}
