// kill -9 of the partition process in the middle of a multi-block upload: committed entries
// survive intact, the torn block is not stored, and the upload resumes by asking which
// blocks are missing. Slots 2048-3071 belong to this file.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { MeshClient, sha256Hex } from '../../../e2e/dataplane/client.ts';
import { startPartition, type PartitionStores, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
const stores: PartitionStores = { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio };
const MiB = 1024 * 1024;
const running: RunningPartition[] = [];

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
});

/** Starts a block upload, sends `sent` of its bytes, and leaves the request hanging. */
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
    const admin = new MeshClient(first.url, first.adminToken);
    const account = await admin.createUser('crash-user');
    const device = await new MeshClient(first.url, account.token).registerDevice('laptop');
    const objectId = await device.createObject('Crash');

    const committed = new Map<string, Buffer>();
    let cursorAfterFirst = '';
    for (const [path, size] of [
      ['small.txt', 1000],
      ['two-blocks.bin', 5 * MiB],
      ['dir/three-blocks.bin', 9 * MiB + 7],
    ] as const) {
      const data = randomBytes(size);
      expect((await device.uploadFile(objectId, path, data, 'create')).status).toBe(201);
      committed.set(path, data);
      if (cursorAfterFirst === '') cursorAfterFirst = (await device.request<{ cursor: string }>('GET', `/v1/objects/${objectId}/entries`)).body.cursor;
    }

    // The interrupted file: 8 blocks; 3 are uploaded, the 4th is torn by the kill.
    const big = randomBytes(8 * 4 * MiB);
    const blocks = Array.from({ length: 8 }, (_, i) => big.subarray(i * 4 * MiB, (i + 1) * 4 * MiB));
    const hashes = blocks.map((b) => sha256Hex(b));
    const missingBefore = await device.request<{ missing: string[] }>('POST', '/v1/blocks/missing', { blocks: hashes });
    expect(missingBefore.body.missing).toEqual(hashes);
    for (const block of blocks.slice(0, 3)) expect((await device.putBlock(block)).status).toBe(201);
    const torn = await startTornUpload(first.url, device.token!, blocks[3]!, 2 * MiB);

    first.process.signal('SIGKILL');
    const exit = await first.process.exited;
    expect(exit.signal).toBe('SIGKILL');
    await torn.failed;

    const second = await startPartition(stores, { partition: 'crash', slots: '2048-3071', port: first.port, adminToken: first.adminToken });
    running.push(second);

    for (const [path, data] of committed) {
      const res = await device.request('GET', `/v1/objects/${objectId}/content/${path}`);
      expect(res.status, path).toBe(200);
      expect(res.raw.length).toBe(data.length);
      expect(sha256Hex(res.raw), path).toBe(sha256Hex(data));
    }
    const listing = await device.request<{ entries: { path: string }[] }>('GET', `/v1/objects/${objectId}/entries`);
    expect(listing.body.entries.map((e) => e.path).sort()).toEqual([...committed.keys()].sort());
    // A cursor from before the restart is older than the new process's change feed: served by a scan.
    const changes = await device.request<{ changes: { path: string }[] }>('GET', `/v1/objects/${objectId}/changes?cursor=${cursorAfterFirst}`);
    expect(changes.status).toBe(200);
    expect(changes.body.changes.map((c) => c.path)).toEqual(['dir/three-blocks.bin', 'two-blocks.bin']);

    // Resume: the three finished blocks are kept, the torn one and the rest are missing.
    const missing = await waitFor(
      async () => (await device.request<{ missing: string[] }>('POST', '/v1/blocks/missing', { blocks: hashes })).body.missing,
      { description: 'the restarted partition to answer missing', timeoutMs: 10_000 },
    );
    expect(missing).toEqual(hashes.slice(3));
    for (const sha of missing) expect((await device.putBlock(blocks[hashes.indexOf(sha)]!, sha)).status).toBe(201);
    const commit = await device.commit(objectId, 'big.bin', hashes.map((sha256) => ({ sha256, size: 4 * MiB })), 'create');
    expect(commit.status).toBe(201);
    const back = await device.request('GET', `/v1/objects/${objectId}/content/big.bin`);
    expect(back.status).toBe(200);
    expect(sha256Hex(back.raw)).toBe(sha256Hex(big));
  });
});
