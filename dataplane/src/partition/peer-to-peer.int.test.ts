// Peer-to-peer only objects (`cloudStorage: false`) on a real gateway, partition, etcd and
// MinIO: a commit names blocks nobody uploaded, the content route and WebDAV refuse with a 4xx,
// sources never list the cloud, the bucket gains no object, and naming a block's hash in such an
// object gives nobody possession of the block (ADR 24) nor costs storage quota.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient, type DeviceClient } from '@meshwork/client';
import { startDavStack, type DavStack } from '../../../e2e/dataplane/dav-stack.ts';

let stack: DavStack;
let laptop: DeviceClient;
let phone: DeviceClient;
let objectId: string;

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const basic = (password: string): string => `Basic ${Buffer.from(`someone:${password}`).toString('base64')}`;

/** Every key in the stack's bucket. */
async function bucketKeys(): Promise<string[]> {
  const keys: string[] = [];
  const stream = stack.minio.client().listObjectsV2(stack.minio.bucket, '', true);
  for await (const item of stream as AsyncIterable<{ name?: string }>) if (item.name !== undefined) keys.push(item.name);
  return keys.sort();
}

function dav(method: string, path: string, body?: string): Promise<Response> {
  return fetch(`${stack.gateway.url}/dav/p2p/${path}`, { method, headers: { authorization: basic(stack.appPassword) }, body });
}

beforeAll(async () => {
  stack = await startDavStack('p2p');
  laptop = stack.device;
  phone = await stack.account.registerDeviceClient('phone');
  objectId = (await laptop.createObject({ name: 'p2p', cloudStorage: false })).id;
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('a peer-to-peer only object', () => {
  const blocks = [
    { sha256: sha256(randomBytes(32)), size: 4 * 1024 * 1024 },
    { sha256: sha256(randomBytes(32)), size: 1000 },
  ];

  it('commits a block list without its blocks, and the bucket gains nothing', async () => {
    const before = await bucketKeys();
    const usedBefore = (await stack.account.me()).storage.usedBytes;
    const commit = await laptop.putEntry(objectId, 'movie.mkv', { kind: 'file', blocks }, { ifNoneMatch: '*' });
    expect(commit.created).toBe(true);
    expect(commit.entry).toMatchObject({ kind: 'file', size: 4 * 1024 * 1024 + 1000, blocks });
    // Replaced by another device, and a directory: no upload either.
    const next = [{ sha256: sha256(randomBytes(32)), size: 10 }];
    await phone.putEntry(objectId, 'movie.mkv', { kind: 'file', blocks: next }, { ifMatch: commit.entry.version });
    await phone.putEntry(objectId, 'folder', { kind: 'directory' }, { ifNoneMatch: '*' });
    // WebDAV cannot write content it would have to put in S3.
    const put = await dav('PUT', 'from-dav.txt', 'bytes that would go to S3');
    expect(put.status).toBe(409);
    expect(await put.text()).toMatch(/devices only/);
    expect(await bucketKeys()).toEqual(before);
    expect(before.filter((k) => [...blocks, ...next].some((b) => k.includes(b.sha256)))).toEqual([]);
    // Nothing was stored for the user, so nothing counts against its quota.
    expect((await stack.account.me()).storage.usedBytes).toBe(usedBefore);
  });

  it.each([
    [{ sha256: 'A'.repeat(64), size: 10 }, 'body.blocks.0.sha256'],
    [{ sha256: 'a'.repeat(64), size: 0 }, 'body.blocks.0.size'],
    [{ sha256: 'a'.repeat(64), size: 4 * 1024 * 1024 + 1 }, 'body.blocks.0.size'],
  ])('refuses a malformed block list %j with 400 naming %s', async (block, field) => {
    await expect(laptop.putEntry(objectId, 'bad.bin', { kind: 'file', blocks: [block] }, { ifNoneMatch: '*' })).rejects.toMatchObject({
      status: 400,
      details: { field },
    });
  });

  it('answers its content route 409 peer_to_peer_only, through the gateway and WebDAV', async () => {
    await laptop.putEntry(objectId, 'photo.jpg', { kind: 'file', blocks }, { ifNoneMatch: '*' });
    const res = await laptop.raw('GET', `/v1/objects/${objectId}/content/photo.jpg`);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ error: { code: 'peer_to_peer_only' } });
    const direct = await fetch(`${stack.partition.url}/v1/objects/${objectId}/content/photo.jpg`, {
      headers: { authorization: `Bearer ${laptop.token ?? ''}` },
    });
    expect(direct.status).toBe(409);
    const get = await dav('GET', 'photo.jpg');
    expect(get.status).toBe(409);
    expect(await get.text()).toMatch(/devices only/);
    // Listing still works: the entry is there, with its size.
    const propfind = await fetch(`${stack.gateway.url}/dav/p2p/`, {
      method: 'PROPFIND',
      headers: { authorization: basic(stack.appPassword), depth: '1' },
    });
    expect(propfind.status).toBe(207);
    expect(await propfind.text()).toContain('photo.jpg');
  });

  it('lists holders with grants as sources, and never the cloud', async () => {
    const { entry } = await laptop.putEntry(objectId, 'song.flac', { kind: 'file', blocks }, { ifNoneMatch: '*' });
    await laptop.setPresence(laptop.deviceId, {
      endpoints: ['https://198.51.100.7:7443'],
      holds: [{ objectId, path: 'song.flac', version: entry.version }],
    });
    const res = await phone.sources(objectId, 'song.flac');
    expect(res.sources).toEqual([
      {
        kind: 'device',
        deviceId: laptop.deviceId,
        endpoints: ['https://198.51.100.7:7443'],
        grant: expect.any(String) as unknown,
        grants: [expect.any(String)] as unknown,
      },
    ]);
    // Nobody holds it: no source at all (the agent waits for a device that holds it).
    await laptop.clearPresence(laptop.deviceId);
    expect((await phone.sources(objectId, 'song.flac')).sources).toEqual([]);
  });

  it("gives no possession of a block it names: another user's block stays absent for the committer", async () => {
    // Carol uploads a block to a cloud object of hers; the laptop's user only knows its hash.
    const carolUser = await stack.admin.createUser('carol');
    const carol = await new MeshworkClient({ baseUrl: stack.gateway.url, token: carolUser.token }).registerDeviceClient('carol-laptop');
    const secret = new Uint8Array(randomBytes(2000));
    const carolObject = (await carol.createObject({ name: 'carol' })).id;
    await carol.upload(carolObject, 'secret.bin', secret, { ifNoneMatch: '*' });
    const sha = sha256(secret);
    await laptop.putEntry(objectId, 'stolen.bin', { kind: 'file', blocks: [{ sha256: sha, size: secret.length }] }, { ifNoneMatch: '*' });
    expect((await laptop.raw('GET', `/v1/blocks/${sha}`)).status).toBe(404);
    expect(await laptop.missingBlocks([sha])).toEqual([sha]);
    // Nor into a cloud object of its own.
    const cloudObject = stack.object.id;
    await expect(
      laptop.putEntry(cloudObject, 'stolen.bin', { kind: 'file', blocks: [{ sha256: sha, size: secret.length }] }, { ifNoneMatch: '*' }),
    ).rejects.toMatchObject({ status: 409, code: 'blocks_missing' });
  });
});
