// The peer API an agent serves to other devices (ADR 54): `GET /p2p/v1/blocks/{sha256}` with a
// service-signed grant, answered from the files the agent synced. The handler speaks HTTP/2
// streams so that the same code serves the TLS listener and, later, the relay's HTTP/2
// connection. A block is read from a file only while the file still has the stat it had when it
// was synced, and is hashed before it is sent: a file changed since is never served.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import http2, { type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { GrantRefused, verifyGrant, type GrantKeys } from './grant.ts';
import type { PeerIdentity } from './certificate.ts';

/** One place a block sits in a synced file, with the file's stat when it was synced. */
export interface BlockLocation {
  path: string;
  offset: number;
  size: number;
  stat: { size: number; mtimeMs: number; ino: number };
}

/** What the agent holds: where a block of an object can be read. */
export interface PeerContent {
  locateBlock(objectId: string, sha256: string): BlockLocation[];
}

export interface PeerHandlerOptions {
  /** This device: grants must name it as their audience. */
  deviceId: string;
  keys: GrantKeys;
  content: PeerContent;
  /** Requests served at once; more are answered `503 busy` with `Retry-After`. Default 16. */
  maxConcurrent?: number;
  /** Called with the bytes of each block served (the agent counts them). */
  onServed?: (bytes: number) => void;
}

const shaPattern = /^[0-9a-f]{64}$/;

function answerError(stream: ServerHttp2Stream, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': status, 'content-type': 'application/json', ...headers });
  stream.end(JSON.stringify({ error: { code, message } }));
}

/** Reads a block from one location when the file is unchanged and the bytes hash right; otherwise undefined. */
export async function readVerifiedBlock(location: BlockLocation, sha256: string): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(location.path, 'r');
  } catch {
    return undefined;
  }
  try {
    const s = await handle.stat();
    if (s.size !== location.stat.size || s.mtimeMs !== location.stat.mtimeMs || s.ino !== location.stat.ino) return undefined;
    const data = Buffer.allocUnsafe(location.size);
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
} {
  const maxConcurrent = options.maxConcurrent ?? 16;
  let active = 0;

  async function blocks(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, sha256: string): Promise<void> {
    if (!shaPattern.test(sha256)) return answerError(stream, 400, 'invalid_request', 'the block is named by its lowercase hex sha256');
    const auth = headers.authorization;
    const token = typeof auth === 'string' && auth.startsWith('Grant ') ? auth.slice('Grant '.length).trim() : undefined;
    const grant = await verifyGrant(token, options.keys, options.deviceId);
    if (grant.scope.kind !== 'blocks' || !grant.scope.blocks.includes(sha256))
      throw new GrantRefused(403, 'forbidden', 'the grant does not cover this block');
    for (const location of options.content.locateBlock(grant.scope.objectId, sha256)) {
      const data = await readVerifiedBlock(location, sha256);
      if (data === undefined) continue;
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': data.length });
      stream.end(data);
      options.onServed?.(data.length);
      return;
    }
    answerError(stream, 404, 'not_found', 'this device does not hold the block');
  }

  function handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => undefined); // a requester that went away: nothing to answer
    const method = headers[':method'];
    const path = String(headers[':path'] ?? '');
    if (method !== 'GET') return answerError(stream, 405, 'method_not_allowed', 'the peer API is read only', { allow: 'GET' });
    const match = /^\/p2p\/v1\/blocks\/([^/?]*)$/.exec(path);
    if (match === null) return answerError(stream, 404, 'not_found', 'no such peer route');
    if (active >= maxConcurrent)
      return answerError(stream, 503, 'busy', 'this device serves as many requests as it may', { 'retry-after': '1' });
    active++;
    blocks(stream, headers, match[1]!)
      .catch((err: unknown) => {
        if (err instanceof GrantRefused) answerError(stream, err.status, err.code, err.message);
        else answerError(stream, 503, 'unavailable', 'the block could not be read');
      })
      .finally(() => active--);
  }

  return { handle, active: () => active };
}

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
