// The relay client (ADR 52's device half): one outbound WebSocket to the service,
// `GET /v1/devices/{id}/relay` with the device token, whose binary messages carry one HTTP/2
// connection in which this device is the server (`http2.performServerHandshake`), serving the
// same peer API as the TLS listener. It reconnects with backoff when it drops: 1 s doubling to
// 60 s, jittered, back to 1 s after a connection that opened. The WebSocket is `ws`'s, which
// masks what the device sends with the native `bufferutil` where its prebuilt binary loads
// (ADR 72): Node's built-in client masks every relayed byte in a JavaScript loop.
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { relayReplacedCloseCode } from '@meshwork/contract';
import { peerSessionMemoryMb } from './peer-server.ts';

export interface RelayOptions {
  /** The relay URL: `ws(s)://server/v1/devices/{id}/relay`. */
  url: string;
  token: string;
  handler: { handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void };
  /** Connected, dropped (with why) — for logs and tests. */
  onState?: (state: { connected: boolean; reason?: string; retryInMs?: number }) => void;
}

/** The wait before reconnect attempt `failures` (1-based): 1 s doubling to 60 s, jittered over its upper half. */
export function relayBackoffMs(failures: number, random: number): number {
  const exp = Math.min(60_000, 1000 * 2 ** Math.max(0, failures - 1));
  return Math.round(exp * (0.5 + random * 0.5));
}

/** Bytes the WebSocket may hold unsent before writes wait (back-pressure onto HTTP/2). */
const maxBuffered = 4 * 1024 * 1024;

/** The largest message the device accepts from the service (the service's own bound on what it accepts). */
const maxPayload = 8 * 1024 * 1024;

/** A Duplex over a WebSocket's binary messages. */
function duplexOf(ws: WebSocket): Duplex {
  const send = (chunk: Buffer, callback: (err?: Error | null) => void): void => {
    if (ws.readyState !== WebSocket.OPEN) return callback(new Error('the relay connection closed'));
    // Over the bound, the write completes once this message reached the socket (and with it
    // every one before it): no polling, and HTTP/2 waits meanwhile.
    let waiting = false;
    ws.send(chunk, { binary: true }, (err) => {
      if (waiting) callback(err ?? null);
    });
    if (ws.bufferedAmount < maxBuffered) return callback();
    waiting = true;
  };
  const duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      send(chunk, callback);
    },
    // HTTP/2 writes a frame's header and payload as separate chunks in one corked batch: one
    // message for the batch instead of one per chunk at least halves the messages, and with them
    // the frames built and the socket writes (ADR 65).
    writev(chunks: { chunk: Buffer }[], callback) {
      send(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
    },
    final(callback) {
      ws.close();
      callback();
    },
    destroy(err, callback) {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close();
      callback(err);
    },
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) duplex.push(data);
  });
  ws.on('close', () => duplex.push(null));
  return duplex;
}

/** Keeps the relay connection open until `close` (reconnecting with backoff). */
export function startRelay(options: RelayOptions): { close(): Promise<void> } {
  let closed = false;
  let current: WebSocket | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let loopDone!: () => void;
  const finished = new Promise<void>((resolve) => (loopDone = resolve));

  const connect = (): void => {
    if (closed) return loopDone();
    const ws = new WebSocket(options.url, {
      headers: { authorization: `Bearer ${options.token}` },
      perMessageDeflate: false,
      maxPayload,
    });
    current = ws;
    let session: http2.ServerHttp2Session | undefined;
    ws.on('open', () => {
      failures = 0;
      options.onState?.({ connected: true });
      session = http2.performServerHandshake(duplexOf(ws), { maxSessionMemory: peerSessionMemoryMb });
      session.on('stream', (stream, headers) => options.handler.handle(stream, headers));
      session.on('error', () => ws.close());
    });
    ws.on('close', (code: number, reasonBytes: Buffer) => {
      session?.destroy();
      current = undefined;
      if (closed) return loopDone();
      if (code === relayReplacedCloseCode) {
        // Another process of this device holds the relay now: taking it back would start a tug of war.
        options.onState?.({
          connected: false,
          reason: 'replaced by another relay of this device (another meshwork sync); not reconnecting',
        });
        return loopDone();
      }
      failures++;
      const retryInMs = relayBackoffMs(failures, Math.random());
      const reason = reasonBytes.toString();
      options.onState?.({ connected: false, reason: `closed (${code}${reason ? ` ${reason}` : ''})`, retryInMs });
      timer = setTimeout(connect, retryInMs);
    });
    ws.on('error', () => undefined); // a close event follows
  };
  connect();
  return {
    async close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      if (current === undefined) loopDone();
      else current.close();
      await finished;
    },
  };
}
