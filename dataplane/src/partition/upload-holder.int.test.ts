// A block upload writes the caller's holder record as soon as the body hashed to the block's
// name, while S3 is still storing it (ADR 67). Here S3 refuses the bytes after they were
// verified (the bucket is gone): the holder written early is removed again, the upload is
// answered 503, and the block stays missing for the caller. A holder left behind without its
// bytes (a process that died between the two) is removed by the first commit naming the block
// once no upload can still be storing it. Run against a real partition process, etcd and MinIO
// of its own.
import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, MeshworkClient, sha256Hex } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { startPartition, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { blockHolderKey } from '../stores/keys.ts';

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let kv: Etcd3;
let alice: MeshworkClient;
let aliceId: string;

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-upload-holder' }), startMinio({ bucket: 'holder' })]);
  partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'holder' });
  kv = new Etcd3({ hosts: etcd.endpoint });
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const user = await admin.createUser('alice');
  aliceId = user.id;
  alice = admin.as(user.token);
});

afterAll(async () => {
  kv?.close();
  await partition?.stop();
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

/** Whether `key` existed at each revision written while `work` ran. */
async function keyHistory(key: string, work: () => Promise<void>): Promise<boolean[]> {
  const revision = async (): Promise<number> => Number((await kv.get('/revision-probe').exec()).header.revision);
  const before = await revision();
  await work();
  const after = await revision();
  const seen: boolean[] = [];
  for (let r = before + 1; r <= after; r++) seen.push((await kv.get(key).revision(r).exec()).kvs.length > 0);
  return seen;
}

describe('a block upload whose bytes S3 refuses after they were verified', () => {
  it('writes the holder early, removes it again, answers 503, and leaves the block missing', async () => {
    const s3 = minio.client();
    await s3.removeBucket(minio.bucket);
    const data = randomBytes(1024);
    const sha256 = await sha256Hex(data);
    let refusal: unknown;
    const key = blockHolderKey(sha256, aliceId);
    const history = await keyHistory(key, async () => {
      refusal = await alice.putBlock(data).then(
        () => undefined,
        (e: unknown) => e,
      );
    });
    expect(refusal).toBeInstanceOf(ApiError);
    expect([(refusal as ApiError).status, (refusal as ApiError).code]).toEqual([503, 'store_unavailable']);
    // Written (before S3 answered), then removed.
    expect(history).toContain(true);
    expect(history.at(-1)).toBe(false);
    expect(await kv.get(key).string()).toBeNull();
    expect(await alice.missingBlocks([sha256])).toEqual([sha256]);

    // With the bucket back, the same upload is stored and recorded, and the block is present.
    await s3.makeBucket(minio.bucket);
    expect(await alice.putBlock(data)).toEqual({ sha256, size: data.length });
    expect(await kv.get(key).string()).not.toBeNull();
    expect(await alice.missingBlocks([sha256])).toEqual([]);
  });
});

describe('a holder record whose bytes S3 lacks', () => {
  it('is removed by a commit naming the block once it is older than an upload in flight, so that missing lists the block again', async () => {
    const objectId = (await alice.createObject({ name: 'Orphans' })).id;
    const data = randomBytes(2048);
    const sha256 = await sha256Hex(data);
    const key = blockHolderKey(sha256, aliceId);
    const commit = (): Promise<unknown> =>
      alice.putEntry(objectId, 'orphan.bin', { kind: 'file', blocks: [{ sha256, size: data.length }] }, { ifNoneMatch: '*' });
    const refusedCommit = async (): Promise<ApiError> => {
      const err = await commit().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ApiError);
      return err as ApiError;
    };

    // Written just now: it may be an upload whose bytes S3 is still storing, so it stays.
    await kv.put(key).value(JSON.stringify({ createdAt: new Date().toISOString() }));
    expect(await alice.missingBlocks([sha256])).toEqual([]);
    const young = await refusedCommit();
    expect([young.status, young.code, young.details?.missing]).toEqual([409, 'blocks_missing', [sha256]]);
    expect(await kv.get(key).string()).not.toBeNull();

    // Left behind ten minutes ago: the commit still answers 409, and removes it.
    await kv.put(key).value(JSON.stringify({ createdAt: new Date(Date.now() - 10 * 60_000).toISOString() }));
    const old = await refusedCommit();
    expect([old.status, old.code, old.details?.missing]).toEqual([409, 'blocks_missing', [sha256]]);
    expect(await kv.get(key).string()).toBeNull();
    expect(await alice.missingBlocks([sha256])).toEqual([sha256]);

    // The client uploads it as missing says, and the commit goes through.
    await alice.putBlock(data);
    await expect(commit()).resolves.toMatchObject({ created: true });
  });
});
