// Change notification against real partition processes, etcd and MinIO: long polls woken by
// another device's commit, per-object waits, timeouts that give the same cursor back, `wait`
// validation, membership changes, a restart between polls, draining on SIGTERM, and an object
// kept by another partition. Slots 3584-3839 belong to this file.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MeshworkClient, type DeviceClient, type Notifications } from '@meshwork/client';
import { startPartition, unthrottledEnv, type PartitionStores, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
const stores: PartitionStores = { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio };

type Device = DeviceClient;

let a: RunningPartition;
let b: RunningPartition;
let admin: MeshworkClient;
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
  admin = new MeshworkClient({ baseUrl: a.url, token: a.adminToken });
  const alice = await admin.createUser('alice');
  const bobUser = await admin.createUser('bob');
  const carolUser = await admin.createUser('carol');
  bobId = bobUser.id;
  laptop = await admin.as(alice.token).registerDeviceClient('laptop');
  phone = await admin.as(alice.token).registerDeviceClient('phone');
  bob = await admin.as(bobUser.token).registerDeviceClient('bob-laptop');
  carol = await admin.as(carolUser.token).registerDeviceClient('carol-laptop');
  // A user of partition b, served there, who is given an object that partition a keeps.
  const remoteUser = await new MeshworkClient({ baseUrl: b.url, token: b.adminToken }).createUser('remote');
  remoteId = remoteUser.id;
  remote = await new MeshworkClient({ baseUrl: b.url, token: remoteUser.token }).registerDeviceClient('remote-laptop');
  objectId = (await laptop.createObject({ name: 'Documents' })).id;
  expect(await laptop.setMember(objectId, bobId, 'reader')).toEqual({ userId: bobId, role: 'reader' });
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

/** The current notification cursor of a device (a poll that answers at once). */
async function notificationCursor(device: MeshworkClient): Promise<string> {
  return (await device.notifications({ wait: 0 })).cursor;
}

/** A notification poll and how long it took to answer. */
async function poll(device: MeshworkClient, cursor: string, wait: number): Promise<{ body: Notifications; ms: number }> {
  const started = performance.now();
  const body = await device.notifications({ cursor, wait });
  return { body, ms: performance.now() - started };
}

async function commitFile(device: MeshworkClient, object: string, path: string): Promise<string> {
  const res = await device.putEntry(object, path, { kind: 'directory' }, { ifNoneMatch: '*' });
  expect(res.created, JSON.stringify(res.entry)).toBe(true);
  return res.entry.version;
}

describe('GET /v1/notifications', () => {
  it('lists every object of the user for a device without a cursor', async () => {
    // raw: the answer's headers are under test too.
    const res = await laptop.raw<Notifications>('GET', '/v1/notifications?wait=0');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('private, no-cache');
    expect(res.body.objects).toEqual([{ id: objectId, role: 'owner' }]);
    expect(res.body.cursor).toMatch(/^\d+$/);
  });

  it("wakes a device's poll when another device commits, and the other members' too", async () => {
    const [laptopCursor, bobCursor, carolCursor] = await Promise.all([
      notificationCursor(laptop),
      notificationCursor(bob),
      notificationCursor(carol),
    ]);
    const laptopPoll = poll(laptop, laptopCursor, 30);
    const bobPoll = poll(bob, bobCursor, 30);
    const carolPoll = poll(carol, carolCursor, 2);
    const version = await commitFile(phone, objectId, 'wake-1');

    const [mine, theirs, stranger] = await Promise.all([laptopPoll, bobPoll, carolPoll]);
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
    expect(res.body).toEqual({ objects: [], cursor });
    expect(res.ms).toBeGreaterThanOrEqual(950);
    expect(res.ms).toBeLessThan(5000);
  });

  it('tells a member about sharing, a role change and removal', async () => {
    const shared = (await laptop.createObject({ name: 'Shared later' })).id;
    let cursor = await notificationCursor(carol);
    const carolId = (await carol.me()).id;

    const added = poll(carol, cursor, 30);
    expect(await laptop.setMember(shared, carolId, 'reader')).toEqual({ userId: carolId, role: 'reader' });
    const addedRes = await added;
    expect(addedRes.body.objects).toEqual([{ id: shared, role: 'reader' }]);
    cursor = addedRes.body.cursor;

    const promoted = poll(carol, cursor, 30);
    await laptop.setMember(shared, carolId, 'writer');
    const promotedRes = await promoted;
    expect(promotedRes.body.objects).toEqual([{ id: shared, role: 'writer' }]);
    cursor = promotedRes.body.cursor;

    const removed = poll(carol, cursor, 30);
    await laptop.removeMember(shared, carolId);
    const removedRes = await removed;
    expect(removedRes.body.objects).toEqual([{ id: shared, removed: true }]);

    // Commits to an object she left no longer wake her.
    const after = await poll(carol, removedRes.body.cursor, 1);
    expect(after.body.objects).toEqual([]);
  });

  it('tells every member when the object is deleted', async () => {
    const doomed = (await laptop.createObject({ name: 'Doomed' })).id;
    await laptop.setMember(doomed, bobId, 'writer');
    const cursor = await notificationCursor(bob);
    const pending = poll(bob, cursor, 30);
    await laptop.deleteObject(doomed);
    expect((await pending).body.objects).toEqual([{ id: doomed, removed: true }]);
  });

  it('wakes a user of another partition for an object this one keeps', async () => {
    const cursor = await notificationCursor(remote);
    const sharedPoll = poll(remote, cursor, 30);
    expect(await laptop.setMember(objectId, remoteId, 'reader')).toEqual({ userId: remoteId, role: 'reader' });
    const shared = await sharedPoll;
    expect(shared.body.objects).toEqual([{ id: objectId, role: 'reader' }]);

    // Partition b learns of commits to the object through a watch of its head.
    const commitPoll = poll(remote, shared.body.cursor, 30);
    await commitFile(phone, objectId, 'cross-partition');
    const woken = await commitPoll;
    expect(woken.body.objects).toEqual([{ id: objectId, role: 'reader' }]);
    expect(woken.ms).toBeLessThan(10_000);
    // The object's own changes are asked of its partition, a.
    expect(
      (await new MeshworkClient({ baseUrl: a.url, token: remote.token }).changes(objectId, { cursor: shared.body.cursor })).next,
    ).toBeNull();
  });

  it('covers a user with more objects than one etcd transaction can read', async () => {
    const many = await admin.as((await admin.createUser('many')).token).registerDeviceClient('many-laptop');
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push((await many.createObject({ name: `Folder ${i}` })).id);
    const first = await many.notifications({ wait: 0 });
    expect(first.objects.map((o) => o.id).sort()).toEqual([...ids].sort());
    // The index is read in key order, so the last id's head is beyond the first transaction's 127.
    const last = [...ids].sort().at(-1)!;
    const waiting = poll(many, first.cursor, 30);
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
    // raw: malformed and repeated parameters, which the typed call cannot send.
    const res = await laptop.raw('GET', `/v1/notifications?${query}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { field } });
  });

  it('answers 410 for a cursor from the future', async () => {
    const fromTheFuture = laptop.notifications({ cursor: '999999999999', wait: 1 });
    await expect(fromTheFuture).rejects.toMatchObject({ status: 410, code: 'cursor_expired', details: { relist: true } });
  });

  it('answers 421 for a user another partition serves', async () => {
    const misdirected = new MeshworkClient({ baseUrl: b.url, token: laptop.token });
    await expect(misdirected.notifications({ wait: 0 })).rejects.toMatchObject({
      status: 421,
      code: 'misdirected',
      details: { owner: a.url },
    });
  });
});

describe('GET /v1/objects/{id}/changes?wait=', () => {
  it('waits for the next commit and answers with it', async () => {
    const listing = await laptop.listEntries(objectId);
    const started = performance.now();
    const waiting = laptop.changes(objectId, { cursor: listing.cursor, wait: 30 });
    const version = await commitFile(phone, objectId, 'per-object');
    const res = await waiting;
    expect(res.changes.map((c) => [c.path, c.version])).toEqual([['per-object', version]]);
    expect(Number(res.cursor)).toBeGreaterThanOrEqual(Number(version));
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('gives the same cursor back when the wait runs out', async () => {
    const listing = await laptop.listEntries(objectId);
    const started = performance.now();
    const res = await laptop.changes(objectId, { cursor: listing.cursor, wait: 1 });
    expect(res).toEqual({ changes: [], cursor: listing.cursor, next: null });
    expect(performance.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('answers at once, without waiting, when changes are already there', async () => {
    const listing = await laptop.listEntries(objectId);
    await commitFile(phone, objectId, 'already-there');
    const started = performance.now();
    const res = await laptop.changes(objectId, { cursor: listing.cursor, wait: 30 });
    expect(res.changes.map((c) => c.path)).toEqual(['already-there']);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('answers 404 to a stranger before waiting', async () => {
    const started = performance.now();
    await expect(carol.changes(objectId, { cursor: '1', wait: 30 })).rejects.toMatchObject({ status: 404, code: 'not_found' });
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it.each([['wait=61'], ['wait=x'], ['wait=5&page=abc']])('answers 400 naming wait for %s', async (query) => {
    // raw: malformed parameters and a combination the typed call never sends.
    const res = await laptop.raw('GET', `/v1/objects/${objectId}/changes?cursor=1&${query}`);
    expect(res.status).toBe(400);
    expect(['wait', 'cursor']).toContain((res.body as { error: { field: string } }).error.field);
  });
});

describe('restarts', () => {
  it('loses no change made before a restart between two polls', async () => {
    const cursor = await notificationCursor(laptop);
    const objectCursor = (await laptop.listEntries(objectId)).cursor;
    await commitFile(phone, objectId, 'before-restart');

    // SIGTERM drains: a waiting poll of another user is answered 503 draining with Retry-After.
    const carolCursor = await notificationCursor(carol);
    // raw: the 503 itself is under test, which a typed call would retry.
    const draining = carol.raw('GET', `/v1/notifications?cursor=${carolCursor}&wait=30`);
    await expectParked(carol, carolCursor);
    await a.process.stop();
    const drained = await draining;
    expect(drained.status).toBe(503);
    expect(drained.body).toMatchObject({ error: { code: 'draining' } });
    expect(drained.headers['retry-after']).toBe('1');

    a = await startPartition(stores, {
      partition: 'notify-a',
      slots: '3584-3711',
      port: a.port,
      adminToken: a.adminToken,
      env: { ...unthrottledEnv },
    });
    // New connections: the old ones went with the old process.
    const laptopAgain = new MeshworkClient({ baseUrl: a.url, token: laptop.token });
    const res = await poll(laptopAgain, cursor, 30);
    expect(res.body.objects).toEqual([{ id: objectId, role: 'owner' }]);
    const changes = await laptopAgain.changes(objectId, { cursor: objectCursor, wait: 30 });
    expect(changes.changes.map((c) => c.path)).toEqual(['before-restart']);

    // And the restarted process wakes polls again.
    const next = poll(laptopAgain, res.body.cursor, 30);
    await commitFile(laptopAgain.as(phone.token!), objectId, 'after-restart');
    expect((await next).body.objects).toEqual([{ id: objectId, role: 'owner' }]);
  });
});

/** One more round trip on another connection, so the server has taken in the poll sent before it. */
async function expectParked(device: MeshworkClient, cursor: string): Promise<void> {
  const res = await device.notifications({ cursor, wait: 0 });
  expect(res.objects).toEqual([]);
}
