// The relay client against a tiny WebSocket server written here (the service's relay route is
// the service's to build): the device connects with its token, the test speaks HTTP/2 to the
// device's peer API over the WebSocket, and the device comes back after the connection drops.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { signGrant } from '../testing/grants.ts';
import { staticGrantKeys } from './grant.ts';
import { createPeerHandler } from './peer-server.ts';
import { relayBackoffMs, startRelay } from './relay.ts';

const service = generateKeyPairSync('ed25519');

/** The server half of RFC 6455, binary frames only: a Duplex of the payloads. */
function acceptWebSocket(req: IncomingMessage, socket: Socket): Duplex {
  const accept = createHash('sha1')
    .update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
    .digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  let pending = Buffer.alloc(0);
  const duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _e, callback) {
      const n = chunk.length;
      const head = n < 126 ? Buffer.from([0x82, n]) : n < 65536 ? Buffer.from([0x82, 126, n >> 8, n & 0xff]) : Buffer.alloc(10);
      if (n >= 65536) {
        head[0] = 0x82;
        head[1] = 127;
        head.writeBigUInt64BE(BigInt(n), 2);
      }
      socket.write(Buffer.concat([head, chunk]), callback);
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  socket.on('data', (data: Buffer) => {
    pending = Buffer.concat([pending, data]);
    for (;;) {
      if (pending.length < 2) return;
      const opcode = pending[0]! & 0x0f;
      let len = pending[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (pending.length < 4) return;
        len = pending.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (pending.length < 10) return;
        len = Number(pending.readBigUInt64BE(2));
        at = 10;
      }
      if (pending.length < at + 4 + len) return;
      const mask = pending.subarray(at, at + 4);
      const payload = Buffer.from(pending.subarray(at + 4, at + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
      pending = pending.subarray(at + 4 + len);
      if (opcode === 2 || opcode === 0) duplex.push(payload);
      if (opcode === 8) socket.destroy();
    }
  });
  socket.on('close', () => duplex.push(null));
  socket.on('error', () => undefined);
  return duplex;
}

let dir: string;
let server: http.Server;
let url: string;
const upgrades: { authorization: string | undefined; socket: Socket; session: http2.ClientHttp2Session }[] = [];
let block: Buffer;
let file: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshwork-relay-'));
  block = randomBytes(300_000);
  file = join(dir, 'held.bin');
  await writeFile(file, block);
  server = http.createServer((_, res) => res.writeHead(426).end());
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    if (req.headers.authorization !== 'Bearer device-token') {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const duplex = acceptWebSocket(req, socket);
    // The service is the HTTP/2 client over the WebSocket.
    const session = http2.connect('http://device.relay', { createConnection: () => duplex });
    session.on('error', () => undefined);
    upgrades.push({ authorization: req.headers.authorization, socket, session });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `ws://127.0.0.1:${(server.address() as { port: number }).port}/v1/devices/dLaptop/relay`;
});

afterAll(async () => {
  for (const u of upgrades) u.socket.destroy();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

async function fetchOver(session: http2.ClientHttp2Session, grant: string): Promise<{ status: number; body: Buffer }> {
  const req = session.request({
    ':path': `/p2p/v1/blocks/${createHash('sha256').update(block).digest('hex')}`,
    authorization: `Grant ${grant}`,
  });
  const chunks: Buffer[] = [];
  let status = 0;
  req.on('response', (h) => (status = Number(h[':status'])));
  req.on('data', (c: Buffer) => chunks.push(c));
  await new Promise((resolve, reject) => {
    req.on('close', resolve);
    req.on('error', reject);
  });
  return { status, body: Buffer.concat(chunks) };
}

describe('the relay client', () => {
  it('serves the peer API over the WebSocket, with the device token, and connects again after a drop', async () => {
    const sha = createHash('sha256').update(block).digest('hex');
    const s = await stat(file);
    const handler = createPeerHandler({
      deviceId: 'dLaptop',
      keys: staticGrantKeys({ k: service.publicKey }),
      content: { locateBlock: (o, h) => (o === 'o1' && h === sha ? [{ path: file, offset: 0, size: block.length, stat: s }] : []) },
    });
    const states: boolean[] = [];
    const relay = startRelay({ url, token: 'device-token', handler, onState: (st) => states.push(st.connected) });
    try {
      await waitFor(() => upgrades.length === 1, { description: 'the device to open the relay', timeoutMs: 10_000 });
      expect(upgrades[0]!.authorization).toBe('Bearer device-token');
      const iat = Math.floor(Date.now() / 1000);
      const grant = signGrant(
        { v: 1, kid: 'k', aud: 'dLaptop', sub: 'dPhone', iat, exp: iat + 300, scope: { kind: 'blocks', objectId: 'o1', blocks: [sha] } },
        service.privateKey,
      );
      const first = await fetchOver(upgrades[0]!.session, grant);
      expect(first.status).toBe(200);
      expect(first.body.equals(block)).toBe(true);
      const refused = await fetchOver(upgrades[0]!.session, 'forged.grant');
      expect(refused.status).toBe(401);

      // The service side drops the connection: the device reconnects (after about a second).
      upgrades[0]!.socket.destroy();
      await waitFor(() => upgrades.length === 2, { description: 'the device to reconnect', timeoutMs: 10_000 });
      const again = await fetchOver(upgrades[1]!.session, grant);
      expect(again.status).toBe(200);
      expect(states.slice(0, 3)).toEqual([true, false, true]);
    } finally {
      await relay.close();
    }
  });

  it.each([
    [1, 0, 500],
    [1, 1, 1000],
    [2, 1, 2000],
    [7, 1, 60_000],
    [20, 0, 30_000],
  ])('waits after failure %i (random %f) %i ms', (failures, random, ms) => {
    expect(relayBackoffMs(failures, random)).toBe(ms);
  });
});
