// Peer listeners talking directly on loopback (ADR 54, ADR 55): grants signed with a test key,
// certificates pinned, blocks spread over two peers and verified, a dead or silent peer dropped,
// a changed file never served.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPeerIdentity } from './certificate.ts';
import { signGrant } from '../testing/grants.ts';
import { staticGrantKeys, type GrantPayload } from './grant.ts';
import { PeerConnection, PeerConnections, fetchFromPeers, type WantedBlock } from './peer-client.ts';
import { FailedEndpoints } from './reach.ts';
import { createPeerHandler, startPeerListener, type BlockLocation, type PeerListener } from './peer-server.ts';

const blockSize = 256 * 1024;
const service = generateKeyPairSync('ed25519');
const keys = staticGrantKeys({ k1: service.publicKey });
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface Peer {
  deviceId: string;
  listener: PeerListener;
  fingerprint: string;
  served: number;
  endpoint: string;
}

let dir: string;
let content: Buffer;
let blocks: WantedBlock[];
let file: string;
const peers: Peer[] = [];
let silent: Server;
let silentPort: number;

function grant(aud: string, over: Partial<GrantPayload> = {}): string {
  const iat = Math.floor(Date.now() / 1000);
  return signGrant(
    {
      v: 1,
      kid: 'k1',
      aud,
      sub: 'dRequester',
      iat,
      exp: iat + 300,
      scope: { kind: 'blocks', objectId: 'o1', blocks: blocks.map((b) => b.sha256) },
      ...over,
    },
    service.privateKey,
  );
}

async function locations(): Promise<BlockLocation[]> {
  const s = await stat(file);
  return blocks.map((b) => ({ path: file, offset: b.offset, size: b.size, stat: { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino } }));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshwork-peer-'));
  content = randomBytes(blockSize * 10 + 1234);
  blocks = [];
  for (let offset = 0; offset < content.length; offset += blockSize) {
    const data = content.subarray(offset, offset + blockSize);
    blocks.push({ sha256: sha(data), size: data.length, offset });
  }
  file = join(dir, 'held.bin');
  await writeFile(file, content);
  const held = await locations();
  for (const deviceId of ['dA', 'dB']) {
    const identity = createPeerIdentity();
    const peer = { deviceId, fingerprint: identity.fingerprint, served: 0 } as Peer;
    const handler = createPeerHandler({
      deviceId,
      keys,
      content: {
        locateBlock: (objectId, sha256) => (objectId === 'o1' ? held.filter((l, i) => blocks[i]!.sha256 === sha256) : []),
        folders: () => [
          { objectId: 'o1', name: 'Held', dir },
          { objectId: 'o2', name: 'Other', dir: join(dir, 'sub') },
        ],
      },
      onServed: (n) => (peer.served += n),
    });
    peer.listener = await startPeerListener(identity, handler, '127.0.0.1', 0);
    peer.endpoint = `https://127.0.0.1:${peer.listener.port}`;
    peers.push(peer);
  }
  // Accepts TCP connections and never answers the TLS handshake: a peer that hangs (it reads and drops what comes).
  silent = createServer((socket) => socket.resume());
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentPort = (silent.address() as { port: number }).port;
});

afterAll(async () => {
  for (const p of peers) await p.listener.close();
  await new Promise((resolve) => silent.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

async function fetchInto(
  sources: Parameters<typeof fetchFromPeers>[0]['peers'],
  wanted = blocks,
  options: Pick<Parameters<typeof fetchFromPeers>[0], 'connectTimeoutMs' | 'failedEndpoints'> = {},
) {
  const out = Buffer.alloc(content.length);
  const result = await fetchFromPeers({
    blocks: wanted,
    peers: sources,
    connectTimeoutMs: 1000,
    ...options,
    write: (b, data) => {
      data.copy(out, b.offset);
      return Promise.resolve();
    },
  });
  return { out, ...result };
}

describe('the peer listener and fetchFromPeers', () => {
  it('spreads a file over two peers, every block verified, and counts bytes per peer', async () => {
    const before = peers.map((p) => p.served);
    const { out, left, bytesByDevice } = await fetchInto(
      peers.map((p) => ({ deviceId: p.deviceId, endpoints: [p.endpoint], fingerprint: p.fingerprint, grant: grant(p.deviceId) })),
    );
    expect(left).toEqual([]);
    expect(out.equals(content)).toBe(true);
    const a = bytesByDevice.get('dA') ?? 0;
    const b = bytesByDevice.get('dB') ?? 0;
    expect(a + b).toBe(content.length);
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(0);
    // What the requester counted is what each server says it served.
    expect(peers[0]!.served - before[0]!).toBe(a);
    expect(peers[1]!.served - before[1]!).toBe(b);
  });

  it('drops a peer that never completes a handshake and one whose certificate is not the announced one', async () => {
    const [a, b] = peers as [Peer, Peer];
    const started = performance.now();
    const { out, left, bytesByDevice, dropped } = await fetchInto([
      { deviceId: 'dSilent', endpoints: [`https://127.0.0.1:${silentPort}`], fingerprint: a.fingerprint, grant: grant('dSilent') },
      // dB's endpoint with dA's fingerprint: an impostor from the requester's point of view.
      { deviceId: 'dImpostor', endpoints: [b.endpoint], fingerprint: a.fingerprint, grant: grant('dA') },
      { deviceId: 'dA', endpoints: [a.endpoint], fingerprint: a.fingerprint, grant: grant('dA') },
    ]);
    expect(left).toEqual([]);
    expect(out.equals(content)).toBe(true);
    expect(bytesByDevice.get('dA')).toBe(content.length);
    expect(dropped.get('dSilent')).toMatch(/no TLS connection within/);
    expect(dropped.get('dImpostor')).toMatch(/not the one the device announced/);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('skips an endpoint that timed out for a while, and keeps trying one that refused (ADR 65)', async () => {
    const [a] = peers as [Peer];
    const failedEndpoints = new FailedEndpoints();
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const refusingPort = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const sources = [
      { deviceId: 'dSilent', endpoints: [`https://127.0.0.1:${silentPort}`], fingerprint: a.fingerprint, grant: grant('dSilent') },
      { deviceId: 'dGone', endpoints: [`https://127.0.0.1:${refusingPort}`], fingerprint: a.fingerprint, grant: grant('dGone') },
      { deviceId: 'dA', endpoints: [a.endpoint], fingerprint: a.fingerprint, grant: grant('dA') },
    ];
    // Per endpoint: the silent one gets 200 ms, the others the usual second.
    const timeouts: string[] = [];
    const connectTimeoutMs = (endpoint: string): number => {
      timeouts.push(endpoint);
      return endpoint.endsWith(`:${silentPort}`) ? 200 : 1000;
    };
    const first = await fetchInto(sources, blocks, { connectTimeoutMs, failedEndpoints });
    expect(first.out.equals(content)).toBe(true);
    expect(first.dropped.get('dSilent')).toMatch(/no TLS connection within 200 ms/);
    expect(first.dropped.get('dGone')).toMatch(/ECONNREFUSED/);
    timeouts.length = 0;
    const second = await fetchInto(sources, blocks, { connectTimeoutMs, failedEndpoints });
    expect(second.out.equals(content)).toBe(true);
    // The silent endpoint is not tried again; the refusing one is (it may be back any moment).
    expect(second.dropped.get('dSilent')).toMatch(/not tried again yet/);
    expect(second.dropped.get('dGone')).toMatch(/ECONNREFUSED/);
    expect(timeouts).not.toContain(`https://127.0.0.1:${silentPort}`);
    expect(timeouts).toContain(`https://127.0.0.1:${refusingPort}`);
  });

  it('returns what no peer delivered: a peer refusing the grant is dropped', async () => {
    const [a] = peers as [Peer];
    const { left, dropped } = await fetchInto([
      { deviceId: 'dA', endpoints: [a.endpoint], fingerprint: a.fingerprint, grant: grant('dB') },
    ]);
    expect(left.map((b) => b.sha256).sort()).toEqual(blocks.map((b) => b.sha256).sort());
    expect(dropped.get('dA')).toMatch(/403/);
  });

  it.each([
    ['no grant', undefined, 401, 'unauthenticated'],
    ['a forged grant', 'forged', 401, 'unauthenticated'],
    ['an expired grant', 'expired', 401, 'unauthenticated'],
    ['another device’s grant', 'other', 403, 'forbidden'],
    ['a grant for other blocks', 'scope', 403, 'forbidden'],
  ])('refuses a request with %s', async (_, kind, status, code) => {
    const a = peers[0]!;
    const connection = await PeerConnection.connect(a.endpoint, a.fingerprint);
    try {
      const forger = generateKeyPairSync('ed25519');
      const now = Math.floor(Date.now() / 1000);
      const token =
        kind === undefined
          ? ''
          : kind === 'forged'
            ? signGrant(JSON.parse(Buffer.from(grant('dA').split('.')[0]!, 'base64url').toString()) as GrantPayload, forger.privateKey)
            : kind === 'expired'
              ? grant('dA', { iat: now - 700, exp: now - 400 })
              : kind === 'other'
                ? grant('dB')
                : grant('dA', { scope: { kind: 'blocks', objectId: 'o1', blocks: [blocks[1]!.sha256] } });
      await expect(connection.fetchBlock(blocks[0]!.sha256, blocks[0]!.size, token)).rejects.toMatchObject({ status, code });
    } finally {
      connection.close();
    }
  });

  it('answers 404 for a block it does not hold, and never serves a file changed since it was synced', async () => {
    const a = peers[0]!;
    const connection = await PeerConnection.connect(a.endpoint, a.fingerprint);
    try {
      const absent = 'f'.repeat(64);
      await expect(
        connection.fetchBlock(absent, 1, grant('dA', { scope: { kind: 'blocks', objectId: 'o1', blocks: [absent] } })),
      ).rejects.toMatchObject({
        status: 404,
        code: 'not_found',
      });
      await expect(connection.fetchBlock(blocks[0]!.sha256, blocks[0]!.size, grant('dA'))).resolves.toHaveLength(blocks[0]!.size);
      // One byte of the last block changes in place: the stat no longer matches what was synced.
      const handle = await open(file, 'r+');
      await handle.write(Buffer.from([content[content.length - 1]! ^ 0xff]), 0, 1, content.length - 1);
      await handle.close();
      await expect(connection.fetchBlock(blocks[0]!.sha256, blocks[0]!.size, grant('dA'))).rejects.toMatchObject({ status: 404 });
    } finally {
      connection.close();
      await writeFile(file, content);
    }
  });

  it('serves the files route to a remote grant: objects, listings, files with ranges, and nothing outside the grant', async () => {
    const a = peers[0]!;
    await mkdir(join(dir, 'sub'), { recursive: true });
    await writeFile(join(dir, 'sub', 'note.txt'), 'hello, remote');
    const now = Math.floor(Date.now() / 1000);
    const remote = grant('dA', { sub: 'user:u1', iat: now, exp: now + 300, scope: { kind: 'remote', objects: { o2: 'reader' } } });
    const auth = { authorization: `Grant ${remote}` };
    const connection = await PeerConnection.connect(a.endpoint, a.fingerprint);
    try {
      const json = async (path: string) => {
        const r = await connection.get(path, auth);
        return { status: r.status, body: JSON.parse(r.body.toString()) as unknown };
      };
      expect(await json('/p2p/v1/files/')).toEqual({ status: 200, body: { objects: [{ objectId: 'o2', name: 'Other' }] } });
      expect(await json('/p2p/v1/files/o2/')).toMatchObject({
        status: 200,
        body: { entries: [{ name: 'note.txt', kind: 'file', size: 13 }] },
      });
      const whole = await connection.get('/p2p/v1/files/o2/note.txt', auth);
      expect(whole).toMatchObject({ status: 200, headers: { 'accept-ranges': 'bytes' } });
      expect(whole.body.toString()).toBe('hello, remote');
      expect(whole.headers.etag).toMatch(/^"[0-9a-f]{32}"$/);
      const part = await connection.get('/p2p/v1/files/o2/note.txt', { ...auth, range: 'bytes=7-' });
      expect(part).toMatchObject({ status: 206, headers: { 'content-range': 'bytes 7-12/13' } });
      expect(part.body.toString()).toBe('remote');
      expect((await connection.get('/p2p/v1/files/o2/note.txt', { ...auth, range: 'bytes=99-' })).status).toBe(416);
      // Another object than the grant names, a way out of the folder, a blocks grant, no grant.
      expect((await connection.get('/p2p/v1/files/o1/held.bin', auth)).status).toBe(403);
      expect((await connection.get('/p2p/v1/files/o2/%2e%2e/held.bin', auth)).status).toBe(400);
      expect((await connection.get('/p2p/v1/files/o2/note.txt', { authorization: `Grant ${grant('dA')}` })).status).toBe(403);
      expect((await connection.get('/p2p/v1/files/o2/note.txt')).status).toBe(401);
      expect((await connection.get('/p2p/v1/files/o2/missing.txt', auth)).status).toBe(404);
    } finally {
      connection.close();
    }
  });

  it('sends full 4 MiB blocks, many in flight on one connection, without the connection resetting them or holding more than two in memory', async () => {
    const big = randomBytes(12 * 4 * 1024 * 1024);
    const bigFile = join(dir, 'big.bin');
    await writeFile(bigFile, big);
    const s = await stat(bigFile);
    const wanted: WantedBlock[] = [];
    for (let offset = 0; offset < big.length; offset += 4 * 1024 * 1024)
      wanted.push({ sha256: sha(big.subarray(offset, offset + 4 * 1024 * 1024)), size: 4 * 1024 * 1024, offset });
    const identity = createPeerIdentity();
    let peakHeld = 0;
    let peakActive = 0;
    const handler = createPeerHandler({
      deviceId: 'dBig',
      keys,
      content: {
        locateBlock: (_, h) => {
          peakActive = Math.max(peakActive, handler.active());
          return wanted.filter((b) => b.sha256 === h).map((b) => ({ path: bigFile, offset: b.offset, size: b.size, stat: s }));
        },
      },
      onServed: () => (peakHeld = Math.max(peakHeld, handler.heldBlockBytes())),
    });
    const listener = await startPeerListener(identity, handler, '127.0.0.1', 0);
    try {
      const iat = Math.floor(Date.now() / 1000);
      const token = signGrant(
        {
          v: 1,
          kid: 'k1',
          aud: 'dBig',
          sub: 'dRequester',
          iat,
          exp: iat + 300,
          scope: { kind: 'blocks', objectId: 'o1', blocks: wanted.map((b) => b.sha256) },
        },
        service.privateKey,
      );
      const out = Buffer.alloc(big.length);
      const result = await fetchFromPeers({
        blocks: wanted,
        peers: [{ deviceId: 'dBig', endpoints: [`https://127.0.0.1:${listener.port}`], fingerprint: identity.fingerprint, grant: token }],
        streamsPerPeer: 8,
        write: (b, data) => {
          data.copy(out, b.offset);
          return Promise.resolve();
        },
      });
      expect(result.dropped).toEqual(new Map());
      expect(result.left).toEqual([]);
      expect(out.equals(big)).toBe(true);
      // Eight requests were in at once; only two blocks (the default bound, 8 MiB) were read and unsent.
      expect(peakActive).toBeGreaterThan(2);
      expect(peakHeld).toBeGreaterThan(0);
      expect(peakHeld).toBeLessThanOrEqual(8 * 1024 * 1024);
      expect(handler.heldBlockBytes()).toBe(0);
    } finally {
      await listener.close();
    }
  });
});

/** A TCP hop in front of a peer listener that counts the connections made through it and can break them. */
async function countingHop(
  port: number,
): Promise<{ endpoint: string; connections: () => number; breakAll: () => void; close: () => Promise<void> }> {
  let count = 0;
  const open = new Set<Socket>();
  const hop = createServer((inbound) => {
    count++;
    const outbound = connect(port, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => undefined);
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => hop.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `https://127.0.0.1:${(hop.address() as { port: number }).port}`,
    connections: () => count,
    breakAll: () => {
      for (const s of open) s.destroy();
    },
    close: () => {
      for (const s of open) s.destroy();
      return new Promise((resolve) => hop.close(() => resolve()));
    },
  };
}

describe('peer connections kept between files', () => {
  // A peer of its own: the tests above change the shared file, which its peers then refuse to serve.
  let own: { deviceId: string; listener: PeerListener; fingerprint: string; endpoint: string };
  let ownContent: Buffer;
  let ownBlocks: WantedBlock[];
  const ownGrant = (aud: string): string =>
    grant(aud, { scope: { kind: 'blocks', objectId: 'o1', blocks: ownBlocks.map((b) => b.sha256) } });

  beforeAll(async () => {
    ownContent = randomBytes(blockSize * 3 + 17);
    ownBlocks = [];
    for (let offset = 0; offset < ownContent.length; offset += blockSize) {
      const data = ownContent.subarray(offset, offset + blockSize);
      ownBlocks.push({ sha256: sha(data), size: data.length, offset });
    }
    const ownFile = join(dir, 'kept.bin');
    await writeFile(ownFile, ownContent);
    const s = await stat(ownFile);
    const held: BlockLocation[] = ownBlocks.map((b) => ({
      path: ownFile,
      offset: b.offset,
      size: b.size,
      stat: { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino },
    }));
    const identity = createPeerIdentity();
    const handler = createPeerHandler({
      deviceId: 'dKept',
      keys,
      content: {
        locateBlock: (objectId, sha256) => (objectId === 'o1' ? held.filter((_, i) => ownBlocks[i]!.sha256 === sha256) : []),
        folders: () => [],
      },
    });
    const listener = await startPeerListener(identity, handler, '127.0.0.1', 0);
    own = { deviceId: 'dKept', listener, fingerprint: identity.fingerprint, endpoint: `https://127.0.0.1:${listener.port}` };
  });

  afterAll(async () => {
    await own.listener.close();
  });

  async function fetchOwn(source: Parameters<typeof fetchFromPeers>[0]['peers'][number], connections?: PeerConnections) {
    const out = Buffer.alloc(ownContent.length);
    const result = await fetchFromPeers({
      blocks: ownBlocks,
      peers: [source],
      connectTimeoutMs: 1000,
      ...(connections === undefined ? {} : { connections }),
      write: (b, data) => {
        data.copy(out, b.offset);
        return Promise.resolve();
      },
    });
    return { out, ...result };
  }

  it('makes one connection to a peer for several fetches, where each fetch alone connects again', async () => {
    const hop = await countingHop(own.listener.port);
    const pool = new PeerConnections();
    try {
      const source = { deviceId: own.deviceId, endpoints: [hop.endpoint], fingerprint: own.fingerprint, grant: ownGrant(own.deviceId) };
      for (let i = 0; i < 3; i++) {
        const { out, left } = await fetchOwn(source, pool);
        expect(left).toEqual([]);
        expect(out.equals(ownContent)).toBe(true);
      }
      expect(hop.connections()).toBe(1);
      expect(pool.size).toBe(1);
      for (let i = 0; i < 2; i++) expect((await fetchOwn(source)).left).toEqual([]);
      expect(hop.connections()).toBe(3);
    } finally {
      pool.closeAll();
      await hop.close();
    }
  });

  it('connects again once the kept connection broke, and closes one whose request failed', async () => {
    const hop = await countingHop(own.listener.port);
    const pool = new PeerConnections();
    try {
      const source = { deviceId: own.deviceId, endpoints: [hop.endpoint], fingerprint: own.fingerprint, grant: ownGrant(own.deviceId) };
      expect((await fetchOwn(source, pool)).left).toEqual([]);
      hop.breakAll();
      await vi.waitFor(() => expect(pool.size).toBe(0));
      const again = await fetchOwn(source, pool);
      expect(again.left).toEqual([]);
      expect(again.out.equals(ownContent)).toBe(true);
      expect(hop.connections()).toBe(2);
      // A grant for another device: refused, and the connection it went over is not kept.
      const refused = await fetchOwn({ ...source, grant: ownGrant('dOther') }, pool);
      expect(refused.dropped.get(own.deviceId)).toMatch(/403/);
      expect(pool.size).toBe(0);
      expect((await fetchOwn(source, pool)).left).toEqual([]);
      expect(hop.connections()).toBe(3);
    } finally {
      pool.closeAll();
      await hop.close();
    }
  });

  it('lets an idle connection go after its idle time, and fetches nothing once closed', async () => {
    const pool = new PeerConnections({ idleMs: 50 });
    const source = { deviceId: own.deviceId, endpoints: [own.endpoint], fingerprint: own.fingerprint, grant: ownGrant(own.deviceId) };
    expect((await fetchOwn(source, pool)).left).toEqual([]);
    expect(pool.size).toBe(1);
    await vi.waitFor(() => expect(pool.size).toBe(0));
    pool.closeAll();
    const closed = await fetchOwn(source, pool);
    expect(closed.left).toHaveLength(ownBlocks.length);
    expect(closed.dropped.get(own.deviceId)).toMatch(/closing/);
  });
});
