// kill -9 of the partition process in the middle of a multi-block upload: committed entries
// survive intact, the torn block is not stored, and the upload resumes by asking which
// blocks are missing. Slots 2048-3071 belong to this file.
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { MeshworkClient, type ContentAnswer } from '@meshwork/client';
import { startPartition, type PartitionStores, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
const stores: PartitionStores = { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio };
const MiB = 1024 * 1024;
const running: RunningPartition[] = [];

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
});

const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** The whole body of a content answer. */
async function bodyOf(answer: ContentAnswer): Promise<Buffer> {
  return Buffer.from(await new Response(answer.body).arrayBuffer());
}

/**
 * Starts a block upload, sends `sent` of its bytes, and leaves the request hanging: raw
 * `node:http`, because the test needs the upload cut off mid-body, which no client call does.
 */
async function startTornUpload(url: string, token: string, block: Buffer, sent: number): Promise<{ failed: Promise<unknown> }> {
  const target = new URL(url);
  const req = request({
    host: target.hostname,
    port: target.port,
    method: 'PUT',
    path: `/v1/blocks/${sha256Hex(block)}`,
    headers: { authorization: `Bearer ${token}`, 'content-length': String(block.length), 'content-type': 'application/octet-stream' },
  });
  const failed = new Promise((resolve) => {
    req.on('error', resolve);
    req.on('response', resolve);
  });
  await new Promise<void>((resolve) => req.write(block.subarray(0, sent), () => resolve()));
  return { failed };
}

describe('kill -9 during a multi-block upload', () => {
  it('keeps committed entries intact and lets the interrupted upload resume', async () => {
    const first = await startPartition(stores, { partition: 'crash', slots: '2048-3071' });
    running.push(first);
    const admin = new MeshworkClient({ baseUrl: first.url, token: first.adminToken });
    const account = await admin.createUser('crash-user');
    const device = await admin.as(account.token).registerDeviceClient('laptop');
    const objectId = (await device.createObject({ name: 'Crash' })).id;

    const committed = new Map<string, Buffer>();
    let cursorAfterFirst = '';
    for (const [path, size] of [
      ['small.txt', 1000],
      ['two-blocks.bin', 5 * MiB],
      ['dir/three-blocks.bin', 9 * MiB + 7],
    ] as const) {
      const data = randomBytes(size);
      expect((await device.upload(objectId, path, data, { ifNoneMatch: '*' })).created).toBe(true);
      committed.set(path, data);
      if (cursorAfterFirst === '') cursorAfterFirst = (await device.listEntries(objectId)).cursor;
    }

    // The interrupted file: 8 blocks; 3 are uploaded, the 4th is torn by the kill.
    const big = randomBytes(8 * 4 * MiB);
    const blocks = Array.from({ length: 8 }, (_, i) => big.subarray(i * 4 * MiB, (i + 1) * 4 * MiB));
    const hashes = blocks.map((b) => sha256Hex(b));
    expect(await device.missingBlocks(hashes)).toEqual(hashes);
    for (const [i, block] of blocks.slice(0, 3).entries())
      expect(await device.putBlock(block)).toEqual({ sha256: hashes[i], size: 4 * MiB });
    const torn = await startTornUpload(first.url, device.token!, blocks[3]!, 2 * MiB);

    first.process.signal('SIGKILL');
    const exit = await first.process.exited;
    expect(exit.signal).toBe('SIGKILL');
    await torn.failed;

    const second = await startPartition(stores, { partition: 'crash', slots: '2048-3071', port: first.port, adminToken: first.adminToken });
    running.push(second);

    for (const [path, data] of committed) {
      const res = await device.content(objectId, path);
      expect(res.status, path).toBe(200);
      const got = await bodyOf(res);
      expect(got.length).toBe(data.length);
      expect(sha256Hex(got), path).toBe(sha256Hex(data));
    }
    const listing = await device.listEntries(objectId);
    expect(listing.entries.map((e) => e.path).sort()).toEqual([...committed.keys()].sort());
    // A cursor from before the restart is older than the new process's change feed: served by a scan.
    const changes = await device.changes(objectId, { cursor: cursorAfterFirst });
    expect(changes.changes.map((c) => c.path)).toEqual(['dir/three-blocks.bin', 'two-blocks.bin']);

    // Resume: the three finished blocks are kept, the torn one and the rest are missing.
    const missing = await waitFor(async () => device.missingBlocks(hashes), {
      description: 'the restarted partition to answer missing',
      timeoutMs: 10_000,
    });
    expect(missing).toEqual(hashes.slice(3));
    for (const sha of missing)
      expect(await device.putBlock(blocks[hashes.indexOf(sha)]!, { sha256: sha })).toEqual({ sha256: sha, size: 4 * MiB });
    const bigBlocks = hashes.map((sha256) => ({ sha256, size: 4 * MiB }));
    const commit = await device.putEntry(objectId, 'big.bin', { kind: 'file', blocks: bigBlocks }, { ifNoneMatch: '*' });
    expect(commit.created).toBe(true);
    const back = await device.content(objectId, 'big.bin');
    expect(back.status).toBe(200);
    expect(sha256Hex(await bodyOf(back))).toBe(sha256Hex(big));
  });
});
