// The block collector against real etcd, MinIO and a partition process (ADR 24): blocks no
// entry names any more leave S3 (after an entry is deleted or overwritten, after its object is
// deleted), blocks an entry still names stay, and a commit racing the collector never leaves
// an acknowledged entry pointing at a deleted block. The partition runs its own collector
// every second with a grace period of 5 s (an uploader's storage usage drops with it); the
// race test drives one directly from here with none.
// This file starts its own etcd and MinIO, so it may use the whole slot space.
import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, MeshworkClient, type BlockRef } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { startPartition, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { BlockStore, type BlockStoreOptions } from '../stores/block-store.ts';
import { MetadataStore } from '../stores/metadata-store.ts';
import { collectBlock, type CollectorDeps } from './sync/block-collector.ts';

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let client: Etcd3;
let s3: BlockStoreOptions;
let collector: CollectorDeps;
let alice: MeshworkClient;
let objectId: string;

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-collector' }), startMinio({ bucket: 'collector' })]);
  partition = await startPartition(
    { etcdEndpoint: etcd.endpoint, minio },
    { partition: 'collector', slots: '0-4095', env: { MESHWORK_BLOCK_GRACE_SECONDS: '5', MESHWORK_COLLECT_INTERVAL_SECONDS: '1' } },
  );
  client = new Etcd3({ hosts: etcd.endpoint });
  s3 = {
    endpoint: new URL(minio.endpoint),
    bucket: minio.bucket,
    region: 'us-east-1',
    accessKey: minio.accessKey,
    secretKey: minio.secretKey,
  };
  collector = { metadata: new MetadataStore(client), blocks: new BlockStore(s3), timing: { graceSeconds: 0, takeoverSeconds: 600 } };
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  alice = admin.as((await admin.createUser('alice')).token);
  objectId = (await alice.createObject({ name: 'Collected' })).id;
});

afterAll(async () => {
  await partition?.stop();
  client?.close();
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

/** Whether S3 holds the block: a fresh store each time, since a store remembers sizes it saw. */
async function inS3(sha256: string): Promise<boolean> {
  return (await new BlockStore(s3).sizeOf(sha256)) !== undefined;
}

async function waitGone(sha256: string): Promise<void> {
  await waitFor(async () => !(await inS3(sha256)), { description: `block ${sha256} to leave S3`, timeoutMs: 30_000 });
}

async function versionOf(path: string): Promise<string> {
  const answer = await alice.getEntry(objectId, path);
  if (answer.notModified) throw new Error(`${path}: unexpected 304`);
  return answer.entry.version;
}

async function contentOf(path: string): Promise<Buffer> {
  const answer = await alice.content(objectId, path);
  return Buffer.from(await new Response(answer.body).arrayBuffer());
}

async function commitFresh(path: string, size = 1000): Promise<{ data: Buffer; ref: BlockRef }> {
  const data = randomBytes(size);
  const ref = await alice.putBlock(data);
  await alice.putEntry(objectId, path, { kind: 'file', blocks: [ref] }, { ifNoneMatch: '*' });
  return { data, ref };
}

describe('collection', () => {
  it('deletes a block from S3 once the entry naming it is deleted, and takes an upload of it again afterwards', async () => {
    const { data, ref } = await commitFresh('deleted.bin');
    const used = (await alice.me()).storage.usedBytes;
    await alice.deleteEntry(objectId, 'deleted.bin', await versionOf('deleted.bin'));
    await waitGone(ref.sha256);
    expect(await alice.missingBlocks([ref.sha256])).toEqual([ref.sha256]);
    // The uploader's usage no longer counts it.
    await waitFor(async () => (await alice.me()).storage.usedBytes === used - data.length, {
      description: 'usage to drop',
      timeoutMs: 10_000,
    });

    // The same bytes come back: uploaded again, committed and read.
    await alice.putBlock(data);
    await alice.putEntry(objectId, 'deleted.bin', { kind: 'file', blocks: [ref] }, { ifNoneMatch: '*' });
    expect(await contentOf('deleted.bin')).toEqual(data);
  });

  it('deletes the old blocks of an overwritten entry and keeps the new ones', async () => {
    const { ref: old } = await commitFresh('overwritten.bin');
    const data = randomBytes(500);
    const fresh = await alice.putBlock(data);
    await alice.putEntry(objectId, 'overwritten.bin', { kind: 'file', blocks: [fresh] }, { ifMatch: await versionOf('overwritten.bin') });
    await waitGone(old.sha256);
    expect(await collectBlock(collector, fresh.sha256)).toBe('kept');
    expect(await contentOf('overwritten.bin')).toEqual(data);
  });

  it('deletes every block of a deleted object', async () => {
    const other = (await alice.createObject({ name: 'Doomed' })).id;
    const refs = await Promise.all([randomBytes(300), randomBytes(400)].map((d) => alice.putBlock(d)));
    await alice.putEntry(other, 'a.bin', { kind: 'file', blocks: [refs[0]!] }, { ifNoneMatch: '*' });
    await alice.putEntry(other, 'b/c.bin', { kind: 'file', blocks: [refs[1]!, refs[0]!] }, { ifNoneMatch: '*' });
    await alice.deleteObject(other);
    for (const ref of refs) await waitGone(ref.sha256);
  });

  it('keeps a block that another entry still names after one of them is deleted', async () => {
    const { data, ref } = await commitFresh('first.bin');
    await alice.putEntry(objectId, 'second.bin', { kind: 'file', blocks: [ref] }, { ifNoneMatch: '*' });
    await alice.deleteEntry(objectId, 'first.bin', await versionOf('first.bin'));
    // Driven here twice: once to drop the stale reference, once to see the live one.
    expect(await collectBlock(collector, ref.sha256)).toBe('kept');
    expect(await collectBlock(collector, ref.sha256)).toBe('kept');
    expect(await inS3(ref.sha256)).toBe(true);
    expect(await contentOf('second.bin')).toEqual(data);
  });
});

describe('a commit racing the collector', () => {
  it('never acknowledges an entry whose block was deleted', async () => {
    const iterations = 60;
    const acknowledged: { path: string; data: Buffer; sha256: string }[] = [];
    let refused = 0;
    let collected = 0;
    for (let i = 0; i < iterations; i++) {
      const data = randomBytes(200);
      const ref = await alice.putBlock(data);
      const path = `race/${i}.bin`;
      // The upload is past its (zero) grace period at once: the commit and the deletion race.
      // Either side gets a head start in turn (on a busy machine a request is slow to leave,
      // so without a head start for the collector the commit would win every race).
      const [commitDelay, collectDelay] = (
        [
          [0, 0],
          [0, 2],
          [5, 0],
          [20, 0],
        ] as const
      )[i % 4]!;
      const after = (ms: number): Promise<unknown> => new Promise((resolve) => setTimeout(resolve, ms));
      const [commit, outcome] = await Promise.allSettled([
        after(commitDelay).then(() => alice.putEntry(objectId, path, { kind: 'file', blocks: [ref] }, { ifNoneMatch: '*' })),
        after(collectDelay).then(() => collectBlock(collector, ref.sha256)),
      ]);
      if (outcome.status === 'rejected') throw outcome.reason;
      if (outcome.value === 'deleted') collected++;
      if (commit.status === 'fulfilled') {
        acknowledged.push({ path, data, sha256: ref.sha256 });
      } else {
        const err = commit.reason as unknown;
        expect(err).toBeInstanceOf(ApiError);
        expect((err as ApiError).code).toBe('blocks_missing');
        refused++;
      }
    }
    // Whatever order they ran in, every acknowledged entry's block is in S3 and reads back.
    for (const { path, data, sha256 } of acknowledged) {
      expect(await collectBlock(collector, sha256), path).toBe('kept');
      expect(await inS3(sha256), path).toBe(true);
      expect(await contentOf(path), path).toEqual(data);
    }
    expect(acknowledged.length + refused).toBe(iterations);
    // Both sides won some of the races, or the test raced nothing.
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(collected).toBeGreaterThan(0);
    console.log(`race: ${acknowledged.length} commits acknowledged, ${refused} refused, ${collected} blocks collected`);
  });

  it('never acknowledges an entry of more than 100 blocks (references written before the entry) whose block was deleted', async () => {
    const iterations = 8;
    let acknowledged = 0;
    for (let i = 0; i < iterations; i++) {
      const parts = Array.from({ length: 101 }, () => randomBytes(64));
      // A few at a time, as the client's upload does: a burst of 101 would meet the partition's load shedding.
      const refs: BlockRef[] = [];
      for (let j = 0; j < parts.length; j += 8) refs.push(...(await Promise.all(parts.slice(j, j + 8).map((p) => alice.putBlock(p)))));
      const raced = refs[i * 12]!.sha256;
      const path = `race-large/${i}.bin`;
      const [commit, outcome] = await Promise.allSettled([
        alice.putEntry(objectId, path, { kind: 'file', blocks: refs }, { ifNoneMatch: '*' }),
        // From at once to well after the references were written: both sides win some.
        new Promise((resolve) => setTimeout(resolve, i * 30)).then(() => collectBlock(collector, raced)),
      ]);
      if (outcome.status === 'rejected') throw outcome.reason;
      if (commit.status === 'rejected') {
        expect((commit.reason as ApiError).code).toBe('blocks_missing');
        continue;
      }
      acknowledged++;
      expect(await collectBlock(collector, raced), path).toBe('kept');
      expect(await inS3(raced), path).toBe(true);
      expect(await contentOf(path), path).toEqual(Buffer.concat(parts));
    }
    expect(acknowledged).toBeGreaterThan(0);
  });
});
