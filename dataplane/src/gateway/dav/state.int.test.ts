// WebDAV's state in a real etcd: concurrent requests share round trips (ADR 87) without a
// caller ever getting an answer older than its question, and no write is lost or reordered.
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startEtcd, type EtcdServer } from '../../../../e2e/harness/etcd.ts';
import { DavState, type StoredProps } from './state.ts';

let etcd: EtcdServer;
let client: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd({ name: 'etcd-dav-state' });
  client = new Etcd3({ hosts: etcd.endpoint });
});

afterAll(async () => {
  client?.close();
  await etcd?.stop();
});

const revision = async (): Promise<number> => Number((await client.get('/probe').exec()).header.revision);
const sums = (n: number): StoredProps => ({ dead: {}, sums: { contentHash: `h${n}`, sha1: `s${n}`, md5: `m${n}` } });

describe('DavState', () => {
  it('stores concurrent property writes in fewer transactions than writes, every one of them', async () => {
    const state = new DavState(client);
    const before = await revision();
    await Promise.all(Array.from({ length: 60 }, (_, i) => state.setProps('o1', `f${i}`, sums(i))));
    const transactions = (await revision()) - before;
    expect(transactions).toBeGreaterThanOrEqual(1);
    expect(transactions).toBeLessThan(60);
    for (let i = 0; i < 60; i++) expect((await state.props('o1', `f${i}`)).sums?.sha1).toBe(`s${i}`);
  });

  it('keeps the last of two writes of one resource, and a removal after a write removes it', async () => {
    const state = new DavState(client);
    await Promise.all([state.setProps('o2', 'a', sums(1)), state.setProps('o2', 'a', sums(2))]);
    expect((await state.props('o2', 'a')).sums?.sha1).toBe('s2');
    const writing = state.setProps('o2', 'b/c', sums(3));
    await state.deletePropsWithin('o2', 'b');
    await writing;
    expect(await state.props('o2', 'b/c')).toEqual({ dead: {} });
  });

  it('answers concurrent lock reads of one object with fewer reads, never with one that started before the question', async () => {
    const state = new DavState(client);
    const lock = { objectId: 'o3', depth: '0' as const, scope: 'exclusive' as const, owner: 'x', holder: 'd', timeoutSeconds: 60 };
    await state.putLock({ ...lock, root: 'first' });
    const reads = vi.spyOn(client, 'getAll');
    const early = Array.from({ length: 10 }, () => state.locks('o3'));
    // Taken while those reads may still be running: a read asked for after it must see it.
    const second = await state.putLock({ ...lock, root: 'second' });
    const late = Array.from({ length: 10 }, () => state.locks('o3'));
    for (const answer of await Promise.all(early)) expect(answer.map((l) => l.root)).toContain('first');
    for (const answer of await Promise.all(late)) expect(answer.map((l) => l.token)).toContain(second.token);
    expect(reads.mock.calls.length).toBeLessThan(20);
    reads.mockRestore();
  });
});
