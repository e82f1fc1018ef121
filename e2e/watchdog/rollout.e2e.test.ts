// The gradual rollout of a Mesh's partition template on the local cluster, with real data-plane
// members: a good version moves through three partitions in order, one member at a time, each
// step baking before the next; a bad version (an S3 endpoint nothing answers on, so the member
// never turns ready) halts at the canary with the figure and threshold in the Mesh's status,
// the other partitions never change, and autoRollback returns the canary (ADR 48).
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Mesh, MeshPartition } from '../../operator/src/api/v1alpha1.ts';
import { kubectlOk } from '../operator/harness.ts';
import { waitFor } from '../harness/wait.ts';
import { WatchdogTestBed, type WatchdogCluster } from './cluster.ts';

const stack = inject('stack');
const partitions = ['ramp-p0', 'ramp-p1', 'ramp-p2'];
const replicas = 2;
const bakeSeconds = 3;

describe('the gradual rollout of a Mesh on the local cluster', () => {
  const bed = new WatchdogTestBed();
  let cluster: WatchdogCluster;
  let goodS3: string;

  const mesh = async (): Promise<Mesh> =>
    (await cluster.custom.getNamespacedCustomObject({
      group: 'meshwork.io',
      version: 'v1alpha1',
      namespace: cluster.namespace,
      plural: 'meshes',
      name: 'ramp',
    })) as Mesh;
  const patchMesh = (spec: Record<string, unknown>): Promise<string> =>
    kubectlOk(bed.controlPlane!.adminKubeconfig, [
      'patch',
      '-n',
      cluster.namespace,
      'mesh',
      'ramp',
      '--type=merge',
      '-p',
      JSON.stringify({ spec }),
    ]);
  const revisions = async (): Promise<Record<string, string | undefined>> =>
    Object.fromEntries(
      await Promise.all(
        partitions.map(async (p): Promise<[string, string | undefined]> => [
          p,
          (await cluster.partition(p)).metadata.annotations?.['meshwork.io/template-revision'],
        ]),
      ),
    );
  /** Uids of the partition's member pods, by name. */
  const podUids = async (partition: string): Promise<Record<string, string>> =>
    Object.fromEntries((await cluster.pods(partition)).map((p) => [p.metadata!.name!, p.metadata!.uid!]));
  /** Whether every member of the partition runs its StatefulSet's update revision and is healthy, with no member held back. */
  const settled = (p: MeshPartition): boolean =>
    (p.spec.rollout?.partition ?? 0) === 0 &&
    (p.status?.members ?? []).length === replicas &&
    (p.status?.members ?? []).every((m) => m.health === 'Healthy' && m.revision === p.status?.updateRevision);

  async function waitForState(state: string, timeoutMs: number): Promise<Mesh> {
    return waitFor(
      async () => {
        const m = await mesh();
        return m.status?.rollout?.state === state && m.status.observedGeneration === m.metadata.generation ? m : undefined;
      },
      { description: `the Mesh's rollout to be ${state}`, timeoutMs, intervalMs: 250 },
    );
  }

  beforeAll(async () => {
    cluster = await bed.start(stack.minio, 11);
    goodS3 = stack.minio.endpoint;
    const body = {
      apiVersion: 'meshwork.io/v1alpha1',
      kind: 'Mesh',
      metadata: { name: 'ramp', namespace: cluster.namespace },
      spec: {
        partitions: 3,
        replicasPerPartition: replicas,
        adminTokenSecretRef: { name: 'admin' },
        resources: { cpu: '100m', memory: '256Mi' },
        storage: { volumes: 1, size: '1Gi', storageClassName: 'meshwork-local' },
        stores: {
          etcd: { endpoints: [cluster.etcd.endpoint] },
          s3: { endpoint: goodS3, bucket: stack.minio.bucket, credentialsSecretRef: { name: 's3' } },
        },
        gateway: { replicas: 0 },
        rollout: { bakeSeconds, progressDeadlineSeconds: 25 },
      },
    };
    await kubectlOk(bed.controlPlane!.adminKubeconfig, ['apply', '--server-side', '-f', '-'], JSON.stringify(body));
    await waitFor(async () => (await mesh()).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), {
      description: 'the Mesh to be Ready',
      timeoutMs: 180_000,
      intervalMs: 500,
    });
  });

  afterAll(() => bed.stop());

  it('rolls a good version through the partitions in order, one member at a time, baking each step', async () => {
    const before = await mesh();
    expect(before.status?.rollout).toMatchObject({ state: 'Complete', steps: 3 });
    const stable = before.status!.rollout!.revision!;
    const started = Date.now();
    // A throttling change is a new partition template: every member's configuration changes.
    await patchMesh({ throttling: { userBurst: 250 } });
    const target = await waitFor(
      async () => {
        const r = (await mesh()).status?.rollout?.revision;
        return r && r !== stable ? r : undefined;
      },
      { description: 'the rollout of a new revision to start', timeoutMs: 30_000 },
    );

    // Watch until done: when each partition first carried the new revision, and what the others looked like then.
    const firstChanged = new Map<string, number>();
    const seenAtChange = new Map<string, { earlierSettled: boolean; laterUntouched: boolean }>();
    await waitFor(
      async () => {
        const [m, ...parts] = await Promise.all([mesh(), ...partitions.map((p) => cluster.partition(p))]);
        parts.forEach((p, i) => {
          const revision = p.metadata.annotations?.['meshwork.io/template-revision'];
          if (revision === target && !firstChanged.has(p.metadata.name)) {
            firstChanged.set(p.metadata.name, Date.now());
            seenAtChange.set(p.metadata.name, {
              earlierSettled: parts
                .slice(0, i)
                .every((e) => settled(e) && e.metadata.annotations?.['meshwork.io/template-revision'] === target),
              laterUntouched: parts.slice(i + 1).every((l) => l.metadata.annotations?.['meshwork.io/template-revision'] === stable),
            });
          }
        });
        return m.status?.rollout?.state === 'Complete' && m.status.rollout.revision === target;
      },
      { description: 'the good version to reach every partition', timeoutMs: 240_000, intervalMs: 200 },
    );
    const seconds = (Date.now() - started) / 1000;
    console.log(`A 3-partition ramp of ${replicas} members each with bakeSeconds ${bakeSeconds} took ${seconds.toFixed(1)} s`);

    const order = [...firstChanged.entries()].sort((a, b) => a[1] - b[1]).map(([name]) => name);
    expect(order).toEqual(partitions);
    for (const p of partitions) expect(seenAtChange.get(p)).toEqual({ earlierSettled: true, laterUntouched: true });
    // Each later step began at least a bake after the one before it.
    expect(firstChanged.get('ramp-p1')! - firstChanged.get('ramp-p0')!).toBeGreaterThanOrEqual(bakeSeconds * 1000);
    expect(firstChanged.get('ramp-p2')! - firstChanged.get('ramp-p1')!).toBeGreaterThanOrEqual(bakeSeconds * 1000);
    // The final revision on every member.
    for (const p of partitions) {
      const partition = await cluster.partition(p);
      expect(settled(partition)).toBe(true);
      expect(partition.spec.throttling.userBurst).toBe(250);
    }
    const done = await mesh();
    expect(done.status!.rollout).toMatchObject({ state: 'Complete', stableRevision: target, step: 3 });
    expect(done.status!.conditions!.find((c) => c.type === 'RolloutHalted')).toMatchObject({ status: 'False' });
  });

  it('halts a version whose members never turn ready at the canary, and autoRollback returns the canary', async () => {
    const stable = (await mesh()).status!.rollout!.revision!;
    const untouched = { p1: await podUids('ramp-p1'), p2: await podUids('ramp-p2') };
    // Nothing listens there: a member cannot reach its object store, so it never reports ready.
    await patchMesh({ stores: { s3: { endpoint: 'http://127.0.0.1:9' } } });
    const halted = await waitForState('Halted', 120_000);
    const { halt } = halted.status!.rollout!;
    console.log(`The rollout halted: ${halt?.figure}; threshold ${halt?.threshold}`);
    expect(halt).toMatchObject({ reason: 'MemberNotReady', partition: 'ramp-p0', threshold: 'progressDeadlineSeconds 25' });
    expect(halted.status!.conditions!.find((c) => c.type === 'RolloutHalted')).toMatchObject({
      status: 'True',
      reason: 'MemberNotReady',
    });
    expect(await cluster.eventReasons('Mesh', 'ramp')).toContain('RolloutHalted');
    // Only the canary's highest member took the bad version.
    const revs = await revisions();
    expect(revs['ramp-p0']).toBe(halted.status!.rollout!.revision);
    expect([revs['ramp-p1'], revs['ramp-p2']]).toEqual([stable, stable]);
    expect((await cluster.partition('ramp-p0')).spec.rollout?.partition).toBe(replicas - 1);
    expect({ p1: await podUids('ramp-p1'), p2: await podUids('ramp-p2') }).toEqual(untouched);

    await patchMesh({ rollout: { autoRollback: true } });
    const back = await waitForState('RolledBack', 120_000);
    expect(back.status!.rollout).toMatchObject({ stableRevision: stable });
    const p0 = await cluster.partition('ramp-p0');
    expect(p0.metadata.annotations?.['meshwork.io/template-revision']).toBe(stable);
    expect(p0.spec.stores.s3.endpoint).toBe(goodS3);
    expect(settled(p0)).toBe(true);
    expect({ p1: await podUids('ramp-p1'), p2: await podUids('ramp-p2') }).toEqual(untouched);
  });
});
