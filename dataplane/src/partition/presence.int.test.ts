// Presence and sources against a real partition process, etcd and MinIO: only a device sets
// its own presence, holders of a file's version are listed with the cloud, membership is
// checked against the object, and a presence lapses after its TTL (2 s here) unless renewed.
// Slots 3840-3967 belong to this file.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { MeshClient } from '../../../e2e/dataplane/client.ts';
import { startPartition, type PartitionStores, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
const stores: PartitionStores = { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio };
type Device = MeshClient & { deviceId: string };
interface Sources {
  path: string;
  version: string;
  sources: ({ kind: 'device'; deviceId: string; endpoints: string[] } | { kind: 'cloud'; url: string })[];
}

let partition: RunningPartition;
let laptop: Device;
let phone: Device;
let tablet: Device;
let bob: Device;
let bobId: string;
let carol: Device;
let account: MeshClient;
let objectId: string;
let version: string;

beforeAll(async () => {
  partition = await startPartition(stores, { partition: 'presence', slots: '3840-3967', env: { MESHWORK_PRESENCE_TTL_SECONDS: '2' } });
  const admin = new MeshClient(partition.url, partition.adminToken);
  const alice = await admin.createUser('alice');
  account = admin.as(alice.token);
  const bobUser = await admin.createUser('bob');
  bobId = bobUser.id;
  laptop = await admin.as(alice.token).registerDevice('laptop');
  phone = await admin.as(alice.token).registerDevice('phone');
  tablet = await admin.as(alice.token).registerDevice('tablet');
  bob = await admin.as(bobUser.token).registerDevice('bob-laptop');
  carol = await admin.as((await admin.createUser('carol')).token).registerDevice('carol-laptop');
  objectId = await laptop.createObject('Photos');
  expect((await laptop.request('PUT', `/v1/objects/${objectId}/members/${bobId}`, { role: 'reader' })).status).toBe(200);
  const commit = await laptop.uploadFile(objectId, 'album/beach.jpg', randomBytes(1000), 'create');
  expect(commit.status).toBe(201);
  version = (commit.body as { version: string }).version;
});

afterAll(async () => {
  await partition?.stop();
});

function announce(device: Device, holds: unknown[], endpoints = [`https://${device.deviceId}.example:7443`]) {
  return device.request('PUT', `/v1/devices/${device.deviceId}/presence`, { endpoints, holds });
}

function sourcesOf(device: MeshClient, path = 'album/beach.jpg', query = '') {
  return device.request<Sources>('GET', `/v1/objects/${objectId}/content/${path}/sources${query}`);
}

function deviceIds(res: { body: Sources }): string[] {
  return res.body.sources.flatMap((s) => (s.kind === 'device' ? [s.deviceId] : []));
}

describe('PUT /v1/devices/{id}/presence', () => {
  it('lets a device set its own presence and says how long it lasts', async () => {
    const res = await announce(laptop, [{ objectId, path: 'album/beach.jpg', version }]);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deviceId: laptop.deviceId, endpoints: [`https://${laptop.deviceId}.example:7443`], objects: 1, ttlSeconds: 2 });
  });

  it.each([
    ['another device of the same user', () => phone],
    ['the account token of its user', () => account],
    ["another user's device", () => bob],
  ])('refuses %s with 403', async (_who, caller) => {
    for (const method of ['PUT', 'DELETE']) {
      const res = await caller().request(method, `/v1/devices/${laptop.deviceId}/presence`, method === 'PUT' ? { endpoints: [], holds: [] } : undefined);
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ error: { code: 'forbidden' } });
    }
  });

  it.each([
    [{ endpoints: ['ftp://host:21'], holds: [] }, 400, 'body.endpoints.0'],
    [{ endpoints: Array.from({ length: 9 }, (_, i) => `https://h${i}:1`), holds: [] }, 400, 'body.endpoints'],
    [{ endpoints: [], holds: [{ objectId: 'o1', path: 'a', version: 'x' }] }, 400, 'body.holds.0.version'],
    [{ endpoints: [], holds: [{ path: '../x', version: '5', objectId: 'OBJECT' }] }, 400, 'body.holds.0.path'],
    [{ endpoints: [], holds: [], extra: true }, 400, 'body'],
    [{ endpoints: [], holds: [{ objectId: 'oNotMine', path: 'a', version: '5' }] }, 404, 'body.holds.0.objectId'],
  ])('answers %j with %i naming %s', async (body, status, field) => {
    const payload = JSON.parse(JSON.stringify(body).replace('OBJECT', objectId)) as unknown;
    const res = await laptop.request('PUT', `/v1/devices/${laptop.deviceId}/presence`, payload);
    expect(res.status).toBe(status);
    expect((res.body as { error: { field: string } }).error.field).toBe(field);
  });
});

describe('GET /v1/objects/{id}/content/{path}/sources', () => {
  it('lists the online devices holding the version, and the cloud', async () => {
    await announce(laptop, [{ objectId, path: 'album/beach.jpg', version }]);
    await announce(phone, [{ objectId, path: 'album/other.jpg', version }]);
    const res = await sourcesOf(tablet);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      path: 'album/beach.jpg',
      version,
      sources: [
        { kind: 'device', deviceId: laptop.deviceId, endpoints: [`https://${laptop.deviceId}.example:7443`] },
        { kind: 'cloud', url: `/v1/objects/${objectId}/content/album/beach.jpg` },
      ],
    });
    // A member of another user sees it too; the holder is not offered to itself.
    expect(deviceIds(await sourcesOf(bob))).toEqual([laptop.deviceId]);
    expect(deviceIds(await sourcesOf(laptop))).toEqual([]);
  });

  it('answers 404 to a stranger, like every object route', async () => {
    const res = await sourcesOf(carol);
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error: { code: 'not_found' } });
  });

  it('follows versions: an old version is held by its holders only, and not by the cloud', async () => {
    const path = 'album/versions.jpg';
    const first = await laptop.uploadFile(objectId, path, randomBytes(500), 'create');
    const v1 = (first.body as { version: string }).version;
    await announce(laptop, [{ objectId, path, version: v1 }]);
    const second = await phone.uploadFile(objectId, path, randomBytes(600), v1);
    const v2 = (second.body as { version: string }).version;
    await announce(phone, [{ objectId, path, version: v2 }]);
    const current = await sourcesOf(tablet, path);
    expect(current.body.version).toBe(v2);
    expect(deviceIds(current)).toEqual([phone.deviceId]);
    expect(current.body.sources.some((s) => s.kind === 'cloud')).toBe(true);
    const old = await sourcesOf(tablet, path, `?version=${v1}`);
    expect(deviceIds(old)).toEqual([laptop.deviceId]);
    expect(old.body.sources.some((s) => s.kind === 'cloud')).toBe(false);
    expect((await sourcesOf(tablet, path, '?version=abc')).status).toBe(400);
  });

  it('counts a device synced through a cursor as holding every version up to it', async () => {
    const listing = await phone.request<{ cursor: string }>('GET', `/v1/objects/${objectId}/entries`);
    await announce(laptop, [{ objectId, path: 'album/beach.jpg', version }]);
    await announce(phone, [{ objectId, cursor: listing.body.cursor }]);
    expect(deviceIds(await sourcesOf(tablet))).toEqual([laptop.deviceId, phone.deviceId].sort());
  });

  it('drops what a device no longer says it holds', async () => {
    await announce(laptop, [{ objectId, path: 'album/beach.jpg', version }]);
    expect(deviceIds(await sourcesOf(tablet))).toContain(laptop.deviceId);
    await announce(laptop, []);
    expect(deviceIds(await sourcesOf(tablet))).not.toContain(laptop.deviceId);
  });

  it('lists no device of a user who is no longer a member', async () => {
    const shared = await laptop.createObject('Shared then not');
    await laptop.request('PUT', `/v1/objects/${shared}/members/${bobId}`, { role: 'writer' });
    const upload = await bob.uploadFile(shared, 'note.txt', randomBytes(100), 'create');
    const v = (upload.body as { version: string }).version;
    await announce(bob, [{ objectId: shared, path: 'note.txt', version: v }]);
    const path = `/v1/objects/${shared}/content/note.txt/sources`;
    expect(deviceIds(await laptop.request<Sources>('GET', path))).toEqual([bob.deviceId]);
    await laptop.request('DELETE', `/v1/objects/${shared}/members/${bobId}`);
    expect(deviceIds(await laptop.request<Sources>('GET', path))).toEqual([]);
  });

  it('serves the content of a file named "sources" inside a directory', async () => {
    const data = randomBytes(300);
    expect((await laptop.uploadFile(objectId, 'docs/sources', data, 'create')).status).toBe(201);
    const res = await laptop.request('GET', `/v1/objects/${objectId}/content/docs/sources`);
    expect(res.status).toBe(200);
    expect(res.raw.equals(data)).toBe(true);
  });
});

describe('presence lifetime', () => {
  it('takes a device offline after the TTL unless it renews, and at once on DELETE', async () => {
    await announce(phone, [{ objectId, path: 'album/beach.jpg', version }]);
    await announce(laptop, [{ objectId, path: 'album/beach.jpg', version }]);
    expect(deviceIds(await sourcesOf(tablet))).toEqual([laptop.deviceId, phone.deviceId].sort());
    // The laptop renews (same content: only its lease is renewed); the phone goes quiet.
    let renewals = 0;
    const listed = await waitFor(
      async () => {
        expect((await announce(laptop, [{ objectId, path: 'album/beach.jpg', version }])).status).toBe(200);
        renewals++;
        const ids = deviceIds(await sourcesOf(tablet));
        return ids.includes(phone.deviceId) ? undefined : ids;
      },
      { description: 'the quiet phone to go offline', timeoutMs: 15_000, intervalMs: 250 },
    );
    expect(listed).toEqual([laptop.deviceId]);
    expect(renewals).toBeGreaterThan(1);

    expect((await laptop.request('DELETE', `/v1/devices/${laptop.deviceId}/presence`)).status).toBe(204);
    expect(deviceIds(await sourcesOf(tablet))).toEqual([]);
    // Back again with a new lease.
    await announce(laptop, [{ objectId, path: 'album/beach.jpg', version }]);
    expect(deviceIds(await sourcesOf(tablet))).toEqual([laptop.deviceId]);
  });
});
