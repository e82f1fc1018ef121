// @meshwork/client against a real partition process, etcd and MinIO: every typed method, a
// streamed upload and download of a multi-block file, Retry-After honoured on a real 429 (a
// second partition with a low device bound), abort, timeouts, typed errors, and connection
// reuse. This file starts its own etcd and MinIO, so it may use the whole slot space: slots
// 0-2047 for the partition "client", 2048-4095 for the throttled one.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../e2e/harness/minio.ts';
import { startPartition, type RunningPartition } from '../../e2e/dataplane/partition-process.ts';
import { mintIdInSlot } from '../../dataplane/src/slots.ts';
import { ApiError, MeshworkClient, NetworkError, RequestAbortedError, RequestTimeoutError, sha256Hex, type RetryInfo } from './index.ts';
import { downloadToFile, nodeHttpFetch, rawHttp, uploadFile } from './node.ts';

const MiB = 1024 * 1024;

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let throttled: RunningPartition;
let admin: MeshworkClient;
let alice: MeshworkClient;
let aliceId: string;
let laptop: MeshworkClient;
let laptopId: string;
let phone: MeshworkClient;
let phoneId: string;
let bob: MeshworkClient;
let bobId: string;
let objectId: string;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshwork-client-'));
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-client' }), startMinio({ bucket: 'client' })]);
  const stores = { etcdEndpoint: etcd.endpoint, minio };
  [partition, throttled] = await Promise.all([
    startPartition(stores, { partition: 'client', slots: '0-2047' }),
    startPartition(stores, {
      partition: 'client-throttled',
      slots: '2048-4095',
      env: { MESHWORK_THROTTLE_DEVICE_RPS: '1', MESHWORK_THROTTLE_DEVICE_BURST: '2' },
    }),
  ]);
  admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const a = await admin.createUser('alice');
  aliceId = a.id;
  alice = admin.as(a.token);
  const l = await alice.registerDevice('laptop');
  laptopId = l.id;
  laptop = alice.as(l.token);
  const p = await alice.registerDevice('phone');
  phoneId = p.id;
  phone = alice.as(p.token);
  const b = await admin.createUser('bob');
  bobId = b.id;
  bob = admin.as(b.token);
  objectId = (await laptop.createObject({ name: 'Documents' })).id;
});

afterAll(async () => {
  await Promise.all([partition?.stop(), throttled?.stop()]);
  await Promise.all([etcd?.stop(), minio?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function expectApiError(call: Promise<unknown>, code: string, status: number): Promise<ApiError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  expect((err as ApiError).code).toBe(code);
  expect((err as ApiError).status).toBe(status);
  return err as ApiError;
}

describe('accounts', () => {
  it('creates users, registers devices and answers me', async () => {
    const me = await laptop.me();
    expect(me).toMatchObject({ id: aliceId, name: 'alice', deviceId: laptopId });
    expect((await alice.me()).deviceId).toBeNull();
    expect(phoneId).toMatch(/^d/);
  });

  it('raises unauthenticated with WWW-Authenticate for a wrong token', async () => {
    const err = await expectApiError(alice.as('mwu.nobody').me(), 'unauthenticated', 401);
    expect(err.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('raises forbidden when an account token creates users', async () => {
    await expectApiError(alice.createUser('mallory'), 'forbidden', 403);
  });
});

describe('objects', () => {
  it('creates, lists, reads, renames, shares and deletes', async () => {
    const created = await alice.createObject({ name: 'Scratch', cloudStorage: true });
    expect(created).toMatchObject({ name: 'Scratch', owner: aliceId, role: 'owner', cloudStorage: true });
    expect((await alice.listObjects()).map((o) => o.id)).toContain(created.id);
    expect((await laptop.getObject(created.id)).name).toBe('Scratch');
    expect((await alice.renameObject(created.id, 'Renamed')).name).toBe('Renamed');

    await expectApiError(bob.getObject(created.id), 'not_found', 404);
    expect(await alice.setMember(created.id, bobId, 'reader')).toEqual({ userId: bobId, role: 'reader' });
    expect((await bob.getObject(created.id)).role).toBe('reader');
    await expectApiError(bob.renameObject(created.id, 'Mine'), 'forbidden', 403);
    await alice.removeMember(created.id, bobId);
    await expectApiError(bob.getObject(created.id), 'not_found', 404);

    await alice.deleteObject(created.id);
    await expectApiError(alice.getObject(created.id), 'not_found', 404);
  });
});

describe('entries', () => {
  it('commits with If-None-Match: *, replaces with If-Match, answers 304, deletes with If-Match', async () => {
    const first = await laptop.putEntry(objectId, 'notes/a b?.txt', { kind: 'directory' }, { ifNoneMatch: '*' });
    expect(first.created).toBe(true);
    expect(first.entry.path).toBe('notes/a b?.txt');
    expect(first.etag).toBe(`"${first.entry.version}"`);

    const lost = await expectApiError(
      phone.putEntry(objectId, 'notes/a b?.txt', { kind: 'directory' }, { ifNoneMatch: '*' }),
      'precondition_failed',
      412,
    );
    expect(lost.details.currentVersion).toBe(first.entry.version);

    const mtime = '2026-01-01T00:00:00.000Z';
    const replaced = await phone.putEntry(objectId, 'notes/a b?.txt', { kind: 'directory', mtime }, { ifMatch: first.entry.version });
    expect(replaced.created).toBe(false);
    expect(replaced.entry.modifiedBy).toBe(phoneId);
    await expectApiError(
      laptop.putEntry(objectId, 'notes/a b?.txt', { kind: 'directory' }, { ifMatch: first.entry.version }),
      'precondition_failed',
      412,
    );

    const read = await laptop.getEntry(objectId, 'notes/a b?.txt');
    expect(read.notModified).toBe(false);
    expect(await laptop.getEntry(objectId, 'notes/a b?.txt', { ifNoneMatch: read.etag! })).toEqual({ notModified: true, etag: read.etag });

    const tombstone = await laptop.deleteEntry(objectId, 'notes/a b?.txt', replaced.entry.version);
    expect(tombstone.deleted).toBe(true);
    await expectApiError(laptop.getEntry(objectId, 'notes/a b?.txt'), 'not_found', 404);
  });

  it('names missing blocks in blocks_missing', async () => {
    const sha = await sha256Hex(randomBytes(16));
    const commit = laptop.putEntry(objectId, 'ghost.bin', { kind: 'file', blocks: [{ sha256: sha, size: 16 }] }, { ifNoneMatch: '*' });
    const err = await expectApiError(commit, 'blocks_missing', 409);
    expect(err.details.missing).toEqual([sha]);
  });

  it('lists and reads changes page by page, and follows next to the final cursor', async () => {
    const listed = await alice.createObject({ name: 'Paged' });
    for (let i = 0; i < 7; i++) await laptop.putEntry(listed.id, `e${i}`, { kind: 'directory' }, { ifNoneMatch: '*' });
    const pages = [];
    for await (const page of laptop.entryPages(listed.id, { limit: 3 })) pages.push(page);
    expect(pages.map((p) => p.entries.map((e) => e.path))).toEqual([['e0', 'e1', 'e2'], ['e3', 'e4', 'e5'], ['e6']]);
    expect(pages.at(-1)!.next).toBeNull();
    const all = await laptop.listAllEntries(listed.id, { limit: 2 });
    expect(all.entries).toHaveLength(7);
    expect(all.cursor).toBe(pages.at(-1)!.cursor);

    for (let i = 0; i < 5; i++) await phone.putEntry(listed.id, `f${i}`, { kind: 'directory' }, { ifNoneMatch: '*' });
    const changePages = [];
    for await (const page of laptop.changePages(listed.id, { cursor: all.cursor, limit: 2 })) changePages.push(page);
    expect(changePages).toHaveLength(3);
    const changes = await laptop.listAllChanges(listed.id, { cursor: all.cursor, limit: 2 });
    expect(changes.changes.map((e) => e.path)).toEqual(['f0', 'f1', 'f2', 'f3', 'f4']);
    expect(Number(changes.cursor)).toBeGreaterThan(Number(all.cursor));
    expect((await laptop.changes(listed.id, { cursor: changes.cursor })).changes).toEqual([]);
  });

  it('answers a changes long poll when a commit lands, and raises cursor_expired for a cursor from the future', async () => {
    const { cursor } = await laptop.listAllEntries(objectId);
    const poll = laptop.changes(objectId, { cursor, wait: 30 });
    await phone.putEntry(objectId, 'while-waiting', { kind: 'directory' }, { ifNoneMatch: '*' });
    expect((await poll).changes.map((e) => e.path)).toContain('while-waiting');
    const expired = await expectApiError(laptop.changes(objectId, { cursor: '999999999999' }), 'cursor_expired', 410);
    expect(expired.details.relist).toBe(true);
  });
});

describe('notifications', () => {
  it('answers every object without a cursor, then watches with the cursor kept', async () => {
    const everything = await phone.notifications();
    expect(everything.objects.map((o) => o.id)).toContain(objectId);
    const controller = new AbortController();
    const watch = phone.watchNotifications({ cursor: everything.cursor, wait: 20, signal: controller.signal });
    const seen = (async () => {
      for await (const answer of watch) return answer;
      return undefined;
    })();
    await laptop.putEntry(objectId, 'notified', { kind: 'directory' }, { ifNoneMatch: '*' });
    const answer = await seen;
    expect(answer?.objects).toEqual([{ id: objectId, role: 'owner' }]);
    expect(watch.cursor).toBe(answer?.cursor);
    expect(Number(watch.cursor)).toBeGreaterThan(Number(everything.cursor));
  });

  it('raises RequestAbortedError promptly when a long poll is aborted', async () => {
    const { cursor } = await phone.notifications();
    const controller = new AbortController();
    const poll = phone.notifications({ cursor, wait: 30, signal: controller.signal });
    const started = performance.now();
    setTimeout(() => controller.abort(new Error('the user closed the window')), 200);
    await expect(poll).rejects.toBeInstanceOf(RequestAbortedError);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe('content', () => {
  const fileSize = 9 * MiB + 12_345;
  let fileData: Buffer;
  let uploadedVersion: string;
  let contentHash: string;

  it('streams a multi-block file up, uploading only missing blocks, with back-pressure on the source', async () => {
    fileData = randomBytes(fileSize);
    let produced = 0;
    let uploaded = 0;
    let mostAhead = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let offset = 0; offset < fileData.length; offset += 256 * 1024) {
        await Promise.resolve();
        produced += Math.min(256 * 1024, fileData.length - offset);
        mostAhead = Math.max(mostAhead, produced - uploaded);
        yield fileData.subarray(offset, offset + 256 * 1024);
      }
    }
    const started = performance.now();
    const result = await laptop.upload(
      objectId,
      'big/file.bin',
      source(),
      { ifNoneMatch: '*' },
      {
        blockSize: MiB,
        parallelism: 2,
        onBlockUploaded: (b) => (uploaded += b.size),
      },
    );
    const seconds = (performance.now() - started) / 1000;
    expect(result.created).toBe(true);
    expect(result.blocks.map((b) => b.size)).toEqual([...Array<number>(9).fill(MiB), 12_345]);
    expect(result.uploadedBlocks).toBe(10);
    expect(result.uploadedBytes).toBe(fileSize);
    expect(result.entry.size).toBe(fileSize);
    // Two batches of two 1 MiB blocks and the block being filled, never the 9 MiB file.
    expect(mostAhead).toBeLessThanOrEqual(5 * MiB + 256 * 1024);
    uploadedVersion = result.entry.version;
    contentHash = result.entry.contentHash;
    const rate = (fileSize / MiB / seconds).toFixed(1);
    console.log(
      `upload of ${(fileSize / MiB).toFixed(1)} MiB in 1 MiB blocks: ${rate} MiB/s, at most ${(mostAhead / MiB).toFixed(2)} MiB read ahead`,
    );

    // The same content again: every block is present, only the commit is sent.
    const again = await phone.upload(objectId, 'big/copy.bin', fileData, { ifNoneMatch: '*' }, { blockSize: MiB });
    expect(again.uploadedBlocks).toBe(0);
    expect(again.entry.contentHash).toBe(contentHash);
  });

  it('asks missing, puts and gets one block', async () => {
    const block = randomBytes(1000);
    const sha = await sha256Hex(block);
    expect(await laptop.missingBlocks([sha])).toEqual([sha]);
    expect(await laptop.putBlock(block)).toEqual({ sha256: sha, size: 1000 });
    expect(await laptop.missingBlocks([sha])).toEqual([]);
    expect(Buffer.from(await laptop.getBlock(sha))).toEqual(block);
    await expectApiError(laptop.putBlock(block, { sha256: 'f'.repeat(64) }), 'hash_mismatch', 422);
  });

  it('streams the file down to disk with the strong ETag, and reads ranges and conditions', async () => {
    const file = join(dir, 'download.bin');
    const started = performance.now();
    const got = await downloadToFile(phone, objectId, 'big/file.bin', file);
    const seconds = (performance.now() - started) / 1000;
    expect(got).toEqual({ bytes: fileSize, etag: `"${contentHash}"`, status: 200 });
    expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(createHash('sha256').update(fileData).digest('hex'));
    console.log(`download of ${(fileSize / MiB).toFixed(1)} MiB: ${(fileSize / MiB / seconds).toFixed(1)} MiB/s`);

    const range = await phone.content(objectId, 'big/file.bin', { range: { start: MiB - 2, end: MiB + 1 } });
    expect(range.status).toBe(206);
    expect(range.contentRange).toBe(`bytes ${MiB - 2}-${MiB + 1}/${fileSize}`);
    expect(Buffer.from(await new Response(range.body).arrayBuffer())).toEqual(fileData.subarray(MiB - 2, MiB + 2));

    const suffix = await phone.content(objectId, 'big/file.bin', { range: { suffix: 10 } });
    expect(Buffer.from(await new Response(suffix.body).arrayBuffer())).toEqual(fileData.subarray(fileSize - 10));

    const unchanged = await phone.content(objectId, 'big/file.bin', { ifNoneMatch: contentHash });
    expect(unchanged).toMatchObject({ status: 304, notModified: true, body: null });

    const otherEtag = await phone.content(objectId, 'big/file.bin', { range: { start: 0, end: 9 }, ifRange: '"other"' });
    expect(otherEtag.status).toBe(200);
    expect(otherEtag.contentLength).toBe(fileSize);
    await otherEtag.body?.cancel();

    const outside = await expectApiError(
      phone.content(objectId, 'big/file.bin', { range: { start: fileSize } }),
      'range_not_satisfiable',
      416,
    );
    expect(outside.headers['content-range']).toBe(`bytes */${fileSize}`);
  });

  it('uploads a file from disk and replaces it under If-Match', async () => {
    const file = join(dir, 'upload.bin');
    writeFileSync(file, randomBytes(2 * MiB + 1));
    const replaced = await uploadFile(laptop, objectId, 'big/file.bin', file, { ifMatch: uploadedVersion });
    expect(replaced.created).toBe(false);
    expect(replaced.blocks.map((b) => b.size)).toEqual([2 * MiB + 1]);
    await expectApiError(uploadFile(laptop, objectId, 'big/file.bin', file, { ifMatch: uploadedVersion }), 'precondition_failed', 412);
  });

  it('uploads and downloads the same over nodeHttpFetch', async () => {
    const agent = new Agent({ keepAlive: true });
    try {
      const own = new MeshworkClient({ baseUrl: partition.url, token: phone.token!, fetch: nodeHttpFetch(agent) });
      const data = randomBytes(3 * MiB + 5);
      const up = await own.upload(objectId, 'own-pool.bin', new Blob([data]).stream(), { ifNoneMatch: '*' }, { blockSize: MiB });
      expect(up.uploadedBlocks).toBe(4);
      const chunks: Uint8Array[] = [];
      const got = await own.download(objectId, 'own-pool.bin', new WritableStream({ write: (c) => void chunks.push(c) }));
      expect(got.bytes).toBe(data.length);
      expect(Buffer.concat(chunks)).toEqual(data);
      expect((await own.getEntry(objectId, 'own-pool.bin', { ifNoneMatch: up.entry.version })).notModified).toBe(true);
      await expectApiError(own.getObject(mintIdInSlot('o', 7)), 'not_found', 404);
    } finally {
      agent.destroy();
    }
  });

  it('aborts a download mid-stream with RequestAbortedError', async () => {
    const controller = new AbortController();
    let received = 0;
    const sink = new WritableStream<Uint8Array>({
      write(chunk) {
        received += chunk.length;
        if (received > 64 * 1024) controller.abort(new Error('enough'));
      },
    });
    await expect(phone.download(objectId, 'big/copy.bin', sink, { signal: controller.signal })).rejects.toBeInstanceOf(RequestAbortedError);
    expect(received).toBeLessThan(fileSize);
  });
});

describe('presence and sources', () => {
  it('lists a device that announced a hold, then the cloud only once it went offline', async () => {
    const entry = await laptop.getEntry(objectId, 'big/copy.bin');
    if (entry.notModified) throw new Error('unexpected 304');
    const holds = [{ objectId, path: 'big/copy.bin', version: entry.entry.version }];
    const presence = await laptop.setPresence(laptopId, { endpoints: ['https://laptop.example:7443'], holds });
    expect(presence.deviceId).toBe(laptopId);
    expect(presence.ttlSeconds).toBeGreaterThan(0);
    const sources = await phone.sources(objectId, 'big/copy.bin');
    expect(sources.sources).toEqual([
      // A device caller gets grants to present to the holder (ADR 51), at most 128 blocks each (ADR 66).
      {
        kind: 'device',
        deviceId: laptopId,
        endpoints: ['https://laptop.example:7443'],
        grant: expect.any(String) as unknown,
        grants: [expect.any(String)] as unknown,
      },
      { kind: 'cloud', url: `/v1/objects/${objectId}/content/big/copy.bin` },
    ]);
    // A file whose blocks fit one grant: `grant` is that grant.
    const device = sources.sources[0];
    if (device?.kind !== 'device') throw new Error('expected the laptop first');
    expect(device.grants).toEqual([device.grant]);
    await expectApiError(phone.setPresence(laptopId, { endpoints: [], holds: [] }), 'forbidden', 403);
    await laptop.clearPresence(laptopId);
    expect((await phone.sources(objectId, 'big/copy.bin', { version: entry.entry.version })).sources.map((s) => s.kind)).toEqual(['cloud']);
  });
});

describe('operations', () => {
  it('reads the slot map and the health routes', async () => {
    const anonymous = new MeshworkClient({ baseUrl: partition.url });
    const slots = await anonymous.slots();
    expect(slots.partitions.map((p) => p.partition).sort()).toEqual(['client', 'client-throttled']);
    const live = await anonymous.livez();
    expect(live).toMatchObject({ healthy: true, status: 200, body: { status: 'ok' } });
    const ready = await anonymous.readyz();
    expect(ready.healthy).toBe(true);
    expect(ready.body.checks?.map((c) => c.name)).toEqual(['etcd', 's3', 'slots', 'draining']);
    expect(await anonymous.metrics()).toMatch(/^# HELP meshwork_/m);
    const deep = await anonymous.deepHealth();
    expect(deep.healthy).toBe(true);
    expect(deep.body.checks?.every((c) => c.ok)).toBe(true);
  });
});

describe('retries on a real 429', () => {
  it('waits out Retry-After and succeeds where a client without retries is refused', async () => {
    const retries: RetryInfo[] = [];
    const throttledAdmin = new MeshworkClient({
      baseUrl: throttled.url,
      token: throttled.adminToken,
      onRetry: (info) => retries.push(info),
    });
    const account = throttledAdmin.as((await throttledAdmin.createUser('busy')).token);
    const device = account.as((await account.registerDevice('busy-phone')).token);
    const noRetry = new MeshworkClient({ baseUrl: throttled.url, token: device.token, retry: { maxAttempts: 1 } });

    // The burst of 2 is spent; the next request is refused, then waited out.
    await device.me();
    await device.me();
    const refused = await expectApiError(noRetry.me(), 'rate_limited', 429);
    expect(refused.details.reason).toBe('device_rate');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);

    const started = performance.now();
    expect((await device.me()).name).toBe('busy');
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries[0]!.error).toBeInstanceOf(ApiError);
    expect((retries[0]!.error as ApiError).code).toBe('rate_limited');
    // Never before Retry-After (whole seconds).
    expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(1000);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it('never repeats an unconditional POST', async () => {
    const retries: RetryInfo[] = [];
    const throttledAdmin = new MeshworkClient({
      baseUrl: throttled.url,
      token: throttled.adminToken,
      onRetry: (info) => retries.push(info),
    });
    const account = throttledAdmin.as((await throttledAdmin.createUser('poster')).token);
    const device = account.as((await account.registerDevice('poster-phone')).token);
    await device.me();
    await device.me();
    await expectApiError(device.createObject({ name: 'x' }), 'rate_limited', 429);
    expect(retries).toEqual([]);
  });
});

describe('transport', () => {
  let server: Server;
  let connections = 0;
  let base: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/v1/slots') return; // never answers: for the timeout
      res.setHeader('content-type', 'application/json');
      res.end('{"status":"ok"}');
    });
    server.keepAliveTimeout = 10_000;
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  });

  it('reuses kept-alive connections across a loop of requests', async () => {
    const client = new MeshworkClient({ baseUrl: base });
    const before = connections;
    for (let i = 0; i < 200; i++) expect((await client.livez()).healthy).toBe(true);
    const used = connections - before;
    console.log(`200 sequential requests used ${used} connection(s)`);
    expect(used).toBeLessThanOrEqual(3);
  });

  it('shares the pool between identities made with as(), four callers at a time', async () => {
    // 100 requests; a connection per request would be 100 accepts, a shared pool a handful.
    const before = connections;
    const client = new MeshworkClient({ baseUrl: base, token: 't' });
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 25; i++) await client.as(`t${i}`).raw('GET', '/v1/anything');
      }),
    );
    expect(connections - before).toBeLessThanOrEqual(8);
  });

  it('gives a client a pool of its own with nodeHttpFetch', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const client = new MeshworkClient({ baseUrl: base, fetch: nodeHttpFetch(agent) });
      const before = connections;
      await Promise.all(Array.from({ length: 20 }, () => client.livez()));
      expect(connections - before).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it('raises RequestTimeoutError when no answer comes within timeoutMs', async () => {
    const started = performance.now();
    await expect(new MeshworkClient({ baseUrl: base, timeoutMs: 300 }).slots()).rejects.toBeInstanceOf(RequestTimeoutError);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('raises NetworkError with the cause when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await new MeshworkClient({ baseUrl: `http://127.0.0.1:${port}`, retry: { maxAttempts: 2, baseDelayMs: 10 } })
      .slots()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as NetworkError).cause).toBeDefined();
  });
});

describe('raw', () => {
  it('sends what a well-behaved client would not, and answers status, headers and body', async () => {
    const bad = await laptop.raw('POST', '/v1/objects', { body: '{"name":', headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: 'invalid_json' } });
    const unconditional = await laptop.raw('PUT', `/v1/objects/${objectId}/entries/x`, { body: { kind: 'directory' } });
    expect(unconditional.status).toBe(428);
    const anonymous = await laptop.raw('GET', '/v1/me', { token: null });
    expect(anonymous.status).toBe(401);
  });

  it('rawHttp sends a path with dot segments as it is', async () => {
    const res = await rawHttp(partition.url, 'PUT', `/v1/objects/${objectId}/entries/a/%2e%2e/b`, {
      token: laptop.token!,
      body: { kind: 'directory' },
      headers: { 'if-none-match': '*' },
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { code: 'invalid_path' } });
  });
});
