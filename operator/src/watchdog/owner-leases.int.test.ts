// The watchdog's reading of owner leases from a real etcd: a record under a live lease is
// present, and one whose lease expires is seen gone (etcd deletes it with the lease).
import { slotMapPrefix } from '@meshwork/contract';
import { Etcd3 } from 'etcd3';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import type { MeshPartition } from '../api/v1alpha1.ts';
import { OwnerLeases } from './owner-leases.ts';

let etcd: EtcdServer;
let client: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd({ name: 'etcd-owner-leases' });
  client = new Etcd3({ hosts: etcd.endpoint });
}, 60_000);

afterAll(async () => {
  client?.close();
  await etcd?.stop();
});

const partition = (endpoint: string) =>
  ({ metadata: { name: 'p0', namespace: 'ns' }, spec: { stores: { etcd: { endpoints: [endpoint] } } } }) as unknown as MeshPartition;

describe('OwnerLeases', () => {
  it('sees a replica’s record while its lease lives and notices when the lease expires', async () => {
    const enqueued: string[] = [];
    const leases = new OwnerLeases({
      log: pino({ level: 'silent' }),
      enqueue: (key) => enqueued.push(key),
      expiryGraceMs: 100,
      pollMs: 200,
    });
    const p0 = partition(etcd.endpoint);
    leases.watch('ns/p0', p0);
    leases.start();
    try {
      const lease = client.lease(2, { autoKeepAlive: false });
      const registeredAt = new Date().toISOString();
      await lease
        .put(`${slotMapPrefix}p0/p0-1`)
        .value(
          JSON.stringify({ partition: 'p0', replica: 'p0-1', slots: '0-4095', url: 'http://198.18.1.5:8080', instance: 'a', registeredAt }),
        );
      // Another partition's record is not this one's business.
      await client
        .put(`${slotMapPrefix}p9/p9-0`)
        .value(JSON.stringify({ partition: 'p9', replica: 'p9-0', url: 'http://x', registeredAt }));
      const live = await waitFor(() => (leases.sighting(p0, 'p0-1')?.present ? leases.sighting(p0, 'p0-1') : undefined), {
        description: 'the record to be seen',
        timeoutMs: 10_000,
        intervalMs: 50,
      });
      expect(live).toEqual({ present: true, url: 'http://198.18.1.5:8080', registeredAt: Date.parse(registeredAt) });
      // A replica with no record since the first read holds no lease.
      expect(leases.sighting(p0, 'p0-2')).toMatchObject({ present: false, registeredAt: NaN });
      expect(enqueued).toContain('ns/p0');
      enqueued.length = 0;
      // Not renewed: etcd expires the lease (TTL 2 s) and deletes the record with it.
      const gone = await waitFor(() => (leases.sighting(p0, 'p0-1')?.present === false ? leases.sighting(p0, 'p0-1') : undefined), {
        description: 'the record to be seen gone',
        timeoutMs: 15_000,
        intervalMs: 100,
      });
      expect(gone?.goneAt).toBeGreaterThan(Date.parse(registeredAt));
      expect(enqueued).toContain('ns/p0');
    } finally {
      leases.stop();
    }
  }, 40_000);
});
