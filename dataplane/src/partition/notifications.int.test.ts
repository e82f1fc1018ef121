// Change notification against real partition processes, etcd and MinIO: long polls woken by
// another device's commit, per-object waits, timeouts that give the same cursor back, `wait`
// validation, membership changes, a restart between polls, draining on SIGTERM, and an object
// kept by another partition. Slots 3584-3839 belong to this file.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MeshClient, type ApiResponse } from '../../../e2e/dataplane/client.ts';
import { startPartition, unthrottledEnv, type PartitionStores, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
const stores: PartitionStores = { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio };

interface Notices {
  objects: { id: string; role?: string; removed?: true }[];
  cursor: string;
}
interface ChangeSet {
  changes: { path: string; version: string }[];
  cursor: string;
  next: string | null;
}
type Device = MeshClient & { deviceId: string };

let a: RunningPartition;
let b: RunningPartition;
let admin: MeshClient;
let laptop: Device;
let phone: Device;
let bob: Device;
let bobId: string;
let carol: Device;
let remote: Device;
let remoteId: string;
let objectId: string;

beforeAll(async () => {
  [a, b] = await Promise.all([
    startPartition(stores, { partition: 'notify-a', slots: '3584-3711', env: { ...unthrottledEnv } }),
    startPartition(stores, { partition: 'notify-b', slots: '3712-3839', env: { ...unthrottledEnv } }),
  ]);
  admin = new MeshClient(a.url, a.adminToken);
  const alice = await admin.createUser('alice');
  const bobUser = await admin.createUser('bob');
  const carolUser = await admin.createUser('carol');
  bobId = bobUser.id;
  laptop = await admin.as(alice.token).registerDevice('laptop');
  phone = await admin.as(alice.token).registerDevice('phone');
  bob = await admin.as(bobUser.token).registerDevice('bob-laptop');
  carol = await admin.as(carolUser.token).registerDevice('carol-laptop');
  // A user of partition b, served there, who is given an object that partition a keeps.
  const remoteUser = await new MeshClient(b.url, b.adminToken).createUser('remote');
  remoteId = remoteUser.id;
  remote = await new MeshClient(b.url, remoteUser.token).registerDevice('remote-laptop');
  objectId = await laptop.createObject('Documents');
  expect((await laptop.request('PUT', `/v1/objects/${objectId}/members/${bobId}`, { role: 'reader' })).status).toBe(200);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

/** The current notification cursor of a device (a poll that answers at once). */
async function notificationCursor(device: MeshClient): Promise<string> {
  const res = await device.request<Notices>('GET', '/v1/notifications?wait=0');
  expect(res.status).toBe(200);
  return res.body.cursor;
}

function poll(device: MeshClient, cursor: string, wait: number): Promise<ApiResponse<Notices> & { ms: number }> {
  const started = performance.now();
  return device.request<Notices>('GET', `/v1/notifications?cursor=${cursor}&wait=${wait}`).then((res) => ({ ...res, ms: performance.now() - started }));
}

async function commitFile(device: MeshClient, object: string, path: string): Promise<string> {
  const res = await device.request<{ version: string }>('PUT', `/v1/objects/${object}/entries/${path}`, { kind: 'directory' }, { 'if-none-match': '*' });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.version;
}

describe('GET /v1/notifications', () => {
  it('lists every object of the user for a device without a cursor', async () => {
    const res = await laptop.request<Notices>('GET', '/v1/notifications?wait=0');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('private, no-cache');
    expect(res.body.objects).toEqual([{ id: objectId, role: 'owner' }]);
    expect(res.body.cursor).toMatch(/^\d+$/);
  });

  it("wakes a device's poll when another device commits, and the other members' too", async () => {
    const [laptopCursor, bobCursor, carolCursor] = await Promise.all([notificationCursor(laptop), notificationCursor(bob), notificationCursor(carol)]);
    const laptopPoll = poll(laptop, laptopCursor, 30);
    const bobPoll = poll(bob, bobCursor, 30);
    const carolPoll = poll(carol, carolCursor, 2);
    const version = await commitFile(phone, objectId, 'wake-1');

    const [mine, theirs, stranger] = await Promise.all([laptopPoll, bobPoll, carolPoll]);
    expect(mine.status).toBe(200);
    expect(mine.body.objects).toEqual([{ id: objectId, role: 'owner' }]);
    expect(Number(mine.body.cursor)).toBeGreaterThanOrEqual(Number(version));
    expect(mine.ms).toBeLessThan(10_000);
    expect(theirs.body.objects).toEqual([{ id: objectId, role: 'reader' }]);
    // Carol is no member: her poll runs out with nothing and her own cursor.
    expect(stranger.body).toEqual({ objects: [], cursor: carolCursor });

    // The new cursor is past the change: the next poll waits instead of repeating it.
    const again = await poll(laptop, mine.body.cursor, 1);
    expect(again.body).toEqual({ objects: [], cursor: mine.body.cursor });
  });

  it('answers at once for a change made between two polls', async () => {
    const cursor = await notificationCursor(laptop);
    await commitFile(phone, objectId, 'between-polls');
    const res = await poll(laptop, cursor, 30);
    expect(res.body.objects).toEqual([{ id: objectId, role: 'owner' }]);
    expect(res.ms).toBeLessThan(5000);
  });

  it('gives the same cursor back when the wait runs out', async () => {
    const cursor = await notificationCursor(carol);
    const res = await poll(carol, cursor, 1);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ objects: [], cursor });
    expect(res.ms).toBeGreaterThanOrEqual(950);
    expect(res.ms).toBeLessThan(5000);
  });

  it('tells a member about sharing, a role change and removal', async () => {
    const shared = await laptop.createObject('Shared later');
    let cursor = await notificationCursor(carol);
    const carolId = (await carol.request<{ id: string }>('GET', '/v1/me')).body.id;

    const added = poll(carol, cursor, 30);
    expect((await laptop.request('PUT', `/v1/objects/${shared}/members/${carolId}`, { role: 'reader' })).status).toBe(200);
    const addedRes = await added;
    expect(addedRes.body.objects).toEqual([{ id: shared, role: 'reader' }]);
    cursor = addedRes.body.cursor;

    const promoted = poll(carol, cursor, 30);
    await laptop.request('PUT', `/v1/objects/${shared}/members/${carolId}`, { role: 'writer' });
    const promotedRes = await promoted;
    expect(promotedRes.body.objects).toEqual([{ id: shared, role: 'writer' }]);
    cursor = promotedRes.body.cursor;

    const removed = poll(carol, cursor, 30);
    expect((await laptop.request('DELETE', `/v1/objects/${shared}/members/${carolId}`)).status).toBe(204);
    const removedRes = await removed;
    expect(removedRes.body.objects).toEqual([{ id: shared, removed: true }]);

    // Commits to an object she left no longer wake her.
    const after = await poll(carol, removedRes.body.cursor, 1);
    expect(after.body.objects).toEqual([]);
  });

  it('tells every member when the object is deleted', async () => {
    const doomed = await laptop.createObject('Doomed');
    await laptop.request('PUT', `/v1/objects/${doomed}/members/${bobId}`, { role: 'writer' });
    const cursor = await notificationCursor(bob);
    const pending = poll(bob, cursor, 30);
    expect((await laptop.request('DELETE', `/v1/objects/${doomed}`)).status).toBe(204);
    expect((await pending).body.objects).toEqual([{ id: doomed, removed: true }]);
  });

  it('wakes a user of another partition for an object this one keeps', async () => {
    const cursor = await notificationCursor(remote);
    const sharedPoll = poll(remote, cursor, 30);
    expect((await laptop.request('PUT', `/v1/objects/${objectId}/members/${remoteId}`, { role: 'reader' })).status).toBe(200);
    const shared = await sharedPoll;
    expect(shared.body.objects).toEqual([{ id: objectId, role: 'reader' }]);

    // Partition b learns of commits to the object through a watch of its head.
    const commitPoll = poll(remote, shared.body.cursor, 30);
    await commitFile(phone, objectId, 'cross-partition');
    const woken = await commitPoll;
    expect(woken.body.objects).toEqual([{ id: objectId, role: 'reader' }]);
    expect(woken.ms).toBeLessThan(10_000);
    // The object's own changes are asked of its partition, a.
    expect((await new MeshClient(a.url, remote.token).request('GET', `/v1/objects/${objectId}/changes?cursor=${shared.body.cursor}`)).status).toBe(200);
  });

  it('covers a user with more objects than one etcd transaction can read', async () => {
    const many = await admin.as((await admin.createUser('many')).token).registerDevice('many-laptop');
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push(await many.createObject(`Folder ${i}`));
    const first = await many.request<Notices>('GET', '/v1/notifications?wait=0');
    expect(first.body.objects.map((o) => o.id).sort()).toEqual([...ids].sort());
    // The index is read in key order, so the last id's head is beyond the first transaction's 127.
    const last = [...ids].sort().at(-1)!;
    const waiting = poll(many, first.body.cursor, 30);
    await commitFile(many, last, 'late');
    expect((await waiting).body.objects).toEqual([{ id: last, role: 'owner' }]);
  });

  it.each([
    ['wait=61', 'wait'],
    ['wait=-1', 'wait'],
    ['wait=1.5', 'wait'],
    ['wait=abc', 'wait'],
    ['wait=1&wait=2', 'wait'],
    ['cursor=abc', 'cursor'],
    ['cursor=1&cursor=2', 'cursor'],
  ])('answers 400 naming the field for %s', async (query, field) => {
    const res = await laptop.request('GET', `/v1/notifications?${query}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { field } });
  });

  it('answers 410 for a cursor from the future', async () => {
    const res = await laptop.request('GET', '/v1/notifications?cursor=999999999999&wait=1');
    expect(res.status).toBe(410);
    expect(res.body).toMatchObject({ error: { code: 'cursor_expired', relist: true } });
  });

  it('answers 421 for a user another partition serves', async () => {
    const res = await new MeshClient(b.url, laptop.token).request('GET', '/v1/notifications?wait=0');
    expect(res.status).toBe(421);
    expect(res.body).toMatchObject({ error: { code: 'misdirected', owner: a.url } });
  });
});

describe('GET /v1/objects/{id}/changes?wait=', () => {
  it('waits for the next commit and answers with it', async () => {
    const listing = await laptop.request<{ cursor: string }>('GET', `/v1/objects/${objectId}/entries`);
    const started = performance.now();
    const waiting = laptop.request<ChangeSet>('GET', `/v1/objects/${objectId}/changes?cursor=${listing.body.cursor}&wait=30`);
    const version = await commitFile(phone, objectId, 'per-object');
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body.changes.map((c) => [c.path, c.version])).toEqual([['per-object', version]]);
    expect(Number(res.body.cursor)).toBeGreaterThanOrEqual(Number(version));
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('gives the same cursor back when the wait runs out', async () => {
    const listing = await laptop.request<{ cursor: string }>('GET', `/v1/objects/${objectId}/entries`);
    const started = performance.now();
    const res = await laptop.request<ChangeSet>('GET', `/v1/objects/${objectId}/changes?cursor=${listing.body.cursor}&wait=1`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ changes: [], cursor: listing.body.cursor, next: null });
    expect(performance.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('answers at once, without waiting, when changes are already there', async () => {
    const listing = await laptop.request<{ cursor: string }>('GET', `/v1/objects/${objectId}/entries`);
    await commitFile(phone, objectId, 'already-there');
    const started = performance.now();
    const res = await laptop.request<ChangeSet>('GET', `/v1/objects/${objectId}/changes?cursor=${listing.body.cursor}&wait=30`);
    expect(res.body.changes.map((c) => c.path)).toEqual(['already-there']);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('answers 404 to a stranger before waiting', async () => {
    const res = await carol.request('GET', `/v1/objects/${objectId}/changes?cursor=1&wait=30`);
    expect(res.status).toBe(404);
  });

  it.each([['wait=61'], ['wait=x'], ['wait=5&page=abc']])('answers 400 naming wait for %s', async (query) => {
    const res = await laptop.request('GET', `/v1/objects/${objectId}/changes?cursor=1&${query}`);
    expect(res.status).toBe(400);
    expect(['wait', 'cursor']).toContain((res.body as { error: { field: string } }).error.field);
  });
});

describe('restarts', () => {
  it('loses no change made before a restart between two polls', async () => {
    const cursor = await notificationCursor(laptop);
    const objectCursor = (await laptop.request<{ cursor: string }>('GET', `/v1/objects/${objectId}/entries`)).body.cursor;
    await commitFile(phone, objectId, 'before-restart');

    // SIGTERM drains: a waiting poll of another user is answered 503 draining with Retry-After.
    const carolCursor = await notificationCursor(carol);
    const draining = poll(carol, carolCursor, 30);
    await expectParked(carol, carolCursor);
    await a.process.stop();
    const drained = await draining;
    expect(drained.status).toBe(503);
    expect(drained.body).toMatchObject({ error: { code: 'draining' } });
    expect(drained.headers['retry-after']).toBe('1');

    a = await startPartition(stores, { partition: 'notify-a', slots: '3584-3711', port: a.port, adminToken: a.adminToken, env: { ...unthrottledEnv } });
    // New connections: the old ones went with the old process.
    const laptopAgain = new MeshClient(a.url, laptop.token);
    const res = await poll(laptopAgain, cursor, 30);
    expect(res.status).toBe(200);
    expect(res.body.objects).toEqual([{ id: objectId, role: 'owner' }]);
    const changes = await laptopAgain.request<ChangeSet>('GET', `/v1/objects/${objectId}/changes?cursor=${objectCursor}&wait=30`);
    expect(changes.body.changes.map((c) => c.path)).toEqual(['before-restart']);

    // And the restarted process wakes polls again.
    const next = poll(laptopAgain, res.body.cursor, 30);
    await commitFile(laptopAgain.as(phone.token!), objectId, 'after-restart');
    expect((await next).body.objects).toEqual([{ id: objectId, role: 'owner' }]);
  });
});

/** One more round trip on another connection, so the server has taken in the poll sent before it. */
async function expectParked(device: MeshClient, cursor: string): Promise<void> {
  const res = await device.request<Notices>('GET', `/v1/notifications?cursor=${cursor}&wait=0`);
  expect(res.body.objects).toEqual([]);
}
