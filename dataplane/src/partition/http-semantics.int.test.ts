// The partition's HTTP semantics against real etcd and MinIO: authentication and isolation,
// conditional requests, ranges, missing blocks, expired cursors, misdirected requests, and
// bad input. Slots 0-1023 belong to this file (other test files use other ranges).
// The HTTP exchange itself is under test, so requests go through the client's `raw` (and
// `rawHttp` for what fetch would normalise or refuse to send); set-up uses typed calls.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { mintIdInSlot, slotOf } from '../slots.ts';
import { encodePath, MeshworkClient, type BlockRef, type DeviceClient, type RawResponse } from '@meshwork/client';
import { rawHttp } from '@meshwork/client/node';
import { startPartition, type PartitionStores, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
const stores: PartitionStores = { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio };
const MiB = 1024 * 1024;

let a: RunningPartition;
let b: RunningPartition;
let admin: MeshworkClient;
let alice: DeviceClient;
let alicePhone: DeviceClient;
let bob: DeviceClient;
let bobId: string;
let objectId: string;
const fileData = randomBytes(9 * MiB + 123);

beforeAll(async () => {
  [a, b] = await Promise.all([
    startPartition(stores, { partition: 'semantics-a', slots: '0-511' }),
    // Partition b purges tombstones at once, for the expired-cursor test.
    startPartition(stores, {
      partition: 'semantics-b',
      slots: '512-1023',
      env: { MESHWORK_TOMBSTONE_RETENTION_SECONDS: '0', MESHWORK_SWEEP_INTERVAL_SECONDS: '1' },
    }),
  ]);
  admin = new MeshworkClient({ baseUrl: a.url, token: a.adminToken });
  const aliceUser = await admin.createUser('alice');
  const bobUser = await admin.createUser('bob');
  bobId = bobUser.id;
  alice = await admin.as(aliceUser.token).registerDeviceClient('alice-laptop');
  alicePhone = await admin.as(aliceUser.token).registerDeviceClient('alice-phone');
  bob = await admin.as(bobUser.token).registerDeviceClient('bob-laptop');
  objectId = (await alice.createObject({ name: 'Documents' })).id;
  const commit = await alice.upload(objectId, 'reports/q3.bin', fileData, { ifNoneMatch: '*' });
  expect(commit.created).toBe(true);
});

const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** Commits a file's block list under a precondition ("create" or a version) and answers the raw exchange. */
function commit(client: MeshworkClient, object: string, path: string, blocks: BlockRef[], precondition: string): Promise<RawResponse> {
  const headers: Record<string, string> = precondition === 'create' ? { 'if-none-match': '*' } : { 'if-match': `"${precondition}"` };
  return client.raw('PUT', `/v1/objects/${object}/entries/${encodePath(path)}`, { body: { kind: 'file', blocks }, headers });
}

/** Uploads a block and answers the raw exchange, so that refusals can be asserted. */
function putBlock(client: MeshworkClient, data: Buffer, sha256 = sha256Hex(data)): Promise<RawResponse> {
  return client.raw('PUT', `/v1/blocks/${sha256}`, { body: data });
}

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

function noStack(body: unknown): void {
  expect(JSON.stringify(body)).not.toMatch(/\n\s+at |\.ts:\d+/);
}

describe('authentication and authorisation', () => {
  it.each([
    ['no token', undefined],
    ['a wrong token', `mwd.dXYZ.${'a'.repeat(43)}`],
    ['a malformed token', 'hello'],
  ])('answers 401 with %s', async (_what, token) => {
    const client = new MeshworkClient({ baseUrl: a.url, ...(token === undefined ? {} : { token }) });
    const res = await client.raw('GET', '/v1/objects');
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ error: { code: 'unauthenticated' } });
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('lets only the administrator create users', async () => {
    const res = await alice.raw('POST', '/v1/users', { body: { name: 'mallory' } });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ error: { code: 'forbidden' } });
  });

  it('never stores a token, only its hash', async () => {
    const res = await admin.raw<{ token: string; id: string }>('POST', '/v1/users', { body: { name: 'carol' } });
    const { Etcd3 } = await import('etcd3');
    const etcd = new Etcd3({ hosts: stack.etcd.endpoint });
    try {
      const all = await etcd.getAll().prefix('/mw/').strings();
      const secret = res.body.token.split('.')[2]!;
      expect(Object.values(all).some((v) => v.includes(secret))).toBe(false);
    } finally {
      etcd.close();
    }
  });

  it('tells a stranger nothing about an object: 404 exactly as for one that does not exist', async () => {
    const unknown = mintIdInSlot('o', 7);
    for (const suffix of ['', '/entries', '/changes?cursor=1', '/content/reports/q3.bin', '/entries/reports/q3.bin']) {
      const theirs = await bob.raw('GET', `/v1/objects/${objectId}${suffix}`);
      expect(theirs.status, suffix).toBe(404);
      expect(theirs.body).toMatchObject({ error: { code: 'not_found' } });
      const none = await bob.raw('GET', `/v1/objects/${unknown}${suffix}`);
      expect(none.status).toBe(404);
      expect(Object.keys(none.body)).toEqual(Object.keys(theirs.body));
    }
    const strangerCommit = await commit(bob, objectId, 'evil.txt', [], 'create');
    expect(strangerCommit.status).toBe(404);
    const list = await bob.raw<{ objects: { id: string }[] }>('GET', '/v1/objects');
    expect(list.status).toBe(200);
    expect(list.body.objects.map((o) => o.id)).not.toContain(objectId);
    const mine = await alice.raw<{ objects: { id: string }[] }>('GET', '/v1/objects');
    expect(mine.body.objects.map((o) => o.id)).toContain(objectId);
  });

  it('shares read-only: a reader reads, gets 403 on writes, and loses access when removed', async () => {
    const shared = (await alice.createObject({ name: 'Shared' })).id;
    const put = await alice.raw('PUT', `/v1/objects/${shared}/members/${bobId}`, { body: { role: 'reader' } });
    expect(put.status).toBe(200);
    const list = await bob.raw<{ objects: { id: string; role: string }[] }>('GET', '/v1/objects');
    expect(list.body.objects.find((o) => o.id === shared)?.role).toBe('reader');
    expect((await bob.raw('GET', `/v1/objects/${shared}/entries`)).status).toBe(200);
    const write = await commit(bob, shared, 'x.txt', [], 'create');
    expect(write.status).toBe(403);
    expect(write.body).toMatchObject({ error: { code: 'forbidden' } });
    expect((await bob.raw('PATCH', `/v1/objects/${shared}`, { body: { name: 'Mine now' } })).status).toBe(403);
    expect((await bob.raw('DELETE', `/v1/objects/${shared}`)).status).toBe(403);
    expect((await bob.raw('PUT', `/v1/objects/${shared}/members/${bobId}`, { body: { role: 'writer' } })).status).toBe(403);

    await alice.raw('PUT', `/v1/objects/${shared}/members/${bobId}`, { body: { role: 'writer' } });
    const writerCommit = await bob.raw('PUT', `/v1/objects/${shared}/entries/dir`, {
      body: { kind: 'directory' },
      headers: { 'if-none-match': '*' },
    });
    expect(writerCommit.status).toBe(201);
    expect(writerCommit.body).toMatchObject({ modifiedBy: bob.deviceId, kind: 'directory' });

    expect((await alice.raw('DELETE', `/v1/objects/${shared}/members/${bobId}`)).status).toBe(204);
    expect((await bob.raw('GET', `/v1/objects/${shared}`)).status).toBe(404);
    const after = await bob.raw<{ objects: { id: string }[] }>('GET', '/v1/objects');
    expect(after.body.objects.map((o) => o.id)).not.toContain(shared);
  });

  it('renames and deletes objects; a deleted object is gone for every member', async () => {
    const id = (await alice.createObject({ name: 'Temp' })).id;
    const renamed = await alice.raw('PATCH', `/v1/objects/${id}`, { body: { name: 'Temporary' } });
    expect(renamed.body).toMatchObject({ name: 'Temporary', role: 'owner' });
    expect((await alice.raw('DELETE', `/v1/objects/${id}`)).status).toBe(204);
    expect((await alice.raw('GET', `/v1/objects/${id}`)).status).toBe(404);
    expect((await alice.raw('GET', `/v1/objects/${id}/entries`)).status).toBe(404);
  });
});

describe('content', () => {
  const path = `/v1/objects/${'{id}'}/content/reports/q3.bin`;
  const contentPath = (): string => path.replace('{id}', objectId);

  it('streams the file with a strong ETag and Cache-Control: private, no-cache', async () => {
    const res = await alice.raw('GET', contentPath());
    expect(res.status).toBe(200);
    expect(res.bytes.length).toBe(fileData.length);
    expect(sha256Hex(res.bytes)).toBe(sha256Hex(fileData));
    expect(res.headers.etag).toMatch(/^"[0-9a-f]{64}"$/);
    expect(res.headers['cache-control']).toBe('private, no-cache');
    expect(res.headers['accept-ranges']).toBe('bytes');
  });

  it('answers 304 to If-None-Match with the current ETag, and 200 to a stale one', async () => {
    const first = await alice.raw('GET', contentPath(), { headers: { range: 'bytes=0-0' } });
    const etag = String(first.headers.etag);
    const again = await alice.raw('GET', contentPath(), { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.bytes.length).toBe(0);
    expect(again.headers.etag).toBe(etag);
    const stale = await alice.raw('GET', contentPath(), { headers: { 'if-none-match': '"0000"', range: 'bytes=0-9' } });
    expect(stale.status).toBe(206);
  });

  it.each([
    ['bytes=0-99', 0, 99],
    ['bytes=4194300-4194310', 4194300, 4194310],
    ['bytes=8388600-', 8388600, 9 * MiB + 122],
    ['bytes=-50', 9 * MiB + 123 - 50, 9 * MiB + 122],
  ])('answers 206 to Range %s with exactly those bytes', async (range, start, end) => {
    const res = await alice.raw('GET', contentPath(), { headers: { range } });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/${fileData.length}`);
    expect(Buffer.from(res.bytes).equals(fileData.subarray(start, end + 1))).toBe(true);
  });

  it('answers 416 with the size when no range is satisfiable', async () => {
    const res = await alice.raw('GET', contentPath(), { headers: { range: `bytes=${fileData.length}-` } });
    expect(res.status).toBe(416);
    expect(res.headers['content-range']).toBe(`bytes */${fileData.length}`);
    expect(res.body).toMatchObject({ error: { code: 'range_not_satisfiable' } });
  });

  it('ignores a Range whose If-Range names another version', async () => {
    const res = await alice.raw('GET', contentPath(), { headers: { range: 'bytes=0-9', 'if-range': '"other"' } });
    expect(res.status).toBe(200);
    expect(res.bytes.length).toBe(fileData.length);
  });

  it('refuses a block whose body does not match its hash (422) and stores nothing', async () => {
    const body = randomBytes(1000);
    const wrongSha = sha256Hex(randomBytes(8));
    const res = await putBlock(alice, body, wrongSha);
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ error: { code: 'hash_mismatch' } });
    const missing = await alice.raw<{ missing: string[] }>('POST', '/v1/blocks/missing', { body: { blocks: [wrongSha, sha256Hex(body)] } });
    expect(missing.body.missing).toEqual([wrongSha, sha256Hex(body)]);
  });

  it('refuses a commit that names a block the store lacks (409 listing it)', async () => {
    const present = randomBytes(100);
    await alice.putBlock(present);
    const absent = sha256Hex(randomBytes(16));
    const res = await commit(
      alice,
      objectId,
      'incomplete.bin',
      [
        { sha256: sha256Hex(present), size: 100 },
        { sha256: absent, size: 100 },
      ],
      'create',
    );
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ error: { code: 'blocks_missing', missing: [absent] } });
    expect((await alice.raw('GET', `/v1/objects/${objectId}/entries/incomplete.bin`)).status).toBe(404);
  });

  it('serves a block by hash and refuses blocks over 4 MiB', async () => {
    const data = randomBytes(5000);
    await alice.putBlock(data);
    const res = await alice.raw('GET', `/v1/blocks/${sha256Hex(data)}`);
    expect(res.status).toBe(200);
    expect(Buffer.from(res.bytes).equals(data)).toBe(true);
    const big = await putBlock(alice, Buffer.alloc(4 * MiB + 1));
    expect(big.status).toBe(413);
  });
});

describe('optimistic concurrency', () => {
  it('commits with If-None-Match: * once, then needs the current version (412 otherwise)', async () => {
    const data = randomBytes(2000);
    await alice.putBlock(data);
    const blocks = [{ sha256: sha256Hex(data), size: data.length }];
    const created = await commit(alice, objectId, 'notes.txt', blocks, 'create');
    expect(created.status).toBe(201);
    const version = (created.body as { version: string }).version;
    expect(created.headers.etag).toBe(`"${version}"`);

    const again = await commit(alicePhone, objectId, 'notes.txt', blocks, 'create');
    expect(again.status).toBe(412);
    expect(again.body).toMatchObject({ error: { code: 'precondition_failed', currentVersion: version } });

    const updated = await commit(alicePhone, objectId, 'notes.txt', blocks, version);
    expect(updated.status).toBe(200);
    const stale = await commit(alice, objectId, 'notes.txt', blocks, version);
    expect(stale.status).toBe(412);
    expect(stale.body).toMatchObject({ error: { currentVersion: (updated.body as { version: string }).version } });
    expect(stale.headers.etag).toBe(`"${(updated.body as { version: string }).version}"`);
  });

  it('requires a precondition on writes (428)', async () => {
    const res = await alice.raw('PUT', `/v1/objects/${objectId}/entries/unconditional`, { body: { kind: 'directory' } });
    expect(res.status).toBe(428);
    expect(res.body).toMatchObject({ error: { code: 'precondition_required' } });
  });

  it('answers 304 for entry metadata the client already has', async () => {
    const entry = await alice.raw('GET', `/v1/objects/${objectId}/entries/reports/q3.bin`);
    expect(entry.status).toBe(200);
    const again = await alice.raw('GET', `/v1/objects/${objectId}/entries/reports/q3.bin`, {
      headers: { 'if-none-match': String(entry.headers.etag) },
    });
    expect(again.status).toBe(304);
  });
});

describe('delta sync', () => {
  it('lists with a cursor and returns changes since it, deletes included, page by page', async () => {
    const id = (await alice.createObject({ name: 'Sync' })).id;
    for (const name of ['a', 'b', 'c', 'd']) {
      const res = await alice.raw('PUT', `/v1/objects/${id}/entries/${name}`, {
        body: { kind: 'directory' },
        headers: { 'if-none-match': '*' },
      });
      expect(res.status).toBe(201);
    }
    const page1 = await alice.raw<{ entries: { path: string; version: string }[]; cursor: string; next: string }>(
      'GET',
      `/v1/objects/${id}/entries?limit=3`,
    );
    expect(page1.body.entries.map((e) => e.path)).toEqual(['a', 'b', 'c']);
    const page2 = await alice.raw<{ entries: { path: string }[]; next: string | null }>(
      'GET',
      `/v1/objects/${id}/entries?limit=3&page=${page1.body.next}`,
    );
    expect(page2.body.entries.map((e) => e.path)).toEqual(['d']);
    expect(page2.body.next).toBeNull();
    const cursor = page1.body.cursor;

    const nothing = await alice.raw<{ changes: unknown[]; cursor: string }>('GET', `/v1/objects/${id}/changes?cursor=${cursor}`);
    expect(nothing.body.changes).toEqual([]);

    const b = page1.body.entries[1]!;
    expect((await alicePhone.raw('DELETE', `/v1/objects/${id}/entries/b`, { headers: { 'if-match': `"${b.version}"` } })).status).toBe(200);
    await alicePhone.raw('PUT', `/v1/objects/${id}/entries/e`, { body: { kind: 'directory' }, headers: { 'if-none-match': '*' } });
    await alicePhone.raw('PUT', `/v1/objects/${id}/entries/f`, { body: { kind: 'directory' }, headers: { 'if-none-match': '*' } });

    type Changes = { changes: { path: string; deleted: boolean }[]; cursor: string; next: string | null };
    const first = await alice.raw<Changes>('GET', `/v1/objects/${id}/changes?cursor=${cursor}&limit=2`);
    expect(first.body.changes.map((c) => [c.path, c.deleted])).toEqual([
      ['b', true],
      ['e', false],
    ]);
    const second = await alice.raw<Changes>('GET', `/v1/objects/${id}/changes?page=${first.body.next}`);
    expect(second.body.changes.map((c) => c.path)).toEqual(['f']);
    expect(second.body.next).toBeNull();
    const settled = await alice.raw<{ changes: unknown[] }>('GET', `/v1/objects/${id}/changes?cursor=${second.body.cursor}`);
    expect(settled.body.changes).toEqual([]);
    const listing = await alice.raw<{ entries: { path: string }[] }>('GET', `/v1/objects/${id}/entries`);
    expect(listing.body.entries.map((e) => e.path)).toEqual(['a', 'c', 'd', 'e', 'f']);
  });

  it('answers 410 with a relist code once the tombstones a cursor needs were purged', async () => {
    const account = await new MeshworkClient({ baseUrl: b.url, token: b.adminToken }).createUser('erin');
    const erin = await new MeshworkClient({ baseUrl: b.url, token: account.token }).registerDeviceClient('erin-pc');
    const id = (await erin.createObject({ name: 'Expiring' })).id;
    const created = await erin.raw<{ version: string }>('PUT', `/v1/objects/${id}/entries/gone`, {
      body: { kind: 'directory' },
      headers: { 'if-none-match': '*' },
    });
    const listing = await erin.raw<{ cursor: string }>('GET', `/v1/objects/${id}/entries`);
    await erin.raw('DELETE', `/v1/objects/${id}/entries/gone`, { headers: { 'if-match': `"${created.body.version}"` } });
    // Retention is 0 s and the sweeper runs every second in this partition.
    const expired = await waitFor(
      async () => {
        const res = await erin.raw('GET', `/v1/objects/${id}/changes?cursor=${listing.body.cursor}`);
        return res.status === 410 ? res : undefined;
      },
      { description: 'the tombstone to be purged', timeoutMs: 15_000 },
    );
    expect(expired.body).toMatchObject({ error: { code: 'cursor_expired', relist: true } });
    const relist = await erin.raw<{ entries: unknown[]; cursor: string }>('GET', `/v1/objects/${id}/entries`);
    expect(relist.body.entries).toEqual([]);
    expect((await erin.raw('GET', `/v1/objects/${id}/changes?cursor=${relist.body.cursor}`)).status).toBe(200);
  });

  it('answers 410 to a cursor from the future (another mesh, or a restored store)', async () => {
    const res = await alice.raw('GET', `/v1/objects/${objectId}/changes?cursor=999999999999`);
    expect(res.status).toBe(410);
  });
});

describe('partitioning', () => {
  it('answers 421 with the owner for an object in a slot another partition owns', async () => {
    const bobOnB = await new MeshworkClient({ baseUrl: b.url, token: b.adminToken }).createUser('dave');
    const dave = await new MeshworkClient({ baseUrl: b.url, token: bobOnB.token }).registerDeviceClient('dave-pc');
    const daveObject = (await dave.createObject({ name: 'Elsewhere' })).id;
    expect(slotOf(daveObject)).toBeGreaterThanOrEqual(512);
    const misdirected = await new MeshworkClient({ baseUrl: a.url, token: dave.token }).raw('GET', `/v1/objects/${daveObject}/entries`);
    expect(misdirected.status).toBe(421);
    expect(misdirected.body).toMatchObject({ error: { code: 'misdirected', owner: b.url } });
    const me = await new MeshworkClient({ baseUrl: a.url, token: dave.token }).raw('GET', '/v1/me');
    expect(me.status).toBe(421);
    expect(me.body).toMatchObject({ error: { owner: b.url } });
    expect((await dave.raw('GET', '/v1/me')).status).toBe(200);
  });

  it('publishes the slot map', async () => {
    const res = await alice.raw<{ partitions: { partition: string; slots: string; url: string }[] }>('GET', '/v1/slots');
    expect(res.body.partitions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ partition: 'semantics-a', slots: '0-511', url: a.url }),
        expect.objectContaining({ partition: 'semantics-b', slots: '512-1023', url: b.url }),
      ]),
    );
  });
});

describe('bad input', () => {
  it.each([
    ['a ".." segment', 'a/%2e%2e/b', 'invalid_path'],
    ['a NUL', 'a%00b', 'invalid_path'],
    ['a control character', 'a%0Ab', 'invalid_path'],
    ['an over-long name', 'x'.repeat(300), 'invalid_path'],
  ])('refuses a path with %s', async (_what, rawPath, code) => {
    // rawHttp: fetch would resolve the ".." segment before sending it.
    const res = await rawHttp(a.url, 'PUT', `/v1/objects/${objectId}/entries/${rawPath}`, {
      token: alice.token!,
      body: { kind: 'directory' },
      headers: { 'if-none-match': '*' },
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { code, field: 'path' } });
  });

  it('normalises paths: doubled slashes and "." name the same entry', async () => {
    // rawHttp: fetch would drop the "." segment before sending it.
    const res = await rawHttp(a.url, 'GET', `/v1/objects/${objectId}/entries/reports//./q3.bin`, { token: alice.token! });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ path: 'reports/q3.bin' });
  });

  it.each([
    ['POST', '/v1/objects', { name: '' }, 'body.name'],
    ['POST', '/v1/objects', { name: 'x', colour: 'red' }, 'body'],
    ['POST', '/v1/blocks/missing', { blocks: ['not-a-hash'] }, 'body.blocks.0'],
    ['POST', '/v1/blocks/locations', { blocks: ['a'.repeat(64), 'not-a-hash'] }, 'body.blocks.1'],
    ['POST', '/v1/blocks/locations', { blocks: 'a'.repeat(64) }, 'body.blocks'],
    ['POST', '/v1/blocks/uploads', { blocks: [{ sha256: 'a'.repeat(64), size: 4 * 1024 * 1024 + 1 }] }, 'body.blocks.0.size'],
    ['POST', '/v1/blocks/uploaded', { blocks: [{ sha256: 'a'.repeat(64) }] }, 'body.blocks.0.size'],
    ['POST', '/v1/blocks/uploads', { blocks: [], checkStore: 'yes' }, 'body.checkStore'],
    ['POST', '/v1/blocks/uploaded', { blocks: [], checkStore: true }, 'body'],
    ['PUT', `/v1/objects/{id}/entries/x`, { kind: 'file', blocks: [{ sha256: 'a'.repeat(64), size: -1 }] }, 'body.blocks.0.size'],
  ])('answers 400 naming the field for %s %s', async (method, path, body, field) => {
    const res = await alice.raw(method, path.replace('{id}', objectId), { body: body, headers: { 'if-none-match': '*' } });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { code: 'invalid_request', field } });
    expect((res.body as { error: { message: string } }).error.message).toContain(field);
  });

  it('answers bad JSON with 400 and an over-large body with 413, as JSON errors without stacks', async () => {
    const bad = await alice.raw('POST', '/v1/objects', { body: Buffer.from('{"name":'), headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: 'invalid_json' } });
    noStack(bad.body);
    const bigBody = Buffer.from(JSON.stringify({ name: 'x'.repeat(3 * MiB) }));
    const big = await alice.raw('POST', '/v1/objects', { body: bigBody, headers: { 'content-type': 'application/json' } });
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ error: { code: 'too_large' } });
  });

  it('answers unknown routes with a JSON 404, and a known route under another method with 405 and Allow', async () => {
    const res = await alice.raw('GET', '/v1/nowhere');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error: { code: 'not_found' } });
    const method = await alice.raw('PATCH', '/v1/objects');
    expect(method.status).toBe(405);
    expect(method.body).toMatchObject({ error: { code: 'method_not_allowed' } });
    expect(method.headers.allow).toBe('GET, HEAD, POST');
  });

  it.each(['abc', '-1', '1.5'])('refuses cursor %j with 400', async (cursor) => {
    const res = await alice.raw('GET', `/v1/objects/${objectId}/changes?cursor=${encodePath(cursor)}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { code: 'invalid_cursor' } });
  });

  it('refuses a block upload without Content-Length (411)', async () => {
    // rawHttp: fetch owns the framing headers.
    const res = await rawHttp(a.url, 'PUT', `/v1/blocks/${'b'.repeat(64)}`, {
      token: alice.token!,
      headers: { 'transfer-encoding': 'chunked' },
    });
    expect(res.status).toBe(411);
  });
});
