// The peer API an agent serves to other devices (ADR 54): `GET /p2p/v1/blocks/{sha256}` with a
// service-signed grant, answered from the files the agent synced. The handler speaks HTTP/2
// streams so that the same code serves the TLS listener and, later, the relay's HTTP/2
// connection. A block is read from a file only while the file still has the stat it had when it
// was synced, and is hashed before it is sent: a file changed since is never served.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import http2, { type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { processGcPacer } from '@meshwork/contract/gc-pacer';
import { BlockBuffers } from '../block-buffers.ts';
import { maxBlockSize } from '../blocks.ts';
import { byteBudget } from './byte-budget.ts';
import { GrantError, verifyGrant, type GrantKeys } from './grant.ts';
import type { PeerIdentity } from './certificate.ts';

/** One place a block sits in a synced file, with the file's stat when it was synced. */
export interface BlockLocation {
  path: string;
  offset: number;
  size: number;
  stat: { size: number; mtimeMs: number; ino: number };
}

/** A synced folder the files route serves. */
export interface PeerFolder {
  objectId: string;
  name: string;
  dir: string;
  /** Whether a path relative to `dir` is left out of syncing (`.meshworkignore`): never listed nor served. Absent: nothing is. */
  ignores?(path: string, directory: boolean): boolean;
}

/** What the agent holds: where a block of an object can be read. */
export interface PeerContent {
  locateBlock(objectId: string, sha256: string): BlockLocation[];
  /** The synced folders, for the files route (remote access); absent: that route finds nothing. */
  folders?(): PeerFolder[];
}

export interface PeerHandlerOptions {
  /** This device: grants must name it as their audience. */
  deviceId: string;
  keys: GrantKeys;
  content: PeerContent;
  /** Requests served at once; more are answered `503 busy` with `Retry-After`. Default 16. */
  maxConcurrent?: number;
  /**
   * Bytes of blocks held in memory at once, from the read until the stream has sent them (or
   * closed); a block request past it waits its turn. Default 8 MiB (two 4 MiB blocks); a block
   * larger than the bound is served alone.
   */
  maxBlockBytes?: number;
  /** Called with the bytes of each block served (the agent counts them). */
  onServed?: (bytes: number) => void;
}

const shaPattern = /^[0-9a-f]{64}$/;

function answerError(stream: ServerHttp2Stream, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': status, 'content-type': 'application/json', ...headers });
  stream.end(JSON.stringify({ error: { code, message } }));
}

function answerJson(stream: ServerHttp2Stream, body: unknown): void {
  if (stream.destroyed) return;
  stream.respond({ ':status': 200, 'content-type': 'application/json' });
  stream.end(JSON.stringify(body));
}

/**
 * Reads a block from one location when the file is unchanged and the bytes hash right; otherwise
 * undefined. The block is read into `into` when it is large enough (the answer is then a view of
 * it), else into a fresh buffer of its size.
 */
export async function readVerifiedBlock(location: BlockLocation, sha256: string, into?: Uint8Array): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(location.path, 'r');
  } catch {
    return undefined;
  }
  try {
    const s = await handle.stat();
    if (s.size !== location.stat.size || s.mtimeMs !== location.stat.mtimeMs || s.ino !== location.stat.ino) return undefined;
    const data =
      into !== undefined && into.length >= location.size
        ? Buffer.from(into.buffer, into.byteOffset, location.size)
        : Buffer.allocUnsafe(location.size);
    let read = 0;
    while (read < data.length) {
      const { bytesRead } = await handle.read(data, read, data.length - read, location.offset + read);
      if (bytesRead === 0) return undefined;
      read += bytesRead;
    }
    return createHash('sha256').update(data).digest('hex') === sha256 ? data : undefined;
  } finally {
    await handle.close();
  }
}

/** The peer API as an HTTP/2 stream handler, and how many requests it serves now. */
export function createPeerHandler(options: PeerHandlerOptions): {
  handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void;
  active(): number;
  /** Bytes of blocks read and not yet sent (at most maxBlockBytes, or one block). */
  heldBlockBytes(): number;
} {
  const maxConcurrent = options.maxConcurrent ?? 16;
  const maxBlockBytes = options.maxBlockBytes ?? 8 * 1024 * 1024;
  const blockBytes = byteBudget(maxBlockBytes);
  // Whole blocks are read into buffers used again once their streams sent them: serving a large
  // file then costs the few buffers the byte budget lets be held at once.
  const buffers = new BlockBuffers(Math.max(1, Math.floor(maxBlockBytes / maxBlockSize)));
  let active = 0;

  async function blocks(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, sha256: string): Promise<void> {
    if (!shaPattern.test(sha256)) return answerError(stream, 400, 'invalid_request', 'the block is named by its lowercase hex sha256');
    const grant = await verified(headers);
    if (grant.scope.kind !== 'blocks' || !grant.scope.blocks.includes(sha256))
      throw new GrantError('forbidden', 'the grant does not cover this block');
    for (const location of options.content.locateBlock(grant.scope.objectId, sha256)) {
      // Without the bound, up to maxConcurrent blocks (64 MiB) would sit in memory while slow
      // requesters read them; the bytes are given back once the stream is done with them.
      const release = await blockBytes.acquire(location.size);
      // Only whole blocks take a pooled buffer: the budget counts a block's own size.
      const buffer = location.size === maxBlockSize ? buffers.take() : undefined;
      let data: Buffer | undefined;
      try {
        data = stream.destroyed ? undefined : await readVerifiedBlock(location, sha256, buffer);
      } finally {
        if (data === undefined || stream.destroyed) {
          release();
          if (buffer !== undefined) buffers.give(buffer);
        }
      }
      if (stream.destroyed) return;
      if (data === undefined) continue;
      // The buffer is read into again only once the stream sent all of it ('finish'); a stream
      // cut short may still hold it, so it is left to the garbage collector then.
      let sent = false;
      stream.once('finish', () => (sent = true));
      stream.once('close', () => {
        release();
        if (sent && buffer !== undefined) buffers.give(buffer);
      });
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': data.length });
      stream.end(data);
      options.onServed?.(data.length);
      processGcPacer.streamed(data.length);
      return;
    }
    answerError(stream, 404, 'not_found', 'this device does not hold the block');
  }

  async function verified(headers: IncomingHttpHeaders) {
    const auth = headers.authorization;
    const token = typeof auth === 'string' && auth.startsWith('Grant ') ? auth.slice('Grant '.length).trim() : undefined;
    return verifyGrant(token, options.keys, options.deviceId);
  }

  /** `GET /p2p/v1/files/` (the objects the grant covers) and `GET /p2p/v1/files/{objectId}/{path…}` (a directory listing or a file, with Range). */
  async function files(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rest: string): Promise<void> {
    const grant = await verified(headers);
    if (grant.scope.kind !== 'remote') throw new GrantError('forbidden', 'the grant is not for remote access');
    const allowed = grant.scope.objects;
    const folders = options.content.folders?.() ?? [];
    let segments: string[];
    try {
      segments = rest
        .split('/')
        .filter((s) => s !== '')
        .map(decodeURIComponent);
    } catch {
      return answerError(stream, 400, 'invalid_path', 'the path is not percent-encoded correctly');
    }
    if (segments.some((s) => s === '.' || s === '..' || s.includes('/') || s.includes('\\') || s.includes('\0')))
      return answerError(stream, 400, 'invalid_path', 'the path has a . or .. segment, a slash or a NUL inside a name');
    if (segments.length === 0) {
      const objects = folders.filter((f) => Object.hasOwn(allowed, f.objectId)).map((f) => ({ objectId: f.objectId, name: f.name }));
      return answerJson(stream, { objects });
    }
    const [objectId, ...path] = segments as [string, ...string[]];
    if (!Object.hasOwn(allowed, objectId)) throw new GrantError('forbidden', 'the grant does not cover this object');
    const folder = folders.find((f) => f.objectId === objectId);
    if (folder === undefined) return answerError(stream, 404, 'not_found', 'this device does not sync that object');
    const abs = join(folder.dir, ...path);
    const s = await lstat(abs).catch(() => undefined);
    // What the device does not sync (its .meshworkignore) does not leave it this way either: as if absent.
    const hidden = (rel: string[], directory: boolean): boolean => rel.length > 0 && folder.ignores?.(rel.join('/'), directory) === true;
    if (hidden(path, s?.isDirectory() === true)) return answerError(stream, 404, 'not_found', 'no such file or directory on this device');
    if (s?.isDirectory() === true) {
      const entries = [];
      for (const name of (await readdir(abs)).sort()) {
        if (name.startsWith('.meshwork-tmp-')) continue;
        const e = await lstat(join(abs, name)).catch(() => undefined);
        // Symlinks and special files are not synced: not shown either.
        if (e === undefined || (!e.isFile() && !e.isDirectory())) continue;
        if (hidden([...path, name], e.isDirectory())) continue;
        entries.push({ name, kind: e.isFile() ? 'file' : 'dir', size: e.isFile() ? e.size : 0, mtime: e.mtime.toISOString() });
      }
      return answerJson(stream, { entries });
    }
    if (s?.isFile() !== true) return answerError(stream, 404, 'not_found', 'no such file or directory on this device');
    const etag = `"${createHash('sha256').update(`${s.size}:${s.mtimeMs}:${s.ino}`).digest('hex').slice(0, 32)}"`;
    let start = 0;
    let end = s.size - 1;
    let status = 200;
    const range = headers.range;
    if (typeof range === 'string' && range !== '') {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      const a = m?.[1] === '' ? undefined : Number(m?.[1]);
      const b = m?.[2] === '' ? undefined : Number(m?.[2]);
      if (m === null || (a === undefined && b === undefined))
        return answerError(stream, 416, 'range_not_satisfiable', 'one bytes=START-END range is served');
      if (a === undefined) start = Math.max(0, s.size - b!);
      else {
        start = a;
        if (b !== undefined) end = Math.min(b, s.size - 1);
      }
      if (start >= s.size || start > end)
        return answerError(stream, 416, 'range_not_satisfiable', `the file is ${s.size} bytes`, { 'content-range': `bytes */${s.size}` });
      status = 206;
    }
    stream.respond({
      ':status': status,
      'content-type': 'application/octet-stream',
      'content-length': s.size === 0 ? 0 : end - start + 1,
      etag,
      'accept-ranges': 'bytes',
      'last-modified': s.mtime.toUTCString(),
      ...(status === 206 ? { 'content-range': `bytes ${start}-${end}/${s.size}` } : {}),
    });
    if (s.size === 0) return void stream.end();
    await pipeline(createReadStream(abs, { start, end }), stream);
  }

  function handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => undefined); // a requester that went away: nothing to answer
    const method = headers[':method'];
    const path = String(headers[':path'] ?? '');
    if (method !== 'GET') return answerError(stream, 405, 'method_not_allowed', 'the peer API is read only', { allow: 'GET' });
    const match = /^\/p2p\/v1\/blocks\/([^/?]*)$/.exec(path);
    const filesMatch = /^\/p2p\/v1\/files(\/[^?]*)?$/.exec(path);
    if (match === null && filesMatch === null) return answerError(stream, 404, 'not_found', 'no such peer route');
    if (active >= maxConcurrent)
      return answerError(stream, 503, 'busy', 'this device serves as many requests as it may', { 'retry-after': '1' });
    active++;
    (match !== null ? blocks(stream, headers, match[1]!) : files(stream, headers, filesMatch![1] ?? ''))
      .catch((err: unknown) => {
        if (err instanceof GrantError) answerError(stream, err.status, err.code, err.message);
        else answerError(stream, 503, 'unavailable', 'the content could not be read');
      })
      .finally(() => active--);
  }

  return { handle, active: () => active, heldBlockBytes: () => blockBytes.held() };
}

/** The HTTP/2 session memory bound (MB) of peer connections, on both sides and over the relay. */
export const peerSessionMemoryMb = 96;

/** A running peer listener. */
export interface PeerListener {
  port: number;
  host: string;
  close(): Promise<void>;
}

/** Starts the TLS (HTTP/2) peer listener on `host:port` (port 0: any free one) with the device's certificate. */
export async function startPeerListener(
  identity: PeerIdentity,
  handler: { handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void },
  host: string,
  port: number,
): Promise<PeerListener> {
  const server: Http2SecureServer = http2.createSecureServer({
    key: identity.keyPem,
    cert: identity.certPem,
    settings: { maxConcurrentStreams: 64 },
    // Blocks of 4 MiB (the handler's byte bound lets two be in flight), wait in the session's
    // memory until the requester reads them: the 10 MB default would reset streams
    // (ENHANCE_YOUR_CALM) under load.
    maxSessionMemory: peerSessionMemoryMb,
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('stream', (stream, headers) => handler.handle(stream, headers));
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => undefined); // a requester's broken connection is its own
    // A requester idle this long is let go; it connects again when it needs to.
    session.setTimeout(120_000, () => session.close());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    host,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open sessions would keep the server from closing: end them.
        for (const s of sessions) s.destroy();
      }),
  };
}
