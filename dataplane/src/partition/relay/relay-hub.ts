// The relay (ADR 52): each device keeps one WebSocket to the partition that owns its slot, and
// the service reaches the device's peer API through it. The WebSocket's binary messages carry
// one HTTP/2 connection in which the device is the server and this process the client, so many
// requests share the one connection. This process records which devices it holds in etcd
// (`/mw/relay/{deviceId}` → `{"pod","address"}`) under one lease of its own, so that another
// replica of the partition forwards a request for such a device one hop, here.
import { randomBytes } from 'node:crypto';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from 'pino';
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws';
import { parseByteSize, relayDefaults, relayReplacedCloseCode } from '@meshwork/contract';
import { relayKey } from '../../stores/keys.ts';

/** Per-device bounds of the relay. */
export interface RelayBounds {
  /** Requests in flight to one device at once. */
  maxStreams: number;
  /** Bytes per second from one device (paced; a device far behind refuses new requests). */
  bytesPerSecond: number;
}

/** The defaults of the relay's bounds (the partition's `MESHWORK_RELAY_*` settings override them). */
export const defaultRelayBounds: RelayBounds = {
  maxStreams: relayDefaults.maxStreams,
  bytesPerSecond: parseByteSize(relayDefaults.bytesPerSecond)!,
};

/**
 * HTTP/2 flow-control windows this process grants a device's relay (ADR 65): with the 64 KiB
 * defaults a relayed answer moves 64 KiB per round trip through both event loops and the
 * WebSocket, a few MiB/s on a busy machine. A few blocks' worth keeps the device sending while
 * the caller drains; memory stays bounded by the connection window (what the device may send
 * before this process reads it), and a slow caller stops reads, hence the device's sending.
 */
export const relayStreamWindowBytes = 2 * 1024 * 1024;
/** The relay connection's window: all streams of one device together. */
export const relayConnectionWindowBytes = 8 * 1024 * 1024;
/** The HTTP/2 session memory bound (MB) of a relay: above the connection window, so a full window never resets the session. */
export const relaySessionMemoryMb = 32;

/** How often the service pings a relay, and how long it waits for the pong before dropping it. */
export const relayPingIntervalMs = 30_000;

/** Which process holds a device's relay: its pod name and the address other replicas reach it at. */
export interface RelayRecord {
  pod: string;
  address: string;
}

/** The record of a device's relay in etcd: the process, and which of its connections (a reconnect to the same process must not lose its record to the old one's removal). */
export interface StoredRelayRecord extends RelayRecord {
  connection: string;
}

/** Why a request could not be sent to a device. */
export class RelayUnavailableError extends Error {
  readonly reason: 'offline' | 'busy';
  readonly retryAfterSeconds: number;

  constructor(reason: 'offline' | 'busy', message: string, retryAfterSeconds: number) {
    super(message);
    this.name = 'RelayUnavailableError';
    this.reason = reason;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * A token bucket of bytes per second that may go into debt: a transfer takes what it read and
 * waits while the bucket is below zero, so one device's relays together go no faster than the rate.
 */
export class ByteRate {
  readonly #rate: number;
  #tokens: number;
  #at: number;

  constructor(bytesPerSecond: number, now = Date.now()) {
    this.#rate = bytesPerSecond;
    this.#tokens = bytesPerSecond;
    this.#at = now;
  }

  #refill(now: number): void {
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#at) / 1000) * this.#rate);
    this.#at = now;
  }

  /** Takes `bytes`; returns how long to wait (ms) before taking more. */
  take(bytes: number, now = Date.now()): number {
    this.#refill(now);
    this.#tokens -= bytes;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#rate) * 1000);
  }

  /** How far in debt the bucket is, in seconds. */
  debtSeconds(now = Date.now()): number {
    this.#refill(now);
    return this.#tokens >= 0 ? 0 : -this.#tokens / this.#rate;
  }
}

/** One device's relay connection. */
export class RelaySession {
  readonly deviceId: string;
  /** Tells this connection's record from another connection's of the same device. */
  readonly connection = randomBytes(9).toString('base64url');
  readonly session: ClientHttp2Session;
  readonly rate: ByteRate;
  readonly #ws: WebSocket;
  readonly #bounds: RelayBounds;
  #streams = 0;

  constructor(deviceId: string, ws: WebSocket, session: ClientHttp2Session, bounds: RelayBounds) {
    this.deviceId = deviceId;
    this.#ws = ws;
    this.session = session;
    this.#bounds = bounds;
    this.rate = new ByteRate(bounds.bytesPerSecond);
  }

  /** Requests in flight. */
  get streams(): number {
    return this.#streams;
  }

  /** Opens a stream to the device: 503-worthy RelayUnavailableError when the device is gone or busy. */
  request(headers: http2.OutgoingHttpHeaders): ClientHttp2Stream {
    if (this.session.closed || this.session.destroyed) throw new RelayUnavailableError('offline', `device ${this.deviceId} is offline`, 5);
    if (this.#streams >= this.#bounds.maxStreams) {
      throw new RelayUnavailableError('busy', `device ${this.deviceId} has ${this.#streams} relayed requests in flight`, 1);
    }
    // More than a second behind its byte rate: new requests wait for the ones in flight.
    const debt = this.rate.debtSeconds();
    if (debt > 1) throw new RelayUnavailableError('busy', `device ${this.deviceId} is over its relay byte rate`, Math.ceil(debt));
    const stream = this.session.request(headers, { endStream: true });
    this.#streams++;
    stream.once('close', () => this.#streams--);
    return stream;
  }

  /** Closes the connection (a newer one replaced it, or the process is stopping). */
  close(code = 1001, reason = 'going away'): void {
    this.session.destroy();
    this.#ws.close(code, reason);
  }
}

/** What the hub needs. */
export interface RelayHubDeps {
  etcd: Etcd3;
  /** This process: its pod name and the address other replicas reach it at. */
  self: RelayRecord;
  logger: Logger;
  bounds?: RelayBounds;
  pingIntervalMs?: number;
  /** Seconds the relay records outlive this process when it dies without removing them. */
  leaseTtlSeconds?: number;
}

/** The relays this process holds, and their records in etcd. */
export class RelayHub {
  readonly #deps: RelayHubDeps;
  readonly #bounds: RelayBounds;
  readonly #sessions = new Map<string, RelaySession>();
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 8 * 1024 * 1024 });
  /** Granted with the first relay; kept alive by the etcd client while the process lives. */
  #lease: Lease | undefined;
  #closed = false;

  constructor(deps: RelayHubDeps) {
    this.#deps = deps;
    this.#bounds = deps.bounds ?? defaultRelayBounds;
  }

  #leaseOf(): Lease {
    if (this.#lease !== undefined) return this.#lease;
    const lease = this.#deps.etcd.lease(this.#deps.leaseTtlSeconds ?? 10);
    lease.on('lost', (err) => {
      if (this.#closed || this.#lease !== lease) return;
      this.#deps.logger.warn({ err }, 'Lost the relay lease; recording the relays again under a new one');
      this.#lease = undefined;
      for (const relay of this.#sessions.values()) void this.#record(relay);
    });
    this.#lease = lease;
    return lease;
  }

  /** Devices with a relay here. */
  get size(): number {
    return this.#sessions.size;
  }

  /** The relay of a device held by this process, if any. */
  local(deviceId: string): RelaySession | undefined {
    return this.#sessions.get(deviceId);
  }

  /** Where a device's relay is held (this process or another), from etcd; undefined when it has none. */
  async locate(deviceId: string): Promise<RelayRecord | undefined> {
    const text = await this.#deps.etcd.get(relayKey(deviceId)).string();
    return text === null ? undefined : (JSON.parse(text) as RelayRecord);
  }

  /** Whether a record names this process. */
  isSelf(record: RelayRecord): boolean {
    return record.pod === this.#deps.self.pod && record.address === this.#deps.self.address;
  }

  /** Accepts a device's WebSocket (already authenticated and checked by the caller) and starts its HTTP/2 session. */
  accept(deviceId: string, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#attach(deviceId, ws));
  }

  #attach(deviceId: string, ws: WebSocket): void {
    const duplex = createWebSocketStream(ws);
    duplex.on('error', () => undefined);
    const session = http2.connect(`http://${deviceId}.relay`, {
      createConnection: () => duplex,
      settings: { initialWindowSize: relayStreamWindowBytes },
      maxSessionMemory: relaySessionMemoryMb,
    });
    // The session has no handle until it connects (over a stream that is not a socket: at once or a tick later).
    const widen = (): void => session.setLocalWindowSize(relayConnectionWindowBytes);
    if (session.connecting) session.once('connect', widen);
    else widen();
    const relay = new RelaySession(deviceId, ws, session, this.#bounds);
    session.on('error', (err) => this.#deps.logger.debug({ err, deviceId }, 'A relay session failed'));
    const previous = this.#sessions.get(deviceId);
    this.#sessions.set(deviceId, relay);
    // The newest connection of a device wins; the one it replaces is told so, and does not come back.
    previous?.close(relayReplacedCloseCode, 'replaced by a newer relay of this device');
    let alive = true;
    ws.on('pong', () => (alive = true));
    const ping = setInterval(() => {
      if (!alive) {
        ws.terminate();
        return;
      }
      alive = false;
      ws.ping();
    }, this.#deps.pingIntervalMs ?? relayPingIntervalMs);
    ping.unref();
    const drop = (): void => {
      clearInterval(ping);
      session.destroy();
      if (this.#sessions.get(deviceId) !== relay) return;
      this.#sessions.delete(deviceId);
      void this.#unrecord(relay);
    };
    ws.once('close', drop);
    session.once('close', () => {
      if (ws.readyState === ws.OPEN) ws.close(1011, 'relay session closed');
    });
    void this.#record(relay);
    this.#deps.logger.info({ deviceId }, 'Opened a relay');
  }

  #storedRecord(relay: RelaySession): string {
    const record: StoredRelayRecord = { ...this.#deps.self, connection: relay.connection };
    return JSON.stringify(record);
  }

  async #record(relay: RelaySession): Promise<void> {
    const { deviceId } = relay;
    try {
      await this.#leaseOf().put(relayKey(deviceId)).value(this.#storedRecord(relay));
    } catch (err) {
      this.#deps.logger.warn({ err, deviceId }, 'Failed to record a relay in etcd; other replicas cannot forward to it');
    }
  }

  async #unrecord(relay: RelaySession): Promise<void> {
    // Only if it still names this connection: the device may have reconnected, here or to another process.
    const { deviceId } = relay;
    const etcd = this.#deps.etcd;
    try {
      await etcd
        .if(relayKey(deviceId), 'Value', '==', this.#storedRecord(relay))
        .then(etcd.delete().key(relayKey(deviceId)))
        .commit();
    } catch (err) {
      this.#deps.logger.warn({ err, deviceId }, 'Failed to remove a relay record; it lapses with the lease');
    }
  }

  /** Closes every relay and revokes the lease (the records go with it). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const relay of this.#sessions.values()) relay.close(1001, 'going away');
    this.#sessions.clear();
    await this.#lease?.revoke().catch(() => undefined);
  }
}

/** The response headers of the peer API that pass back to the caller; every other one is dropped. */
export const passedResponseHeaders = ['content-type', 'content-length', 'content-range', 'accept-ranges', 'etag', 'last-modified'] as const;

/** The headers of a device's answer that pass back to the caller. */
export function passedHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of passedResponseHeaders) {
    const value = headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}
