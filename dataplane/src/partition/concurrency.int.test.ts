// Optimistic concurrency under a real race: two devices commit the same path with the same
// If-Match at the same moment, 50 times. Slots 1024-2047 belong to this file.
import { createHash, randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { entryKey } from '../stores/keys.ts';
import type { EntryRecord } from '../stores/metadata-store.ts';
import { contentHashOf } from './content-plan.ts';
import { ApiError, MeshworkClient, type BlockRef, type CommitResult } from '@meshwork/client';
import { nodeHttpFetch } from '@meshwork/client/node';
import { startPartition, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
let partition: RunningPartition;
const agents: Agent[] = [];
const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

beforeAll(async () => {
  partition = await startPartition(
    { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio },
    { partition: 'concurrency', slots: '1024-2047' },
  );
});

afterAll(async () => {
  for (const agent of agents) agent.destroy();
  await partition?.stop();
});

/** A client with a connection pool of its own, as each device has, that never retries: every answer counts. */
function ownPool(token: string): MeshworkClient {
  const agent = new Agent({ keepAlive: true });
  agents.push(agent);
  return new MeshworkClient({ baseUrl: partition.url, token, fetch: nodeHttpFetch(agent), retry: { maxAttempts: 1 } });
}

describe('concurrent commits with the same If-Match', () => {
  it('let exactly one win each of 50 rounds; the other gets 412 and no version is lost', async () => {
    const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
    const user = await admin.createUser('racer');
    // Separate connection pools, as two devices would have.
    const laptop = ownPool((await admin.as(user.token).registerDevice('laptop')).token);
    const phone = ownPool((await admin.as(user.token).registerDevice('phone')).token);
    const objectId = (await laptop.createObject({ name: 'Race' })).id;
    const seed = randomBytes(64);
    await laptop.putBlock(seed);
    const seedBlocks = [{ sha256: sha256Hex(seed), size: seed.length }];
    const created = await laptop.putEntry(objectId, 'shared.txt', { kind: 'file', blocks: seedBlocks }, { ifNoneMatch: '*' });
    expect(created.created).toBe(true);
    let version = created.entry.version;
    const winners: { version: string; blocks: BlockRef[] }[] = [];

    for (let round = 0; round < 50; round++) {
      const laptopData = randomBytes(100);
      const phoneData = randomBytes(100);
      await Promise.all([laptop.putBlock(laptopData), phone.putBlock(phoneData)]);
      const laptopBlocks = [{ sha256: sha256Hex(laptopData), size: 100 }];
      const phoneBlocks = [{ sha256: sha256Hex(phoneData), size: 100 }];
      const commit = (client: MeshworkClient, blocks: BlockRef[]): Promise<{ status: number; result?: CommitResult; error?: ApiError }> =>
        client.putEntry(objectId, 'shared.txt', { kind: 'file', blocks }, { ifMatch: version }).then(
          (result) => ({ status: result.created ? 201 : 200, result }),
          (error: unknown) => {
            if (!(error instanceof ApiError)) throw error;
            return { status: error.status, error };
          },
        );
      const [l, p] = await Promise.all([commit(laptop, laptopBlocks), commit(phone, phoneBlocks)]);
      const statuses = [l.status, p.status].sort();
      expect(statuses, `round ${round}`).toEqual([200, 412]);
      const [winner, loser, blocks] = l.status === 200 ? [l, p, laptopBlocks] : [p, l, phoneBlocks];
      const won = winner.result!.entry.version;
      expect(Number(won)).toBeGreaterThan(Number(version));
      // The loser is told the winner's version, so it can merge and retry on top of it.
      expect(loser.error!.toJSON()).toMatchObject({ error: { code: 'precondition_failed', currentVersion: won } });
      winners.push({ version: won, blocks });
      version = won;
    }

    // Every accepted version is in etcd's history exactly as its winner committed it.
    const etcd = new Etcd3({ hosts: stack.etcd.endpoint });
    try {
      for (const w of winners) {
        const res = await etcd.get(entryKey(objectId, 'shared.txt')).revision(w.version).exec();
        const stored = JSON.parse(res.kvs[0]!.value.toString('utf8')) as EntryRecord;
        expect(stored.contentHash).toBe(contentHashOf(w.blocks));
        expect(res.kvs[0]!.mod_revision).toBe(w.version);
      }
      // 1 create + 50 wins: the key changed exactly 51 times, so no loser slipped a write in.
      const now = await etcd.get(entryKey(objectId, 'shared.txt')).exec();
      expect(now.kvs[0]!.version).toBe('51');
    } finally {
      etcd.close();
    }
    const final = await phone.getEntry(objectId, 'shared.txt');
    if (final.notModified) throw new Error('a read without If-None-Match answered 304');
    expect(final.entry.version).toBe(version);
    expect(final.entry.contentHash).toBe(contentHashOf(winners.at(-1)!.blocks));
  });
});
