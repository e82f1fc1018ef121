// Fencing: a partition process that was paused while a newer process took over its slots
// cannot commit when it wakes up; it answers 503 and exits with the ownership-lost code.
// Slots 3072-3583 belong to this file.
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ExitCode } from '../exit-codes.ts';
import { MeshClient } from '../../../e2e/dataplane/client.ts';
import { startPartition, type PartitionStores, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
const stores: PartitionStores = { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio };
const running: RunningPartition[] = [];

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
});

describe('fencing', () => {
  it('stops a paused former owner from committing after a newer process registered', async () => {
    const old = await startPartition(stores, { partition: 'fencing', slots: '3072-3583' });
    running.push(old);
    const account = await new MeshClient(old.url, old.adminToken).createUser('fenced');
    const device = await new MeshClient(old.url, account.token).registerDevice('pc');
    const objectId = await device.createObject('Fenced');
    expect((await device.request('PUT', `/v1/objects/${objectId}/entries/before`, { kind: 'directory' }, { 'if-none-match': '*' })).status).toBe(201);

    old.process.signal('SIGSTOP');
    const newer = await startPartition(stores, { partition: 'fencing', slots: '3072-3583', adminToken: old.adminToken });
    running.push(newer);
    old.process.signal('SIGCONT');

    const stale = await device.request('PUT', `/v1/objects/${objectId}/entries/after-pause`, { kind: 'directory' }, { 'if-none-match': '*' });
    expect(stale.status).toBe(503);
    expect(stale.body).toMatchObject({ error: { code: 'ownership_lost' } });
    const exit = await old.process.exited;
    expect(exit.code).toBe(ExitCode.ownershipLost);

    const viaNewer = new MeshClient(newer.url, device.token);
    expect((await viaNewer.request('GET', `/v1/objects/${objectId}/entries/after-pause`)).status).toBe(404);
    expect((await viaNewer.request('PUT', `/v1/objects/${objectId}/entries/after-pause`, { kind: 'directory' }, { 'if-none-match': '*' })).status).toBe(201);
    expect((await viaNewer.request('GET', `/v1/objects/${objectId}/entries/before`)).status).toBe(200);
  });

  it('lets the replicas of one partition all commit without fencing each other', async () => {
    const first = await startPartition(stores, { partition: 'fencing', slots: '3072-3583', env: { MESHWORK_POD_NAME: 'fencing-0' } });
    running.push(first);
    const second = await startPartition(stores, { partition: 'fencing', slots: '3072-3583', adminToken: first.adminToken, env: { MESHWORK_POD_NAME: 'fencing-1' } });
    running.push(second);
    const account = await new MeshClient(first.url, first.adminToken).createUser('replicated');
    const viaFirst = await new MeshClient(first.url, account.token).registerDevice('laptop');
    const viaSecond = new MeshClient(second.url, viaFirst.token);
    const objectId = await viaFirst.createObject('Replicated');

    // Alternate writes between the replicas: each registration came after the other's, and
    // neither may find its fence moved.
    for (let i = 0; i < 4; i++) {
      const client = i % 2 === 0 ? viaFirst : viaSecond;
      expect((await client.request('PUT', `/v1/objects/${objectId}/entries/dir-${i}`, { kind: 'directory' }, { 'if-none-match': '*' })).status).toBe(201);
    }
    const slots = await viaSecond.request<{ partitions: { partition: string; replica: string; url: string }[] }>('GET', '/v1/slots');
    expect(slots.body.partitions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ partition: 'fencing', replica: 'fencing-0', url: first.url }),
        expect.objectContaining({ partition: 'fencing', replica: 'fencing-1', url: second.url }),
      ]),
    );
    expect(first.process.exitStatus).toBeUndefined();
    expect(second.process.exitStatus).toBeUndefined();
  });
});
