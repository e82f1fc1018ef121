// The typed client of the public API (docs/api.md): one method per route, typed bodies and
// answers, typed errors, retries where a repeat is safe, and streaming both ways. It is built
// on `fetch` alone so that the web UI runs it in a browser as the agent, the prober, the
// benchmarks and the tests run it in Node; in Node, `fetch`'s global dispatcher keeps
// connections alive and reuses them (the integration test measures it).
import { ApiError } from '@meshwork/contract/errors';
import {
  NetworkError,
  RequestAbortedError,
  RequestTimeoutError,
  UnexpectedAnswerError,
  errorFromAnswer,
  isRetryableAnswer,
  type AnswerError,
} from './errors.ts';
import { defaultRetryPolicy, isSafeToRepeat, parseRetryAfter, retryDelayMs, type RetryPolicy } from './retry.ts';
import { asEtag, encodePath, query, segment } from './paths.ts';
import { maxBlockSize, sha256Hex, splitBlocks, type UploadSource } from './blocks.ts';
import type {
  BlockLocation,
  BlockLocations,
  BlockRef,
  BlockUpload,
  BlockUploads,
  UploadConfirmations,
  ChangePage,
  CreatedDevice,
  CreatedUser,
  Device,
  Entry,
  EntryCommit,
  EntryPage,
  HealthBody,
  HealthReport,
  Me,
  StorageUsage,
  Member,
  MeshObject,
  Notifications,
  GrantKeySet,
  Presence,
  PresenceUpdate,
  RemoteEntry,
  RemoteListing,
  RemoteObject,
  Role,
  RotatedToken,
  SlotMap,
  Sources,
  WritePrecondition,
} from './types.ts';

// One decoder for every answer: decode() without `stream` keeps no state between calls, and a
// TextDecoder costs more to build than a small answer costs to decode.
const utf8 = new TextDecoder();

/**
 * What the client needs from a tracer to take part in a distributed trace: a client span per
 * request (a child of the caller's active span; none outside any span) and the W3C
 * `traceparent` of the active span on the request. `@meshwork/client/tracing` makes one that
 * exports over OTLP; the data plane's tracing fits too.
 */
export interface ClientTracing {
  inSpan<T>(name: string, attributes: Record<string, string | number | boolean>, fn: () => Promise<T>): Promise<T>;
  /** Adds `traceparent` (and `tracestate`) of the active span to the headers. */
  inject(headers: Record<string, string>): void;
}

/** The span name of a request: its method and first two path segments (`PUT /v1/blocks`); file names never appear. */
export function requestSpanName(method: string, path: string): string {
  const segments = path
    .split('?')[0]!
    .split('/')
    .filter((s) => s !== '');
  return `${method} /${segments.slice(0, 2).join('/')}`;
}

/** How a client is set up; only `baseUrl` is required. */
export interface ClientOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:8080` (a path prefix is kept). */
  baseUrl: string;
  /** The bearer token: administrator, account (`mwu.…`) or device (`mwd.…`). */
  token?: string;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** How retryable answers and lost connections are repeated (merged over `defaultRetryPolicy`). */
  retry?: Partial<RetryPolicy>;
  /** How long an answer's headers may take, in ms (default 60 000); a long poll's `wait` is added. 0: no limit. */
  timeoutMs?: number;
  /** Called before each repeat of a request (for logs and metrics). */
  onRetry?: (info: RetryInfo) => void;
  /** Traces each request (a client span, and `traceparent` on the request); none by default. */
  tracing?: ClientTracing;
  /** The wait between attempts (injectable for tests; default: an abortable timer). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** The source of jitter, in [0, 1) (default `Math.random`). */
  random?: () => number;
  /** The clock for Retry-After dates, in ms since the epoch (default `Date.now`). */
  now?: () => number;
}

/** What `onRetry` is told before a request is repeated. */
export interface RetryInfo {
  method: string;
  path: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  delayMs: number;
  /** The answer or the transport failure that is being retried. */
  error: AnswerError | NetworkError;
}

/** A client speaking as a device, with the device's id at hand. */
export type DeviceClient = MeshworkClient & { readonly deviceId: string };

/** Options every call takes. */
export interface CallOptions {
  /** Aborts the call, its retries and its waits. */
  signal?: AbortSignal;
  /** Extra request headers (for example `traceparent`). */
  headers?: Record<string, string>;
}

/** The answer `raw` returns: status, lower-cased headers, the body as bytes and text, and parsed when JSON. */
export interface RawResponse<T = Record<string, unknown>> {
  status: number;
  headers: Record<string, string>;
  /** The parsed JSON body, or undefined when the answer is not JSON or is empty. */
  body: T;
  text: string;
  bytes: Uint8Array;
}

/** The body `raw` sends: bytes or text as they are, anything else as JSON. */
export interface RawRequest extends CallOptions {
  body?: unknown;
  /** Another token for this request, or null to send none. */
  token?: string | null;
}

/** A byte range of a file: `start`..`end` inclusive (`end` omitted: to the end), or the last `suffix` bytes. */
export type ByteRange = { start: number; end?: number } | { suffix: number };

/** Conditions of a content read. */
export interface ContentOptions extends CallOptions {
  range?: ByteRange;
  /** An ETag (the content hash, quoted or not): `304` when it still matches. */
  ifNoneMatch?: string;
  /** The range only while the content still has this ETag; otherwise the whole file. */
  ifRange?: string;
}

/** A content read's answer; `body` is a stream to consume (or cancel), null for `304`. */
export interface ContentAnswer {
  status: 200 | 206 | 304;
  notModified: boolean;
  etag: string | undefined;
  contentLength: number | undefined;
  contentRange: string | undefined;
  headers: Record<string, string>;
  body: ReadableStream<Uint8Array> | null;
}

/**
 * Runs a download's `pipe` and answers what arrived: `RequestAbortedError` when `signal` ended
 * it, `NetworkError` for any other failure or a body shorter or longer than its Content-Length.
 * (Shared by `download` and the Node entry's `downloadToStream`; not part of the public API.)
 */
export async function settleDownload(
  path: string,
  answer: Pick<ContentAnswer, 'contentLength' | 'etag' | 'status'>,
  signal: AbortSignal | undefined,
  bytes: () => number,
  pipe: () => Promise<void>,
): Promise<{ bytes: number; etag: string | undefined; status: number }> {
  try {
    await pipe();
  } catch (err) {
    if (signal?.aborted) throw new RequestAbortedError(`download of ${path} aborted`, { cause: signal.reason });
    throw new NetworkError(`download of ${path} failed after ${bytes()} bytes`, { cause: err });
  }
  if (answer.contentLength !== undefined && bytes() !== answer.contentLength) {
    throw new NetworkError(`download of ${path} ended after ${bytes()} of ${answer.contentLength} bytes`, { cause: undefined });
  }
  return { bytes: bytes(), etag: answer.etag, status: answer.status };
}

/**
 * A file of one block at most this long whose block the service is not known to hold is sent
 * whole with its commit (`putFileContent`) rather than asked about first: sending it costs less
 * than the round trip that might have spared it.
 */
export const wholeUnaskedBytes = 64 * 1024;

/** A committed entry with how it was committed. */
export interface CommitResult {
  entry: Entry;
  /** True when the commit created the entry (`201`). */
  created: boolean;
  etag: string | undefined;
}

/** What `getEntry` answers: the entry, or that the caller's copy is current (`304`). */
export type EntryAnswer = { notModified: false; entry: Entry; etag: string | undefined } | { notModified: true; etag: string | undefined };

/** How `upload` works. */
export interface UploadOptions extends CallOptions {
  /** Bytes per block (default and most 4 MiB). */
  blockSize?: number;
  /** Block uploads in flight at once (default 4); memory in use is about twice this many blocks (three times with `toStore`). */
  parallelism?: number;
  mtime?: string;
  /** Called after each block upload, with its reference. */
  onBlockUploaded?: (block: BlockRef) => void;
  /**
   * Called once for each block of the source when the upload holds it no more (sent, known to
   * the service already, or given up on): a source that reads into buffers of its own may use
   * that block's buffer again from then on.
   */
  onBlockReleased?: (data: Uint8Array) => void;
  /**
   * Answers the caller already has from `missingBlocks` (sha256 → whether it was missing), for
   * instance from one request for the blocks of many files: blocks found here are not asked
   * about again, so a file whose blocks are all known costs no `missing` request.
   */
  known?: ReadonlyMap<string, boolean>;
  /**
   * For a file of more than one block: ask where to upload (`POST /v1/blocks/uploads`) instead of
   * `missing`, and PUT each block to its presigned URL at the store where the partition gives one,
   * then confirm it (`POST /v1/blocks/uploaded`); a block without a URL, or whose PUT or
   * confirmation fails, goes through the partition (`PUT /v1/blocks/{sha256}`). A file of one
   * block goes through the partition either way (the store's way costs two requests more):
   * with its commit in one call (`putFileContent`, ADR 86) when `known` says the service lacks
   * it or when it is at most `wholeUnaskedBytes`. Default false (ADR 80).
   */
  toStore?: boolean;
  /**
   * With `toStore`: have the partition look in the store first (one HEAD per block) for blocks
   * this caller PUT to their URLs before and never confirmed (a crash in between), and confirm
   * them instead of sending them again. For the first uploads after a restart: it costs the
   * store a request per block, nearly always answered 404.
   */
  checkStore?: boolean;
}

/** What `upload` did: the committed entry, its blocks, and what had to be sent. */
export interface UploadResult extends CommitResult {
  blocks: BlockRef[];
  uploadedBlocks: number;
  uploadedBytes: number;
}

// `open` is a stream made afresh for each attempt, so that a request with it may be repeated.
type Body =
  | { json: unknown }
  | { bytes: Uint8Array }
  | { stream: ReadableStream<Uint8Array> }
  | { open: () => ReadableStream<Uint8Array> }
  | { text: string };

interface SendOptions extends CallOptions {
  body?: Body;
  /** Statuses besides 2xx that are answers, not errors (304). */
  accept?: readonly number[];
  /** The request is a block upload (content-addressed: safe to repeat). */
  blockUpload?: boolean;
  /** The request is idempotent although the method alone does not say so. */
  idempotent?: boolean;
  /** A long poll's wait, added to the timeout. */
  waitSeconds?: number;
  token?: string | null;
  /** Send to this URL instead of the base URL and path (`path` then only names it in errors): a presigned URL, never sent with credentials. */
  url?: string;
}

/** Whether a block the store did not take may still go through the partition: an answer or a network failure, not an abort. */
function fallsBack(err: unknown, call: CallOptions): boolean {
  const answered =
    err instanceof ApiError || err instanceof UnexpectedAnswerError || err instanceof NetworkError || err instanceof RequestTimeoutError;
  return answered && call.signal?.aborted !== true;
}

/**
 * A block's bytes for `blockSender`: in memory, or opened afresh from where they lie each time
 * they are sent (`sendBlocks`), with their size and name known beforehand.
 */
export type BlockBytes = { sha256: string; data: Uint8Array } | { sha256: string; size: number; open: () => ReadableStream<Uint8Array> };

/** One block on its way (`blockSender`): when its request ended, and its reference once the caller possesses it. */
export interface BlockSending {
  placed: Promise<void>;
  done: Promise<BlockRef>;
}

/** Waits `ms`; rejects with the signal's reason when `signal` aborts first. */
export const abortableSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

function headersOf(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  res.headers.forEach((value, key) => (out[key] = value));
  return out;
}

function lowerCased(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = v;
  return out;
}

/** A content request's headers (Range, If-None-Match, If-Range) and the rest of its options. */
function contentRequest(options: ContentOptions): { rest: CallOptions; headers: Record<string, string> } {
  const { range, ifNoneMatch, ifRange, ...rest } = options;
  const headers: Record<string, string> = { ...rest.headers };
  if (range !== undefined) headers.range = rangeHeader(range);
  if (ifNoneMatch !== undefined) headers['if-none-match'] = asEtag(ifNoneMatch);
  if (ifRange !== undefined) headers['if-range'] = asEtag(ifRange);
  return { rest, headers };
}

/** A content answer (200, 206 or 304) as `content` and `remoteContent` return it. */
async function contentAnswerOf(res: Response): Promise<ContentAnswer> {
  const length = res.headers.get('content-length');
  if (res.status === 304) await res.body?.cancel();
  const answer: ContentAnswer = {
    status: res.status as 200 | 206 | 304,
    notModified: res.status === 304,
    etag: res.headers.get('etag') ?? undefined,
    contentLength: length === null ? undefined : Number(length),
    contentRange: res.headers.get('content-range') ?? undefined,
    headers: headersOf(res),
    body: res.status === 304 ? null : res.body,
  };
  // Node's fetch cancels the body of a Response that was garbage-collected before anyone read
  // it: an answer asked for ahead (downloadBlocksToStream's next blocks) would then stream
  // nothing. The answer keeps its Response alive for as long as it is itself.
  Object.defineProperty(answer, 'response', { value: res, enumerable: false });
  return answer;
}

function rangeHeader(range: ByteRange): string {
  if ('suffix' in range) return `bytes=-${range.suffix}`;
  return `bytes=${range.start}-${range.end ?? ''}`;
}

function preconditionHeaders(precondition: WritePrecondition): Record<string, string> {
  return 'ifMatch' in precondition ? { 'if-match': asEtag(precondition.ifMatch) } : { 'if-none-match': '*' };
}

/** A client of one API base URL with one identity; `as(token)` gives another identity on the same connections. */
export class MeshworkClient {
  readonly baseUrl: string;
  readonly token: string | undefined;
  readonly #options: ClientOptions;
  readonly #fetch: typeof fetch;
  readonly #policy: RetryPolicy;

  constructor(options: ClientOptions) {
    this.#options = options;
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#policy = { ...defaultRetryPolicy, ...options.retry };
  }

  /** The same API as another identity, sharing this client's `fetch` and so its connection pool. */
  as(token: string): MeshworkClient {
    return new MeshworkClient({ ...this.#options, token });
  }

  // ---- accounts

  /** `POST /v1/users` (administrator): creates a user; its account token is in the answer, once. */
  async createUser(name: string, options?: CallOptions): Promise<CreatedUser> {
    return this.#json<CreatedUser>('POST', '/v1/users', { ...options, body: { json: { name } } });
  }

  /** `POST /v1/devices` (account token): registers a device; its device token is in the answer, once. */
  async registerDevice(name: string, options?: CallOptions): Promise<CreatedDevice> {
    return this.#json<CreatedDevice>('POST', '/v1/devices', { ...options, body: { json: { name } } });
  }

  /** Registers a device and answers a client that speaks as it, on this client's connections. */
  async registerDeviceClient(name: string, options?: CallOptions): Promise<DeviceClient> {
    const device = await this.registerDevice(name, options);
    return Object.assign(this.as(device.token), { deviceId: device.id });
  }

  /** `PUT /v1/users/{id}/quota` (administrator): sets a user's storage quota in bytes (null: unlimited). */
  async setQuota(userId: string, quotaBytes: number | null, options?: CallOptions): Promise<StorageUsage & { userId: string }> {
    return this.#json<StorageUsage & { userId: string }>('PUT', `/v1/users/${segment(userId)}/quota`, {
      ...options,
      body: { json: { quotaBytes } },
    });
  }

  /** `GET /v1/me`: the caller's user (and device) and its storage use. */
  async me(options?: CallOptions): Promise<Me> {
    return this.#json<Me>('GET', '/v1/me', options);
  }

  /** `GET /v1/devices`: the devices of the caller's user. */
  async listDevices(options?: CallOptions): Promise<Device[]> {
    return (await this.#json<{ devices: Device[] }>('GET', '/v1/devices', options)).devices;
  }

  /** `DELETE /v1/devices/{id}` (account token, or the device itself): its token stops working and its presence goes. */
  async deleteDevice(deviceId: string, options?: CallOptions): Promise<void> {
    await this.#empty('DELETE', `/v1/devices/${segment(deviceId)}`, options);
  }

  /** `POST /v1/me/token` (account token): a new account token; this client's token stops working. Never repeated. */
  async rotateAccountToken(options?: CallOptions): Promise<RotatedToken> {
    return this.#json<RotatedToken>('POST', '/v1/me/token', options);
  }

  // ---- objects

  /** `POST /v1/objects`: creates a mesh object the caller owns. */
  async createObject(body: { name: string; cloudStorage?: boolean }, options?: CallOptions): Promise<MeshObject> {
    return this.#json<MeshObject>('POST', '/v1/objects', { ...options, body: { json: body } });
  }

  /** `GET /v1/objects`: the objects the caller is a member of. */
  async listObjects(options?: CallOptions): Promise<MeshObject[]> {
    return (await this.#json<{ objects: MeshObject[] }>('GET', '/v1/objects', options)).objects;
  }

  /** `GET /v1/objects/{id}`. */
  async getObject(objectId: string, options?: CallOptions): Promise<MeshObject> {
    return this.#json<MeshObject>('GET', `/v1/objects/${segment(objectId)}`, options);
  }

  /** `PATCH /v1/objects/{id}` (writer): renames it. */
  async renameObject(objectId: string, name: string, options?: CallOptions): Promise<MeshObject> {
    return this.#json<MeshObject>('PATCH', `/v1/objects/${segment(objectId)}`, { ...options, body: { json: { name } } });
  }

  /** `DELETE /v1/objects/{id}` (owner): the object and all its entries go. */
  async deleteObject(objectId: string, options?: CallOptions): Promise<void> {
    await this.#empty('DELETE', `/v1/objects/${segment(objectId)}`, options);
  }

  /** `PUT /v1/objects/{id}/members/{userId}` (owner): adds a member or changes its role. */
  async setMember(objectId: string, userId: string, role: Exclude<Role, 'owner'>, options?: CallOptions): Promise<Member> {
    const path = `/v1/objects/${segment(objectId)}/members/${segment(userId)}`;
    return this.#json<Member>('PUT', path, { ...options, body: { json: { role } }, idempotent: true });
  }

  /** `DELETE /v1/objects/{id}/members/{userId}` (owner). */
  async removeMember(objectId: string, userId: string, options?: CallOptions): Promise<void> {
    await this.#empty('DELETE', `/v1/objects/${segment(objectId)}/members/${segment(userId)}`, options);
  }

  // ---- entries

  /** `PUT /v1/objects/{id}/entries/{path}` (writer): commits a file's block list or a directory, under a precondition. */
  async putEntry(
    objectId: string,
    path: string,
    commit: EntryCommit,
    precondition: WritePrecondition,
    options?: CallOptions,
  ): Promise<CommitResult> {
    const res = await this.#send('PUT', `/v1/objects/${segment(objectId)}/entries/${encodePath(path)}`, {
      ...options,
      headers: { ...options?.headers, ...preconditionHeaders(precondition) },
      body: { json: commit },
    });
    return this.#commitResult(res);
  }

  /**
   * `PUT /v1/objects/{id}/entries/{path}` with the file's whole content as the body
   * (`application/octet-stream`, at most one block: 4 MiB), ADR 86: the partition stores it and
   * commits the file in one call, under `precondition`, and answers as `putEntry` does. A
   * partition without this (`415`, an older version) gets the block uploaded and the file
   * committed in two calls. `sha256` is the content's hash when the caller has it already.
   */
  async putFileContent(
    objectId: string,
    path: string,
    data: Uint8Array,
    precondition: WritePrecondition,
    options: CallOptions & { mtime?: string; sha256?: string } = {},
  ): Promise<CommitResult> {
    const { mtime, sha256, ...call } = options;
    try {
      const res = await this.#send('PUT', `/v1/objects/${segment(objectId)}/entries/${encodePath(path)}${query({ mtime })}`, {
        ...call,
        headers: { ...call.headers, ...preconditionHeaders(precondition) },
        body: { bytes: data },
      });
      return await this.#commitResult(res);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 415)) throw err;
    }
    const blocks = data.length === 0 ? [] : [await this.putBlock(data, { ...call, ...(sha256 === undefined ? {} : { sha256 }) })];
    return this.putEntry(objectId, path, { kind: 'file', blocks, ...(mtime === undefined ? {} : { mtime }) }, precondition, call);
  }

  /** `DELETE /v1/objects/{id}/entries/{path}` (writer) with `If-Match`: answers the tombstone. */
  async deleteEntry(objectId: string, path: string, ifMatch: string, options?: CallOptions): Promise<Entry> {
    return this.#json<Entry>('DELETE', `/v1/objects/${segment(objectId)}/entries/${encodePath(path)}`, {
      ...options,
      headers: { ...options?.headers, 'if-match': asEtag(ifMatch) },
    });
  }

  /** `GET /v1/objects/{id}/entries/{path}`; with `ifNoneMatch` (an ETag or version) a current copy answers `notModified`. */
  async getEntry(objectId: string, path: string, options: CallOptions & { ifNoneMatch?: string } = {}): Promise<EntryAnswer> {
    const { ifNoneMatch, ...rest } = options;
    const res = await this.#send('GET', `/v1/objects/${segment(objectId)}/entries/${encodePath(path)}`, {
      ...rest,
      headers: { ...rest.headers, ...(ifNoneMatch === undefined ? {} : { 'if-none-match': asEtag(ifNoneMatch) }) },
      accept: [304],
    });
    const etag = res.headers.get('etag') ?? undefined;
    if (res.status === 304) {
      await res.body?.cancel();
      return { notModified: true, etag };
    }
    return { notModified: false, entry: await this.#parse<Entry>(res, 'GET entry'), etag };
  }

  /** One page of `GET /v1/objects/{id}/entries`: the first (with `limit`) or the one a `next` token names. */
  async listEntries(objectId: string, options: CallOptions & { limit?: number; page?: string } = {}): Promise<EntryPage> {
    const { limit, page, ...rest } = options;
    // A page token carries the first page's size; a `limit` sent along with it overrides that.
    return this.#json<EntryPage>('GET', `/v1/objects/${segment(objectId)}/entries${query({ limit, page })}`, rest);
  }

  /** Every page of an object's listing in turn, following `next` (all at one snapshot). */
  async *entryPages(objectId: string, options: CallOptions & { limit?: number } = {}): AsyncGenerator<EntryPage> {
    let page = await this.listEntries(objectId, options);
    yield page;
    while (page.next !== null) {
      page = await this.listEntries(objectId, { ...options, page: page.next });
      yield page;
    }
  }

  /** The whole listing of an object and the cursor to ask `changes` from. */
  async listAllEntries(objectId: string, options: CallOptions & { limit?: number } = {}): Promise<{ entries: Entry[]; cursor: string }> {
    const entries: Entry[] = [];
    let cursor = '';
    for await (const page of this.entryPages(objectId, options)) {
      entries.push(...page.entries);
      cursor = page.cursor;
    }
    return { entries, cursor };
  }

  /** One page of `GET /v1/objects/{id}/changes` after `cursor`; `wait` makes it a long poll; `page` follows a `next` token. */
  async changes(
    objectId: string,
    options: CallOptions & { cursor?: string; limit?: number; page?: string; wait?: number },
  ): Promise<ChangePage> {
    const { cursor, limit, page, wait, ...rest } = options;
    // A page is read at the first page's snapshot: its token replaces cursor (and wait is refused with it).
    const params = page === undefined ? { cursor, limit, wait } : { limit, page };
    return this.#json<ChangePage>('GET', `/v1/objects/${segment(objectId)}/changes${query(params)}`, { ...rest, waitSeconds: wait });
  }

  /** Every page of the changes after `cursor` in turn, following `next`. */
  async *changePages(objectId: string, options: CallOptions & { cursor: string; limit?: number }): AsyncGenerator<ChangePage> {
    let page = await this.changes(objectId, options);
    yield page;
    while (page.next !== null) {
      page = await this.changes(objectId, { signal: options.signal, headers: options.headers, limit: options.limit, page: page.next });
      yield page;
    }
  }

  /** All changes after `cursor` and the cursor to ask from next time. */
  async listAllChanges(
    objectId: string,
    options: CallOptions & { cursor: string; limit?: number },
  ): Promise<{ changes: Entry[]; cursor: string }> {
    const changes: Entry[] = [];
    let cursor = options.cursor;
    for await (const page of this.changePages(objectId, options)) {
      changes.push(...page.changes);
      cursor = page.cursor;
    }
    return { changes, cursor };
  }

  // ---- notification

  /** `GET /v1/notifications`: one long poll over every object of the user (no `cursor`: all of them, at once). */
  async notifications(options: CallOptions & { cursor?: string; wait?: number } = {}): Promise<Notifications> {
    const { cursor, wait, ...rest } = options;
    // The server waits 30 s when `wait` is absent; the timeout must allow for it.
    return this.#json<Notifications>('GET', `/v1/notifications${query({ cursor, wait })}`, { ...rest, waitSeconds: wait ?? 30 });
  }

  /** Polls notifications for ever, keeping the cursor, and yields each answer that names objects. */
  watchNotifications(options: CallOptions & { cursor?: string; wait?: number } = {}): NotificationWatch {
    return new NotificationWatch(this, options);
  }

  // ---- content

  /** `POST /v1/blocks/missing`: which of these blocks the caller has not proved possession of (uploaded, or readable through an object): the ones to upload. */
  async missingBlocks(sha256s: readonly string[], options?: CallOptions): Promise<string[]> {
    // A read that happens to be a POST: repeating it is harmless.
    const body: Body = { json: { blocks: sha256s } };
    return (await this.#json<{ missing: string[] }>('POST', '/v1/blocks/missing', { ...options, body, idempotent: true })).missing;
  }

  /** `PUT /v1/blocks/{sha256}`: uploads one block (its hash is computed when not given); the upload is the caller's proof of possession. */
  async putBlock(data: Uint8Array, options: CallOptions & { sha256?: string } = {}): Promise<BlockRef> {
    const { sha256, ...rest } = options;
    const name = sha256 ?? (await sha256Hex(data));
    return this.#json<BlockRef>('PUT', `/v1/blocks/${segment(name)}`, { ...rest, body: { bytes: data }, blockUpload: true });
  }

  /**
   * `PUT /v1/blocks/{sha256}` of a block streamed from `open()`, its size and name known; a
   * repeated attempt opens it again. Bytes that do not hash to the name are refused with
   * `422 hash_mismatch`.
   */
  async putBlockStream(block: BlockRef, open: () => ReadableStream<Uint8Array>, options: CallOptions = {}): Promise<BlockRef> {
    return this.#json<BlockRef>('PUT', `/v1/blocks/${segment(block.sha256)}`, {
      ...options,
      headers: { ...options.headers, 'content-length': String(block.size) },
      body: { open },
      blockUpload: true,
    });
  }

  /**
   * `POST /v1/blocks/uploads` (ADR 80): of the blocks `refs` (at most 500), the ones the caller has
   * not proved possession of (as `missingBlocks` answers), each with a presigned PUT URL at the
   * store where the partition gives them (`putStoredBlock`, then `confirmUploads`), or without one:
   * `putBlock`.
   */
  async blockUploads(refs: readonly BlockRef[], options: CallOptions & { checkStore?: boolean } = {}): Promise<BlockUploads> {
    const { checkStore, ...call } = options;
    const blocks = refs.map((r) => ({ sha256: r.sha256, size: r.size }));
    const body: Body = { json: checkStore === true ? { blocks, checkStore } : { blocks } };
    return this.#json<BlockUploads>('POST', '/v1/blocks/uploads', { ...call, body, idempotent: true });
  }

  /**
   * PUT of a block's bytes to its presigned URL (from `blockUploads`) with the URL's headers,
   * without the client's credentials. The store refuses bytes that do not hash to the block's
   * name (`400`) and an expired URL (`403`), as an `AnswerError`.
   */
  async putStoredBlock(
    upload: BlockUpload & { url: string },
    data: Uint8Array | (() => ReadableStream<Uint8Array>),
    options?: CallOptions,
  ): Promise<void> {
    const streamed = typeof data === 'function';
    const res = await this.#send('PUT', `(the store's URL of block ${upload.sha256})`, {
      ...options,
      headers: { ...options?.headers, ...upload.headers, ...(streamed ? { 'content-length': String(upload.size) } : {}) },
      body: streamed ? { open: data } : { bytes: data },
      blockUpload: true,
      url: upload.url,
      token: null,
    });
    await res.arrayBuffer();
  }

  /**
   * `POST /v1/blocks/uploaded` (ADR 80): records the caller's possession of blocks it PUT to their
   * presigned URLs; answers which were confirmed and why the others were not (upload those with
   * `putBlock`).
   */
  async confirmUploads(refs: readonly BlockRef[], options?: CallOptions): Promise<UploadConfirmations> {
    const body: Body = { json: { blocks: refs.map((r) => ({ sha256: r.sha256, size: r.size })) } };
    return this.#json<UploadConfirmations>('POST', '/v1/blocks/uploaded', { ...options, body, idempotent: true });
  }

  /** `GET /v1/blocks/{sha256}`: one block's bytes, for a caller who possesses it (`not_found` otherwise). */
  async getBlock(sha256: string, options?: CallOptions): Promise<Uint8Array> {
    const res = await this.#send('GET', `/v1/blocks/${segment(sha256)}`, options ?? {});
    return this.#bytes(res);
  }

  /**
   * `GET /v1/blocks/{sha256}` as a stream: the block's bytes, from the partition or, where it
   * redirects block downloads (ADR 71), from the store (the redirect is followed without the
   * caller's credentials). The bytes are not checked here; `downloadBlocksToStream` checks them.
   */
  async blockContent(sha256: string, options?: CallOptions): Promise<ContentAnswer> {
    return contentAnswerOf(await this.#send('GET', `/v1/blocks/${segment(sha256)}`, options ?? {}));
  }

  /**
   * `POST /v1/blocks/locations`: the blocks of `sha256s` (at most 500) the caller may read, with
   * their sizes and, where the partition redirects block downloads (ADR 71), a presigned URL at
   * the store for each; the others as `unreadable`. With `checksumMode`, the URLs are signed for
   * `x-amz-checksum-mode: ENABLED`, which `storedBlockContent` then sends (ADR 78).
   */
  async blockLocations(sha256s: readonly string[], options: CallOptions & { checksumMode?: boolean } = {}): Promise<BlockLocations> {
    const { checksumMode, ...call } = options;
    const headers = checksumMode === true ? { ...call.headers, 'x-amz-checksum-mode': 'ENABLED' } : call.headers;
    const body: Body = { json: { blocks: sha256s } };
    return this.#json<BlockLocations>('POST', '/v1/blocks/locations', {
      ...call,
      ...(headers === undefined ? {} : { headers }),
      body,
      idempotent: true,
    });
  }

  /**
   * `GET` of a block's presigned URL (from `blockLocations`): the store's answer as a stream, sent
   * without the client's credentials. With `checksumMode` (as the URL was asked for) the request
   * carries `x-amz-checksum-mode: ENABLED`. A refusal (an expired URL is `403`) raises an
   * `AnswerError`; the bytes are not checked here (`downloadBlocksToStream` checks them).
   */
  async storedBlockContent(
    location: BlockLocation & { url: string },
    options: CallOptions & { checksumMode?: boolean } = {},
  ): Promise<ContentAnswer> {
    const { checksumMode, ...call } = options;
    const headers = checksumMode === true ? { ...call.headers, 'x-amz-checksum-mode': 'ENABLED' } : call.headers;
    const res = await this.#send('GET', `(the store's URL of block ${location.sha256})`, {
      ...call,
      ...(headers === undefined ? {} : { headers }),
      url: location.url,
      token: null,
    });
    return contentAnswerOf(res);
  }

  /** `GET /v1/objects/{id}/content/{path}`: the file as a stream, with Range / If-None-Match / If-Range. */
  async content(objectId: string, path: string, options: ContentOptions = {}): Promise<ContentAnswer> {
    const { rest, headers } = contentRequest(options);
    const res = await this.#send('GET', `/v1/objects/${segment(objectId)}/content/${encodePath(path)}`, {
      ...rest,
      headers,
      accept: [304],
    });
    return contentAnswerOf(res);
  }

  /**
   * Streams a file into `sink` with back-pressure (the network is read only as fast as the sink
   * takes it) and answers how many bytes arrived; a body cut short raises `NetworkError`.
   */
  async download(
    objectId: string,
    path: string,
    sink: WritableStream<Uint8Array>,
    options: ContentOptions = {},
  ): Promise<{ bytes: number; etag: string | undefined; status: number }> {
    const answer = await this.content(objectId, path, options);
    if (answer.body === null) {
      await sink.close();
      return { bytes: 0, etag: answer.etag, status: answer.status };
    }
    let bytes = 0;
    const counter = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytes += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const body = answer.body;
    return settleDownload(
      path,
      answer,
      options.signal,
      () => bytes,
      () => body.pipeThrough(counter).pipeTo(sink, options.signal === undefined ? {} : { signal: options.signal }),
    );
  }

  /**
   * Uploads a file by the protocol: split into blocks, hash them, ask which are missing, PUT
   * only those (`parallelism` at once), then commit the block list under `precondition`.
   * The source is read as blocks are needed: at most 2 × `parallelism` blocks are in memory
   * (3 × with `toStore`: up to `parallelism` more wait for their confirmation). A file of one
   * block the service lacks, or of at most `wholeUnaskedBytes`, is written whole in one call
   * instead (`putFileContent`, ADR 86).
   */
  async upload(
    objectId: string,
    path: string,
    source: UploadSource,
    precondition: WritePrecondition,
    options: UploadOptions = {},
  ): Promise<UploadResult> {
    const {
      blockSize = maxBlockSize,
      parallelism = 4,
      mtime,
      onBlockUploaded,
      onBlockReleased,
      known,
      toStore = false,
      checkStore = false,
      ...call
    } = options;
    const release = (data: Uint8Array): void => {
      try {
        onBlockReleased?.(data);
      } catch {
        // The caller's listener is the caller's.
      }
    };
    if (!Number.isInteger(parallelism) || parallelism < 1)
      throw new RangeError(`parallelism must be a positive integer, not ${parallelism}`);
    // Blocks are hashed and asked about a batch at a time while up to `parallelism` PUTs run:
    // a batch of read blocks plus the PUTs in flight keep at most 2 × parallelism blocks held
    // (with toStore, blocks waiting for their confirmation besides: 3 × parallelism).
    const batchSize = parallelism;
    const blocks: BlockRef[] = [];
    // Blocks known to the service or on their way to it: each is sent once per upload.
    const sent = new Set<string>();
    // The block requests running (at most `parallelism`), and every block not done yet (those and
    // the ones waiting for a confirmation, at most 2 × parallelism).
    const inFlight = new Set<Promise<void>>();
    const pending = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    let uploadedBlocks = 0;
    let uploadedBytes = 0;

    const failed = async (): Promise<never> => {
      await Promise.allSettled(pending);
      throw failure!.error;
    };
    const sendBlock = this.blockSender(call);
    const startPut = (b: { sha256: string; data: Uint8Array }, target?: BlockUpload): void => {
      const sending = sendBlock(b, target);
      const done = sending.done.then(
        (ref) => {
          uploadedBlocks++;
          uploadedBytes += b.data.length;
          onBlockUploaded?.(ref);
        },
        (error: unknown) => void (failure ??= { error }),
      );
      // Answered or failed, the upload holds the bytes no more.
      void done.finally(() => release(b.data));
      const tracked = done.finally(() => pending.delete(tracked));
      pending.add(tracked);
      const request = sending.placed.finally(() => inFlight.delete(request));
      inFlight.add(request);
    };
    const send = async (batch: { sha256: string; data: Uint8Array }[], last: boolean): Promise<void> => {
      const unique = [...new Map(batch.filter((b) => !sent.has(b.sha256)).map((b) => [b.sha256, b])).values()];
      // Blocks of this batch that are not sent (repeats, present already, or not reached) are released here.
      const putting = new Set<Uint8Array>();
      try {
        if (unique.length === 0) return;
        // A file of one block goes through the partition: the store's way costs two requests more.
        const targets = await this.#blocksToSend(
          unique.map((b) => ({ sha256: b.sha256, size: b.data.length })),
          { toStore: toStore && (!last || blocks.length > 1), checkStore, known },
          call,
        );
        for (const b of unique) {
          sent.add(b.sha256);
          const target = targets.get(b.sha256);
          if (target === undefined) continue;
          while ((inFlight.size >= parallelism || pending.size >= 2 * parallelism) && failure === undefined)
            await Promise.race([...inFlight, ...pending]);
          if (failure !== undefined) return;
          putting.add(b.data);
          startPut(b, target);
        }
      } finally {
        for (const b of batch) if (!putting.has(b.data)) release(b.data);
      }
    };

    let batch: { sha256: string; data: Uint8Array }[] = [];
    for await (const data of splitBlocks(source, blockSize)) {
      if (failure !== undefined) await failed();
      if (call.signal?.aborted) {
        await Promise.allSettled(pending);
        throw new RequestAbortedError(`upload of ${path} aborted`, { cause: call.signal.reason });
      }
      const sha256 = await sha256Hex(data);
      blocks.push({ sha256, size: data.length });
      batch.push({ sha256, data });
      if (batch.length >= batchSize) {
        const ready = batch;
        batch = [];
        try {
          await send(ready, false);
        } catch (error) {
          failure ??= { error };
        }
      }
    }
    // A file of one block not sent yet goes with its commit, in one call (ADR 86), when the
    // service is known to lack it, or when it is small enough that sending it costs less than asking.
    const only = blocks.length === 1 && sent.size === 0 ? batch[0] : undefined;
    const onlyKnown = only === undefined ? undefined : known?.get(only.sha256);
    if (
      failure === undefined &&
      only !== undefined &&
      (onlyKnown === true || (onlyKnown === undefined && only.data.length <= wholeUnaskedBytes))
    ) {
      try {
        const commit = await this.putFileContent(objectId, path, only.data, precondition, {
          ...call,
          sha256: only.sha256,
          ...(mtime === undefined ? {} : { mtime }),
        });
        onBlockUploaded?.(blocks[0]!);
        return { ...commit, blocks, uploadedBlocks: 1, uploadedBytes: only.data.length };
      } finally {
        release(only.data);
      }
    }
    if (failure === undefined) {
      try {
        await send(batch, true);
      } catch (error) {
        failure ??= { error };
      }
    }
    await Promise.allSettled(pending);
    if (failure !== undefined) await failed();
    const commit = await this.putEntry(
      objectId,
      path,
      { kind: 'file', blocks, ...(mtime === undefined ? {} : { mtime }) },
      precondition,
      call,
    );
    return { ...commit, blocks, uploadedBlocks, uploadedBytes };
  }

  /**
   * Where to upload blocks: `blockUploads`, or, from a partition without that route (`405`, an
   * older version), `missingBlocks` with no URLs.
   */
  async uploadTargets(refs: readonly BlockRef[], options: CallOptions & { checkStore?: boolean } = {}): Promise<BlockUploads> {
    try {
      return await this.blockUploads(refs, options);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 405)) throw err;
      const missing = await this.missingBlocks(
        refs.map((r) => r.sha256),
        options,
      );
      // `missing` answers each block once, in the order asked.
      const sizes = new Map(refs.map((r) => [r.sha256, r.size]));
      return { uploads: missing.map((sha256) => ({ sha256, size: sizes.get(sha256)! })) };
    }
  }

  /**
   * Of distinct blocks (at most 500), the ones to send, each with where to (`blockSender`): with
   * `toStore`, as `uploadTargets` answers (a presigned URL, or none: through the partition);
   * otherwise those `known` says are missing or, not known, `missingBlocks` does, through the
   * partition. `known` maps a block to whether it is missing (false: the service has it).
   */
  async #blocksToSend(
    refs: readonly BlockRef[],
    options: { toStore: boolean; checkStore: boolean; known: ReadonlyMap<string, boolean> | undefined },
    call: CallOptions,
  ): Promise<Map<string, BlockUpload>> {
    const { toStore, checkStore, known } = options;
    if (toStore) {
      // Blocks known missing are asked about too, for their URLs; the answer lists the ones to upload.
      const ask = refs.filter((b) => known?.get(b.sha256) !== false).map((b) => ({ sha256: b.sha256, size: b.size }));
      const answer = ask.length === 0 ? { uploads: [] } : await this.uploadTargets(ask, { ...call, checkStore });
      return new Map(answer.uploads.map((u) => [u.sha256, u]));
    }
    const ask = refs.filter((b) => known?.get(b.sha256) === undefined).map((b) => b.sha256);
    const missing = new Set(ask.length === 0 ? [] : await this.missingBlocks(ask, call));
    const send = refs.filter((b) => known?.get(b.sha256) ?? missing.has(b.sha256));
    return new Map(send.map((b) => [b.sha256, { sha256: b.sha256, size: b.size }]));
  }

  /**
   * Sends the blocks of a file hashed beforehand (`blocks`, in file order) that the caller does
   * not possess yet, each read from `open(i)` (the bytes of `blocks[i]`) only while it is sent,
   * so that no block is held in memory whole: to the store where the partition gives upload URLs
   * (with `toStore`, ADR 80; confirmed in batches), else through the partition. Each distinct
   * block is sent once, `parallelism` at a time; `known` (sha256 → whether it is missing, as
   * `upload` takes it) saves asking about blocks known already. Bytes that no longer hash to
   * their block's name (the file changed since it was hashed) are refused by the store and then
   * by the partition: the call fails with `hash_mismatch` and commits nothing. Commits nothing
   * either way: `putEntry` names the blocks once this resolves.
   */
  async sendBlocks(
    blocks: readonly BlockRef[],
    open: (index: number) => ReadableStream<Uint8Array>,
    options: CallOptions & {
      parallelism?: number;
      toStore?: boolean;
      checkStore?: boolean;
      known?: ReadonlyMap<string, boolean>;
      onBlockUploaded?: (block: BlockRef) => void;
    } = {},
  ): Promise<{ uploadedBlocks: number; uploadedBytes: number }> {
    const { parallelism = 4, toStore = false, checkStore = false, known, onBlockUploaded, ...call } = options;
    if (!Number.isInteger(parallelism) || parallelism < 1)
      throw new RangeError(`parallelism must be a positive integer, not ${parallelism}`);
    const firstAt = new Map<string, number>();
    blocks.forEach((b, i) => {
      if (!firstAt.has(b.sha256)) firstAt.set(b.sha256, i);
    });
    const unique = [...firstAt.values()].map((index) => ({ ...blocks[index]!, index }));
    const wanted: { sha256: string; size: number; index: number; target: BlockUpload }[] = [];
    for (let i = 0; i < unique.length; i += 500) {
      const chunk = unique.slice(i, i + 500);
      const targets = await this.#blocksToSend(chunk, { toStore, checkStore, known }, call);
      for (const b of chunk) {
        const target = targets.get(b.sha256);
        if (target !== undefined) wanted.push({ ...b, target });
      }
    }
    const send = this.blockSender(call);
    const done: Promise<void>[] = [];
    let failure: { error: unknown } | undefined;
    let next = 0;
    let uploadedBlocks = 0;
    let uploadedBytes = 0;
    // Each worker sends one block at a time; a block's confirmation is waited for at the end, so
    // that confirmations gather.
    const worker = async (): Promise<void> => {
      while (next < wanted.length && failure === undefined && call.signal?.aborted !== true) {
        const b = wanted[next++]!;
        const sending = send({ sha256: b.sha256, size: b.size, open: () => open(b.index) }, b.target);
        done.push(
          sending.done.then(
            (ref) => {
              uploadedBlocks++;
              uploadedBytes += ref.size;
              onBlockUploaded?.(ref);
            },
            (error: unknown) => void (failure ??= { error }),
          ),
        );
        await sending.placed;
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallelism, wanted.length) }, worker));
    await Promise.all(done);
    if (failure !== undefined) throw failure.error;
    if (call.signal?.aborted === true) throw new RequestAbortedError('sending blocks aborted', { cause: call.signal.reason });
    return { uploadedBlocks, uploadedBytes };
  }

  /**
   * A function that sends one block where `uploadTargets` said (ADR 80): to its presigned URL at
   * the store, then confirmed (the blocks whose PUTs ended while a confirmation was out go
   * together in the next one), or through the partition (`putBlock`) when it has no URL, the
   * store refused it, or the confirmation did not take it. `placed` settles when the request that
   * carries the bytes ended (the store's answer, or the partition's); `done` is the block's
   * reference once the caller possesses it. The bytes must stay untouched until `done` settles.
   */
  blockSender(call: CallOptions = {}): (block: BlockBytes, target?: BlockUpload) => BlockSending {
    const confirm = this.#confirmer(call);
    const settled = (): undefined => undefined;
    return (b, target) => {
      const url = target?.url;
      const ref = { sha256: b.sha256, size: 'data' in b ? b.data.length : b.size };
      const viaPartition = (): Promise<BlockRef> =>
        'data' in b ? this.putBlock(b.data, { ...call, sha256: b.sha256 }) : this.putBlockStream(ref, b.open, call);
      if (url === undefined) {
        const done = viaPartition();
        return { placed: done.then(settled, settled), done };
      }
      const put = this.putStoredBlock({ ...target!, url }, 'data' in b ? b.data : b.open, call).then(
        () => true,
        (err: unknown) => {
          if (!fallsBack(err, call)) throw err;
          return false;
        },
      );
      const done = put.then(async (ok) => (ok && (await confirm(ref)) ? ref : viaPartition()));
      return { placed: put.then(settled, settled), done };
    };
  }

  /**
   * Confirms blocks PUT to the store (`POST /v1/blocks/uploaded`): answers, per block, whether it
   * was confirmed. Blocks handed in while a confirmation is out go together in the next one.
   * A failed confirmation answers false for its blocks, which are then sent through the partition.
   */
  #confirmer(call: CallOptions): (ref: BlockRef) => Promise<boolean> {
    const queue: { ref: BlockRef; settle: (confirmed: boolean) => void }[] = [];
    let running = false;
    const run = async (): Promise<void> => {
      running = true;
      while (queue.length > 0) {
        const batch = queue.splice(0, 500);
        let confirmed = new Set<string>();
        try {
          const answer = await this.confirmUploads(
            batch.map((b) => b.ref),
            call,
          );
          confirmed = new Set(answer.confirmed.map((c) => c.sha256));
        } catch {
          // The blocks go through the partition, whose answer tells what is wrong, if anything is.
        }
        for (const b of batch) b.settle(confirmed.has(b.ref.sha256));
      }
      running = false;
    };
    return (ref) =>
      new Promise<boolean>((settle) => {
        queue.push({ ref, settle });
        if (!running) void run();
      });
  }

  // ---- presence and sources

  /** `PUT /v1/devices/{id}/presence` (the device itself): announces endpoints and holds for `ttlSeconds`. */
  async setPresence(deviceId: string, presence: PresenceUpdate, options?: CallOptions): Promise<Presence> {
    return this.#json<Presence>('PUT', `/v1/devices/${segment(deviceId)}/presence`, {
      ...options,
      body: { json: presence },
      idempotent: true,
    });
  }

  /** `DELETE /v1/devices/{id}/presence` (the device itself): offline at once. */
  async clearPresence(deviceId: string, options?: CallOptions): Promise<void> {
    await this.#empty('DELETE', `/v1/devices/${segment(deviceId)}/presence`, { ...options, idempotent: true });
  }

  /** `GET /v1/objects/{id}/content/{path}/sources`: online peers holding the file's (current or given) version, then the cloud. */
  async sources(objectId: string, path: string, options: CallOptions & { version?: string } = {}): Promise<Sources> {
    const { version, ...rest } = options;
    return this.#json<Sources>('GET', `/v1/objects/${segment(objectId)}/content/${encodePath(path)}/sources${query({ version })}`, rest);
  }

  /** `GET /v1/devices/{id}/remote/files/`: the objects the device syncs that the caller may browse there (through its relay). */
  async remoteObjects(deviceId: string, options?: CallOptions): Promise<RemoteObject[]> {
    const body = await this.#json<{ objects: RemoteObject[] }>('GET', `/v1/devices/${segment(deviceId)}/remote/files/`, options);
    return body.objects;
  }

  /**
   * `GET /v1/devices/{id}/remote/files/{objectId}/{path}` of a directory or a file (`path` empty:
   * the object's top directory). Asked with `Range: bytes=0-0`, so that a file answers its size
   * and ETag and only one byte of it crosses the relay.
   */
  async remoteList(deviceId: string, objectId: string, path: string, options: CallOptions = {}): Promise<RemoteListing> {
    const res = await this.#send('GET', remoteFilesPath(deviceId, objectId, path), {
      ...options,
      headers: { ...options.headers, range: 'bytes=0-0' },
      accept: [416],
    });
    const type = res.headers.get('content-type') ?? '';
    if (res.status === 200 && type.startsWith('application/json')) {
      const body = await this.#parse<{ entries?: RemoteEntry[] }>(res, `GET ${remoteFilesPath(deviceId, objectId, path)}`);
      if (!Array.isArray(body.entries))
        throw new UnexpectedAnswerError('invalid_answer', res.status, 'a directory listing without entries', { body: '' });
      return { kind: 'dir', entries: body.entries };
    }
    await res.body?.cancel();
    // `bytes 0-0/SIZE` (206), `bytes */0` (416: an empty file), or a whole file's Content-Length (200).
    const total = /\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1] ?? res.headers.get('content-length') ?? '0';
    return {
      kind: 'file',
      size: Number(total),
      etag: res.headers.get('etag') ?? undefined,
      lastModified: res.headers.get('last-modified') ?? undefined,
    };
  }

  /** `GET /v1/devices/{id}/remote/files/{objectId}/{path}` of a file: its bytes from the device, with Range. */
  async remoteContent(deviceId: string, objectId: string, path: string, options: ContentOptions = {}): Promise<ContentAnswer> {
    const { rest, headers } = contentRequest(options);
    const res = await this.#send('GET', remoteFilesPath(deviceId, objectId, path), { ...rest, headers, accept: [304] });
    const type = res.headers.get('content-type') ?? '';
    if (res.status === 200 && type.startsWith('application/json')) {
      await res.body?.cancel();
      throw new ApiError('not_a_file', `${objectId}:${path} is a directory on device ${deviceId}`);
    }
    return contentAnswerOf(res);
  }

  /**
   * `GET /v1/devices/{id}/remote/blocks/{sha256}` with a `blocks` grant (ADR 55): the block from
   * a peer through its relay, as status, headers and bytes; never repeated, never decoded as
   * text (the caller verifies the bytes, and decides what a refusal means).
   */
  async remoteBlock(
    deviceId: string,
    sha256: string,
    grant: string,
    options: CallOptions = {},
  ): Promise<{ status: number; headers: Record<string, string>; bytes: Uint8Array }> {
    const path = `/v1/devices/${segment(deviceId)}/remote/blocks/${segment(sha256)}`;
    const res = await this.#attempt(
      'GET',
      path,
      { ...options, headers: { ...options.headers, 'meshwork-grant': grant } },
      this.#timeoutFor(undefined),
    );
    return { status: res.status, headers: headersOf(res), bytes: await this.#bytes(res) };
  }

  /** `GET /v1/grants/keys`: the service's public keys that verify grants (ADR 51). */
  async grantKeys(options?: CallOptions): Promise<GrantKeySet> {
    return this.#json<GrantKeySet>('GET', '/v1/grants/keys', options);
  }

  // ---- operations

  /** `GET /v1/slots`: the slot map. */
  async slots(options?: CallOptions): Promise<SlotMap> {
    return this.#json<SlotMap>('GET', '/v1/slots', { ...options, token: null });
  }

  /** `GET /livez`. */
  async livez(options?: CallOptions): Promise<HealthReport> {
    return this.#health('/livez', options);
  }

  /** `GET /readyz`. */
  async readyz(options?: CallOptions): Promise<HealthReport> {
    return this.#health('/readyz', options);
  }

  /** `GET /healthz/deep`. */
  async deepHealth(options?: CallOptions): Promise<HealthReport> {
    return this.#health('/healthz/deep', options);
  }

  /** `GET /metrics`: the Prometheus text exposition. */
  async metrics(options?: CallOptions): Promise<string> {
    const res = await this.#send('GET', '/metrics', { ...options, token: null });
    return utf8.decode(await this.#bytes(res));
  }

  // ---- escape hatch

  /**
   * Sends one request as given (the path is not encoded, nothing is retried, no status is an
   * error) and answers what came back: for tests that send what a well-behaved client would not.
   * `fetch` normalises the URL (`.` and `..` segments) and owns framing headers; send those with
   * the Node entry point's `rawHttp`.
   */
  async raw<T = Record<string, unknown>>(method: string, path: string, request: RawRequest = {}): Promise<RawResponse<T>> {
    const { body, ...rest } = request;
    let sent: Body | undefined;
    if (body === undefined) sent = undefined;
    else if (body instanceof Uint8Array) sent = { bytes: body };
    else if (typeof body === 'string') sent = { text: body };
    else sent = { json: body };
    const res = await this.#attempt(method, path, { ...rest, ...(sent === undefined ? {} : { body: sent }) }, 0);
    const bytes = await this.#bytes(res);
    const text = utf8.decode(bytes);
    let parsed: unknown;
    if ((res.headers.get('content-type') ?? '').includes('json') && text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        const message = `${method} ${path} answered JSON that does not parse`;
        throw new UnexpectedAnswerError('invalid_answer', res.status, message, { body: text.slice(0, 4096), cause: err });
      }
    }
    return { status: res.status, headers: headersOf(res), body: parsed as T, text, bytes };
  }

  // ---- the exchange

  async #health(path: string, options?: CallOptions): Promise<HealthReport> {
    const res = await this.#send('GET', path, { ...options, token: null, accept: [503] });
    return { healthy: res.ok, status: res.status, body: await this.#parse<HealthBody>(res, `GET ${path}`) };
  }

  async #json<T>(method: string, path: string, options: SendOptions = {}): Promise<T> {
    return this.#parse<T>(await this.#send(method, path, options), `${method} ${path}`);
  }

  async #empty(method: string, path: string, options: SendOptions = {}): Promise<void> {
    const res = await this.#send(method, path, options);
    await this.#bytes(res);
  }

  async #bytes(res: Response): Promise<Uint8Array> {
    try {
      return new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      throw new NetworkError(`reading the answer from ${res.url} failed`, { cause: err });
    }
  }

  /** What a `PUT` of an entry answered: the entry, whether it was created, and its ETag. */
  async #commitResult(res: Response): Promise<CommitResult> {
    return { entry: await this.#parse<Entry>(res, 'PUT entry'), created: res.status === 201, etag: res.headers.get('etag') ?? undefined };
  }

  async #parse<T>(res: Response, what: string): Promise<T> {
    const text = utf8.decode(await this.#bytes(res));
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      const message = `${what} answered ${res.status} with a body that is not JSON`;
      throw new UnexpectedAnswerError('invalid_answer', res.status, message, { body: text.slice(0, 4096), cause: err });
    }
  }

  /** One request with the retry policy: answers a 2xx (or an accepted status), raises anything else. */
  async #send(method: string, path: string, options: SendOptions): Promise<Response> {
    const headers = lowerCased(options.headers);
    const safe =
      options.idempotent === true ||
      isSafeToRepeat(method, headers, {
        blockUpload: options.blockUpload === true,
        streamBody: options.body !== undefined && 'stream' in options.body,
      });
    const random = this.#options.random ?? Math.random;
    const now = this.#options.now ?? Date.now;
    const sleep = this.#options.sleep ?? abortableSleep;
    for (let attempt = 1; ; attempt++) {
      let failure: AnswerError | NetworkError;
      let retryAfterMs: number | undefined;
      try {
        const res = await this.#attempt(method, path, options, this.#timeoutFor(options.waitSeconds));
        if (res.ok || options.accept?.includes(res.status)) return res;
        const text = utf8.decode(await this.#bytes(res));
        const answer = errorFromAnswer(res.status, headersOf(res), text, `${method} ${path}`);
        if (!safe || !isRetryableAnswer(answer)) throw answer;
        failure = answer;
        retryAfterMs = parseRetryAfter(answer.headers['retry-after'], now());
      } catch (err) {
        if (!(err instanceof NetworkError) || !safe) throw err;
        failure = err;
      }
      const delayMs = retryDelayMs(this.#policy, attempt, retryAfterMs, random());
      if (delayMs === undefined) throw failure;
      this.#options.onRetry?.({ method, path, attempt, delayMs, error: failure });
      try {
        await sleep(delayMs, options.signal);
      } catch (err) {
        throw new RequestAbortedError(`${method} ${path} aborted while waiting to retry`, { cause: err });
      }
    }
  }

  #timeoutFor(waitSeconds: number | undefined): number {
    const base = this.#options.timeoutMs ?? 60_000;
    if (base === 0) return 0;
    return base + (waitSeconds ?? 0) * 1000;
  }

  /** One exchange: answers the Response (any status) once its headers arrived, or raises a transport error. */
  async #attempt(method: string, path: string, options: SendOptions, timeoutMs: number): Promise<Response> {
    const { signal } = options;
    if (signal?.aborted) throw new RequestAbortedError(`${method} ${path} aborted`, { cause: signal.reason });
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? this.token : options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let body: RequestInit['body'];
    const b = options.body;
    if (b !== undefined) {
      if ('json' in b) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(b.json);
      } else if ('bytes' in b) {
        headers['content-type'] = 'application/octet-stream';
        body = b.bytes as Uint8Array<ArrayBuffer>;
      } else if ('text' in b) {
        body = b.text;
      } else {
        headers['content-type'] = 'application/octet-stream';
        body = 'open' in b ? b.open() : b.stream;
      }
    }
    Object.assign(headers, lowerCased(options.headers));
    const timeout = new AbortController();
    const expire = (): void => timeout.abort(new RequestTimeoutError(`${method} ${path} got no answer within ${timeoutMs} ms`));
    const timer = timeoutMs > 0 ? setTimeout(expire, timeoutMs) : undefined;
    // A composite signal only when the caller gave one: AbortSignal.any costs more than the request's own bookkeeping.
    const init: RequestInit & { duplex?: 'half' } = {
      method,
      headers,
      signal: signal === undefined ? timeout.signal : AbortSignal.any([signal, timeout.signal]),
    };
    // fetch's default cache mode turns a conditional request into `Cache-Control: no-cache`, which
    // tells the server not to answer 304; `no-cache` mode sends `max-age=0` (revalidate) instead.
    if (['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range'].some((h) => h in headers))
      init.cache = 'no-cache';
    if (body !== undefined) init.body = body;
    if (b !== undefined && ('stream' in b || 'open' in b)) init.duplex = 'half';
    const tracing = this.#options.tracing;
    const url = options.url ?? `${this.baseUrl}${path}`;
    try {
      if (tracing === undefined || options.url !== undefined) return await this.#fetch(url, init);
      return await tracing.inSpan(requestSpanName(method, path), { 'http.request.method': method }, async () => {
        // `init.headers` is this object: the span's context goes out with the request.
        tracing.inject(headers);
        return this.#fetch(url, init);
      });
    } catch (err) {
      if (signal?.aborted) throw new RequestAbortedError(`${method} ${path} aborted`, { cause: signal.reason });
      if (timeout.signal.aborted) throw timeout.signal.reason as RequestTimeoutError;
      const target = options.url === undefined ? url : path;
      throw new NetworkError(`${method} ${target} failed: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    } finally {
      // The timeout bounds the wait for the answer's headers; a streamed body is the caller's to bound.
      clearTimeout(timer);
    }
  }
}

/** A notification long poll that never ends by itself: iterate it; `cursor` is where it stands. */
export class NotificationWatch implements AsyncIterable<Notifications> {
  #cursor: string | undefined;
  readonly #client: MeshworkClient;
  readonly #options: CallOptions & { wait?: number };

  constructor(client: MeshworkClient, options: CallOptions & { cursor?: string; wait?: number }) {
    const { cursor, ...rest } = options;
    this.#client = client;
    this.#cursor = cursor;
    this.#options = rest;
  }

  /** The cursor the next poll sends (the last answer's). */
  get cursor(): string | undefined {
    return this.#cursor;
  }

  /**
   * Polls again and again; yields answers with objects, skips empty ones. Ends by abort (raised)
   * or by the caller leaving the loop. A poll that gets no answer, or a 502, 503 or 504 past the
   * client's own retries (a gateway or partition restarting), is sent again with the same cursor
   * after a backoff (0.2 s doubling to 5 s), so nothing committed meanwhile is missed; any other
   * error is raised.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Notifications> {
    let failures = 0;
    for (;;) {
      let answer: Notifications;
      try {
        answer = await this.#client.notifications({ ...this.#options, cursor: this.#cursor });
      } catch (err) {
        const status = err instanceof ApiError ? err.status : undefined;
        const passing =
          err instanceof NetworkError || err instanceof RequestTimeoutError || status === 502 || status === 503 || status === 504;
        if (!passing) throw err;
        try {
          await abortableSleep(Math.min(5000, 200 * 2 ** failures++), this.#options.signal);
        } catch (aborted) {
          throw new RequestAbortedError('watching notifications aborted', { cause: aborted });
        }
        continue;
      }
      failures = 0;
      this.#cursor = answer.cursor;
      if (answer.objects.length > 0) yield answer;
    }
  }
}

/** The path of a file or directory of an object on a device, through its relay. */
export function remoteFilesPath(deviceId: string, objectId: string, path: string): string {
  const rest = path.replace(/^\/+/, '');
  return `/v1/devices/${segment(deviceId)}/remote/files/${segment(objectId)}/${rest === '' ? '' : encodePath(rest)}`;
}
