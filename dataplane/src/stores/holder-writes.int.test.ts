// Holder writes of concurrent uploads share one etcd transaction (MetadataStore.recordHolder):
// each write still succeeds or fails on its own block's state, a block uploaded twice at once
// by one user is written once, and a moved fence fails them all. A holder written for an upload
// whose bytes then did not reach S3 is removed only as written (dropHolder). Block records are
// read many blocks per transaction (readBlocks).
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { blockHolderKey, blockRefKey, blockStateKey, usageKey } from './keys.ts';
import { MetadataStore, OwnershipLostError, type BlockRecords } from './metadata-store.ts';

let etcd: EtcdServer;
let client: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd({ name: 'etcd-holders' });
  client = new Etcd3({ hosts: etcd.endpoint });
});

afterAll(async () => {
  client?.close();
  await etcd?.stop();
});

const sha = (n: number): string => n.toString(16).padStart(64, '0');

describe('holder writes', () => {
  it('writes a burst of holders, each on its own state, and fails only the one whose state moved', async () => {
    const store = new MetadataStore(client);
    // Block 3 was marked by the collector: its state key exists, so a compare with 0 fails.
    await client.put(blockStateKey(sha(3))).value(JSON.stringify({ state: 'deleting', since: new Date().toISOString() }));
    const now = new Date();
    const results = await Promise.all([
      store.recordHolder(sha(1), 'alice', 0, now, 10),
      store.recordHolder(sha(2), 'alice', 0, now, 20),
      store.recordHolder(sha(3), 'alice', 0, now, 30),
      store.recordHolder(sha(1), 'bob', 0, now, 10),
      // The same block by the same user twice at once: one write, both answered.
      store.recordHolder(sha(2), 'alice', 0, now, 20),
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, true, false, true, true]);
    expect(results[2]).toMatchObject({ ok: false, state: { value: { state: 'deleting' } } });
    for (const [block, user] of [
      [1, 'alice'],
      [2, 'alice'],
      [1, 'bob'],
    ] as const) {
      expect((await client.get(blockHolderKey(sha(block), user)).string()) !== null).toBe(true);
      expect(await client.get(usageKey(user, sha(block))).string()).toBe(String(block === 1 ? 10 : 20));
    }
    expect(await client.get(blockHolderKey(sha(3), 'alice')).string()).toBeNull();
    expect(await store.storageUsed('alice')).toBe(30);
    // Each answer names the revision its holder record was written at.
    const written = Number((await client.get(blockHolderKey(sha(1), 'bob')).exec()).kvs[0]!.mod_revision);
    expect(results[3]).toEqual({ ok: true, version: written });
  });

  it('drops a holder and its usage only while it is the one written at the given version', async () => {
    const store = new MetadataStore(client);
    const first = await store.recordHolder(sha(21), 'dave', 0, new Date(), 5);
    const second = await store.recordHolder(sha(21), 'dave', 0, new Date(), 5);
    if (!first.ok || !second.ok) throw new Error('holder writes failed');
    expect(second.version).toBeGreaterThan(first.version);
    // An older upload's undo does not remove what a later upload wrote.
    expect(await store.dropHolder(sha(21), 'dave', first.version)).toBe(false);
    expect(await client.get(blockHolderKey(sha(21), 'dave')).string()).not.toBeNull();
    expect(await store.dropHolder(sha(21), 'dave', second.version)).toBe(true);
    expect(await client.get(blockHolderKey(sha(21), 'dave')).string()).toBeNull();
    expect(await client.get(usageKey('dave', sha(21))).string()).toBeNull();
  });

  it('fails every write of a burst when the fence moved', async () => {
    const store = new MetadataStore(client);
    await client.put('/test/owner').value('a');
    const owner = Number((await client.get('/test/owner').exec()).kvs[0]!.mod_revision);
    store.setFence('/test/owner', owner);
    await client.put('/test/owner').value('b');
    const now = new Date();
    const results = await Promise.allSettled([
      store.recordHolder(sha(11), 'carol', 0, now, 1),
      store.recordHolder(sha(12), 'carol', 0, now, 1),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(OwnershipLostError);
    expect(await client.get(blockHolderKey(sha(11), 'carol')).string()).toBeNull();
  });
});

describe('block records', () => {
  it('reads the records of more blocks than one transaction holds, each as readBlock reads it, in the order asked', async () => {
    const store = new MetadataStore(client);
    const blocks = Array.from({ length: 100 }, (_, i) => sha(1000 + i));
    // Every third block has a holder, every fifth a reference, every seventh a state.
    const puts = blocks.flatMap((b, i) => [
      ...(i % 3 === 0 ? [client.put(blockHolderKey(b, 'erin')).value(JSON.stringify({ createdAt: `t${i}` }))] : []),
      ...(i % 5 === 0 ? [client.put(blockRefKey(b, 'object1', `path/${i}`)).value('')] : []),
      ...(i % 7 === 0 ? [client.put(blockStateKey(b)).value(JSON.stringify({ state: 'deleted', since: `t${i}` }))] : []),
    ]);
    await Promise.all(puts.map((p) => p.exec()));
    const asked = [...blocks].reverse();
    const together = await store.readBlocks(asked);
    expect(together).toHaveLength(asked.length);
    const withoutRevision = ({ revision: _, ...rest }: BlockRecords): Omit<BlockRecords, 'revision'> => rest;
    for (const [i, b] of asked.entries()) expect(withoutRevision(together[i]!)).toEqual(withoutRevision(await store.readBlock(b)));
    expect(together.filter((r) => r.holders.length > 0)).toHaveLength(34);
    expect(together.filter((r) => r.refs.length > 0)).toHaveLength(20);
    expect(together.filter((r) => r.state !== undefined)).toHaveLength(15);
    expect(await store.readBlocks([])).toEqual([]);
  });
});
