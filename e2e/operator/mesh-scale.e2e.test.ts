// Scaling a Mesh on the local cluster while devices write through its gateway (ADR 34): 2 → 3
// partitions moves slots to the new partition online without rolling the two that run (same
// member pods, same StatefulSet revision, same spec), and 3 → 2 moves them back before the
// surplus partition is deleted. Four writers commit entries through the gateway the whole time,
// two of them in slots that move both ways; every acknowledged commit is in the final listing
// and nothing else is, every slot has an owner key naming a partition of the layout, and every
// answer that was not a 2xx was a documented 503 with Retry-After.
import { Etcd3 } from 'etcd3';
import { MeshworkClient, type DeviceClient } from '@meshwork/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { slotOf } from '../../dataplane/src/slots.ts';
import type { Mesh, MeshPartition } from '../../operator/src/api/v1alpha1.ts';
import { ownedRanges } from '../../operator/src/mesh/move-step.ts';
import { readSlotOwners } from '../../operator/src/mesh/slot-mover.ts';
import { waitFor } from '../harness/wait.ts';
import { WatchdogTestBed, type WatchdogCluster } from '../watchdog/cluster.ts';
import { kubectlOk } from './harness.ts';

const stack = inject('stack');
/** Answers a client of the gateway may get while slots move, each a 503 with Retry-After (docs/api.md). */
const documented = new Set(['slot_moving', 'partition_unavailable', 'overloaded', 'store_unavailable']);

interface WriterLog {
  objectId: string;
  slot: number;
  acked: Set<string>;
  refusals: { status: number; code: string; retryAfter: string | undefined }[];
}

/** Commits `w-{n}` entries one after another until `stop.now`, repeating each until it is acknowledged. */
async function write(device: DeviceClient, log: WriterLog, stop: { now: boolean }): Promise<void> {
  for (let n = 0; !stop.now; n++) {
    const path = `w-${n}`;
    let ambiguous = false;
    for (;;) {
      const res = await device
        .raw('PUT', `/v1/objects/${log.objectId}/entries/${path}`, { body: { kind: 'directory' }, headers: { 'if-none-match': '*' } })
        .catch(() => undefined);
      if (res === undefined) {
        // No answer: the commit may have applied; If-None-Match tells on the repeat.
        ambiguous = true;
      } else if (res.status >= 200 && res.status < 300) {
        log.acked.add(path);
        break;
      } else if (res.status === 412 && ambiguous) {
        log.acked.add(path);
        break;
      } else {
        const code = (res.body as { error?: { code?: string } } | undefined)?.error?.code ?? `status ${res.status}`;
        log.refusals.push({ status: res.status, code, retryAfter: res.headers['retry-after'] });
        if (res.status >= 500) ambiguous = true;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Paced: the load is modest on purpose, the moves are what is tested.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('scaling a Mesh on the local cluster under a write load', () => {
  const bed = new WatchdogTestBed();
  let cluster: WatchdogCluster;
  let etcd: Etcd3;

  const mesh = async (): Promise<Mesh> =>
    (await cluster.custom.getNamespacedCustomObject({
      group: 'meshwork.io',
      version: 'v1alpha1',
      namespace: cluster.namespace,
      plural: 'meshes',
      name: 'grow',
    })) as Mesh;
  const scale = (partitions: number): Promise<string> =>
    kubectlOk(bed.controlPlane!.adminKubeconfig, [
      'patch',
      '-n',
      cluster.namespace,
      'mesh',
      'grow',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { partitions } }),
    ]);
  /** How many slots each partition owns by the owner keys. */
  const ownedSlots = async (): Promise<Record<string, number>> => {
    const { owners } = await readSlotOwners(etcd);
    return Object.fromEntries([...ownedRanges(owners)].map(([p, ranges]) => [p, ranges.reduce((n, r) => n + r.last - r.first + 1, 0)]));
  };
  /** The Mesh once it is Ready and settled on its current generation. */
  const settledMesh = (description: string): Promise<Mesh> =>
    waitFor(
      async () => {
        const m = await mesh();
        const ready = m.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
        const progressing = m.status?.conditions?.find((c) => c.type === 'Progressing')?.status === 'True';
        return m.status?.observedGeneration === m.metadata.generation && ready && !progressing ? m : undefined;
      },
      { description, timeoutMs: 180_000, intervalMs: 250 },
    );
  /** What would show a partition rolled: its member pods' uids, its StatefulSet's revision and its spec's generation. */
  const fingerprint = async (name: string): Promise<string> => {
    const p: MeshPartition = await cluster.partition(name);
    const uids = (await cluster.pods(name)).map((pod) => pod.metadata!.uid!).sort();
    return `${uids.join(',')} rev=${p.status?.updateRevision ?? ''} gen=${p.metadata.generation ?? 0}`;
  };
  const movedEvents = async (): Promise<string[]> =>
    (
      await cluster.core.listNamespacedEvent({
        namespace: cluster.namespace,
        fieldSelector: 'involvedObject.kind=Mesh,involvedObject.name=grow,reason=MovedSlots',
      })
    ).items.map((e) => e.message ?? '');

  beforeAll(async () => {
    cluster = await bed.start(stack.minio, 13);
    etcd = new Etcd3({ hosts: cluster.etcd.endpoint });
    const body = {
      apiVersion: 'meshwork.io/v1alpha1',
      kind: 'Mesh',
      metadata: { name: 'grow', namespace: cluster.namespace },
      spec: {
        partitions: 2,
        replicasPerPartition: 1,
        adminTokenSecretRef: { name: 'admin' },
        resources: { cpu: '100m', memory: '256Mi' },
        storage: { volumes: 1, size: '1Gi', storageClassName: 'meshwork-local' },
        stores: {
          etcd: { endpoints: [cluster.etcd.endpoint] },
          s3: { endpoint: stack.minio.endpoint, bucket: stack.minio.bucket, credentialsSecretRef: { name: 's3' } },
        },
        gateway: { replicas: 1, resources: { cpu: '100m', memory: '256Mi' } },
      },
    };
    await kubectlOk(bed.controlPlane!.adminKubeconfig, ['apply', '--server-side', '-f', '-'], JSON.stringify(body));
    await settledMesh('the Mesh of 2 partitions to be Ready');
  });

  afterAll(async () => {
    etcd?.close();
    await bed.stop();
  });

  it('grows 2 → 3 → 2 online: nothing acknowledged is lost, every slot is covered, the running partitions are not rolled', async () => {
    // The keys were seeded from the partitions' claims once both registered.
    await waitFor(async () => (await ownedSlots())['grow-p1'] === 2048, { description: 'owner keys for every slot', timeoutMs: 30_000 });
    expect(await ownedSlots()).toEqual({ 'grow-p0': 2048, 'grow-p1': 2048 });

    const gatewayPod = (
      await cluster.core.listNamespacedPod({ namespace: cluster.namespace, labelSelector: 'app.kubernetes.io/component=gateway' })
    ).items.find((p) => p.status?.podIP && !p.metadata?.deletionTimestamp)!;
    const baseUrl = `http://${gatewayPod.status!.podIP}:8080`;
    const retry = { maxAttempts: 10, baseDelayMs: 200, maxDelayMs: 2_000 };
    const admin = new MeshworkClient({ baseUrl, token: cluster.adminToken, retry });
    // Two writers whose slots move to the new partition and back (p0 gives 1366-2047, p1 3413-4095), two whose slots stay.
    const moving = (slot: number): boolean => (slot >= 1366 && slot <= 2047) || slot >= 3413;
    const wanted = [
      (s: number) => moving(s) && s < 2048,
      (s: number) => moving(s) && s >= 2048,
      (s: number) => s < 1366,
      (s: number) => s >= 2048 && s < 3413,
    ];
    const chosen: ({ device: DeviceClient; log: WriterLog } | undefined)[] = wanted.map(() => undefined);
    for (let i = 0; i < 200 && chosen.includes(undefined); i++) {
      const user = await admin.createUser(`grow${i}`);
      const slot = slotOf(user.id);
      const k = wanted.findIndex((fits, j) => chosen[j] === undefined && fits(slot));
      if (k === -1) continue;
      // Writes go without the client's retries, so that every refusal is seen; the writer repeats itself.
      const device = await new MeshworkClient({ baseUrl, token: user.token, retry: { maxAttempts: 1 } }).registerDeviceClient('laptop');
      const { id } = await device.createObject({ name: 'notes' });
      chosen[k] = { device, log: { objectId: id, slot, acked: new Set<string>(), refusals: [] } };
    }
    const writers = chosen.filter((w) => w !== undefined);
    expect(writers).toHaveLength(4);
    const stop = { now: false };
    const loops = writers.map((w) => write(w.device, w.log, stop));
    const ackedNow = (): number => writers.reduce((n, w) => n + w.log.acked.size, 0);

    try {
      const before = { p0: await fingerprint('grow-p0'), p1: await fingerprint('grow-p1') };
      const started = ackedNow();
      await scale(3);
      const grown = await waitFor(
        async () => {
          const owned = await ownedSlots();
          return owned['grow-p2'] === 1365 ? owned : undefined;
        },
        { description: 'the new partition to own its share of the slots', timeoutMs: 180_000, intervalMs: 250 },
      );
      expect(grown).toEqual({ 'grow-p0': 1366, 'grow-p1': 1365, 'grow-p2': 1365 });
      const three = await settledMesh('the Mesh of 3 partitions to settle');
      expect(three.status).toMatchObject({ slotsCovered: 4096, readyPartitions: 3 });
      // The partitions that ran kept their members, revision and spec: their slots moved without a roll.
      expect({ p0: await fingerprint('grow-p0'), p1: await fingerprint('grow-p1') }).toEqual(before);
      expect((await cluster.partition('grow-p0')).spec.slots).toEqual([{ start: 0, end: 2047 }]);
      expect((await cluster.partition('grow-p2')).spec.slots).toEqual([{ start: 2730, end: 4095 }]);
      await waitFor(async () => (await movedEvents()).some((m) => m.startsWith('Moved 1365 slots')), {
        description: 'a MovedSlots Event',
        timeoutMs: 30_000,
      });
      // Writes went on while the slots moved.
      await waitFor(() => ackedNow() > started + 8, { description: 'writes acknowledged around the grow', timeoutMs: 30_000 });

      const midway = ackedNow();
      await scale(2);
      await waitFor(async () => (await cluster.partitionNames()).length === 2, {
        description: 'grow-p2 to be deleted once it owns no slot',
        timeoutMs: 120_000,
        intervalMs: 250,
      });
      expect(await ownedSlots()).toEqual({ 'grow-p0': 2048, 'grow-p1': 2048 });
      const two = await settledMesh('the Mesh of 2 partitions to settle again');
      expect(two.status).toMatchObject({ slotsCovered: 4096, readyPartitions: 2 });
      expect({ p0: await fingerprint('grow-p0'), p1: await fingerprint('grow-p1') }).toEqual(before);
      await waitFor(() => ackedNow() > midway + 8, { description: 'writes acknowledged around the shrink', timeoutMs: 30_000 });
    } finally {
      stop.now = true;
      await Promise.all(loops);
    }

    // One Event per pass that moved slots: the grow and the shrink.
    const events = await movedEvents();
    expect(
      events.filter((m) => m.startsWith('Moved 1365 slots')),
      events.join(' | '),
    ).toHaveLength(2);
    for (const { device, log } of writers) {
      const listed = (await device.listAllEntries(log.objectId)).entries.map((e) => e.path);
      // Nothing acknowledged is lost, nothing is there twice, and nothing is there that was not acknowledged.
      expect(new Set(listed).size).toBe(listed.length);
      expect(new Set(listed)).toEqual(log.acked);
      expect(log.acked.size).toBeGreaterThan(0);
      for (const r of log.refusals) {
        expect(r.status, `a refusal of ${r.code}`).toBe(503);
        expect(documented.has(r.code), `${r.code} is a documented 503`).toBe(true);
        expect(r.retryAfter, `${r.code} carries Retry-After`).toMatch(/^\d+$/);
      }
    }
    const refusals = writers.flatMap((w) => w.log.refusals.map((r) => r.code));
    console.log(
      `Mesh 2 → 3 → 2 under 4 writers: ${ackedNow()} commits acknowledged, ${refusals.length} refused (${[...new Set(refusals)].join(', ') || 'none'})`,
    );
  });
});
