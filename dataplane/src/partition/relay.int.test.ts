// The relay (ADR 52) against two real replicas of one partition, etcd and MinIO, with a minimal
// device written here: a `ws` client whose WebSocket carries an HTTP/2 connection in which the
// device is the server (`http2.performServerHandshake`), serving a fixed peer API. A 64 MiB file
// comes through byte-exact, with Range; a relay held by replica A is reached through replica B
// (one hop); the caller's credentials never reach the device; a device dropping mid-stream ends
// the caller's download with an error, not a hang; past the per-device bound of streams the
// service answers 503 relay_busy; a replica given tighter bounds (MESHWORK_RELAY_*) holds a
// device to them; a device without a relay is 503 device_offline.
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { createWebSocketStream } from 'ws';
import { grantKeysOf, verifyGrant, type GrantPayload, type GrantRequest } from '@meshwork/contract';
import { MeshworkClient, type DeviceClient } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { startGateway, type RunningGateway } from '../../../e2e/dataplane/gateway-process.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

let etcd: EtcdServer;
let minio: MinioServer;
let replicaA: RunningPartition;
let replicaB: RunningPartition;
let gateway: RunningGateway;
let owner: DeviceClient;
let aliceId: string;
let account: MeshworkClient;
let nas: DeviceClient;
let reader: DeviceClient;
let stranger: DeviceClient;
let objectId: string;
let otherObjectId: string;
let keys: Map<string, KeyObject>;

const big = randomBytes(64 * 1024 * 1024);
const bigSha = createHash('sha256').update(big).digest('hex');
const block = randomBytes(100_000);
const blockSha = createHash('sha256').update(block).digest('hex');

/** A device's relay as the test drives it. */
interface FakeDevice {
  ws: WebSocket;
  session: ServerHttp2Session;
  /** The headers of every request the device received. */
  seen: IncomingHttpHeaders[];
  close(): Promise<void>;
}

function refuse(stream: ServerHttp2Stream, status: number, code: string): void {
  stream.respond({ ':status': status, 'content-type': 'application/json' });
  stream.end(JSON.stringify({ error: { code, message: code } }));
}

/** The peer API of the contract, fixed: one object holding big.bin, slow.bin and hang.bin, and one block. */
function servePeerApi(deviceId: string, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  stream.on('error', () => undefined);
  const path = String(headers[':path']);
  const auth = String(headers.authorization ?? '');
  const token = auth.startsWith('Grant ') ? auth.slice(6) : '';
  let request: GrantRequest;
  const blockMatch = /^\/p2p\/v1\/blocks\/([0-9a-f]{64})$/.exec(path);
  const fileMatch = /^\/p2p\/v1\/files\/([^/]*)\/?(.*)$/.exec(path);
  if (blockMatch) request = { kind: 'blocks', sha256: blockMatch[1]! };
  else if (fileMatch?.[1]) request = { kind: 'remote', objectId: fileMatch[1] };
  else request = { kind: 'remote', objectId: '' };
  const listing = request.kind === 'remote' && request.objectId === '';
  let grant: GrantPayload;
  try {
    grant = verifyGrant(token, { keys, audience: deviceId, request: listing ? undefined : request });
  } catch (err) {
    refuse(stream, (err as { status: number }).status, (err as { code: string }).code);
    return;
  }
  if (blockMatch) {
    if (blockMatch[1] !== blockSha) return refuse(stream, 404, 'not_found');
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': String(block.length) });
    stream.end(block);
    return;
  }
  if (listing) {
    if (grant.scope.kind !== 'remote') return refuse(stream, 403, 'forbidden');
    const objects = Object.keys(grant.scope.objects).map((id) => ({ objectId: id, name: id === objectId ? 'Films' : 'Other' }));
    stream.respond({ ':status': 200, 'content-type': 'application/json', 'set-cookie': 'device=secret' });
    stream.end(JSON.stringify({ objects }));
    return;
  }
  const file = fileMatch?.[2] ?? '';
  if (file === 'big.bin') {
    const range = /^bytes=(\d+)-(\d+)$/.exec(String(headers.range ?? ''));
    const [start, end] = range ? [Number(range[1]), Number(range[2])] : [0, big.length - 1];
    stream.respond({
      ':status': range ? 206 : 200,
      'content-type': 'application/octet-stream',
      'content-length': String(end - start + 1),
      etag: `"${bigSha}"`,
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${end}/${big.length}` } : {}),
    });
    stream.end(big.subarray(start, end + 1));
    return;
  }
  if (file === 'slow.bin') {
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': String(8 * 1024 * 1024) });
    stream.write(big.subarray(0, 1024 * 1024));
    return; // the rest never comes
  }
  if (file === 'hang.bin') return; // no answer at all
  if (file === '') {
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    stream.end(JSON.stringify({ entries: [{ name: 'big.bin', kind: 'file', size: big.length, mtime: '2026-01-01T00:00:00Z' }] }));
    return;
  }
  refuse(stream, 404, 'not_found');
}

/** Opens a device's relay to `baseUrl` as the agent would. */
async function connectDevice(baseUrl: string, device: DeviceClient): Promise<FakeDevice> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/v1/devices/${device.deviceId}/relay`, {
    headers: { authorization: `Bearer ${device.token ?? ''}` },
    perMessageDeflate: false,
  });
  // At once, before 'open': the service's HTTP/2 preface may come in the same packet as the
  // upgrade's answer, and a message with no listener yet would be lost.
  const duplex = createWebSocketStream(ws);
  duplex.on('error', () => undefined);
  const session = http2.performServerHandshake(duplex);
  await once(ws, 'open');
  session.on('error', () => undefined);
  const seen: IncomingHttpHeaders[] = [];
  session.on('stream', (stream, headers) => {
    seen.push(headers);
    servePeerApi(device.deviceId, stream, headers);
  });
  return {
    ws,
    session,
    seen,
    close: async () => {
      if (ws.readyState === WebSocket.CLOSED) return;
      const closed = once(ws, 'close');
      ws.terminate();
      await closed;
    },
  };
}

/** Waits until the service has recorded the device's relay. */
async function relayed(via: MeshworkClient, deviceId: string): Promise<void> {
  await waitFor(
    async () => {
      const res = await via.raw('GET', `/v1/devices/${deviceId}/remote/files/`);
      if (res.status !== 200) throw new Error(`${res.status} ${res.text}`);
      return true;
    },
    {
      description: `the relay of ${deviceId} to be usable`,
      timeoutMs: 15_000,
      intervalMs: 100,
    },
  );
}

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-relay' }), startMinio({ bucket: 'relay' })]);
  const stores = { etcdEndpoint: etcd.endpoint, minio };
  replicaA = await startPartition(stores, { partition: 'relay', env: { ...unthrottledEnv, MESHWORK_POD_NAME: 'relay-a' } });
  replicaB = await startPartition(stores, {
    partition: 'relay',
    adminToken: replicaA.adminToken,
    env: { ...unthrottledEnv, MESHWORK_POD_NAME: 'relay-b' },
  });
  gateway = await startGateway({ etcdEndpoint: etcd.endpoint, env: { MESHWORK_GATEWAY_PROBE_INTERVAL_MS: '200' } });
  const admin = new MeshworkClient({ baseUrl: replicaA.url, token: replicaA.adminToken, retry: { maxAttempts: 1 } });
  const alice = await admin.createUser('alice');
  account = admin.as(alice.token);
  aliceId = alice.id;
  owner = await account.registerDeviceClient('laptop');
  nas = await account.registerDeviceClient('nas');
  const bob = await admin.createUser('bob');
  reader = await admin.as(bob.token).registerDeviceClient('bob-laptop');
  stranger = await admin.as((await admin.createUser('carol')).token).registerDeviceClient('carol-laptop');
  objectId = (await owner.createObject({ name: 'Films', cloudStorage: false })).id;
  otherObjectId = (await owner.createObject({ name: 'Private', cloudStorage: false })).id;
  await owner.setMember(objectId, bob.id, 'reader');
  keys = grantKeysOf(await owner.grantKeys());
}, 120_000);

afterAll(async () => {
  await Promise.all([gateway?.stop(), replicaA?.stop(), replicaB?.stop()]);
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

describe('the relay', () => {
  it('refuses a relay to anyone but the device itself, and answers a plain GET 400', async () => {
    for (const [caller, status] of [
      [owner, 403],
      [account, 403],
    ] as const) {
      const ws = new WebSocket(`${replicaA.url.replace(/^http/, 'ws')}/v1/devices/${nas.deviceId}/relay`, {
        headers: { authorization: `Bearer ${caller.token ?? ''}` },
      });
      const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
      expect(res.statusCode).toBe(status);
    }
    const anonymous = new WebSocket(`${replicaA.url.replace(/^http/, 'ws')}/v1/devices/${nas.deviceId}/relay`);
    const [, res] = (await once(anonymous, 'unexpected-response')) as [unknown, IncomingMessage];
    expect(res.statusCode).toBe(401);
    expect((await nas.raw('GET', `/v1/devices/${nas.deviceId}/relay`)).status).toBe(400);
  });

  it('answers 503 device_offline with Retry-After for a device without a relay', async () => {
    const res = await owner.raw('GET', `/v1/devices/${nas.deviceId}/remote/files/`);
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ error: { code: 'device_offline' } });
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('brings a 64 MiB file through byte-exact, Range included, and strips the caller credentials', async () => {
    const device = await connectDevice(replicaA.url, nas);
    try {
      await relayed(owner, nas.deviceId);
      const listing = await owner.raw('GET', `/v1/devices/${nas.deviceId}/remote/files/`);
      expect(listing.body).toEqual({
        objects: expect.arrayContaining([
          { objectId, name: 'Films' },
          { objectId: otherObjectId, name: 'Other' },
        ]) as unknown,
      });
      expect(listing.headers['set-cookie']).toBeUndefined();
      expect(await (await fetch(`${replicaA.url}/metrics`)).text()).toMatch(/^meshwork_relays_open 1$/m);
      const res = await fetch(`${replicaA.url}/v1/devices/${nas.deviceId}/remote/files/${objectId}/big.bin`, {
        headers: { authorization: `Bearer ${owner.token ?? ''}`, cookie: 'mw_session=mws.x.y' },
      });
      expect(res.status).toBe(200);
      const body = Buffer.from(await res.arrayBuffer());
      expect(body.length).toBe(big.length);
      expect(createHash('sha256').update(body).digest('hex')).toBe(bigSha);
      const ranged = await fetch(`${replicaA.url}/v1/devices/${nas.deviceId}/remote/files/${objectId}/big.bin`, {
        headers: { authorization: `Bearer ${owner.token ?? ''}`, range: 'bytes=1000-1999' },
      });
      expect(ranged.status).toBe(206);
      expect(ranged.headers.get('content-range')).toBe(`bytes 1000-1999/${big.length}`);
      expect(Buffer.from(await ranged.arrayBuffer()).equals(big.subarray(1000, 2000))).toBe(true);
      // What the device saw: a grant for the caller's user, and nothing of the caller's credentials.
      const seen = device.seen.find((h) => h[':path'] === `/p2p/v1/files/${objectId}/big.bin`)!;
      expect(seen.cookie).toBeUndefined();
      expect(String(seen.authorization)).toMatch(/^Grant /);
      expect(JSON.stringify(device.seen)).not.toContain(owner.token ?? 'no token');
      const grant = verifyGrant(String(seen.authorization).slice(6), { keys, audience: nas.deviceId });
      expect(grant).toMatchObject({ sub: `user:${aliceId}`, scope: { kind: 'remote', objects: { [objectId]: 'owner' } } });
    } finally {
      await device.close();
    }
  });

  it('passes the relay and remote access through the gateway', async () => {
    const device = await connectDevice(gateway.url, nas);
    try {
      const viaGateway = new MeshworkClient({ baseUrl: gateway.url, token: owner.token, retry: { maxAttempts: 1 } });
      await relayed(viaGateway, nas.deviceId);
      const res = await fetch(`${gateway.url}/v1/devices/${nas.deviceId}/remote/files/${objectId}/big.bin`, {
        headers: { authorization: `Bearer ${owner.token ?? ''}` },
      });
      expect(res.status).toBe(200);
      expect(
        createHash('sha256')
          .update(Buffer.from(await res.arrayBuffer()))
          .digest('hex'),
      ).toBe(bigSha);
      // A refusal comes back as the partition wrote it.
      const refused = new WebSocket(`${gateway.url.replace(/^http/, 'ws')}/v1/devices/${nas.deviceId}/relay`, {
        headers: { authorization: `Bearer ${owner.token ?? ''}` },
      });
      const [, answer] = (await once(refused, 'unexpected-response')) as [unknown, IncomingMessage];
      expect(answer.statusCode).toBe(403);
    } finally {
      await device.close();
    }
  });

  it('lets a member reach only the objects it may read, and nobody else', async () => {
    const device = await connectDevice(replicaA.url, nas);
    try {
      await relayed(owner, nas.deviceId);
      const listing = await reader.raw('GET', `/v1/devices/${nas.deviceId}/remote/files/`);
      expect(listing.body).toEqual({ objects: [{ objectId, name: 'Films' }] });
      expect((await reader.raw('GET', `/v1/devices/${nas.deviceId}/remote/files/${objectId}/`)).status).toBe(200);
      expect((await reader.raw('GET', `/v1/devices/${nas.deviceId}/remote/files/${otherObjectId}/big.bin`)).status).toBe(404);
      expect((await stranger.raw('GET', `/v1/devices/${nas.deviceId}/remote/files/`)).status).toBe(404);
      expect((await stranger.raw('GET', `/v1/devices/${nas.deviceId}/remote/files/${objectId}/big.bin`)).status).toBe(404);
    } finally {
      await device.close();
    }
  });

  it('fetches a block with a grant from sources, and refuses a grant for another device or caller', async () => {
    const device = await connectDevice(replicaA.url, nas);
    try {
      await relayed(owner, nas.deviceId);
      await owner.putEntry(
        objectId,
        'clip.bin',
        { kind: 'file', blocks: [{ sha256: blockSha, size: block.length }] },
        { ifNoneMatch: '*' },
      );
      const answer = await owner.getEntry(objectId, 'clip.bin');
      if (answer.notModified) throw new Error('expected the entry');
      await nas.setPresence(nas.deviceId, { endpoints: [], holds: [{ objectId, path: 'clip.bin', version: answer.entry.version }] });
      const source = (await reader.sources(objectId, 'clip.bin')).sources[0];
      if (source?.kind !== 'device' || source.grant === undefined) throw new Error('expected a device source with a grant');
      const path = `/v1/devices/${nas.deviceId}/remote/blocks/${blockSha}`;
      const res = await reader.raw('GET', path, { headers: { 'meshwork-grant': source.grant } });
      expect(res.status).toBe(200);
      expect(Buffer.from(res.text, 'latin1').length).toBeGreaterThan(0);
      const bytes = await fetch(`${replicaB.url}${path}`, {
        headers: { authorization: `Bearer ${reader.token ?? ''}`, 'meshwork-grant': source.grant },
      });
      expect(
        createHash('sha256')
          .update(Buffer.from(await bytes.arrayBuffer()))
          .digest('hex'),
      ).toBe(blockSha);
      // The grant names the reader's device as its subject: another device cannot use it.
      expect((await owner.raw('GET', path, { headers: { 'meshwork-grant': source.grant } })).status).toBe(403);
      expect((await reader.raw('GET', path)).status).toBe(403);
      expect((await reader.raw('GET', path, { headers: { 'meshwork-grant': 'forged.grant' } })).status).toBe(403);
      expect(
        (
          await reader.raw('GET', `/v1/devices/${owner.deviceId}/remote/blocks/${blockSha}`, {
            headers: { 'meshwork-grant': source.grant },
          })
        ).status,
      ).toBe(403);
      await nas.clearPresence(nas.deviceId);
    } finally {
      await device.close();
    }
  });

  it('splits the grants of a file of more blocks than one grant may name, each small enough for a request header (ADR 66)', async () => {
    const device = await connectDevice(replicaA.url, nas);
    try {
      await relayed(owner, nas.deviceId);
      // 300 distinct blocks (one the device serves, last) and one repeated: 300 × 89 bytes would
      // make a single grant of 26 KiB, over the 16 KiB of headers an HTTP/1.1 request may carry.
      const others = Array.from({ length: 299 }, () => ({ sha256: createHash('sha256').update(randomBytes(8)).digest('hex'), size: 1 }));
      const list = [...others, others[0]!, { sha256: blockSha, size: block.length }];
      await owner.putEntry(objectId, 'huge.bin', { kind: 'file', blocks: list }, { ifNoneMatch: '*' });
      const answer = await owner.getEntry(objectId, 'huge.bin');
      if (answer.notModified) throw new Error('expected the entry');
      await nas.setPresence(nas.deviceId, { endpoints: [], holds: [{ objectId, path: 'huge.bin', version: answer.entry.version }] });
      const source = (await reader.sources(objectId, 'huge.bin')).sources[0];
      if (source?.kind !== 'device' || source.grants === undefined) throw new Error('expected a device source with grants');
      expect(source.grant).toBeUndefined();
      expect(source.grants).toHaveLength(3);
      const named = source.grants.map((g) => {
        expect(g.length).toBeLessThan(12 * 1024);
        const payload = verifyGrant(g, { keys, audience: nas.deviceId });
        if (payload.scope.kind !== 'blocks') throw new Error('expected a blocks grant');
        return payload.scope.blocks;
      });
      // Every distinct block once, in order: 128, 128 and 44.
      expect(named.map((b) => b.length)).toEqual([128, 128, 44]);
      expect(named.flat()).toEqual([...others.map((b) => b.sha256), blockSha]);
      const path = `/v1/devices/${nas.deviceId}/remote/blocks/${blockSha}`;
      const res = await reader.raw('GET', path, { headers: { 'meshwork-grant': source.grants[2]! } });
      expect(res.status).toBe(200);
      expect(createHash('sha256').update(res.bytes).digest('hex')).toBe(blockSha);
      // A grant that does not name the block does not do.
      expect((await reader.raw('GET', path, { headers: { 'meshwork-grant': source.grants[0]! } })).status).toBe(403);
      await nas.clearPresence(nas.deviceId);
    } finally {
      await device.close();
    }
  });

  it('reaches a relay held by replica A through replica B, one hop', async () => {
    const device = await connectDevice(replicaA.url, nas);
    try {
      const viaB = new MeshworkClient({ baseUrl: replicaB.url, token: owner.token, retry: { maxAttempts: 1 } });
      await relayed(viaB, nas.deviceId);
      const res = await fetch(`${replicaB.url}/v1/devices/${nas.deviceId}/remote/files/${objectId}/big.bin`, {
        headers: { authorization: `Bearer ${owner.token ?? ''}`, range: 'bytes=0-1048575' },
      });
      expect(res.status).toBe(206);
      expect(Buffer.from(await res.arrayBuffer()).equals(big.subarray(0, 1048576))).toBe(true);
    } finally {
      await device.close();
    }
    // Gone from A: B says offline, it does not loop.
    const viaB = new MeshworkClient({ baseUrl: replicaB.url, token: owner.token, retry: { maxAttempts: 1 } });
    await waitFor(async () => ((await viaB.raw('GET', `/v1/devices/${nas.deviceId}/remote/files/`)).status === 503 ? true : undefined), {
      description: 'the relay to be gone',
      timeoutMs: 15_000,
      intervalMs: 100,
    });
  });

  it("ends the caller's download with an error, not a hang, when the device drops mid-stream", async () => {
    const device = await connectDevice(replicaA.url, nas);
    await relayed(owner, nas.deviceId);
    const res = await fetch(`${replicaA.url}/v1/devices/${nas.deviceId}/remote/files/${objectId}/slow.bin`, {
      headers: { authorization: `Bearer ${owner.token ?? ''}` },
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    const started = Date.now();
    const rest = (async () => {
      for (;;) if ((await reader.read()).done) return 'ended';
    })();
    await device.close();
    await expect(rest).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('answers 503 relay_busy past 16 requests in flight to one device', async () => {
    const device = await connectDevice(replicaA.url, nas);
    const controllers: AbortController[] = [];
    try {
      await relayed(owner, nas.deviceId);
      const url = `${replicaA.url}/v1/devices/${nas.deviceId}/remote/files/${objectId}/hang.bin`;
      const pending = Array.from({ length: 16 }, () => {
        const controller = new AbortController();
        controllers.push(controller);
        return fetch(url, { headers: { authorization: `Bearer ${owner.token ?? ''}` }, signal: controller.signal }).catch(() => undefined);
      });
      await waitFor(
        () => Promise.resolve(device.seen.filter((h) => String(h[':path']).endsWith('hang.bin')).length === 16 ? true : undefined),
        {
          description: 'the device to have 16 requests',
          timeoutMs: 10_000,
          intervalMs: 50,
        },
      );
      const res = await owner.raw('GET', `/v1/devices/${nas.deviceId}/remote/files/${objectId}/big.bin`);
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ error: { code: 'relay_busy' } });
      expect(res.headers['retry-after']).toBe('1');
      for (const c of controllers) c.abort();
      await Promise.all(pending);
      // The streams are released: the next request goes through.
      await waitFor(
        async () => ((await owner.raw('GET', `/v1/devices/${nas.deviceId}/remote/files/${objectId}/`)).status === 200 ? true : undefined),
        { description: 'the streams to be released', timeoutMs: 10_000, intervalMs: 100 },
      );
    } finally {
      await device.close();
    }
  });

  it('holds a device to the relay bounds its partition is given (MESHWORK_RELAY_*)', async () => {
    // A third replica with tight bounds: 2 streams and 4 MiB/s per device.
    const tight = await startPartition(
      { etcdEndpoint: etcd.endpoint, minio },
      {
        partition: 'relay',
        adminToken: replicaA.adminToken,
        env: { ...unthrottledEnv, MESHWORK_POD_NAME: 'relay-c', MESHWORK_RELAY_MAX_STREAMS: '2', MESHWORK_RELAY_BYTES_PER_SECOND: '4Mi' },
      },
    );
    const viaC = new MeshworkClient({ baseUrl: tight.url, token: owner.token, retry: { maxAttempts: 1 } });
    const device = await connectDevice(tight.url, nas);
    const controllers: AbortController[] = [];
    try {
      await relayed(viaC, nas.deviceId);
      const url = `${tight.url}/v1/devices/${nas.deviceId}/remote/files/${objectId}`;
      const pending = Array.from({ length: 2 }, () => {
        const controller = new AbortController();
        controllers.push(controller);
        return fetch(`${url}/hang.bin`, { headers: { authorization: `Bearer ${owner.token ?? ''}` }, signal: controller.signal }).catch(
          () => undefined,
        );
      });
      await waitFor(
        () => Promise.resolve(device.seen.filter((h) => String(h[':path']).endsWith('hang.bin')).length === 2 ? true : undefined),
        { description: 'the device to have 2 requests', timeoutMs: 10_000, intervalMs: 50 },
      );
      const busy = await viaC.raw('GET', `/v1/devices/${nas.deviceId}/remote/files/${objectId}/big.bin`);
      expect(busy.status).toBe(503);
      expect(busy.body).toMatchObject({ error: { code: 'relay_busy' } });
      for (const c of controllers) c.abort();
      await Promise.all(pending);
      // 12 MiB at 4 MiB/s: the first second's 4 MiB at once, the other 8 MiB paced over 2 s at least.
      const started = performance.now();
      const res = await waitFor(
        async () => {
          const r = await fetch(`${url}/big.bin`, { headers: { authorization: `Bearer ${owner.token ?? ''}`, range: 'bytes=0-12582911' } });
          return r.status === 206 ? r : undefined;
        },
        { description: 'the streams to be released', timeoutMs: 10_000, intervalMs: 100 },
      );
      expect(Buffer.from(await res.arrayBuffer()).equals(big.subarray(0, 12 * 1024 * 1024))).toBe(true);
      expect(performance.now() - started).toBeGreaterThan(1900);
    } finally {
      for (const c of controllers) c.abort();
      await device.close();
      await tight.stop();
    }
  });
});
