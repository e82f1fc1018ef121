// Credentials that can be revoked, on two replicas of one partition (two processes serving the
// same slots against the same etcd): a device token cannot register devices; a user lists and
// deletes its devices and rotates its account token; a revocation made through one replica is
// honoured by the other, which had the token cached, within the documented bound (measured and
// printed); deleting a device takes its presence with it; and the credential watch still
// delivers after etcd was killed and started again. This file starts its own etcd and MinIO,
// so both replicas serve the whole slot space.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, MeshworkClient, type DeviceClient } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { credentialCacheMillis } from './auth.ts';

/** How soon the other replica must refuse a revoked token it had cached: the watch's doing, far below the cache's time to live. */
const watchBoundMs = 2000;

let etcd: EtcdServer;
let etcdDataDir: string;
let minio: MinioServer;
let first: RunningPartition;
let second: RunningPartition;
let viaFirst: MeshworkClient;
let viaSecond: MeshworkClient;
let account: MeshworkClient;
let userId: string;
let bob: MeshworkClient;

beforeAll(async () => {
  etcdDataDir = await mkdtemp(join(tmpdir(), 'meshwork-etcd-revocation-'));
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-revocation', dataDir: etcdDataDir }), startMinio({ bucket: 'revocation' })]);
  const stores = { etcdEndpoint: etcd.endpoint, minio };
  first = await startPartition(stores, { partition: 'revocation', env: { ...unthrottledEnv, MESHWORK_POD_NAME: 'revocation-0' } });
  second = await startPartition(stores, {
    partition: 'revocation',
    adminToken: first.adminToken,
    env: { ...unthrottledEnv, MESHWORK_POD_NAME: 'revocation-1' },
  });
  viaFirst = new MeshworkClient({ baseUrl: first.url, token: first.adminToken, retry: { maxAttempts: 1 } });
  viaSecond = new MeshworkClient({ baseUrl: second.url, token: first.adminToken, retry: { maxAttempts: 1 } });
  const alice = await viaFirst.createUser('alice');
  userId = alice.id;
  account = viaFirst.as(alice.token);
  bob = viaFirst.as((await viaFirst.createUser('bob')).token);
}, 120_000);

afterAll(async () => {
  await Promise.all([first?.stop(), second?.stop()]);
  await Promise.all([etcd?.stop(), minio?.stop()]);
  if (etcdDataDir) await rm(etcdDataDir, { recursive: true, force: true });
});

/** The token a client speaks with (every client here has one). */
function tokenOf(client: MeshworkClient): string {
  if (client.token === undefined) throw new Error('the client has no token');
  return client.token;
}

async function statusOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (err) {
    if (err instanceof ApiError) return err.status;
    throw err;
  }
}

/** Milliseconds from now until `client` is answered 401 on `GET /v1/me` (polled back to back). */
async function untilRefused(client: MeshworkClient, deadlineMs = 3 * credentialCacheMillis): Promise<number> {
  const start = performance.now();
  for (;;) {
    const { status } = await client.raw('GET', '/v1/me');
    const elapsed = performance.now() - start;
    if (status === 401) return elapsed;
    expect(status).toBe(200);
    if (elapsed > deadlineMs) throw new Error(`still accepted ${Math.round(elapsed)} ms after the revocation`);
  }
}

describe('registering devices', () => {
  it('refuses a device token (a stolen one must not mint credentials) and the administrator', async () => {
    const laptop = await account.registerDeviceClient('laptop');
    const before = (await account.listDevices()).length;
    const err = await laptop.registerDevice('minted-by-a-device').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 403, code: 'forbidden' });
    expect(await statusOf(viaFirst.registerDevice('minted-by-the-administrator'))).toBe(403);
    expect((await account.listDevices()).length).toBe(before);
  });
});

describe('listing devices', () => {
  it("lists the user's devices, marks the caller's own and which are online, and nothing of another user", async () => {
    const carol = viaFirst.as((await viaFirst.createUser('carol')).token);
    const desktop = await carol.registerDeviceClient('desktop');
    const tablet = await carol.registerDeviceClient('tablet');
    await desktop.setPresence(desktop.deviceId, { endpoints: ['https://198.51.100.7:7443'], holds: [] });

    const byAccount = await carol.listDevices();
    expect(byAccount.map((d) => d.id).sort()).toEqual([desktop.deviceId, tablet.deviceId].sort());
    expect(byAccount.every((d) => !d.current)).toBe(true);
    expect(byAccount.find((d) => d.id === desktop.deviceId)).toMatchObject({ name: 'desktop', online: true });
    const listedTablet = byAccount.find((d) => d.id === tablet.deviceId);
    expect(listedTablet).toMatchObject({ name: 'tablet', online: false });
    expect(Number.isNaN(Date.parse(listedTablet?.createdAt ?? ''))).toBe(false);

    const byTablet = await tablet.listDevices();
    expect(byTablet.filter((d) => d.current).map((d) => d.id)).toEqual([tablet.deviceId]);
    expect((await bob.listDevices()).map((d) => d.id)).not.toContain(desktop.deviceId);
  });
});

describe('deleting devices', () => {
  let laptop: DeviceClient;
  let phone: DeviceClient;

  beforeAll(async () => {
    laptop = await account.registerDeviceClient('laptop-2');
    phone = await account.registerDeviceClient('phone');
  });

  it('refuses a device deleting another device of its user (403) and anyone deleting a device of another user (404)', async () => {
    const bobsPhone = await bob.registerDeviceClient('bobs-phone');
    expect(await statusOf(phone.deleteDevice(laptop.deviceId))).toBe(403);
    expect(await statusOf(account.deleteDevice(bobsPhone.deviceId))).toBe(404);
    expect(await statusOf(phone.deleteDevice(bobsPhone.deviceId))).toBe(404);
    expect(await statusOf(account.deleteDevice('dNoSuchDevice'))).toBe(404);
    expect(await statusOf(viaFirst.deleteDevice(laptop.deviceId))).toBe(403);
    // Nothing was deleted.
    expect(await statusOf(laptop.me())).toBe(200);
    expect(await statusOf(bobsPhone.me())).toBe(200);
  });

  it('revokes a deleted device on the other replica, which had its token cached, within the bound', async () => {
    const lost = await account.registerDeviceClient('lost-laptop');
    const onSecond = viaSecond.as(tokenOf(lost));
    // Cached on the second replica now: without the watch it would be accepted for the cache's time to live.
    expect((await onSecond.me()).deviceId).toBe(lost.deviceId);
    await account.deleteDevice(lost.deviceId);
    const delayMs = await untilRefused(onSecond);
    console.info(`revocation delay on the other replica: ${delayMs.toFixed(1)} ms (device deleted)`);
    expect(delayMs).toBeLessThan(watchBoundMs);
    expect(await statusOf(viaFirst.as(tokenOf(lost)).me())).toBe(401);
    expect((await account.listDevices()).map((d) => d.id)).not.toContain(lost.deviceId);
  });

  it('lets a device delete itself, and its presence goes with it', async () => {
    const objectId = (await laptop.createObject({ name: 'Photos' })).id;
    const up = await laptop.upload(objectId, 'cat.jpg', new TextEncoder().encode('meow'), { ifNoneMatch: '*' });
    await laptop.setPresence(laptop.deviceId, {
      endpoints: ['https://198.51.100.8:7443'],
      holds: [{ objectId, cursor: up.entry.version }],
    });
    const deviceSources = async (): Promise<string[]> =>
      (await phone.sources(objectId, 'cat.jpg')).sources.flatMap((s) => (s.kind === 'device' ? [s.deviceId] : []));
    expect(await deviceSources()).toEqual([laptop.deviceId]);

    const onSecond = viaSecond.as(tokenOf(laptop));
    expect(await statusOf(onSecond.me())).toBe(200);
    await laptop.deleteDevice(laptop.deviceId);
    expect(await deviceSources()).toEqual([]);
    expect((await account.listDevices()).map((d) => d.id)).not.toContain(laptop.deviceId);
    const delayMs = await untilRefused(onSecond);
    console.info(`revocation delay on the other replica: ${delayMs.toFixed(1)} ms (device deleted itself)`);
    expect(delayMs).toBeLessThan(watchBoundMs);
    // The object and what the device wrote stay: they are the user's.
    expect((await phone.getEntry(objectId, 'cat.jpg')).notModified).toBe(false);
  });
});

describe('rotating the account token', () => {
  it('answers a new token that works on both replicas; the old one is refused on the other replica within the bound', async () => {
    const device = await account.registerDeviceClient('desk');
    const oldOnSecond = viaSecond.as(tokenOf(account));
    expect((await oldOnSecond.me()).id).toBe(userId);

    expect(await statusOf(device.rotateAccountToken())).toBe(403);
    const rotated = await account.rotateAccountToken();
    expect(rotated.id).toBe(userId);
    expect(rotated.token).toMatch(/^mwu\./);
    expect(rotated.token).not.toBe(account.token);
    const delayMs = await untilRefused(oldOnSecond);
    console.info(`revocation delay on the other replica: ${delayMs.toFixed(1)} ms (account token rotated)`);
    expect(delayMs).toBeLessThan(watchBoundMs);

    expect(await statusOf(account.me())).toBe(401);
    // The replaced token cannot rotate again (and so cannot take the account back).
    expect(await statusOf(account.rotateAccountToken())).toBe(401);
    expect((await viaFirst.as(rotated.token).me()).id).toBe(userId);
    expect((await viaSecond.as(rotated.token).me()).id).toBe(userId);
    // Device tokens are credentials of their own and keep working.
    expect((await device.me()).deviceId).toBe(device.deviceId);
    account = viaFirst.as(rotated.token);
  });
});

describe('after etcd was away', () => {
  it('still revokes on the other replica within the bound once etcd is back (the watch reconnected)', async () => {
    const device = await account.registerDeviceClient('survivor');
    const onSecond = viaSecond.as(tokenOf(device));
    expect(await statusOf(onSecond.me())).toBe(200);

    const port = Number(new URL(etcd.endpoint).port);
    etcd.process.signal('SIGKILL');
    await etcd.process.exited;
    etcd = await startEtcd({ name: 'etcd-revocation', dataDir: etcdDataDir, port });
    const exited = (): string | undefined => ((first.process.exitStatus ?? second.process.exitStatus) ? 'a partition exited' : undefined);
    for (const replica of [first, second]) {
      await waitFor(async () => (await fetch(`${replica.url}/readyz`, { signal: AbortSignal.timeout(2000) })).ok, {
        description: 'the replica to be ready again after etcd returned',
        timeoutMs: 60_000,
        intervalMs: 100,
        abortIf: exited,
      });
    }
    // Cached again on the second replica, through whatever watch it has now.
    await waitFor(async () => (await onSecond.raw('GET', '/v1/me')).status === 200, {
      description: 'the token to be accepted again',
      timeoutMs: 30_000,
    });

    await account.deleteDevice(device.deviceId);
    const delayMs = await untilRefused(onSecond);
    console.info(`revocation delay on the other replica: ${delayMs.toFixed(1)} ms (after an etcd restart)`);
    expect(delayMs).toBeLessThan(watchBoundMs);
  }, 120_000);
});
