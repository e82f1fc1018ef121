// The Node-only part of the client (`@meshwork/client/node`): files on disk, a `fetch` over a
// `node:http` Agent of the caller's (a connection pool of its own, as each real device has,
// with its own socket limit), and raw HTTP for requests `fetch` cannot express. Kept out of the main entry point so that the browser build
// of the web UI never pulls in `node:` modules.
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { request as httpRequest, type Agent, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { maxBlockSize } from './blocks.ts';
import { NetworkError, RequestAbortedError } from './errors.ts';
import {
  abortableSleep,
  settleDownload,
  type ContentAnswer,
  type ContentOptions,
  type MeshworkClient,
  type RawResponse,
  type UploadOptions,
  type UploadResult,
} from './client.ts';
import type { WritePrecondition } from './types.ts';

/** Uploads a file from disk by the block protocol, reading it one block at a time. */
export async function uploadFile(
  client: MeshworkClient,
  objectId: string,
  path: string,
  file: string,
  precondition: WritePrecondition,
  options: UploadOptions = {},
): Promise<UploadResult> {
  // The read buffer matches the block size, so each block is assembled from few chunks.
  const stream = createReadStream(file, { highWaterMark: options.blockSize ?? maxBlockSize });
  try {
    return await client.upload(objectId, path, stream, precondition, options);
  } finally {
    stream.destroy();
  }
}

/** How a download to a stream or file goes. */
export interface DownloadOptions extends ContentOptions {
  /**
   * How many times a download cut short by the network (a gateway or partition restarting, a
   * connection reset) is taken up again where it stopped: a `Range` request from the next byte
   * with `If-Range` on the first answer's ETag, so that a file changed meanwhile is never
   * spliced (default 5; 0 turns it off). Needs an ETag and no suffix range.
   */
  resumes?: number;
}

/** Streams a file's content to disk with back-pressure; a failed or short download removes the partial file. */
export async function downloadToFile(
  client: MeshworkClient,
  objectId: string,
  path: string,
  file: string,
  options: DownloadOptions = {},
): Promise<{ bytes: number; etag: string | undefined; status: number }> {
  try {
    return await downloadToStream(client, objectId, path, createWriteStream(file), options);
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
}

/**
 * Streams a file's content into a Node stream with back-pressure and ends it; answers how many
 * bytes arrived. A body cut short is taken up again where it stopped (`resumes` times, see
 * DownloadOptions), else raises `NetworkError` and destroys `destination`. With
 * `nodeHttpFetch` the socket is piped straight into `destination`, without the WHATWG stream
 * layer that `download` needs.
 */
export async function downloadToStream(
  client: MeshworkClient,
  objectId: string,
  path: string,
  destination: Writable,
  options: DownloadOptions = {},
): Promise<{ bytes: number; etag: string | undefined; status: number }> {
  return downloadContentToStream((o) => client.content(objectId, path, o), path, destination, options);
}

/**
 * `downloadToStream` over any content read that takes ContentOptions (`client.content`, or
 * `client.remoteContent` of a device): `path` only names the file in errors.
 */
export async function downloadContentToStream(
  read: (options: ContentOptions) => Promise<ContentAnswer>,
  path: string,
  destination: Writable,
  options: DownloadOptions = {},
): Promise<{ bytes: number; etag: string | undefined; status: number }> {
  const { resumes = 5, ...contentOptions } = options;
  const first = await read(contentOptions);
  if (first.body === null) {
    destination.end();
    return { bytes: 0, etag: first.etag, status: first.status };
  }
  const range = contentOptions.range;
  const resumable = first.etag !== undefined && (range === undefined || 'start' in range);
  const from = range !== undefined && 'start' in range ? range.start : 0;
  const signal = contentOptions.signal;
  let answer: ContentAnswer = first;
  let total = 0;
  for (let attempt = 0; ; attempt++) {
    const source = claimNodeBody(answer.body!) ?? Readable.fromWeb(answer.body as Parameters<typeof Readable.fromWeb>[0]);
    let bytes = 0;
    source.on('data', (chunk: Uint8Array) => void (bytes += chunk.length));
    try {
      await settleDownload(
        path,
        answer,
        signal,
        () => bytes,
        () => pump(source, destination, signal),
      );
      total += bytes;
      break;
    } catch (err) {
      total += bytes;
      source.destroy();
      // Only the network's failures are taken up again: not the destination's own (a full disk).
      if (!(err instanceof NetworkError) || !resumable || attempt >= resumes || destination.destroyed || destination.errored !== null) {
        destination.destroy();
        throw err;
      }
      try {
        await abortableSleep(Math.min(200 * 2 ** attempt, 3000), signal).catch((cause: unknown) => {
          throw new RequestAbortedError('download aborted', { cause });
        });
        answer = await read({
          ...contentOptions,
          range: { start: from + total, ...(range !== undefined && 'end' in range && range.end !== undefined ? { end: range.end } : {}) },
          ifRange: first.etag!,
        });
      } catch (again) {
        destination.destroy();
        throw again;
      }
      // The ETag is checked too: a device's peer API serves a range without honouring If-Range.
      if (answer.status !== 206 || answer.body === null || answer.etag !== first.etag) {
        await answer.body?.cancel();
        const changed = new NetworkError(
          `download of ${path} was cut short after ${total} bytes, and the file changed before it could be taken up again`,
          { cause: err },
        );
        destination.destroy();
        throw changed;
      }
    }
  }
  destination.end();
  await finished(destination, { readable: false });
  if (first.contentLength !== undefined && total !== first.contentLength) {
    throw new NetworkError(`download of ${path} ended after ${total} of ${first.contentLength} bytes`, { cause: undefined });
  }
  return { bytes: total, etag: first.etag, status: first.status };
}

/**
 * Pipes `source` into `destination` with back-pressure and leaves `destination` open (the next
 * part of a resumed download goes on after it); resolves when the source ended, rejects when it
 * failed or closed early, when `destination` failed, or when `signal` aborted. It takes its
 * listeners off again, as `pipeline` with `end: false` would not.
 */
function pump(source: Readable, destination: Writable, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      source.unpipe(destination);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('close', onClose);
      destination.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    const onEnd = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      cleanup();
      source.destroy();
      reject(err);
    };
    const onClose = (): void => {
      if (!source.readableEnded) onError(new Error('the answer was cut short'));
    };
    const onAbort = (): void => onError(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
    if (signal?.aborted) {
      onAbort();
      return;
    }
    source.once('end', onEnd);
    source.once('error', onError);
    source.once('close', onClose);
    destination.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
    source.pipe(destination, { end: false });
  });
}

// The Node answers behind the bodies nodeHttpFetch made, until a reader pulls from the body or
// downloadToStream claims the answer itself.
const nodeBodies = new WeakMap<ReadableStream<Uint8Array>, { res: IncomingMessage; pulled: boolean }>();

/** The Node answer behind a body of nodeHttpFetch that nobody read from yet (then only the caller reads it). */
function claimNodeBody(body: ReadableStream<Uint8Array>): IncomingMessage | undefined {
  const source = nodeBodies.get(body);
  if (source === undefined || source.pulled || body.locked) return undefined;
  nodeBodies.delete(body);
  source.pulled = true;
  return source.res;
}

/**
 * A WHATWG body over a Node answer that reads nothing until it is pulled (high-water mark 0),
 * so that downloadToStream can still take the answer whole; each pull takes what is buffered.
 */
function webBodyOf(res: IncomingMessage): ReadableStream<Uint8Array> {
  const source = { res, pulled: false };
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        source.pulled = true;
        return new Promise<void>((resolve) => {
          const settle = (finish: () => void): void => {
            res.off('readable', tryRead);
            res.off('end', onEnd);
            res.off('error', onError);
            res.off('close', onClose);
            finish();
            resolve();
          };
          const tryRead = (): void => {
            const chunk = res.read() as Buffer | null;
            if (chunk !== null) settle(() => controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
            else if (res.readableEnded) settle(() => controller.close());
          };
          const onEnd = (): void => settle(() => controller.close());
          const onError = (err: Error): void => settle(() => controller.error(err));
          // A socket closed before the end: the body is cut short.
          const onClose = (): void => {
            if (!res.readableEnded) settle(() => controller.error(new Error('the answer was cut short')));
          };
          res.on('readable', tryRead);
          res.once('end', onEnd);
          res.once('error', onError);
          res.once('close', onClose);
          tryRead();
        });
      },
      cancel(reason) {
        res.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    { highWaterMark: 0 },
  );
  nodeBodies.set(body, source);
  return body;
}

/** A request `rawHttp` sends byte for byte. */
export interface RawHttpRequest {
  /** Sent as given: a Buffer or string as is, anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  token?: string;
  agent?: Agent;
  signal?: AbortSignal;
}

/**
 * Sends one request with `node:http`, the path exactly as given (dot segments and all) and the
 * caller's framing headers (`transfer-encoding`, a wrong `content-length`): for tests of how the
 * server treats requests that `fetch` would normalise or refuse to send.
 */
export async function rawHttp<T = Record<string, unknown>>(
  baseUrl: string,
  method: string,
  path: string,
  request: RawHttpRequest = {},
): Promise<RawResponse<T>> {
  const url = new URL(baseUrl);
  const { body } = request;
  let payload: Buffer | undefined;
  if (body === undefined) payload = undefined;
  else if (Buffer.isBuffer(body)) payload = body;
  else payload = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const headers: Record<string, string> = {
    ...(request.token ? { authorization: `Bearer ${request.token}` } : {}),
    ...(payload !== undefined && !Buffer.isBuffer(body) && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}),
    ...(payload !== undefined ? { 'content-length': String(payload.length) } : {}),
    ...request.headers,
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers,
        ...(request.agent ? { agent: request.agent } : {}),
        ...(request.signal ? { signal: request.signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new NetworkError(`${method} ${path}: the answer broke off`, { cause: err })));
        res.on('end', () => {
          const bytes = Buffer.concat(chunks);
          const text = bytes.toString('utf8');
          const flat: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(', ') : v;
          let parsed: unknown;
          try {
            if ((flat['content-type'] ?? '').includes('json') && text !== '') parsed = JSON.parse(text);
          } catch (err) {
            reject(new NetworkError(`${method} ${path} answered JSON that does not parse`, { cause: err }));
            return;
          }
          resolve({ status: res.statusCode ?? 0, headers: flat, body: parsed as T, text, bytes });
        });
      },
    );
    req.on('error', (err) => {
      if (request.signal?.aborted) reject(new RequestAbortedError(`${method} ${path} aborted`, { cause: request.signal.reason }));
      else reject(new NetworkError(`${method} ${baseUrl}${path} failed: ${err.message}`, { cause: err }));
    });
    req.end(payload);
  });
}

/**
 * A `fetch` over `node:http`/`node:https` with the given Agent: give it to `MeshworkClient`
 * (`fetch` option) for a connection pool of its own. The global `fetch` shares one pool per
 * process, which is right for one program and wrong for a test that plays several devices.
 */
export function nodeHttpFetch(agent: Agent): typeof fetch {
  return (input, init = {}) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const method = init.method ?? 'GET';
    const headers = new Headers(init.headers);
    const body = init.body;
    let payload: Buffer | undefined;
    if (typeof body === 'string') payload = Buffer.from(body);
    else if (body instanceof Uint8Array) payload = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    else if (body !== undefined && body !== null && !(body instanceof ReadableStream)) {
      throw new TypeError('nodeHttpFetch sends strings, bytes and streams only');
    }
    if (payload !== undefined) headers.set('content-length', String(payload.length));
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Response>((resolve, reject) => {
      const req = send(
        url,
        { method, agent, headers: Object.fromEntries(headers), ...(init.signal ? { signal: init.signal } : {}) },
        (res) => {
          const answer = new Headers();
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) answer.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
          const status = res.statusCode ?? 0;
          const empty = status === 204 || status === 304 || method === 'HEAD';
          if (empty) res.resume();
          const stream = empty ? null : webBodyOf(res);
          resolve(new Response(stream, { status, statusText: res.statusMessage ?? '', headers: answer }));
        },
      );
      req.on('error', reject);
      if (body instanceof ReadableStream) Readable.fromWeb(body as ReadableStream<Uint8Array>).pipe(req);
      else req.end(payload);
    });
  };
}
