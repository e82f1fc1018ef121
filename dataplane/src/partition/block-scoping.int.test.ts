// Content is scoped (ADR 24): a block is present for, readable by and committable by only a
// caller who proved possession of it, by uploading it or through an entry of an object the
// caller is a member of. Run against a real partition process, etcd and MinIO, with storage
// still deduplicated underneath (one S3 object per sha256). This file starts its own etcd and
// MinIO, so it may use the whole slot space.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, MeshworkClient, sha256Hex } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { startPartition, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let admin: MeshworkClient;
let alice: MeshworkClient;
let bob: MeshworkClient;
let bobId: string;
let aliceObject: string;
let bobObject: string;

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-scoping' }), startMinio({ bucket: 'scoping' })]);
  partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'scoping', slots: '0-4095' });
  admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  alice = admin.as((await admin.createUser('alice')).token);
  const b = await admin.createUser('bob');
  bobId = b.id;
  bob = admin.as(b.token);
  aliceObject = (await alice.createObject({ name: 'Alice' })).id;
  bobObject = (await bob.createObject({ name: 'Bob' })).id;
});

afterAll(async () => {
  await partition?.stop();
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

async function refusal(call: Promise<unknown>): Promise<ApiError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  return err as ApiError;
}

async function versionOf(client: MeshworkClient, objectId: string, path: string): Promise<string> {
  const answer = await client.getEntry(objectId, path);
  if (answer.notModified) throw new Error(`${path}: unexpected 304`);
  return answer.entry.version;
}

/** Alice uploads a fresh block and commits it at `path` in her object. */
async function aliceCommits(path: string): Promise<{ data: Uint8Array; sha256: string }> {
  const data = randomBytes(1000);
  const ref = await alice.putBlock(data);
  await alice.putEntry(aliceObject, path, { kind: 'file', blocks: [ref] }, { ifNoneMatch: '*' });
  return { data, sha256: ref.sha256 };
}

describe('a block someone else stored', () => {
  it('is missing for a caller who has not proved possession, though it is stored', async () => {
    const { sha256 } = await aliceCommits('missing.bin');
    expect(await alice.missingBlocks([sha256])).toEqual([]);
    expect(await bob.missingBlocks([sha256])).toEqual([sha256]);
  });

  it('answers 404 to GET for a caller who has not proved possession, exactly as an absent block', async () => {
    const { sha256 } = await aliceCommits('read.bin');
    const theirs = await refusal(bob.getBlock(sha256));
    const absent = await refusal(bob.getBlock(await sha256Hex(randomBytes(8))));
    expect([theirs.status, theirs.code]).toEqual([404, 'not_found']);
    expect([absent.status, absent.code]).toEqual([404, 'not_found']);
  });

  it('cannot be committed by a caller who never uploaded it, nor read through that caller’s object', async () => {
    const { sha256 } = await aliceCommits('commit.bin');
    const err = await refusal(
      bob.putEntry(bobObject, 'stolen.bin', { kind: 'file', blocks: [{ sha256, size: 1000 }] }, { ifNoneMatch: '*' }),
    );
    expect([err.status, err.code]).toEqual([409, 'blocks_missing']);
    expect(err.details.missing).toEqual([sha256]);
    expect((await refusal(bob.content(bobObject, 'stolen.bin'))).status).toBe(404);
  });

  it('becomes the caller’s by uploading the same bytes: stored once, then committed and read back', async () => {
    const { data, sha256 } = await aliceCommits('upload.bin');
    const ref = await bob.putBlock(data);
    expect(ref.sha256).toBe(sha256);
    expect(await bob.missingBlocks([sha256])).toEqual([]);
    expect(Buffer.from(await bob.getBlock(sha256))).toEqual(Buffer.from(data));
    await bob.putEntry(bobObject, 'mine.bin', { kind: 'file', blocks: [ref] }, { ifNoneMatch: '*' });
    const answer = await bob.content(bobObject, 'mine.bin');
    expect(Buffer.from(await new Response(answer.body).arrayBuffer())).toEqual(Buffer.from(data));
  });

  it('refuses an upload whose bytes do not hash to the name it claims, and grants nothing', async () => {
    const { sha256 } = await aliceCommits('forged.bin');
    const err = await refusal(bob.putBlock(randomBytes(1000), { sha256 }));
    expect([err.status, err.code]).toEqual([422, 'hash_mismatch']);
    expect(await bob.missingBlocks([sha256])).toEqual([sha256]);
  });
});

describe('a block readable through a shared object', () => {
  it('is present and readable for a member, and committable into the member’s own object, until the member is removed', async () => {
    const { data, sha256 } = await aliceCommits('shared.bin');
    await alice.setMember(aliceObject, bobId, 'reader');
    expect(await bob.missingBlocks([sha256])).toEqual([]);
    expect(Buffer.from(await bob.getBlock(sha256))).toEqual(Buffer.from(data));
    await bob.putEntry(bobObject, 'copy.bin', { kind: 'file', blocks: [{ sha256, size: 1000 }] }, { ifNoneMatch: '*' });

    await alice.removeMember(aliceObject, bobId);
    // Bob's own entry now names it: he still reads it through his object.
    expect(await bob.missingBlocks([sha256])).toEqual([]);
    await bob.deleteEntry(bobObject, 'copy.bin', await versionOf(bob, bobObject, 'copy.bin'));
    expect(await bob.missingBlocks([sha256])).toEqual([sha256]);
    expect((await refusal(bob.getBlock(sha256))).status).toBe(404);
  });

  it('is no longer present for a member once the entry that named it is deleted', async () => {
    const { sha256 } = await aliceCommits('gone.bin');
    await alice.setMember(aliceObject, bobId, 'reader');
    try {
      expect(await bob.missingBlocks([sha256])).toEqual([]);
      await alice.deleteEntry(aliceObject, 'gone.bin', await versionOf(alice, aliceObject, 'gone.bin'));
      expect(await bob.missingBlocks([sha256])).toEqual([sha256]);
    } finally {
      await alice.removeMember(aliceObject, bobId);
    }
  });
});

describe('storage quotas', () => {
  it('refuses an upload over the quota with 507 before storing it, counts a held block once, and shows usage in me', async () => {
    const carol = await admin.createUser('carol');
    const client = admin.as(carol.token);
    expect((await client.me()).storage).toEqual({ usedBytes: 0, quotaBytes: null });
    expect(await admin.setQuota(carol.id, 1500)).toEqual({ userId: carol.id, quotaBytes: 1500, usedBytes: 0 });

    const first = randomBytes(1000);
    await client.putBlock(first);
    // The same block again costs nothing more.
    await client.putBlock(first);
    expect((await client.me()).storage).toEqual({ usedBytes: 1000, quotaBytes: 1500 });

    const second = randomBytes(1000);
    const sha256 = await sha256Hex(second);
    const err = await refusal(client.putBlock(second));
    expect([err.status, err.code]).toEqual([507, 'insufficient_storage']);
    expect(err.details).toMatchObject({ usedBytes: 1000, quotaBytes: 1500 });
    expect(await client.missingBlocks([sha256])).toEqual([sha256]);
    // Nothing was stored: nobody can read it, not even by uploading under the quota of another.
    expect((await refusal(alice.getBlock(sha256))).status).toBe(404);

    await admin.setQuota(carol.id, null);
    await client.putBlock(second);
    expect((await client.me()).storage).toEqual({ usedBytes: 2000, quotaBytes: null });
  });

  it('refuses a quota from anyone but the administrator, and for a user that does not exist', async () => {
    expect((await refusal(alice.setQuota(bobId, 10))).status).toBe(403);
    expect((await refusal(admin.setQuota('u0000nosuchuser', 10))).status).toBe(404);
  });
});
