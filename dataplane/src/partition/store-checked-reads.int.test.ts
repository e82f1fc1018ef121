// Block reads the store vouches for (ADR 77): the partition writes every block with its sha256
// as the checksum S3 checks and keeps, and a content read whose kept checksum names the block
// is not hashed again. Whatever else is under a block's key (bytes put behind the partition's
// back, with no checksum or with one of their own) is hashed as before, so it never completes a
// download. Against a real partition process, etcd and MinIO in the default mode (`store`).
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { startPartition, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { blockKey } from '../stores/block-store.ts';

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let alice: MeshworkClient;
let objectId: string;

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-read-check' }), startMinio({ bucket: 'read-check' })]);
  partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'read-check', slots: '0-4095' });
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  alice = admin.as((await admin.createUser('alice')).token);
  objectId = (await alice.createObject({ name: 'Checked' })).id;
});

afterAll(async () => {
  await partition?.stop();
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

/** `meshwork_block_reads_total` by its `check` label. */
async function reads(): Promise<{ store: number; hash: number }> {
  const text = await (await fetch(`${partition.url}/metrics`)).text();
  const count = (check: string): number =>
    Number(new RegExp(`^meshwork_block_reads_total\\{check="${check}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { store: count('store'), hash: count('hash') };
}

async function contentOf(path: string): Promise<Buffer> {
  const answer = await alice.content(objectId, path);
  return Buffer.from(await new Response(answer.body).arrayBuffer());
}

describe('content reads checked by the store', () => {
  it('serves a file whose blocks the store vouches for, and never completes one with other bytes under a block key', async () => {
    const data = randomBytes(3 * 65_536);
    const { blocks } = await alice.upload(objectId, 'three.bin', data, { ifNoneMatch: '*' }, { blockSize: 65_536 });
    expect(blocks).toHaveLength(3);
    expect(await reads()).toEqual({ store: 0, hash: 0 });
    expect(await contentOf('three.bin')).toEqual(data);
    // The store vouched for all three: none was hashed.
    expect(await reads()).toEqual({ store: 3, hash: 0 });

    // The middle block's key gets other bytes of the same size: without a checksum, then with
    // a checksum that is right for them but does not name the block.
    const middle = blocks[1]!.sha256;
    const other = randomBytes(65_536);
    const s3 = minio.client();
    await s3.putObject(minio.bucket, blockKey(middle), other, other.length);
    await expect(contentOf('three.bin')).rejects.toThrow();
    // The first block vouched for, the middle one hashed (the next may have been opened already).
    expect((await reads()).hash).toBe(1);
    await s3.putObject(minio.bucket, blockKey(middle), other, other.length, {
      'x-amz-checksum-sha256': createHash('sha256').update(other).digest('base64'),
    });
    await expect(contentOf('three.bin')).rejects.toThrow();
    expect((await reads()).hash).toBe(2);

    // The right bytes put back without a checksum: not vouched for, hashed, and served whole.
    await s3.putObject(minio.bucket, blockKey(middle), data.subarray(65_536, 131_072), 65_536);
    expect(await contentOf('three.bin')).toEqual(data);
    expect((await reads()).hash).toBe(3);
  });
});
