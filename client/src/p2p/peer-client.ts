// The requesting side of the peer API (ADR 54, ADR 55): a TLS connection to a peer's listener
// that is used only once the certificate's sha256 equals the fingerprint the service announced
// (nothing, the grant included, is sent before), HTTP/2 over it so that many block requests share
// one connection, and `fetchFromPeers`, which spreads a file's blocks over several peers.
import { createHash } from 'node:crypto';
import http2, { type ClientHttp2Session } from 'node:http2';
import tls from 'node:tls';
import { processGcPacer } from '@meshwork/contract/gc-pacer';
import { maxBlockSize } from '../blocks.ts';
import { peerSessionMemoryMb } from './peer-server.ts';
import type { FailedEndpoints } from './reach.ts';

/** A peer failed: unreachable, the wrong certificate, a refusal, a bad block, too slow. */
export class PeerError extends Error {
  readonly status: number | undefined;
  readonly code: string | undefined;

  constructor(message: string, status?: number, code?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PeerError';
    this.status = status;
    this.code = code;
  }
}

/** The code of a PeerError for an endpoint that did not complete a TLS handshake in time. */
export const connectTimeoutCode = 'connect_timeout';

/** A connection to one peer, its certificate pinned. */
export class PeerConnection {
  readonly #session: ClientHttp2Session;

  private constructor(session: ClientHttp2Session) {
    this.#session = session;
    session.on('error', () => undefined); // failures surface on the requests
  }

  /** Connects to `endpoint` (`https://host:port`), checking the certificate against `fingerprint` before anything is sent. */
  static async connect(
    endpoint: string,
    fingerprint: string,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<PeerConnection> {
    const url = new URL(endpoint);
    if (url.protocol !== 'https:') throw new PeerError(`${endpoint}: a peer endpoint is https`);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || 443);
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({
        host,
        port,
        ALPNProtocols: ['h2'],
        // Self-signed: the pin below is the check, not a chain of issuers.
        rejectUnauthorized: false,
        ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
      });
      const fail = (err: Error): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        s.destroy();
        reject(err);
      };
      const onAbort = (): void => fail(new PeerError(`${endpoint}: aborted`));
      const timer = setTimeout(
        () => fail(new PeerError(`${endpoint}: no TLS connection within ${options.timeoutMs ?? 2000} ms`, undefined, connectTimeoutCode)),
        options.timeoutMs ?? 2000,
      );
      options.signal?.addEventListener('abort', onAbort, { once: true });
      s.once('error', (err: Error) => fail(new PeerError(`${endpoint}: ${err.message}`, undefined, undefined, { cause: err })));
      s.once('secureConnect', () => {
        const cert = s.getPeerX509Certificate();
        const seen = cert === undefined ? '' : createHash('sha256').update(cert.raw).digest('hex');
        if (seen !== fingerprint.toLowerCase())
          return fail(new PeerError(`${endpoint}: the certificate is not the one the device announced`));
        if (s.alpnProtocol !== 'h2') return fail(new PeerError(`${endpoint}: the peer does not speak HTTP/2`));
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        s.removeAllListeners('error');
        resolve(s);
      });
    });
    const session = http2.connect(`https://${url.host}`, {
      createConnection: () => socket,
      maxSessionMemory: peerSessionMemoryMb,
      // Windows of a few blocks: the 64 KiB default holds a peer's sending to one round trip in 64 KiB.
      settings: { initialWindowSize: 4 * 1024 * 1024 },
    });
    session.setLocalWindowSize(16 * 1024 * 1024);
    return new PeerConnection(session);
  }

  /**
   * `GET /p2p/v1/blocks/{sha256}` with the grant; the answer must hash to `sha256` and be
   * `size` bytes. A request with no bytes for `stallMs` fails (a slow peer is dropped). The
   * block is read into `into` when it is large enough (the answer is then a view of it), else
   * into a fresh buffer of its size.
   */
  fetchBlock(
    sha256: string,
    size: number,
    grant: string,
    options: { stallMs?: number; signal?: AbortSignal; into?: Buffer } = {},
  ): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let req: http2.ClientHttp2Stream;
      try {
        req = this.#session.request(
          { ':method': 'GET', ':path': `/p2p/v1/blocks/${sha256}`, authorization: `Grant ${grant}` },
          { signal: options.signal },
        );
      } catch (err) {
        reject(new PeerError(`the peer connection is closed`, undefined, undefined, { cause: err }));
        return;
      }
      // A block's bytes are copied into one buffer of its size as they come, not gathered and
      // joined at the end: one copy of the block held per request instead of two.
      let block: Buffer | undefined;
      const chunks: Buffer[] = [];
      let received = 0;
      let status = 0;
      req.setTimeout(options.stallMs ?? 5000, () => req.close(http2.constants.NGHTTP2_CANCEL));
      req.on('response', (headers) => {
        status = Number(headers[':status']);
        if (status === 200) block = options.into !== undefined && options.into.length >= size ? options.into : Buffer.allocUnsafe(size);
      });
      let filled = 0;
      req.on('data', (chunk: Buffer) => {
        received += chunk.length;
        processGcPacer.streamed(chunk.length);
        // A peer sending more than the block (or an error) holds is broken: stop reading at once.
        if (received > (status === 200 ? size : 65_536)) req.close(http2.constants.NGHTTP2_CANCEL);
        else if (block !== undefined) filled += chunk.copy(block, filled);
        else chunks.push(chunk);
      });
      req.on('error', (err: Error) => reject(new PeerError(`block ${sha256}: ${err.message}`, undefined, undefined, { cause: err })));
      req.on('close', () => {
        const body = block === undefined ? Buffer.concat(chunks) : block.subarray(0, filled);
        if (status !== 200) {
          let code: string | undefined;
          try {
            code = (JSON.parse(body.toString('utf8')) as { error?: { code?: string } }).error?.code;
          } catch {
            code = undefined;
          }
          return reject(
            new PeerError(
              `block ${sha256}: the peer answered ${status || 'nothing'}${code ? ` (${code})` : ''}`,
              status || undefined,
              code,
            ),
          );
        }
        if (body.length !== size || createHash('sha256').update(body).digest('hex') !== sha256)
          return reject(new PeerError(`block ${sha256}: the peer's bytes do not hash to the block`));
        resolve(body);
      });
    });
  }

  /** A GET of the peer API, its whole answer in memory (directory listings, small files, tests). */
  get(
    path: string,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = this.#session.request({ ':method': 'GET', ':path': path, ...headers }, { signal });
      const chunks: Buffer[] = [];
      let answer: http2.IncomingHttpHeaders = {};
      req.on('response', (h) => (answer = h));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', (err: Error) => reject(new PeerError(`${path}: ${err.message}`, undefined, undefined, { cause: err })));
      req.on('close', () => resolve({ status: Number(answer[':status'] ?? 0), headers: answer, body: Buffer.concat(chunks) }));
    });
  }

  /** Whether an open connection keeps the process running (a kept, idle one does not). */
  keepsProcess(keep: boolean): void {
    if (this.closed) return;
    if (keep) this.#session.ref();
    else this.#session.unref();
  }

  /** Whether the connection can take no more requests (closed by either side, or broken). */
  get closed(): boolean {
    return this.#session.closed || this.#session.destroyed;
  }

  close(): void {
    this.#session.close();
  }
}

/**
 * Connections to peers kept between files for `idleMs` after their last use: a pass that fetches
 * many small files from one device makes one TLS handshake, not one per file. A connection whose
 * requests failed is closed, not kept; one the peer closed is connected again. Keyed by device,
 * certificate fingerprint and endpoints, so a device that announces anything new is connected
 * to anew.
 */
export class PeerConnections {
  readonly #idleMs: number;
  readonly #open = new Map<string, KeptConnection>();
  #closed = false;

  constructor(options: { idleMs?: number } = {}) {
    this.#idleMs = options.idleMs ?? defaultPeerIdleMs;
  }

  /** A connection to `peer`: the kept one if it is still open, else a new one (see connectPeer). */
  async acquire(
    peer: PeerSource,
    timeoutOf: (endpoint: string) => number,
    failedEndpoints: FailedEndpoints | undefined,
    signal?: AbortSignal,
  ): Promise<PeerConnection> {
    const key = keyOf(peer);
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new PeerError('the agent is closing');
      let kept = this.#open.get(key);
      const fresh = kept === undefined;
      if (kept === undefined) {
        const entry: KeptConnection = { connection: connectPeer(peer, timeoutOf, failedEndpoints, signal), users: 0 };
        // A connection that did not come up is not kept for the next caller.
        entry.connection.catch(() => {
          if (this.#open.get(key) === entry) this.#open.delete(key);
        });
        this.#open.set(key, entry);
        kept = entry;
      }
      kept.users++;
      clearTimeout(kept.timer);
      let connection: PeerConnection;
      try {
        connection = await kept.connection;
      } catch (err) {
        kept.users--;
        throw err;
      }
      // Dropped meanwhile (a request on it failed) or closed by the peer: connect again, once.
      if ((this.#open.get(key) === kept && !connection.closed) || (fresh && attempt > 0)) {
        kept.up = connection;
        connection.keepsProcess(true);
        return connection;
      }
      kept.users--;
      if (this.#open.get(key) === kept) this.#drop(key);
    }
  }

  /** Gives back a connection `acquire` answered; `failed` when a request on it failed (it is then closed). */
  release(peer: PeerSource, connection: PeerConnection, failed: boolean): void {
    const key = keyOf(peer);
    const kept = this.#open.get(key);
    if (kept === undefined || kept.up !== connection) {
      // Dropped while it was in use: nobody else gets it.
      connection.close();
      return;
    }
    kept.users--;
    if (failed || connection.closed || this.#closed) {
      this.#drop(key);
      return;
    }
    if (kept.users === 0) {
      connection.keepsProcess(false);
      kept.timer = setTimeout(() => {
        if (this.#open.get(key) === kept && kept.users === 0) this.#drop(key);
      }, this.#idleMs);
      kept.timer.unref();
    }
  }

  /** How many connections are kept open or coming up (tests). */
  get size(): number {
    return [...this.#open.values()].filter((kept) => kept.up?.closed !== true).length;
  }

  /** Closes every kept connection; later acquires fail. */
  closeAll(): void {
    this.#closed = true;
    for (const key of [...this.#open.keys()]) this.#drop(key);
  }

  #drop(key: string): void {
    const kept = this.#open.get(key);
    if (kept === undefined) return;
    this.#open.delete(key);
    clearTimeout(kept.timer);
    kept.connection.then((c) => c.close()).catch(() => undefined);
  }
}

/** A connection of a PeerConnections, with how many fetches use it now. */
interface KeptConnection {
  connection: Promise<PeerConnection>;
  users: number;
  /** Closes it once it has been idle for the idle time. */
  timer?: NodeJS.Timeout;
  /** The connection once it came up and was handed out. */
  up?: PeerConnection;
}

/** What a kept connection is kept under: the device, its certificate and its endpoints. */
function keyOf(peer: PeerSource): string {
  return `${peer.deviceId}\n${peer.fingerprint.toLowerCase()}\n${peer.endpoints.join(' ')}`;
}

/** How long a peer connection is kept after its last use: a burst's files share it, an idle agent holds none. */
export const defaultPeerIdleMs = 5_000;

/** A device that holds the file, as `…/sources` names it. */
export interface PeerSource {
  deviceId: string;
  endpoints: string[];
  fingerprint: string;
  /** The grant to present for a block `blockGrants` does not name. */
  grant: string;
  /** The grant naming each block, for a file whose blocks take several grants (ADR 66). */
  blockGrants?: ReadonlyMap<string, string>;
}

/** The grant to present to `peer` for block `sha256`. */
export function grantOf(peer: PeerSource, sha256: string): string {
  return peer.blockGrants?.get(sha256) ?? peer.grant;
}

/** One block of the file, with where it goes. */
export interface WantedBlock {
  sha256: string;
  size: number;
  offset: number;
}

export interface FetchFromPeersOptions {
  blocks: WantedBlock[];
  peers: PeerSource[];
  /**
   * Writes a verified block into place. `data` is lent: its memory holds the stream's next block
   * once the returned promise settled, so it must not be kept.
   */
  write(block: WantedBlock, data: Buffer): Promise<void>;
  signal?: AbortSignal;
  /** Requests in flight per peer. Default 4. */
  streamsPerPeer?: number;
  /** The connect timeout of an endpoint (a default of 2 s for every endpoint). */
  connectTimeoutMs?: number | ((endpoint: string) => number);
  /** Endpoints that timed out recently: skipped, and told of every timeout and success (ADR 65). */
  failedEndpoints?: FailedEndpoints;
  stallMs?: number;
  /** Each block received, by device (progress and the per-source byte counts). */
  onBlock?: (deviceId: string, bytes: number) => void;
  /** Connections kept between calls (absent: each call connects and closes its own). */
  connections?: PeerConnections;
}

export interface FetchFromPeersResult {
  /** Blocks that are still to fetch (from the cloud, or later). */
  left: WantedBlock[];
  bytesByDevice: Map<string, number>;
  /** Why each dropped peer was dropped. */
  dropped: Map<string, string>;
}

/** The first endpoint of a peer that connects with the announced certificate, or a PeerError. */
async function connectPeer(
  peer: PeerSource,
  timeoutOf: (endpoint: string) => number,
  failedEndpoints: FailedEndpoints | undefined,
  signal?: AbortSignal,
): Promise<PeerConnection> {
  const errors: string[] = [];
  for (const endpoint of peer.endpoints) {
    if (failedEndpoints?.skip(peer.deviceId, endpoint, Date.now()) === true) {
      errors.push(`${endpoint}: failed to connect recently, not tried again yet`);
      continue;
    }
    try {
      const connection = await PeerConnection.connect(endpoint, peer.fingerprint, { timeoutMs: timeoutOf(endpoint), signal });
      failedEndpoints?.connected(peer.deviceId, endpoint);
      return connection;
    } catch (err) {
      if (signal?.aborted === true) throw err;
      // Only a silent endpoint is remembered: a refusal costs a round trip, and the peer may be back at any moment.
      if (err instanceof PeerError && err.code === connectTimeoutCode) failedEndpoints?.failed(peer.deviceId, endpoint, Date.now());
      errors.push((err as Error).message);
    }
  }
  throw new PeerError(errors.length === 0 ? 'no endpoint announced' : errors.join('; '));
}

/**
 * Fetches the blocks from the peers, in parallel: every reachable peer takes blocks from one
 * queue, `streamsPerPeer` at a time, so a faster peer takes more. A peer that cannot be
 * connected to (within the connect timeout), answers anything but the block, or stalls is
 * dropped and its block goes back to the queue for the others. What no peer delivered is
 * returned in `left`. A block is written only once it hashed right.
 */
export async function fetchFromPeers(options: FetchFromPeersOptions): Promise<FetchFromPeersResult> {
  const queue = [...options.blocks];
  const bytesByDevice = new Map<string, number>();
  const dropped = new Map<string, string>();
  let inFlight = 0;
  let changed: (() => void) | undefined;
  const notify = (): void => {
    const c = changed;
    changed = undefined;
    c?.();
  };
  const peerRun = async (peer: PeerSource): Promise<void> => {
    let connection: PeerConnection;
    try {
      const timeout = options.connectTimeoutMs ?? 2000;
      const timeoutOf = typeof timeout === 'number' ? () => timeout : timeout;
      connection = options.connections
        ? await options.connections.acquire(peer, timeoutOf, options.failedEndpoints, options.signal)
        : await connectPeer(peer, timeoutOf, options.failedEndpoints, options.signal);
    } catch (err) {
      dropped.set(peer.deviceId, (err as Error).message);
      return;
    }
    let failed = false;
    const worker = async (): Promise<void> => {
      // One whole-block buffer per stream, filled again once its block is written: a large file
      // then costs these few buffers, not a fresh one per block that only the garbage collector
      // frees. A shorter block (a small file, a file's last) gets a buffer of its size.
      let whole: Buffer | undefined;
      for (;;) {
        if (failed || options.signal?.aborted === true) return;
        const block = queue.shift();
        if (block === undefined) {
          // Another peer's block may come back to the queue when that peer fails: wait for it.
          if (inFlight === 0) return;
          await new Promise<void>((resolve) => {
            const prev = changed;
            changed = () => {
              prev?.();
              resolve();
            };
          });
          continue;
        }
        inFlight++;
        try {
          const into = block.size === maxBlockSize ? (whole ??= Buffer.allocUnsafe(maxBlockSize)) : undefined;
          const data = await connection.fetchBlock(block.sha256, block.size, grantOf(peer, block.sha256), {
            stallMs: options.stallMs,
            signal: options.signal,
            ...(into === undefined ? {} : { into }),
          });
          await options.write(block, data);
          bytesByDevice.set(peer.deviceId, (bytesByDevice.get(peer.deviceId) ?? 0) + data.length);
          options.onBlock?.(peer.deviceId, data.length);
        } catch (err) {
          queue.unshift(block);
          if (!failed) dropped.set(peer.deviceId, (err as Error).message);
          failed = true;
          // A local write failure is not the peer's: it ends the whole fetch.
          if (!(err instanceof PeerError)) throw err;
        } finally {
          inFlight--;
          notify();
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: options.streamsPerPeer ?? 4 }, worker));
    } finally {
      if (options.connections) options.connections.release(peer, connection, failed);
      else connection.close();
    }
  };
  await Promise.all(options.peers.map(peerRun));
  return { left: queue, bytesByDevice, dropped };
}
