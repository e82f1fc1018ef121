// The Node-only part of the client (`@meshwork/client/node`): files on disk, a `fetch` over a
// `node:http` Agent of the caller's (a connection pool of its own, as each real device has,
// with its own socket limit), and raw HTTP for requests `fetch` cannot express. Kept out of the main entry point so that the browser build
// of the web UI never pulls in `node:` modules.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { request as httpRequest, type Agent, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { processGcPacer } from '@meshwork/contract/gc-pacer';
import { maxBlockSize } from './blocks.ts';
import { ApiError } from '@meshwork/contract/errors';
import { isMissingRoute, NetworkError, RequestAbortedError, UnexpectedAnswerError } from './errors.ts';
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
import type { BlockRef, WritePrecondition } from './types.ts';

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
 * Streams `blocks` (a file's block list, from `getEntry`) one after the other into a Node stream
 * with back-pressure and ends it; answers how many bytes arrived, and for how many blocks the
 * store vouched. Where the partition redirects block downloads to the store (ADR 71) the bytes
 * come from the store, not through the partition: the blocks' presigned URLs are asked for
 * with `POST /v1/blocks/locations`, 256 blocks at a time (the next batch halfway through the one
 * before; ADR 79), and each block is read from its URL. A block without one (no redirects), or
 * whose URL the store refused (it expired), is read with `GET /v1/blocks/{sha256}`, which
 * answers a block the caller may not read with `404`. Up to 4 blocks are asked for at once (the
 * one streaming and the next three), so that there is no round trip between blocks.
 *
 * Every block is checked against its size, and against its sha256 in one of two ways
 * (`check`, ADR 78). With `store` (the default), the store is asked for the checksum it kept
 * when the block was written (`x-amz-checksum-mode: ENABLED`, for which the URLs are signed):
 * a block whose answer carries `x-amz-checksum-sha256` equal to its name is not hashed again,
 * as the partition trusts the store's checksum when it reads a block itself (ADR 77). Any other
 * answer (the partition's own, a store that keeps no checksum, another object under the block's
 * key) is hashed, as every block is with `hash`. A block with other bytes, or one cut short,
 * raises `NetworkError` and destroys `destination`.
 *
 * `urls` are the blocks' URLs when the caller asked for them already (`blockLocations` with
 * `checksumMode` as `check` needs it): no locations are then asked for, and a block without
 * one is read with `GET /v1/blocks/{sha256}`.
 */
export async function downloadBlocksToStream(
  client: MeshworkClient,
  blocks: readonly BlockRef[],
  destination: Writable,
  options: { signal?: AbortSignal; check?: 'store' | 'hash'; urls?: ReadonlyMap<string, string> } = {},
): Promise<{ bytes: number; storeChecked: number }> {
  const { signal, check = 'store', urls: given } = options;
  const checksumMode = check === 'store';
  const call = signal === undefined ? {} : { signal };
  const headers: Record<string, string> = checksumMode ? { 'x-amz-checksum-mode': 'ENABLED' } : {};
  // The URLs of each batch of blocks, asked for once; undefined everywhere when the partition has no such route.
  const batches = new Map<number, Promise<ReadonlyMap<string, string> | undefined>>();
  const locate = (batch: number): Promise<ReadonlyMap<string, string> | undefined> => {
    if (given !== undefined) return Promise.resolve(given);
    let located = batches.get(batch);
    if (located === undefined) {
      const shas = blocks.slice(batch * locationBatch, (batch + 1) * locationBatch).map((b) => b.sha256);
      located = (batch > 0 ? locate(batch - 1) : Promise.resolve(new Map<string, string>())).then(async (before) => {
        if (before === undefined || shas.length === 0) return undefined;
        try {
          const answer = await client.blockLocations(shas, { ...call, checksumMode });
          return new Map(answer.blocks.flatMap((b) => (b.url === undefined ? [] : [[b.sha256, b.url] as const])));
        } catch (err) {
          // A partition without the route: every block is asked for by itself.
          if (isMissingRoute(err)) return undefined;
          throw err;
        }
      });
      located.catch(() => undefined);
      batches.set(batch, located);
    }
    return located;
  };
  const open = (i: number): Promise<ContentAnswer> | undefined => {
    const block = blocks[i];
    if (block === undefined) return undefined;
    const batch = Math.floor(i / locationBatch);
    // The next batch is asked for halfway through this one: its URLs are there in time, and fresh.
    if (i % locationBatch === locationBatch / 2 && (batch + 1) * locationBatch < blocks.length) void locate(batch + 1);
    const opening = locate(batch).then(async (urls) => {
      const url = urls?.get(block.sha256);
      if (url !== undefined) {
        try {
          return await client.storedBlockContent({ ...block, url }, { ...call, checksumMode });
        } catch (err) {
          // Refused by the store (a URL expired meanwhile): the partition redirects afresh.
          if (!(err instanceof ApiError || err instanceof UnexpectedAnswerError)) throw err;
        }
      }
      return client.blockContent(block.sha256, { ...call, headers });
    });
    opening.catch(() => undefined);
    return opening;
  };
  // The blocks asked for and not yet streamed, in order: the one to stream next first.
  const opened: (Promise<ContentAnswer> | undefined)[] = [];
  for (let k = 0; k < blocksAhead; k++) opened.push(open(k));
  let total = 0;
  let storeChecked = 0;
  try {
    for (let i = 0; i < blocks.length; i++) {
      const block = blocks[i]!;
      const answer = await opened.shift()!;
      opened.push(open(i + blocksAhead));
      const source = bodySource(answer.body!);
      const vouched = checksumMode && answer.headers['x-amz-checksum-sha256'] === checksumOf(block.sha256);
      const hash = vouched ? undefined : createHash('sha256');
      let bytes = 0;
      source.on('data', (chunk: Uint8Array) => {
        bytes += chunk.length;
        hash?.update(chunk);
      });
      await settleDownload(
        `block ${block.sha256}`,
        answer,
        signal,
        () => bytes,
        () => pump(source, destination, signal),
      );
      if (bytes !== block.size || (hash !== undefined && hash.digest('hex') !== block.sha256)) {
        throw new NetworkError(`block ${block.sha256} arrived as ${bytes} bytes that do not hash to its name`, { cause: undefined });
      }
      total += bytes;
      if (vouched) storeChecked++;
    }
  } catch (err) {
    destination.destroy();
    for (const pending of opened) {
      pending?.then(
        (a) => void a.body?.cancel().catch(() => undefined),
        () => undefined,
      );
    }
    throw err;
  }
  destination.end();
  await finished(destination, { readable: false });
  return { bytes: total, storeChecked };
}

/** How many blocks one `POST /v1/blocks/locations` of `downloadBlocksToStream` names (the route takes up to 500). */
const locationBatch = 256;

/**
 * How many blocks `downloadBlocksToStream` has asked for at once: the one streaming and the next
 * ones, so that the round trips to the partition and to the store (a redirect is two) overlap
 * the bytes of the blocks before them. An answer not yet read holds only its socket's buffers.
 */
const blocksAhead = 4;

/** A block's name as the store writes its sha256 checksum: the same 32 bytes in base64. */
function checksumOf(sha256: string): string {
  return Buffer.from(sha256, 'hex').toString('base64');
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
    const source = bodySource(answer.body!);
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
 * The Node stream to read a body from: its Node answer when nobody read from the body yet, its
 * chunks then counted for the young-generation collections as webBodyOf counts those of a body
 * read through its WHATWG stream (ADR 75; unpaced, a fast download leaves tens of MiB of them
 * for V8 to find, and the C allocator keeps that memory, ADR 88); else the body itself.
 */
function bodySource(body: ReadableStream<Uint8Array>): Readable {
  const claimed = claimNodeBody(body);
  if (claimed === undefined) return Readable.fromWeb(body as Parameters<typeof Readable.fromWeb>[0]);
  claimed.on('data', (chunk: Buffer) => processGcPacer.streamed(chunk.length));
  return claimed;
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
            if (chunk !== null) {
              processGcPacer.streamed(chunk.length);
              settle(() => controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
            } else if (res.readableEnded) settle(() => controller.close());
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
 * The Agent serves URLs of its own protocol; others (an `https` store a block download is
 * redirected to) use Node's default pool. Redirects are followed as `fetch` follows them
 * (unless `redirect` is `manual` or `error`): at most 20; a 303 (or a POST's 301/302) becomes a
 * GET without a body; a request whose body is a stream is not repeated (its answer is returned
 * as it is); credentials (`authorization`, `cookie`, `proxy-authorization`) are not sent to
 * another origin.
 */
export function nodeHttpFetch(agent: Agent): typeof fetch {
  const agentIsHttps = agent instanceof HttpsAgent;

  function exchange(
    url: URL,
    method: string,
    headers: Headers,
    body: ReadableStream | Buffer | undefined,
    signal: AbortSignal | undefined,
  ): Promise<IncomingMessage> {
    const https = url.protocol === 'https:';
    const send = https ? httpsRequest : httpRequest;
    const own = https === agentIsHttps ? { agent } : {};
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(url, { method, ...own, headers: Object.fromEntries(headers), ...(signal ? { signal } : {}) }, resolve);
      req.on('error', reject);
      if (body instanceof ReadableStream) Readable.fromWeb(body as ReadableStream<Uint8Array>).pipe(req);
      else req.end(body);
    });
  }

  return async (input, init = {}) => {
    let url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    let method = init.method ?? 'GET';
    const headers = new Headers(init.headers);
    const body = init.body;
    let payload: Buffer | undefined;
    if (typeof body === 'string') payload = Buffer.from(body);
    else if (body instanceof Uint8Array) payload = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    else if (body !== undefined && body !== null && !(body instanceof ReadableStream)) {
      throw new TypeError('nodeHttpFetch sends strings, bytes and streams only');
    }
    if (payload !== undefined) headers.set('content-length', String(payload.length));
    const stream = body instanceof ReadableStream ? body : undefined;
    for (let redirects = 0; ; redirects++) {
      const res = await exchange(url, method, headers, stream ?? payload, init.signal ?? undefined);
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (!redirectStatuses.has(status) || location === undefined || init.redirect === 'manual' || stream !== undefined) {
        return responseOf(res, method);
      }
      res.resume();
      if (init.redirect === 'error') throw new TypeError(`${method} ${url.href} was redirected`);
      if (redirects >= maxRedirects) throw new TypeError(`${method} ${url.href}: more than ${maxRedirects} redirects`);
      const next = new URL(location, url);
      if (next.protocol !== 'http:' && next.protocol !== 'https:')
        throw new TypeError(`${method} ${url.href} was redirected to ${next.protocol}`);
      if (next.origin !== url.origin) for (const name of crossOriginDropped) headers.delete(name);
      if (status === 303 ? method !== 'HEAD' : (status === 301 || status === 302) && method === 'POST') {
        method = 'GET';
        payload = undefined;
        for (const name of bodyHeaders) headers.delete(name);
      }
      url = next;
    }
  };
}

const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const maxRedirects = 20;
const crossOriginDropped = ['authorization', 'cookie', 'proxy-authorization'];
const bodyHeaders = ['content-length', 'content-type', 'content-encoding', 'content-language', 'content-location'];

function responseOf(res: IncomingMessage, method: string): Response {
  // Pairs, not a Headers: Response copies a Headers given to it pair by pair into its own.
  const answer: [string, string][] = [];
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) answer.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
  const status = res.statusCode ?? 0;
  const empty = status === 204 || status === 304 || method === 'HEAD';
  if (empty) res.resume();
  return new Response(empty ? null : webBodyOf(res), { status, statusText: res.statusMessage ?? '', headers: answer });
}
