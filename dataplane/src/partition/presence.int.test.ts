// Presence and sources against a real partition process, etcd and MinIO: only a device sets
// its own presence, holders of a file's version are listed with the cloud, membership is
// checked against the object, and a presence lapses after its TTL (2 s here) unless renewed.
// Slots 3840-3967 belong to this file.
import { randomBytes } from 'node:crypto';
import { grantKeysOf, verifyGrant } from '@meshwork/contract';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { MeshworkClient, type DeviceClient, type Hold, type PresenceUpdate, type Sources } from '@meshwork/client';
import { startPartition, type PartitionStores, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
const stores: PartitionStores = { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio };
type Device = DeviceClient;

let partition: RunningPartition;
let laptop: Device;
let phone: Device;
let tablet: Device;
let bob: Device;
let bobId: string;
let carol: Device;
let account: MeshworkClient;
let objectId: string;
let version: string;

beforeAll(async () => {
  partition = await startPartition(stores, { partition: 'presence', slots: '3840-3967', env: { MESHWORK_PRESENCE_TTL_SECONDS: '2' } });
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const alice = await admin.createUser('alice');
  account = admin.as(alice.token);
  const bobUser = await admin.createUser('bob');
  bobId = bobUser.id;
  laptop = await admin.as(alice.token).registerDeviceClient('laptop');
  phone = await admin.as(alice.token).registerDeviceClient('phone');
  tablet = await admin.as(alice.token).registerDeviceClient('tablet');
  bob = await admin.as(bobUser.token).registerDeviceClient('bob-laptop');
  carol = await admin.as((await admin.createUser('carol')).token).registerDeviceClient('carol-laptop');
  objectId = (await laptop.createObject({ name: 'Photos' })).id;
  expect(await laptop.setMember(objectId, bobId, 'reader')).toEqual({ userId: bobId, role: 'reader' });
  const commit = await laptop.upload(objectId, 'album/beach.jpg', randomBytes(1000), { ifNoneMatch: '*' });
  expect(commit.created).toBe(true);
  version = commit.entry.version;
});

afterAll(async () => {
  await partition?.stop();
});

function announce(device: Device, holds: Hold[], endpoints = [`https://${device.deviceId}.example:7443`]) {
  return device.setPresence(device.deviceId, { endpoints, holds });
}

function sourcesOf(device: MeshworkClient, path = 'album/beach.jpg', version?: string) {
  return device.sources(objectId, path, { version });
}

function deviceIds(res: Sources): string[] {
  return res.sources.flatMap((s) => (s.kind === 'device' ? [s.deviceId] : []));
}

describe('PUT /v1/devices/{id}/presence', () => {
  it('lets a device set its own presence and says how long it lasts', async () => {
    const res = await announce(laptop, [{ objectId, path: 'album/beach.jpg', version }]);
    expect(res).toEqual({ deviceId: laptop.deviceId, endpoints: [`https://${laptop.deviceId}.example:7443`], objects: 1, ttlSeconds: 2 });
  });

  it.each([
    ['another device of the same user', () => phone],
    ['the account token of its user', () => account],
    ["another user's device", () => bob],
  ])('refuses %s with 403', async (_who, caller) => {
    await expect(caller().setPresence(laptop.deviceId, { endpoints: [], holds: [] })).rejects.toMatchObject({
      status: 403,
      code: 'forbidden',
    });
    await expect(caller().clearPresence(laptop.deviceId)).rejects.toMatchObject({ status: 403, code: 'forbidden' });
  });

  it.each([
    [{ endpoints: ['ftp://host:21'], holds: [] }, 400, 'body.endpoints.0'],
    [{ endpoints: Array.from({ length: 9 }, (_, i) => `https://h${i}:1`), holds: [] }, 400, 'body.endpoints'],
    [{ endpoints: [], holds: [{ objectId: 'o1', path: 'a', version: 'x' }] }, 400, 'body.holds.0.version'],
    [{ endpoints: [], holds: [{ path: '../x', version: '5', objectId: 'OBJECT' }] }, 400, 'body.holds.0.path'],
    [{ endpoints: [], holds: [], extra: true }, 400, 'body'],
    [{ endpoints: [], fingerprint: 'AB'.repeat(32), holds: [] }, 400, 'body.fingerprint'],
    [{ endpoints: [], fingerprint: 'ab', holds: [] }, 400, 'body.fingerprint'],
    [{ endpoints: [], holds: [{ objectId: 'oNotMine', path: 'a', version: '5' }] }, 404, 'body.holds.0.objectId'],
  ])('answers %j with %i naming %s', async (body, status, field) => {
    const payload = JSON.parse(JSON.stringify(body).replace('OBJECT', objectId)) as PresenceUpdate;
    await expect(laptop.setPresence(laptop.deviceId, payload)).rejects.toMatchObject({ status, details: { field } });
  });
});

describe('GET /v1/objects/{id}/content/{path}/sources', () => {
  it('lists the online devices holding the version, and the cloud', async () => {
    const fingerprint = 'ab'.repeat(32);
    await laptop.setPresence(laptop.deviceId, {
      endpoints: [`https://${laptop.deviceId}.example:7443`],
      fingerprint,
      holds: [{ objectId, path: 'album/beach.jpg', version }],
    });
    await announce(phone, [{ objectId, path: 'album/other.jpg', version }]);
    const res = await sourcesOf(tablet);
    expect(res).toEqual({
      path: 'album/beach.jpg',
      version,
      sources: [
        {
          kind: 'device',
          deviceId: laptop.deviceId,
          endpoints: [`https://${laptop.deviceId}.example:7443`],
          fingerprint,
          grant: expect.any(String) as unknown,
          grants: [expect.any(String)] as unknown,
        },
        { kind: 'cloud', url: `/v1/objects/${objectId}/content/album/beach.jpg` },
      ],
    });
    // A member of another user sees it too; the holder is not offered to itself.
    expect(deviceIds(await sourcesOf(bob))).toEqual([laptop.deviceId]);
    expect(deviceIds(await sourcesOf(laptop))).toEqual([]);
    // An account (a person, not a device) sees the holders without grants.
    const byAccount = await sourcesOf(account);
    expect(byAccount.sources[0]).toEqual({
      kind: 'device',
      deviceId: laptop.deviceId,
      endpoints: [`https://${laptop.deviceId}.example:7443`],
      fingerprint,
    });
  });

  it("gives a device caller a grant for each holder that verifies with the service's keys and covers the file's blocks", async () => {
    await announce(laptop, [{ objectId, path: 'album/beach.jpg', version }]);
    const source = (await sourcesOf(tablet)).sources[0];
    if (source?.kind !== 'device' || source.grant === undefined)
      throw new Error(`expected a device source with a grant, got ${JSON.stringify(source)}`);
    const keys = await tablet.grantKeys();
    expect(keys.keys).toEqual([
      {
        kid: expect.stringMatching(/^[A-Za-z0-9_-]+$/) as unknown,
        alg: 'Ed25519',
        publicKey: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) as unknown,
      },
    ]);
    const answer = await tablet.getEntry(objectId, 'album/beach.jpg');
    if (answer.notModified) throw new Error('expected the entry');
    const [block] = answer.entry.blocks;
    const payload = verifyGrant(source.grant, {
      keys: grantKeysOf(keys),
      audience: laptop.deviceId,
      request: { kind: 'blocks', sha256: block!.sha256 },
    });
    expect(payload).toMatchObject({
      v: 1,
      aud: laptop.deviceId,
      sub: tablet.deviceId,
      scope: { kind: 'blocks', objectId, blocks: [block!.sha256] },
    });
    expect(payload.exp - payload.iat).toBe(300);
    // The grant is for the laptop only, and for these blocks only.
    expect(() => verifyGrant(source.grant!, { keys: grantKeysOf(keys), audience: phone.deviceId })).toThrow(/another device/);
    expect(() =>
      verifyGrant(source.grant!, {
        keys: grantKeysOf(keys),
        audience: laptop.deviceId,
        request: { kind: 'blocks', sha256: 'f'.repeat(64) },
      }),
    ).toThrow(/does not cover/);
    // Any principal may read the keys; nobody without a token.
    expect(await account.grantKeys()).toEqual(keys);
    const anonymous = new MeshworkClient({ baseUrl: partition.url });
    await expect(anonymous.grantKeys()).rejects.toMatchObject({ status: 401 });
  });

  it('answers 404 to a stranger, like every object route', async () => {
    await expect(sourcesOf(carol)).rejects.toMatchObject({ status: 404, code: 'not_found' });
  });

  it('follows versions: an old version is held by its holders only, and not by the cloud', async () => {
    const path = 'album/versions.jpg';
    const first = await laptop.upload(objectId, path, randomBytes(500), { ifNoneMatch: '*' });
    const v1 = first.entry.version;
    await announce(laptop, [{ objectId, path, version: v1 }]);
    const second = await phone.upload(objectId, path, randomBytes(600), { ifMatch: v1 });
    const v2 = second.entry.version;
    await announce(phone, [{ objectId, path, version: v2 }]);
    const current = await sourcesOf(tablet, path);
    expect(current.version).toBe(v2);
    expect(deviceIds(current)).toEqual([phone.deviceId]);
    expect(current.sources.some((s) => s.kind === 'cloud')).toBe(true);
    const old = await sourcesOf(tablet, path, v1);
    expect(deviceIds(old)).toEqual([laptop.deviceId]);
    expect(old.sources.some((s) => s.kind === 'cloud')).toBe(false);
    await expect(sourcesOf(tablet, path, 'abc')).rejects.toMatchObject({ status: 400 });
  });

  it('counts a device synced through a cursor as holding every version up to it', async () => {
    const listing = await phone.listEntries(objectId);
    await announce(laptop, [{ objectId, path: 'album/beach.jpg', version }]);
    await announce(phone, [{ objectId, cursor: listing.cursor }]);
    expect(deviceIds(await sourcesOf(tablet))).toEqual([laptop.deviceId, phone.deviceId].sort());
  });

  it('drops what a device no longer says it holds', async () => {
    await announce(laptop, [{ objectId, path: 'album/beach.jpg', version }]);
    expect(deviceIds(await sourcesOf(tablet))).toContain(laptop.deviceId);
    await announce(laptop, []);
    expect(deviceIds(await sourcesOf(tablet))).not.toContain(laptop.deviceId);
  });

  it('lists no device of a user who is no longer a member', async () => {
    const shared = (await laptop.createObject({ name: 'Shared then not' })).id;
    await laptop.setMember(shared, bobId, 'writer');
    const upload = await bob.upload(shared, 'note.txt', randomBytes(100), { ifNoneMatch: '*' });
    const v = upload.entry.version;
    await announce(bob, [{ objectId: shared, path: 'note.txt', version: v }]);
    expect(deviceIds(await laptop.sources(shared, 'note.txt'))).toEqual([bob.deviceId]);
    await laptop.removeMember(shared, bobId);
    expect(deviceIds(await laptop.sources(shared, 'note.txt'))).toEqual([]);
  });

  it('serves the content of a file named "sources" inside a directory', async () => {
    const data = randomBytes(300);
    expect((await laptop.upload(objectId, 'docs/sources', data, { ifNoneMatch: '*' })).created).toBe(true);
    const res = await laptop.content(objectId, 'docs/sources');
    expect(res.status).toBe(200);
    expect(Buffer.from(await new Response(res.body).arrayBuffer()).equals(data)).toBe(true);
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
        expect((await announce(laptop, [{ objectId, path: 'album/beach.jpg', version }])).deviceId).toBe(laptop.deviceId);
        renewals++;
        const ids = deviceIds(await sourcesOf(tablet));
        return ids.includes(phone.deviceId) ? undefined : ids;
      },
      { description: 'the quiet phone to go offline', timeoutMs: 15_000, intervalMs: 250 },
    );
    expect(listed).toEqual([laptop.deviceId]);
    expect(renewals).toBeGreaterThan(1);

    await laptop.clearPresence(laptop.deviceId);
    expect(deviceIds(await sourcesOf(tablet))).toEqual([]);
    // Back again with a new lease.
    await announce(laptop, [{ objectId, path: 'album/beach.jpg', version }]);
    expect(deviceIds(await sourcesOf(tablet))).toEqual([laptop.deviceId]);
  });
});
