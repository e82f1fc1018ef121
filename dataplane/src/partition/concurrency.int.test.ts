// Optimistic concurrency under a real race: two devices commit the same path with the same
// If-Match at the same moment, 50 times. Slots 1024-2047 belong to this file.
import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { entryKey } from '../stores/keys.ts';
import type { EntryRecord } from '../stores/metadata-store.ts';
import { contentHashOf } from './content-plan.ts';
import { MeshClient, sha256Hex, type ApiResponse, type BlockRef } from '../../../e2e/dataplane/client.ts';
import { startPartition, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
let partition: RunningPartition;

beforeAll(async () => {
  partition = await startPartition({ etcdEndpoint: stack.etcd.endpoint, minio: stack.minio }, { partition: 'concurrency', slots: '1024-2047' });
});

afterAll(async () => {
  await partition?.stop();
});

describe('concurrent commits with the same If-Match', () => {
  it('let exactly one win each of 50 rounds; the other gets 412 and no version is lost', async () => {
    const admin = new MeshClient(partition.url, partition.adminToken);
    const user = await admin.createUser('racer');
    // Separate connection pools, as two devices would have.
    const laptop = await new MeshClient(partition.url, user.token).registerDevice('laptop');
    const phone = await new MeshClient(partition.url, user.token).registerDevice('phone');
    const objectId = await laptop.createObject('Race');
    const seed = randomBytes(64);
    await laptop.putBlock(seed);
    const created = await laptop.commit(objectId, 'shared.txt', [{ sha256: sha256Hex(seed), size: seed.length }], 'create');
    expect(created.status).toBe(201);
    let version = (created.body as { version: string }).version;
    const winners: { version: string; blocks: BlockRef[] }[] = [];

    for (let round = 0; round < 50; round++) {
      const laptopData = randomBytes(100);
      const phoneData = randomBytes(100);
      await Promise.all([laptop.putBlock(laptopData), phone.putBlock(phoneData)]);
      const laptopBlocks = [{ sha256: sha256Hex(laptopData), size: 100 }];
      const phoneBlocks = [{ sha256: sha256Hex(phoneData), size: 100 }];
      const [l, p] = await Promise.all([laptop.commit(objectId, 'shared.txt', laptopBlocks, version), phone.commit(objectId, 'shared.txt', phoneBlocks, version)]);
      const statuses = [l.status, p.status].sort();
      expect(statuses, `round ${round}`).toEqual([200, 412]);
      const [winner, loser, blocks] = l.status === 200 ? [l, p, laptopBlocks] : [p, l, phoneBlocks];
      const won = (winner as ApiResponse<{ version: string }>).body.version;
      expect(Number(won)).toBeGreaterThan(Number(version));
      // The loser is told the winner's version, so it can merge and retry on top of it.
      expect(loser.body).toMatchObject({ error: { code: 'precondition_failed', currentVersion: won } });
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
    const final = await phone.request<{ version: string; contentHash: string }>('GET', `/v1/objects/${objectId}/entries/shared.txt`);
    expect(final.body.version).toBe(version);
    expect(final.body.contentHash).toBe(contentHashOf(winners.at(-1)!.blocks));
  });
});
