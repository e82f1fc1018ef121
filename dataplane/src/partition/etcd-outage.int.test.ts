// An etcd outage longer than the slot lease's TTL, against a real partition process and its own
// etcd (killed and restarted on the same port and data directory): the process must not exit
// (ADR 8: a store outage is systemic), must turn writes away with 503 + Retry-After while it has
// no fence, must re-acquire its slots under a new lease once etcd is back, and must keep what
// it acknowledged before the outage; but if a newer process of its replica registered meanwhile,
// it must exit with the ownership-lost code. A paused former owner still cannot commit
// (fencing.int.test.ts).
// Uses its own etcd, so the whole slot space is its own; MinIO is the shared one.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { ExitCode } from '@meshwork/contract';
import { slotMapKey } from '../stores/keys.ts';
import { MeshworkClient } from '@meshwork/client';
import { startPartition, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
const leaseSeconds = 2;
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

interface Readiness {
  status: string;
  checks: { name: string; ok: boolean; error?: string }[];
}

async function readiness(partition: RunningPartition): Promise<{ status: number; body: Readiness }> {
  const res = await fetch(`${partition.url}/readyz`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: (await res.json()) as Readiness };
}

describe('etcd outage longer than the slot lease', () => {
  it('keeps the process up, refuses writes with 503 + Retry-After, re-acquires the slots and keeps acknowledged writes', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'meshwork-etcd-outage-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    let etcd: EtcdServer = await startEtcd({ name: 'etcd-outage', dataDir });
    cleanups.push(() => etcd.stop());
    const port = Number(new URL(etcd.endpoint).port);
    const partition = await startPartition(
      { etcdEndpoint: etcd.endpoint, minio: stack.minio },
      { partition: 'outage', env: { MESHWORK_SLOT_LEASE_TTL_SECONDS: String(leaseSeconds), MESHWORK_STORE_DEADLINE_SECONDS: '10' } },
    );
    cleanups.push(() => partition.stop());
    const exitedEarly = (): string | undefined => {
      const exit = partition.process.exitStatus;
      return exit ? `the partition exited with code ${exit.code}: ${partition.process.logTail(5)}` : undefined;
    };

    const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
    const device = await admin.as((await admin.createUser('outage')).token).registerDeviceClient('laptop');
    const objectId = (await device.createObject({ name: 'Outage' })).id;
    const before = await device.raw('PUT', `/v1/objects/${objectId}/entries/before`, {
      body: { kind: 'directory' },
      headers: { 'if-none-match': '*' },
    });
    expect(before.status).toBe(201);

    etcd.process.signal('SIGKILL');
    await etcd.process.exited;
    // Before the lease lapses: etcd does not answer, and the write is refused as retryable.
    const unreachable = await device.raw('PUT', `/v1/objects/${objectId}/entries/unreachable`, {
      body: { kind: 'directory' },
      headers: { 'if-none-match': '*' },
    });
    expect(unreachable.status).toBe(503);
    expect(unreachable.headers['retry-after']).toBe('1');
    // Past the lease: the process noticed the lapse and suspended writes, and is still running.
    const suspended = await waitFor(
      async () => {
        const ready = await readiness(partition);
        const slots = ready.body.checks.find((c) => c.name === 'slots');
        return ready.status === 503 && slots?.error?.startsWith('re-acquiring the slots') ? ready : undefined;
      },
      {
        description: 'the partition to report that it re-acquires its slots',
        timeoutMs: 8 * leaseSeconds * 1000 + 10_000,
        intervalMs: 250,
        abortIf: exitedEarly,
      },
    );
    expect(suspended.body.status).toBe('not_ready');
    const refused = await device.raw('PUT', `/v1/objects/${objectId}/entries/during`, {
      body: { kind: 'directory' },
      headers: { 'if-none-match': '*' },
    });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body).toMatchObject({ error: { code: 'ownership_lost' } });

    etcd = await startEtcd({ name: 'etcd-outage', dataDir, port });
    await waitFor(async () => (await readiness(partition)).status === 200, {
      description: 'the partition to be ready again after etcd returned',
      timeoutMs: 30_000,
      intervalMs: 250,
      abortIf: exitedEarly,
    });
    expect(partition.process.exitStatus).toBeUndefined();
    // The log reaches the file through a pipe, possibly after readiness flipped: wait for the line.
    await waitFor(() => partition.process.logTail(200).includes('Re-acquired the slots under a new lease'), {
      description: 'the partition to log that it re-acquired its slots',
      timeoutMs: 10_000,
      intervalMs: 100,
    });

    expect((await device.raw('GET', `/v1/objects/${objectId}/entries/before`)).status).toBe(200);
    const after = await device.raw('PUT', `/v1/objects/${objectId}/entries/after`, {
      body: { kind: 'directory' },
      headers: { 'if-none-match': '*' },
    });
    expect(after.status).toBe(201);
    expect((await device.raw('GET', `/v1/objects/${objectId}/entries/during`)).status).toBe(404);
    expect(partition.process.exitStatus).toBeUndefined();
  });

  it('exits with the ownership-lost code when a newer process of the replica took the slots while etcd was away', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'meshwork-etcd-outage-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    let etcd: EtcdServer = await startEtcd({ name: 'etcd-takeover', dataDir });
    cleanups.push(() => etcd.stop());
    const port = Number(new URL(etcd.endpoint).port);
    const replica = 'takeover-0';
    const partition = await startPartition(
      { etcdEndpoint: etcd.endpoint, minio: stack.minio },
      { partition: 'takeover', env: { MESHWORK_POD_NAME: replica, MESHWORK_SLOT_LEASE_TTL_SECONDS: String(leaseSeconds) } },
    );
    cleanups.push(() => partition.stop());

    etcd.process.signal('SIGKILL');
    await etcd.process.exited;
    await waitFor(
      async () => (await readiness(partition)).body.checks.some((c) => c.name === 'slots' && c.error?.startsWith('re-acquiring the slots')),
      {
        description: 'the partition to report that it re-acquires its slots',
        timeoutMs: 8 * leaseSeconds * 1000 + 10_000,
        intervalMs: 250,
      },
    );
    // Frozen while etcd comes back and a newer process of the same replica registers, as after a reschedule.
    partition.process.signal('SIGSTOP');
    etcd = await startEtcd({ name: 'etcd-takeover', dataDir, port });
    const client = new Etcd3({ hosts: etcd.endpoint });
    try {
      const newer = {
        partition: 'takeover',
        replica,
        slots: '0-4095',
        url: 'http://127.0.0.1:9',
        instance: 'newer-process',
        registeredAt: new Date().toISOString(),
      };
      await client.put(slotMapKey('takeover', replica)).value(JSON.stringify(newer));
    } finally {
      client.close();
    }
    partition.process.signal('SIGCONT');

    const exit = await waitFor(() => partition.process.exitStatus, { description: 'the partition to exit', timeoutMs: 30_000 });
    expect(exit.code).toBe(ExitCode.ownershipLost);
    expect(await readFile(join(partition.dir, 'termination-log'), 'utf8')).toMatch(
      /^fenced: the owner record \/mw\/slotmap\/takeover\/takeover-0 now belongs to a newer process/,
    );
  });
});
