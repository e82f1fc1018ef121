// WebDAV (RFC 4918, classes 1 and 2) at `/dav/` on the gateway: each object the caller is a
// member of is a top-level collection, its entries the resources below it. Every read and write
// goes through the public API with @meshwork/client as the caller (a device token given as the
// Basic password), so roles, quotas and the change feed apply exactly as to any client; only
// locks and properties live beside the entries, in etcd (state.ts). See docs/webdav.md.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { ApiError, processGcPacer } from '@meshwork/contract';
import {
  MeshworkClient,
  NetworkError,
  UnexpectedAnswerError,
  maxBlockSize,
  splitBlocks,
  type Entry,
  type MeshObject,
  type BlockRef,
} from '@meshwork/client';
import { UploadHashes } from './hashing.ts';
import { UploadBuffers } from './upload-buffers.ts';
import { RecentWrites } from './recent-writes.ts';
import { evaluateIf, IfHeaderError, parseIfHeader, submittedTokens, type IfList } from './if-header.ts';
import {
  DavPathError,
  davPrefix,
  destinationPath,
  hrefOf,
  isWithin,
  parentOf,
  parseDavPath,
  pathnameOf,
  rebase,
  type DavTarget,
} from './paths.ts';
import type { DavState } from './state.ts';
import { lockCovers, type DavLock, type StoredProps } from './state.ts';
import {
  davNs,
  DavXmlError,
  escapeText,
  ocNs,
  parseLockinfo,
  parsePropfind,
  parseProppatch,
  propKey,
  renderError,
  renderMultistatus,
  type DavResponse,
  type PropName,
  type PropValue,
} from './xml.ts';

/** Blocks of one upload sent at once (each up to 4 MiB; about twice as many are held). */
const uploadParallelism = 6;
/** The largest XML body accepted (PROPFIND, PROPPATCH, LOCK). */
export const maxXmlBodyBytes = 256 * 1024;
/** A lock's longest timeout, and the one given when the client asks none. */
export const maxLockSeconds = 3600;
export const defaultLockSeconds = 600;
// A folder seen to exist is taken to exist this long (ms) by MKCOL and a new file's parent check.
const knownFolderMs = 1000;
// An object list is reused this long for the same credentials (one API call less per request).
const objectListTtlMs = 1000;
const methods = ['OPTIONS', 'GET', 'HEAD', 'PUT', 'DELETE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK'];
const allow = methods.join(', ');
// The headers that make a PUT conditional: with none, its target is not read before the commit.
const conditionalHeaders = ['if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'if'];
// The methods that change no file's entry or properties, so forget no recent write (ADR 74): the
// reads, UNLOCK, and MKCOL, which only creates a folder where no file is, nor anything below
// (rclone sends one before every file it uploads).
const keepRecentWrites = new Set(['OPTIONS', 'GET', 'HEAD', 'PROPFIND', 'MKCOL', 'UNLOCK']);

/**
 * A WebDAV answer other than success: status, an optional DAV:error condition, a message. An
 * answer below 500 is expected (rclone's `MKCOL` before every file is a 405 when the folder
 * exists) and is never logged, so it is made without a stack trace, which costs more to capture
 * than the rest of the answer; a 5xx keeps its stack for the log.
 */
export class DavError extends Error {
  readonly status: number;
  readonly condition: string | undefined;
  readonly headers: Record<string, string>;
  readonly href: string | undefined;

  constructor(status: number, message: string, condition?: string, headers: Record<string, string> = {}, href?: string) {
    const limit = Error.stackTraceLimit;
    if (status < 500) Error.stackTraceLimit = 0;
    try {
      super(message);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.status = status;
    this.condition = condition;
    this.headers = headers;
    this.href = href;
  }
}

/** A request header as one string (the first, when sent more than once). */
function headerOf(req: Req, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** What WebDAV needs from the gateway. */
export interface DavDeps {
  /** The base URL the API client's calls name (only their path and query matter to `fetch`). */
  apiBase: string;
  /** How the API client's calls are sent: the gateway's router in process (in-process.ts). */
  fetch: typeof fetch;
  state: DavState;
  logger: Logger;
}

type Req = IncomingMessage;
type Res = ServerResponse;

/** A resource a URL names. */
type Resource =
  | { kind: 'root' }
  | { kind: 'collection'; object: MeshObject; path: string; entry: Entry | undefined }
  | { kind: 'file'; object: MeshObject; path: string; entry: Entry };

/** One request's view: the caller, its objects by name, and listings read once. */
interface Ctx {
  req: Req;
  res: Res;
  client: MeshworkClient;
  /** The app password: what a recent write is remembered for. */
  token: string;
  deviceId: string;
  objects: Map<string, MeshObject>;
  listings: Map<string, Promise<Entry[]>>;
}

const isRead = (role: string): boolean => role === 'reader';

/** Display names of objects: the name, made unique and free of `/`. */
export function objectNames(objects: readonly MeshObject[]): Map<string, MeshObject> {
  const counts = new Map<string, number>();
  const clean = (o: MeshObject): string => o.name.replace(/\//g, '_').normalize('NFC') || o.id;
  for (const o of objects) counts.set(clean(o), (counts.get(clean(o)) ?? 0) + 1);
  const out = new Map<string, MeshObject>();
  for (const o of objects) out.set(counts.get(clean(o))! > 1 ? `${clean(o)} (${o.id})` : clean(o), o);
  return out;
}

function nameOf(ctx: Ctx, object: MeshObject): string {
  for (const [name, o] of ctx.objects) if (o.id === object.id) return name;
  return object.id;
}

/** The Basic credentials' password, when it is a device token. */
export function deviceTokenOf(authorization: string | undefined): { token: string; deviceId: string } | undefined {
  if (authorization === undefined || !/^basic /i.test(authorization)) return undefined;
  const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return undefined;
  const token = decoded.slice(colon + 1);
  const match = /^mwd\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+$/.exec(token);
  return match === null ? undefined : { token, deviceId: match[1]! };
}

const contentTypes: Record<string, string> = {
  txt: 'text/plain',
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  js: 'text/javascript',
  json: 'application/json',
  xml: 'application/xml',
  pdf: 'application/pdf',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  webp: 'image/webp',
  mp3: 'audio/mpeg',
  mp4: 'video/mp4',
  zip: 'application/zip',
  gz: 'application/gzip',
  md: 'text/markdown',
  csv: 'text/csv',
};

export function contentTypeOf(path: string): string {
  const dot = path.lastIndexOf('.');
  return (dot === -1 ? undefined : contentTypes[path.slice(dot + 1).toLowerCase()]) ?? 'application/octet-stream';
}

/** A file's ETag: the API's entry ETag (`"<version>"`, what a commit answers and If-Match takes). */
const fileEtag = (entry: Entry): string => `"${entry.version}"`;

/** A collection's ETag: changes whenever an entry at or below it changes (or goes). */
export function collectionEtag(objectId: string, path: string, entries: readonly Entry[]): string {
  const hash = createHash('sha256').update(`${objectId}\n${path}\n`);
  for (const e of entries) if (isWithin(e.path, path)) hash.update(`${e.path}\0${e.version}\n`);
  return `"c${hash.digest('hex').slice(0, 32)}"`;
}

/** A stable file id for oc:fileid. */
const fileIdOf = (objectId: string, path: string): string => createHash('sha256').update(`${objectId}/${path}`).digest('hex').slice(0, 16);

const httpDate = (iso: string): string => new Date(iso).toUTCString();

/** The RFC 7232 preconditions of a read: 412, 304, or undefined to go on. */
export function readPreconditions(
  headers: Req['headers'],
  etag: string | undefined,
  lastModified: string | undefined,
): 304 | 412 | undefined {
  const tags = (h: string): string[] => h.split(',').map((t) => t.trim().replace(/^W\//, ''));
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined && !(ifMatch.trim() === '*' ? etag !== undefined : etag !== undefined && tags(ifMatch).includes(etag)))
    return 412;
  const ifUnmodified = headers['if-unmodified-since'];
  if (ifMatch === undefined && ifUnmodified !== undefined && lastModified !== undefined) {
    const since = Date.parse(ifUnmodified);
    if (!Number.isNaN(since) && Math.floor(Date.parse(lastModified) / 1000) > Math.floor(since / 1000)) return 412;
  }
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() === '*' ? etag !== undefined : etag !== undefined && tags(ifNoneMatch).includes(etag)) return 304;
    return undefined;
  }
  const ifModified = headers['if-modified-since'];
  if (ifModified !== undefined && lastModified !== undefined) {
    const since = Date.parse(ifModified);
    if (!Number.isNaN(since) && Math.floor(Date.parse(lastModified) / 1000) <= Math.floor(since / 1000)) return 304;
  }
  return undefined;
}

/** A single `bytes=` range, or undefined for none or several (the whole file). */
export function parseRange(header: string | undefined): { start: number; end?: number } | { suffix: number } | undefined {
  const m = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') return { suffix: Number(b) };
  return b === '' ? { start: Number(a) } : { start: Number(a), end: Number(b) };
}

/** The Timeout header's seconds, clamped to `maxLockSeconds`. */
export function lockTimeout(header: string | undefined): number {
  for (const part of (header ?? '').split(',').map((p) => p.trim())) {
    if (/^infinite$/i.test(part)) return maxLockSeconds;
    const m = /^second-(\d+)$/i.exec(part);
    if (m !== null) return Math.max(1, Math.min(maxLockSeconds, Number(m[1])));
  }
  return defaultLockSeconds;
}

async function readBody(req: Req, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new DavError(413, `the body is larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new DavError(413, `the body is larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  const body = Buffer.concat(chunks);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new DavError(400, 'the body is not UTF-8');
  }
}

/** Whether the request carries a body. */
const hasBody = (req: Req): boolean =>
  (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined;

/** Serves `/dav/`. */
export class DavHandler {
  readonly #deps: DavDeps;
  readonly #objectLists = new Map<string, { at: number; objects: Promise<MeshObject[]> }>();
  /**
   * Folders seen to exist in the last second, by object id and path: a client that sends MKCOL
   * for every file's folder and then PUTs the file asks the API once, not three times. Deletes
   * and moves through this gateway forget an object's folders at once.
   */
  readonly #knownFolders = new Map<string, number>();
  /** What this gateway's PUTs just committed, for the PROPFIND that reads it back (ADR 74). */
  readonly #recent = new RecentWrites();

  constructor(deps: DavDeps) {
    this.#deps = deps;
  }

  /** Serves one request whose path is under `/dav`. */
  async serve(req: Req, res: Res): Promise<void> {
    try {
      await this.#serve(req, res);
    } catch (err) {
      this.#fail(req, res, err);
    }
  }

  #fail(req: Req, res: Res, err: unknown): void {
    const error = this.#asDavError(err, req);
    if (error.status >= 500 && error.status !== 507)
      this.#deps.logger.warn({ err, method: req.method, url: req.url }, 'WebDAV request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = req.method === 'HEAD' ? '' : renderError(error.condition, error.message, error.href);
    const headers: Record<string, string> = { 'content-type': 'application/xml; charset=utf-8', ...error.headers };
    // A request body not read (a refused upload) must not be taken for the next request.
    if (!req.complete && req.httpVersionMajor === 1) headers.connection = 'close';
    res.writeHead(error.status, headers);
    res.end(body);
  }

  #asDavError(err: unknown, req: Req): DavError {
    if (err instanceof DavError) return err;
    if (err instanceof DavPathError || err instanceof DavXmlError || err instanceof IfHeaderError) return new DavError(400, err.message);
    if (err instanceof ApiError || err instanceof UnexpectedAnswerError) {
      const status = err.status;
      if (status === 401) return unauthorized();
      if (status === 503 || status === 429)
        return new DavError(503, err.message, undefined, { 'retry-after': err.headers['retry-after'] ?? '1' });
      if (status === 507) return new DavError(507, err.message, 'quota-not-exceeded');
      if (status === 412) return new DavError(412, err.message);
      if (status === 416) return new DavError(416, err.message, undefined, pick(err.headers, 'content-range'));
      if (status >= 400 && status < 500) return new DavError(status, err.message);
      return new DavError(503, `the API answered ${status}; retry`, undefined, { 'retry-after': '1' });
    }
    if (err instanceof NetworkError) return new DavError(503, 'the API could not be reached; retry', undefined, { 'retry-after': '1' });
    // A client that broke off its upload leaves a stream error behind: nobody waits for the answer.
    if (!req.complete) this.#deps.logger.debug({ err }, 'A WebDAV request broke off');
    else this.#deps.logger.error({ err }, 'WebDAV request failed unexpectedly');
    return new DavError(503, 'the request failed; retry', undefined, { 'retry-after': '1' });
  }

  async #serve(req: Req, res: Res): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    if (!methods.includes(method)) throw new DavError(405, `${method} is not a WebDAV method served here`, undefined, { allow });
    const credentials = deviceTokenOf(req.headers.authorization);
    if (credentials === undefined) throw unauthorized();
    const target = parseDavPath(pathnameOf(req.url ?? '/'));
    const client = new MeshworkClient({
      baseUrl: this.#deps.apiBase,
      token: credentials.token,
      fetch: this.#deps.fetch,
      retry: { maxAttempts: 2 },
    });
    const ctx: Ctx = {
      req,
      res,
      client,
      token: credentials.token,
      deviceId: credentials.deviceId,
      objects: objectNames(await this.#objectsOf(credentials.token, client)),
      listings: new Map(),
    };
    if (method === 'OPTIONS') {
      res.writeHead(200, { dav: '1, 2', allow, 'ms-author-via': 'DAV', 'content-length': '0' });
      res.end();
      return;
    }
    // A write forgets what recent PUTs remembered of its paths, before it starts and once done.
    const touched = keepRecentWrites.has(method) ? [] : this.#pathsWritten(ctx, method, target);
    for (const t of touched) this.#recent.forget(t.objectId, t.path, Date.now());
    let done = false;
    try {
      await this.#dispatch(ctx, method, target);
      done = true;
    } finally {
      // A PUT that succeeded remembered its own answer instead.
      if (method !== 'PUT' || !done) for (const t of touched) this.#recent.forget(t.objectId, t.path, Date.now());
    }
  }

  /** The paths a write may change: its target and, for COPY and MOVE, the destination. */
  #pathsWritten(ctx: Ctx, method: string, target: DavTarget): { objectId: string; path: string }[] {
    const paths: { objectId: string; path: string }[] = [];
    const add = (t: DavTarget): void => {
      const object = t.objectName === undefined ? undefined : ctx.objects.get(t.objectName);
      if (object !== undefined) paths.push({ objectId: object.id, path: t.path });
    };
    add(target);
    const destination = headerOf(ctx.req, 'destination');
    if ((method === 'COPY' || method === 'MOVE') && destination !== undefined) {
      try {
        add(parseDavPath(destinationPath(destination, ctx.req.headers.host)));
      } catch (err) {
        // The method answers 400 for it; nothing is written.
        if (!(err instanceof DavPathError)) throw err;
      }
    }
    return paths;
  }

  async #dispatch(ctx: Ctx, method: string, target: DavTarget): Promise<void> {
    switch (method) {
      case 'PROPFIND':
        return this.#propfind(ctx, target);
      case 'GET':
      case 'HEAD':
        return this.#get(ctx, target, method === 'HEAD');
      case 'PUT':
        return this.#put(ctx, target);
      case 'DELETE':
        return this.#delete(ctx, target);
      case 'MKCOL':
        return this.#mkcol(ctx, target);
      case 'COPY':
      case 'MOVE':
        return this.#copyMove(ctx, target, method === 'MOVE');
      case 'PROPPATCH':
        return this.#proppatch(ctx, target);
      case 'LOCK':
        return this.#lock(ctx, target);
      case 'UNLOCK':
        return this.#unlock(ctx, target);
    }
  }

  async #objectsOf(token: string, client: MeshworkClient): Promise<MeshObject[]> {
    const now = Date.now();
    const cached = this.#objectLists.get(token);
    if (cached !== undefined && now - cached.at < objectListTtlMs) return cached.objects;
    const objects = client.listObjects();
    this.#objectLists.set(token, { at: now, objects });
    objects.catch(() => this.#objectLists.delete(token));
    if (this.#objectLists.size > 1000)
      for (const [k, v] of this.#objectLists) if (now - v.at >= objectListTtlMs) this.#objectLists.delete(k);
    return objects;
  }

  /** The object a target names; 404 for one the caller is not a member of. */
  #objectOf(ctx: Ctx, target: DavTarget): MeshObject {
    const object = target.objectName === undefined ? undefined : ctx.objects.get(target.objectName);
    if (object === undefined) throw new DavError(404, `no object named ${target.objectName ?? ''}`);
    return object;
  }

  #listing(ctx: Ctx, object: MeshObject): Promise<Entry[]> {
    let listing = ctx.listings.get(object.id);
    if (listing === undefined) {
      listing = ctx.client.listAllEntries(object.id, { limit: 5000 }).then((l) => l.entries);
      ctx.listings.set(object.id, listing);
    }
    return listing;
  }

  /** The resource at a target, or undefined. */
  async #stat(ctx: Ctx, target: DavTarget): Promise<Resource | undefined> {
    if (target.objectName === undefined) return { kind: 'root' };
    const object = ctx.objects.get(target.objectName);
    if (object === undefined) return undefined;
    return this.#statPath(ctx, object, target.path);
  }

  /**
   * The resource at an entry path, or undefined. A folder no entry names but with entries below
   * it is found in the object's listing, unless `implied` is false (a PUT's target: a new file's
   * path would otherwise cost a listing of the whole object).
   */
  async #statPath(ctx: Ctx, object: MeshObject, path: string, implied = true): Promise<Resource | undefined> {
    if (path === '') return { kind: 'collection', object, path, entry: undefined };
    try {
      const answer = await ctx.client.getEntry(object.id, path);
      if (answer.notModified) throw new Error('unreachable: no If-None-Match was sent');
      const { entry } = answer;
      if (entry.kind === 'directory') this.#rememberFolder(object.id, path);
      return entry.kind === 'file' ? { kind: 'file', object, path, entry } : { kind: 'collection', object, path, entry };
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
    }
    if (!implied) return undefined;
    // A folder no entry names, with entries below it (written by a client that commits no folders).
    const entries = await this.#listing(ctx, object);
    return entries.some((e) => e.path.startsWith(`${path}/`)) ? { kind: 'collection', object, path, entry: undefined } : undefined;
  }

  async #etagOf(ctx: Ctx, r: Resource): Promise<string | undefined> {
    if (r.kind === 'file') return fileEtag(r.entry);
    if (r.kind === 'collection') return collectionEtag(r.object.id, r.path, await this.#listing(ctx, r.object));
    return undefined;
  }

  #rememberFolder(objectId: string, path: string): void {
    const now = Date.now();
    if (this.#knownFolders.size > 10_000) for (const [k, until] of this.#knownFolders) if (until <= now) this.#knownFolders.delete(k);
    this.#knownFolders.set(`${objectId}/${path}`, now + knownFolderMs);
  }

  #folderKnown(objectId: string, path: string): boolean {
    return (this.#knownFolders.get(`${objectId}/${path}`) ?? 0) > Date.now();
  }

  #forgetFolders(objectId: string): void {
    for (const key of this.#knownFolders.keys()) if (key.startsWith(`${objectId}/`)) this.#knownFolders.delete(key);
  }

  /** 409 unless the parent of `path` is a collection. */
  async #requireParent(ctx: Ctx, object: MeshObject, path: string): Promise<void> {
    const parent = parentOf(path);
    if (parent === '' || this.#folderKnown(object.id, parent)) return;
    const r = await this.#statPath(ctx, object, parent);
    if (r?.kind !== 'collection') throw new DavError(409, `the parent collection ${parent} does not exist`);
  }

  #requireWriter(object: MeshObject): void {
    if (isRead(object.role)) throw new DavError(403, `a reader may not change ${object.name}`);
  }

  // ---- If header and locks

  #ifLists(ctx: Ctx): IfList[] | undefined {
    const value = headerOf(ctx.req, 'if');
    return value === undefined ? undefined : parseIfHeader(value);
  }

  /**
   * Checks the locks a write meets and then the If header: 423 when a lock covering what the
   * write changes is not submitted by its holder, 412 when the If header does not hold.
   */
  async #checkWrite(
    ctx: Ctx,
    object: MeshObject,
    path: string,
    options: { recursive?: boolean; membership?: boolean; resource?: Resource | undefined; locks?: DavLock[] },
  ): Promise<void> {
    const lists = this.#ifLists(ctx);
    const tokens = lists === undefined ? new Set<string>() : submittedTokens(lists);
    const locks = options.locks ?? (await this.#deps.state.locks(object.id));
    // The If header first (412), then the locks it must pass (423).
    if (lists !== undefined) await this.#checkIf(ctx, lists, object, path, options.resource, locks);
    for (const lock of locks) {
      const blocks =
        lockCovers(lock, path) ||
        (options.recursive === true && isWithin(lock.root, path)) ||
        (options.membership === true && path !== '' && lock.root === parentOf(path));
      if (blocks && !(tokens.has(lock.token) && lock.holder === ctx.deviceId)) {
        throw new DavError(
          423,
          `${path || 'the object'} is locked`,
          'lock-token-submitted',
          {},
          hrefOf(nameOf(ctx, object), lock.root, true),
        );
      }
    }
  }

  async #checkIf(
    ctx: Ctx,
    lists: IfList[],
    object: MeshObject,
    path: string,
    resource: Resource | undefined,
    locks: DavLock[],
  ): Promise<void> {
    const states = new Map<string | undefined, { lockTokens: string[]; etag: string | undefined }>();
    states.set(undefined, {
      lockTokens: locks.filter((l) => lockCovers(l, path)).map((l) => l.token),
      etag: resource === undefined ? undefined : await this.#etagOf(ctx, resource),
    });
    for (const list of lists) {
      if (list.resource === undefined || states.has(list.resource)) continue;
      let state = { lockTokens: [] as string[], etag: undefined as string | undefined };
      try {
        const target = parseDavPath(destinationPath(list.resource, undefined));
        const r = await this.#stat(ctx, target);
        const o = target.objectName === undefined ? undefined : ctx.objects.get(target.objectName);
        const tagLocks = o === undefined ? [] : o.id === object.id ? locks : await this.#deps.state.locks(o.id);
        state = {
          lockTokens: tagLocks.filter((l) => lockCovers(l, target.path)).map((l) => l.token),
          etag: r === undefined ? undefined : await this.#etagOf(ctx, r),
        };
      } catch (err) {
        if (!(err instanceof DavPathError)) throw err;
      }
      states.set(list.resource, state);
    }
    if (!evaluateIf(lists, (r) => states.get(r)!)) throw new DavError(412, 'the If header does not hold');
  }

  // ---- PROPFIND

  async #propfind(ctx: Ctx, target: DavTarget): Promise<void> {
    const depthHeader = (headerOf(ctx.req, 'depth') ?? 'infinity').toLowerCase();
    if (depthHeader !== '0' && depthHeader !== '1') {
      if (depthHeader === 'infinity') throw new DavError(403, 'PROPFIND with Depth: infinity is not served', 'propfind-finite-depth');
      throw new DavError(400, 'Depth must be 0, 1 or infinity');
    }
    const request = parsePropfind(await readBody(ctx.req, maxXmlBodyBytes));
    const named = target.objectName === undefined ? undefined : ctx.objects.get(target.objectName);
    // Locks are read only for lockdiscovery (asked by name or with allprop).
    const locksOf = (objectId: string): Promise<DavLock[]> =>
      request.kind === 'allprop' || (request.kind === 'prop' && request.props.some((p) => p.ns === davNs && p.name === 'lockdiscovery'))
        ? this.#deps.state.locks(objectId)
        : Promise.resolve([]);
    // A file this client just PUT through this gateway: its answer is what the commit returned
    // (ADR 74), at either depth, since nothing is below a file (rclone reads back with Depth 1).
    const recent = named === undefined ? undefined : this.#recent.recall(ctx.token, named.id, target.path, Date.now());
    if (named !== undefined && recent !== undefined) {
      const file: Resource = { kind: 'file', object: named, path: target.path, entry: recent.entry };
      const stored = new Map([[target.path, recent.props]]);
      answerMultistatus(ctx.res, [this.#describe(ctx, request, file, [], stored, undefined, await locksOf(named.id))]);
      return;
    }
    // The locks and stored properties are read alongside the entry, not after it.
    const stateReads =
      named === undefined
        ? undefined
        : Promise.all([
            locksOf(named.id),
            depthHeader === '0'
              ? this.#deps.state.props(named.id, target.path).then((p) => new Map([[target.path, p]]))
              : this.#deps.state.propsBelow(named.id, target.path),
          ]);
    // Not left unhandled when the entry's read fails first.
    stateReads?.catch(() => undefined);
    const resource = await this.#stat(ctx, target);
    if (resource === undefined) throw new DavError(404, 'no such resource');
    const responses: DavResponse[] = [];
    if (resource.kind === 'root') {
      responses.push(this.#describe(ctx, request, { kind: 'root' }, undefined, new Map(), undefined));
      if (depthHeader === '1') {
        const me = await this.#quota(ctx, request);
        for (const [, object] of ctx.objects) {
          const listing = await this.#listing(ctx, object);
          const props = await this.#deps.state.props(object.id, '');
          responses.push(
            this.#describe(ctx, request, { kind: 'collection', object, path: '', entry: undefined }, listing, new Map([['', props]]), me),
          );
        }
      }
    } else {
      const object = resource.object;
      // A file's properties need no listing; a collection's ETag and children do.
      const [listing, me, [locks, props]] = await Promise.all([
        resource.kind === 'collection' ? this.#listing(ctx, object) : [],
        resource.kind === 'collection' ? this.#quota(ctx, request) : undefined,
        stateReads!,
      ]);
      responses.push(this.#describe(ctx, request, resource, listing, props, me, locks));
      if (resource.kind === 'collection' && depthHeader === '1') {
        for (const child of childrenOf(object, resource.path, listing))
          responses.push(this.#describe(ctx, request, child, listing, props, me, locks));
      }
    }
    answerMultistatus(ctx.res, responses);
  }

  async #quota(ctx: Ctx, request: ReturnType<typeof parsePropfind>): Promise<{ used: number; available: number | undefined } | undefined> {
    if (request.kind !== 'prop' || !request.props.some((p) => p.ns === davNs && p.name.startsWith('quota-'))) return undefined;
    const me = await ctx.client.me();
    const { usedBytes, quotaBytes } = me.storage;
    return { used: usedBytes, available: quotaBytes === null ? undefined : Math.max(0, quotaBytes - usedBytes) };
  }

  /** One response of a PROPFIND. */
  #describe(
    ctx: Ctx,
    request: ReturnType<typeof parsePropfind>,
    r: Resource,
    listing: Entry[] | undefined,
    stored: Map<string, StoredProps>,
    quota: { used: number; available: number | undefined } | undefined,
    locks: readonly DavLock[] = [],
  ): DavResponse {
    const live = new Map<string, PropValue>();
    const add = (name: string, xml: string | undefined, ns = davNs): void => void live.set(`{${ns}}${name}`, { prop: { ns, name }, xml });
    const collection = r.kind !== 'file';
    const path = r.kind === 'root' ? '' : r.path;
    const href = r.kind === 'root' ? hrefOf(undefined, '', true) : hrefOf(nameOf(ctx, r.object), r.path, collection);
    add('resourcetype', collection ? '<d:collection/>' : '');
    add('supportedlock', r.kind === 'root' ? '' : supportedLock);
    if (r.kind === 'root') {
      add('displayname', 'dav');
    } else {
      const name = r.path === '' ? nameOf(ctx, r.object) : r.path.slice(r.path.lastIndexOf('/') + 1);
      add('displayname', escapeText(name));
      add('getetag', escapeText(r.kind === 'file' ? fileEtag(r.entry) : collectionEtag(r.object.id, r.path, listing ?? [])));
      add('getlastmodified', httpDate(lastModifiedOf(r, listing ?? [])));
      add('fileid', fileIdOf(r.object.id, r.path), ocNs);
      add('permissions', isRead(r.object.role) ? '' : collection ? 'RDNVCK' : 'RDNVW', ocNs);
      add(
        'lockdiscovery',
        locks
          .filter((l) => lockCovers(l, r.path))
          .map((l) => activeLock(l, nameOf(ctx, r.object)))
          .join(''),
      );
      if (r.kind === 'file') {
        add('getcontentlength', String(r.entry.size));
        add('getcontenttype', contentTypeOf(r.path));
        const sums = stored.get(r.path)?.sums;
        if (sums !== undefined && sums.contentHash === r.entry.contentHash) {
          add('checksums', `<oc:checksum>SHA1:${sums.sha1} MD5:${sums.md5}</oc:checksum>`, ocNs);
        }
      } else {
        add('size', String(sizeWithin(r.path, listing ?? [])), ocNs);
        if (quota !== undefined) {
          add('quota-used-bytes', String(quota.used));
          if (quota.available !== undefined) add('quota-available-bytes', String(quota.available));
        }
      }
    }
    const dead = stored.get(path)?.dead ?? {};
    if (request.kind === 'propname') {
      const props = [...live.values(), ...Object.values(dead).map((d) => ({ prop: { ns: d.ns, name: d.name }, xml: undefined }))];
      return { href, propstats: [{ status: 200, props: props.map((p) => ({ prop: p.prop, xml: undefined })) }] };
    }
    if (request.kind === 'allprop') {
      const props = [...live.values()].filter((p) => !p.prop.name.startsWith('quota-'));
      for (const d of Object.values(dead)) props.push({ prop: { ns: d.ns, name: d.name }, xml: d.xml });
      return { href, propstats: [{ status: 200, props }] };
    }
    const found: PropValue[] = [];
    const missing: PropValue[] = [];
    for (const p of request.props) {
      const key = propKey(p);
      const value = live.get(key) ?? (dead[key] === undefined ? undefined : { prop: p, xml: dead[key].xml });
      if (value === undefined) missing.push({ prop: p, xml: undefined });
      else found.push(value);
    }
    const propstats = [];
    if (found.length > 0) propstats.push({ status: 200, props: found });
    if (missing.length > 0) propstats.push({ status: 404, props: missing });
    return { href, propstats };
  }

  // ---- GET, HEAD

  async #get(ctx: Ctx, target: DavTarget, head: boolean): Promise<void> {
    const r = await this.#stat(ctx, target);
    if (r === undefined) throw new DavError(404, 'no such resource');
    if (r.kind !== 'file') {
      const names =
        r.kind === 'root'
          ? [...ctx.objects.keys()].map((n) => ({ name: `${n}/`, href: hrefOf(n, '', true) }))
          : childrenOf(r.object, r.path, await this.#listing(ctx, r.object)).map((c) => {
              const name = c.kind === 'root' ? '' : c.path.slice(c.path.lastIndexOf('/') + 1);
              return {
                name: c.kind === 'file' ? name : `${name}/`,
                href: hrefOf(nameOf(ctx, r.object), c.kind === 'root' ? '' : c.path, c.kind !== 'file'),
              };
            });
      const body = `<!doctype html><meta charset="utf-8"><title>Meshwork</title><ul>${names
        .map((n) => `<li><a href="${escapeText(n.href)}">${escapeText(n.name)}</a></li>`)
        .join('')}</ul>\n`;
      ctx.res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) });
      ctx.res.end(head ? undefined : body);
      return;
    }
    const etag = fileEtag(r.entry);
    const headers: Record<string, string> = {
      etag,
      'last-modified': httpDate(r.entry.mtime),
      'content-type': contentTypeOf(r.path),
      'accept-ranges': 'bytes',
    };
    const pre = readPreconditions(ctx.req.headers, etag, r.entry.mtime);
    if (pre !== undefined) {
      ctx.res.writeHead(pre, pre === 304 ? { etag, 'last-modified': headers['last-modified']! } : { 'content-length': '0' });
      ctx.res.end();
      return;
    }
    if (head) {
      ctx.res.writeHead(200, { ...headers, 'content-length': String(r.entry.size) });
      ctx.res.end();
      return;
    }
    const range = parseRange(ctx.req.headers.range);
    const ifRange = headerOf(ctx.req, 'if-range');
    const answer = await ctx.client.content(r.object.id, r.path, {
      ...(range === undefined ? {} : { range }),
      // If-Range names the entry's ETag; the API's content route compares the content hash.
      ...(ifRange === undefined ? {} : { ifRange: ifRange === etag ? r.entry.contentHash : 'none' }),
    });
    const out: Record<string, string> = { ...headers };
    if (answer.contentLength !== undefined) out['content-length'] = String(answer.contentLength);
    if (answer.contentRange !== undefined) out['content-range'] = answer.contentRange;
    ctx.res.writeHead(answer.status, out);
    if (answer.body === null) {
      ctx.res.end();
      return;
    }
    const body = Readable.fromWeb(answer.body);
    await new Promise<void>((resolve) => {
      body.once('error', () => {
        ctx.res.destroy();
        resolve();
      });
      ctx.res.once('close', () => {
        body.destroy();
        resolve();
      });
      body.pipe(ctx.res);
    });
  }

  // ---- PUT

  async #put(ctx: Ctx, target: DavTarget): Promise<void> {
    const object = this.#objectOf(ctx, target);
    if (target.path === '') throw new DavError(405, 'an object is a collection', undefined, { allow });
    if (headerOf(ctx.req, 'content-range') !== undefined) throw new DavError(400, 'PUT with Content-Range is not supported');
    this.#requireWriter(object);
    const mark = this.#recent.mark(Date.now());
    // Its content lives on devices only: the gateway would have to put the bytes in S3.
    if (!object.cloudStorage) throw new DavError(409, `${object.name} keeps its content on devices only; write to it from a device`);
    // Without a precondition of the client's (rclone's and most file managers' PUTs), the entry is
    // not read first: the commit says `If-None-Match: *`, and only when that finds a file (412) is
    // the entry read and the file replaced. With one, the entry is read first to judge it.
    const conditional = conditionalHeaders.some((h) => ctx.req.headers[h] !== undefined);
    const [locks, read] = await Promise.all([
      this.#deps.state.locks(object.id),
      conditional ? this.#statPath(ctx, object, target.path, false) : undefined,
      this.#requireParent(ctx, object, target.path),
    ]);
    // A new file needs its parent's depth-0 locks too: when one could apply, the entry is read.
    const blind = !conditional && !locks.some((l) => lockCovers(l, target.path) || l.root === parentOf(target.path));
    const existing = blind || conditional ? read : await this.#statPath(ctx, object, target.path, false);
    if (existing?.kind === 'collection') throw new DavError(405, 'a collection cannot be replaced by PUT', undefined, { allow });
    const etag = existing?.kind === 'file' ? fileEtag(existing.entry) : undefined;
    const pre = readPreconditions(ctx.req.headers, etag, existing?.kind === 'file' ? existing.entry.mtime : undefined);
    if (pre !== undefined) throw new DavError(412, 'a precondition of the PUT does not hold');
    if (!blind) await this.#checkWrite(ctx, object, target.path, { membership: existing === undefined, resource: existing, locks });
    let replaced = existing !== undefined;
    const mtime = mtimeOf(headerOf(ctx.req, 'x-oc-mtime'));
    const blocks: BlockRef[] = [];
    const req = ctx.req;
    const hashes = new UploadHashes();
    const commit = { kind: 'file' as const, blocks, ...(mtime === undefined ? {} : { mtime }) };
    const precondition = existing?.kind === 'file' ? { ifMatch: existing.entry.version } : ({ ifNoneMatch: '*' } as const);
    const declared = checksumHeader(headerOf(ctx.req, 'oc-checksum'));
    // A body of one block (or none) is not sent yet: it goes with its commit, in one call (ADR 86).
    const whole = await uploadBlocks(ctx.client, req, hashes, blocks);
    const digests = hashes.digests();
    // A body that is not what its client hashed (OC-Checksum) is refused, and nothing is committed.
    if (declared !== undefined && digests[declared.kind] !== declared.value)
      throw new DavError(400, `the body does not match its OC-Checksum (${declared.kind.toUpperCase()})`);
    let entry: Entry;
    try {
      entry =
        whole === undefined
          ? (await ctx.client.putEntry(object.id, target.path, commit, precondition)).entry
          : (
              await ctx.client.putFileContent(object.id, target.path, whole, precondition, {
                ...(mtime === undefined ? {} : { mtime }),
                ...(blocks[0] === undefined ? {} : { sha256: blocks[0].sha256 }),
              })
            ).entry;
    } catch (err) {
      // A file is there (a PUT not read first), or someone committed between the read and this
      // write: a PUT without its own precondition replaces the file, never a collection.
      if (ctx.req.headers['if-match'] !== undefined || ctx.req.headers['if-none-match'] !== undefined || !req.complete) throw err;
      if (!(err instanceof ApiError && err.code === 'precondition_failed')) throw err;
      const current = await this.#statPath(ctx, object, target.path, false);
      if (current?.kind === 'collection') throw new DavError(405, 'a collection cannot be replaced by PUT', undefined, { allow });
      if (current !== undefined) replaced = true;
      // The first call stored the block of a body sent whole: the commit names it.
      entry = (
        await ctx.client.putEntry(
          object.id,
          target.path,
          commit,
          current?.kind === 'file' ? { ifMatch: current.entry.version } : { ifNoneMatch: '*' },
        )
      ).entry;
    }
    const sums = { contentHash: entry.contentHash, ...digests };
    // A new file starts without properties; a replaced one keeps its dead properties.
    const stored = replaced ? await this.#deps.state.props(object.id, target.path) : { dead: {} };
    const props = { ...stored, sums };
    await this.#deps.state.setProps(object.id, target.path, props);
    this.#recent.remember(ctx.token, object.id, target.path, { entry, props }, mark, Date.now());
    const headers: Record<string, string> = {
      etag: fileEtag(entry),
      'oc-etag': fileEtag(entry),
      'oc-fileid': fileIdOf(object.id, target.path),
    };
    if (mtime !== undefined) headers['x-oc-mtime'] = 'accepted';
    ctx.res.writeHead(replaced ? 204 : 201, { ...headers, 'content-length': '0' });
    ctx.res.end();
  }

  // ---- DELETE

  async #delete(ctx: Ctx, target: DavTarget): Promise<void> {
    const object = this.#objectOf(ctx, target);
    if (target.path === '') throw new DavError(403, 'an object is deleted through the API, not WebDAV');
    this.#requireWriter(object);
    const r = await this.#statPath(ctx, object, target.path);
    if (r === undefined) throw new DavError(404, 'no such resource');
    const pre = readPreconditions(ctx.req.headers, await this.#etagOf(ctx, r), r.kind === 'file' ? r.entry.mtime : undefined);
    if (pre !== undefined) throw new DavError(412, 'a precondition of the DELETE does not hold');
    await this.#checkWrite(ctx, object, target.path, { recursive: true, membership: true, resource: r });
    await this.#remove(ctx, object, target.path, r);
    ctx.res.writeHead(204);
    ctx.res.end();
  }

  /** Deletes a resource and everything below it, with its properties and locks. */
  async #remove(ctx: Ctx, object: MeshObject, path: string, r: Resource): Promise<void> {
    this.#forgetFolders(object.id);
    if (r.kind === 'file') await ctx.client.deleteEntry(object.id, path, r.entry.version);
    else {
      const below = (await this.#listing(ctx, object)).filter((e) => isWithin(e.path, path)).sort((a, b) => b.path.length - a.path.length);
      for (const e of below) await ctx.client.deleteEntry(object.id, e.path, e.version);
      ctx.listings.delete(object.id);
    }
    await this.#deps.state.deletePropsWithin(object.id, path);
    await this.#deps.state.deleteLocksWithin(object.id, path);
  }

  // ---- MKCOL

  async #mkcol(ctx: Ctx, target: DavTarget): Promise<void> {
    if (target.objectName === undefined || target.path === '') {
      if (target.objectName !== undefined && ctx.objects.has(target.objectName))
        throw new DavError(405, 'the object exists', undefined, { allow });
      throw new DavError(403, 'objects are created through the API, not WebDAV');
    }
    const object = this.#objectOf(ctx, target);
    if (hasBody(ctx.req)) {
      await readBody(ctx.req, maxXmlBodyBytes).catch(() => '');
      throw new DavError(415, 'MKCOL takes no body');
    }
    this.#requireWriter(object);
    if (this.#folderKnown(object.id, target.path) || (await this.#statPath(ctx, object, target.path)) !== undefined)
      throw new DavError(405, 'the resource exists', undefined, { allow });
    await this.#requireParent(ctx, object, target.path);
    await this.#checkWrite(ctx, object, target.path, { membership: true, resource: undefined });
    await ctx.client.putEntry(object.id, target.path, { kind: 'directory' }, { ifNoneMatch: '*' });
    this.#rememberFolder(object.id, target.path);
    ctx.res.writeHead(201, { 'content-length': '0' });
    ctx.res.end();
  }

  // ---- COPY, MOVE

  async #copyMove(ctx: Ctx, target: DavTarget, move: boolean): Promise<void> {
    const object = this.#objectOf(ctx, target);
    if (target.path === '') throw new DavError(403, `an object cannot be ${move ? 'moved' : 'copied'} through WebDAV`);
    const destinationHeader = headerOf(ctx.req, 'destination');
    if (destinationHeader === undefined) throw new DavError(400, 'the Destination header is missing');
    const dest = parseDavPath(destinationPath(destinationHeader, ctx.req.headers.host));
    const destObject = this.#objectOf(ctx, dest);
    if (dest.path === '') throw new DavError(403, 'the destination is an object');
    const source = await this.#statPath(ctx, object, target.path);
    if (source === undefined || source.kind === 'root') throw new DavError(404, 'no such resource');
    const depth = (headerOf(ctx.req, 'depth') ?? 'infinity').toLowerCase();
    if (depth !== 'infinity' && depth !== '0') throw new DavError(400, 'Depth must be 0 or infinity');
    if (move && depth !== 'infinity' && source.kind === 'collection') throw new DavError(400, 'a collection moves with Depth: infinity');
    if (destObject.id === object.id && dest.path === target.path) throw new DavError(403, 'the source and the destination are the same');
    if (destObject.id === object.id && source.kind === 'collection' && isWithin(dest.path, target.path)) {
      throw new DavError(403, 'a collection cannot be copied into itself');
    }
    if (move) this.#requireWriter(object);
    this.#requireWriter(destObject);
    const overwrite = (headerOf(ctx.req, 'overwrite') ?? 'T').toUpperCase();
    if (overwrite !== 'T' && overwrite !== 'F') throw new DavError(400, 'Overwrite must be T or F');
    const existing = await this.#statPath(ctx, destObject, dest.path);
    if (existing !== undefined && overwrite === 'F') throw new DavError(412, 'the destination exists and Overwrite is F');
    await this.#requireParent(ctx, destObject, dest.path);
    if (move) await this.#checkWrite(ctx, object, target.path, { recursive: true, membership: true, resource: source });
    else if (headerOf(ctx.req, 'if') !== undefined)
      await this.#checkIf(
        ctx,
        parseIfHeader(headerOf(ctx.req, 'if')!),
        object,
        target.path,
        source,
        await this.#deps.state.locks(object.id),
      );
    await this.#checkWrite(ctx, destObject, dest.path, { recursive: true, membership: true, resource: existing });
    if (existing !== undefined && existing.kind !== 'root') await this.#remove(ctx, destObject, dest.path, existing);
    if (source.kind === 'file') {
      await ctx.client.putEntry(
        destObject.id,
        dest.path,
        { kind: 'file', blocks: source.entry.blocks, mtime: source.entry.mtime },
        { ifNoneMatch: '*' },
      );
    } else {
      await ctx.client.putEntry(
        destObject.id,
        dest.path,
        { kind: 'directory', ...(source.entry ? { mtime: source.entry.mtime } : {}) },
        { ifNoneMatch: '*' },
      );
      if (depth === 'infinity') {
        const below = (await this.#listing(ctx, object))
          .filter((e) => e.path !== target.path && isWithin(e.path, target.path))
          .sort((a, b) => a.path.length - b.path.length);
        for (const e of below) {
          const to = rebase(e.path, target.path, dest.path);
          const commit =
            e.kind === 'file'
              ? { kind: 'file' as const, blocks: e.blocks, mtime: e.mtime }
              : { kind: 'directory' as const, mtime: e.mtime };
          await ctx.client.putEntry(destObject.id, to, commit, { ifNoneMatch: '*' });
        }
      }
    }
    await this.#deps.state.copyProps(object.id, target.path, destObject.id, dest.path);
    if (move) {
      ctx.listings.delete(object.id);
      await this.#remove(ctx, object, target.path, source);
    }
    ctx.res.writeHead(existing === undefined ? 201 : 204, { 'content-length': '0' });
    ctx.res.end();
  }

  // ---- PROPPATCH

  async #proppatch(ctx: Ctx, target: DavTarget): Promise<void> {
    const object = this.#objectOf(ctx, target);
    const updates = parseProppatch(await readBody(ctx.req, maxXmlBodyBytes));
    const r = await this.#statPath(ctx, object, target.path);
    if (r === undefined) throw new DavError(404, 'no such resource');
    this.#requireWriter(object);
    await this.#checkWrite(ctx, object, target.path, { resource: r });
    const stored = await this.#deps.state.props(object.id, target.path);
    const dead = { ...stored.dead };
    const results: { prop: PropName; status: number }[] = [];
    let failed = false;
    for (const u of updates) {
      const protectedProp = u.prop.ns === davNs || u.prop.ns === ocNs;
      if (protectedProp) failed = true;
      results.push({ prop: u.prop, status: protectedProp ? 403 : 200 });
      if (protectedProp) continue;
      if (u.op === 'set') dead[propKey(u.prop)] = { ns: u.prop.ns, name: u.prop.name, xml: u.value };
      else delete dead[propKey(u.prop)];
    }
    if (failed) {
      for (const res of results) if (res.status === 200) res.status = 424;
    } else {
      await this.#deps.state.setProps(object.id, target.path, { ...stored, dead });
    }
    const byStatus = new Map<number, PropValue[]>();
    for (const res of results) byStatus.set(res.status, [...(byStatus.get(res.status) ?? []), { prop: res.prop, xml: undefined }]);
    const body = renderMultistatus([
      {
        href: hrefOf(target.objectName, target.path, r.kind !== 'file'),
        propstats: [...byStatus].map(([status, props]) => ({ status, props })),
      },
    ]);
    ctx.res.writeHead(207, { 'content-type': 'application/xml; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) });
    ctx.res.end(body);
  }

  // ---- LOCK, UNLOCK

  async #lock(ctx: Ctx, target: DavTarget): Promise<void> {
    const object = this.#objectOf(ctx, target);
    const body = await readBody(ctx.req, maxXmlBodyBytes);
    const timeoutSeconds = lockTimeout(headerOf(ctx.req, 'timeout'));
    const locks = await this.#deps.state.locks(object.id);
    const name = nameOf(ctx, object);
    if (body.trim() === '') {
      // A refresh: the If header names the lock.
      const lists = this.#ifLists(ctx);
      if (lists === undefined) throw new DavError(400, 'a LOCK without a body refreshes a lock named in the If header');
      const tokens = submittedTokens(lists);
      const lock = locks.find((l) => tokens.has(l.token) && lockCovers(l, target.path));
      if (lock === undefined || lock.holder !== ctx.deviceId)
        throw new DavError(412, 'no lock of yours to refresh here', 'lock-token-matches-request-uri');
      const refreshed = await this.#deps.state.putLock({ ...lock, timeoutSeconds });
      this.#answerLock(ctx, refreshed, name, 200);
      return;
    }
    const info = parseLockinfo(body);
    const depth = (headerOf(ctx.req, 'depth') ?? 'infinity').toLowerCase();
    if (depth !== '0' && depth !== 'infinity') throw new DavError(400, 'Depth must be 0 or infinity');
    this.#requireWriter(object);
    for (const l of locks) {
      const overlaps = lockCovers(l, target.path) || (depth === 'infinity' && isWithin(l.root, target.path));
      if (overlaps && (l.scope === 'exclusive' || info.scope === 'exclusive')) {
        throw new DavError(423, 'a conflicting lock is held', 'no-conflicting-lock', {}, hrefOf(name, l.root, true));
      }
    }
    let r = await this.#statPath(ctx, object, target.path);
    if (headerOf(ctx.req, 'if') !== undefined)
      await this.#checkIf(ctx, parseIfHeader(headerOf(ctx.req, 'if')!), object, target.path, r, locks);
    let status = 200;
    if (r === undefined) {
      // A lock on an unmapped URL creates an empty file (RFC 4918, 9.10.4).
      await this.#requireParent(ctx, object, target.path);
      const created = await ctx.client.putEntry(object.id, target.path, { kind: 'file', blocks: [] }, { ifNoneMatch: '*' });
      r = { kind: 'file', object, path: target.path, entry: created.entry };
      status = 201;
    }
    const lock = await this.#deps.state.putLock({
      objectId: object.id,
      root: target.path,
      depth: r.kind === 'file' ? '0' : depth,
      scope: info.scope,
      owner: info.owner,
      holder: ctx.deviceId,
      timeoutSeconds,
    });
    this.#answerLock(ctx, lock, name, status);
  }

  #answerLock(ctx: Ctx, lock: DavLock, objectName: string, status: number): void {
    const body = `<?xml version="1.0" encoding="utf-8"?>\n<d:prop xmlns:d="DAV:"><d:lockdiscovery>${activeLock(lock, objectName)}</d:lockdiscovery></d:prop>\n`;
    ctx.res.writeHead(status, {
      'content-type': 'application/xml; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      'lock-token': `<${lock.token}>`,
    });
    ctx.res.end(body);
  }

  async #unlock(ctx: Ctx, target: DavTarget): Promise<void> {
    const object = this.#objectOf(ctx, target);
    const lockToken = headerOf(ctx.req, 'lock-token');
    const token = lockToken === undefined ? undefined : /^\s*<([^>]+)>\s*$/.exec(lockToken)?.[1];
    if (token === undefined) throw new DavError(400, 'UNLOCK needs a Lock-Token header');
    const lock = (await this.#deps.state.locks(object.id)).find((l) => l.token === token && lockCovers(l, target.path));
    if (lock === undefined)
      throw new DavError(409, 'the lock token does not name a lock of this resource', 'lock-token-matches-request-uri');
    if (lock.holder !== ctx.deviceId) throw new DavError(403, 'the lock is held by another client');
    await this.#deps.state.deleteLock(lock);
    ctx.res.writeHead(204);
    ctx.res.end();
  }
}

const supportedLock =
  '<d:lockentry><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry>' +
  '<d:lockentry><d:lockscope><d:shared/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry>';

function activeLock(lock: DavLock, objectName: string): string {
  return (
    `<d:activelock><d:locktype><d:write/></d:locktype><d:lockscope><d:${lock.scope}/></d:lockscope>` +
    `<d:depth>${lock.depth}</d:depth>${lock.owner === '' ? '' : `<d:owner>${lock.owner}</d:owner>`}` +
    `<d:timeout>Second-${Math.max(0, Math.round((lock.expiresAt - Date.now()) / 1000))}</d:timeout>` +
    `<d:locktoken><d:href>${escapeText(lock.token)}</d:href></d:locktoken>` +
    `<d:lockroot><d:href>${escapeText(hrefOf(objectName, lock.root, lock.depth === 'infinity'))}</d:href></d:lockroot></d:activelock>`
  );
}

/** Answers 207 with a multistatus body. */
function answerMultistatus(res: Res, responses: DavResponse[]): void {
  const body = renderMultistatus(responses);
  res.writeHead(207, { 'content-type': 'application/xml; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

function unauthorized(): DavError {
  return new DavError(401, 'sign in with your user name and an app password (a device token)', undefined, {
    'www-authenticate': 'Basic realm="Meshwork", charset="UTF-8"',
  });
}

function pick(headers: Record<string, string>, name: string): Record<string, string> {
  return headers[name] === undefined ? {} : { [name]: headers[name] };
}

/** X-OC-Mtime (seconds since the epoch) as an ISO time, or undefined. */
export function mtimeOf(header: string | undefined): string | undefined {
  if (header === undefined || !/^\d{1,12}(\.\d+)?$/.test(header.trim())) return undefined;
  return new Date(Math.floor(Number(header) * 1000)).toISOString();
}

/**
 * Reads and hashes a PUT's body, naming its blocks in `blocks` in order; every chunk is hashed as
 * it arrives (ADR 84), so a block is named the moment it is whole. A body of one block or none is
 * not sent: its bytes are answered, for the call that writes the file whole (ADR 86). A longer one
 * is uploaded as it arrives (and undefined answered): a batch at a time, asked about with
 * `uploads` (or `missing`), and sent `uploadParallelism` at once, each to its presigned URL at the
 * store where the partition gives one, else through the partition (ADR 80).
 */
async function uploadBlocks(
  client: MeshworkClient,
  body: AsyncIterable<Uint8Array>,
  hashes: UploadHashes,
  blocks: BlockRef[],
): Promise<Uint8Array | undefined> {
  // The blocks are assembled in buffers used again, and the body's chunks are counted for the
  // young-generation collections that free them (ADR 75). The router's proxy counts each block
  // again as it forwards it to the partition, so on this path a collection comes every 4 MiB of
  // the body rather than 8: measured, that halved pace cost less than it saved (docs/webdav.md).
  // A block PUT to the store keeps its buffer until it is confirmed (ADR 80): one more round of blocks.
  const buffers = new UploadBuffers(3 * uploadParallelism + 2);
  try {
    return await uploadBlocksIn(client, hashedAndPaced(body, hashes), hashes, blocks, buffers);
  } finally {
    buffers.drop();
  }
}

async function* hashedAndPaced(body: AsyncIterable<Uint8Array>, hashes: UploadHashes): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    processGcPacer.streamed(chunk.byteLength);
    hashes.chunk(chunk);
    yield chunk;
  }
}

async function uploadBlocksIn(
  client: MeshworkClient,
  body: AsyncIterable<Uint8Array>,
  hashes: UploadHashes,
  blocks: BlockRef[],
  buffers: UploadBuffers,
): Promise<Uint8Array | undefined> {
  const source = splitBlocks(body, maxBlockSize, () => buffers.take())[Symbol.asyncIterator]();
  const named = (data: Uint8Array): { sha256: string; data: Uint8Array } => ({ sha256: hashes.block(data.byteLength), data });
  const first = await source.next();
  if (first.done === true) return new Uint8Array(0);
  const second = await source.next();
  if (second.done === true) {
    const { sha256, data } = named(first.value);
    blocks.push({ sha256, size: data.byteLength });
    return data;
  }
  // The block requests running, and every block not stored yet (those and the ones waiting for a confirmation).
  const inFlight = new Set<Promise<void>>();
  const pending = new Set<Promise<void>>();
  const sendBlock = client.blockSender();
  const sent = new Set<string>();
  let failure: { error: unknown } | undefined;
  let batch: { sha256: string; data: Uint8Array }[] = [];
  const flush = async (): Promise<void> => {
    const hashed = batch;
    batch = [];
    for (const h of hashed) blocks.push({ sha256: h.sha256, size: h.data.byteLength });
    const fresh = [...new Map(hashed.filter((h) => !sent.has(h.sha256)).map((h) => [h.sha256, h])).values()];
    if (fresh.length === 0) return;
    // The blocks to upload, each with a presigned URL at the store where the partition gives one (ADR 80).
    const { uploads } = await client.uploadTargets(fresh.map((h) => ({ sha256: h.sha256, size: h.data.byteLength })));
    const targets = new Map(uploads.map((u) => [u.sha256, u]));
    // A block stored already, or named twice in the batch, is not sent: its buffer is free again.
    for (const h of hashed) if (!targets.has(h.sha256) || !fresh.includes(h)) buffers.give(h.data);
    for (const h of fresh) {
      sent.add(h.sha256);
      const target = targets.get(h.sha256);
      if (target === undefined) continue;
      while ((inFlight.size >= uploadParallelism || pending.size >= 2 * uploadParallelism) && failure === undefined)
        await Promise.race([...inFlight, ...pending]);
      if (failure !== undefined) return;
      const sending = sendBlock(h, target);
      // Given back once stored and confirmed; a failed block keeps its buffer (its bytes may still be on their way).
      const done = sending.done.then(
        () => buffers.give(h.data),
        (error: unknown) => void (failure ??= { error }),
      );
      const tracked = done.finally(() => pending.delete(tracked));
      pending.add(tracked);
      const request = sending.placed.finally(() => inFlight.delete(request));
      inFlight.add(request);
    }
  };
  try {
    batch.push(named(first.value), named(second.value));
    for (;;) {
      const step = await source.next();
      if (step.done === true || failure !== undefined) break;
      batch.push(named(step.value));
      if (batch.length >= uploadParallelism) await flush();
    }
    if (failure === undefined) await flush();
  } finally {
    await Promise.allSettled([...pending]);
  }
  if (failure !== undefined) throw failure.error;
  return undefined;
}

function checksumHeader(header: string | undefined): { kind: 'sha1' | 'md5'; value: string } | undefined {
  const m = header === undefined ? null : /^(SHA1|MD5):([0-9a-f]+)$/i.exec(header.trim());
  return m === null ? undefined : { kind: m[1]!.toLowerCase() as 'sha1' | 'md5', value: m[2]!.toLowerCase() };
}

function lastModifiedOf(r: Resource, listing: readonly Entry[]): string {
  if (r.kind === 'root') return new Date(0).toISOString();
  if (r.kind === 'file') return r.entry.mtime;
  if (r.entry !== undefined) return r.entry.mtime;
  let latest = r.object.createdAt;
  for (const e of listing) if (isWithin(e.path, r.path) && e.mtime > latest) latest = e.mtime;
  return latest;
}

function sizeWithin(path: string, listing: readonly Entry[]): number {
  let size = 0;
  for (const e of listing) if (e.kind === 'file' && isWithin(e.path, path)) size += e.size;
  return size;
}

/** The resources directly below a collection: its entries, and folders only deeper entries imply. */
export function childrenOf(object: MeshObject, path: string, listing: readonly Entry[]): Resource[] {
  const out = new Map<string, Resource>();
  const prefix = path === '' ? '' : `${path}/`;
  for (const e of listing) {
    if (!e.path.startsWith(prefix) || e.path === path) continue;
    const rest = e.path.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash === -1) {
      out.set(
        e.path,
        e.kind === 'file' ? { kind: 'file', object, path: e.path, entry: e } : { kind: 'collection', object, path: e.path, entry: e },
      );
    } else {
      const child = prefix + rest.slice(0, slash);
      if (!out.has(child)) out.set(child, { kind: 'collection', object, path: child, entry: undefined });
    }
  }
  return [...out.values()];
}

export { davPrefix };
