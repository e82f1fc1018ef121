// The gradual rollout of a Mesh's partition template on the local cluster, with real data-plane
// members and a gateway: a good version moves through three partitions in order, one member at
// a time, each step baking before the next, while writes to every partition go on through the
// gateway and not one acknowledged commit is lost, and an operator restarted in the middle
// resumes where it was; a bad version (an S3 endpoint nothing answers on, so the member
// never turns ready) halts at the canary with the figure and threshold in the Mesh's status,
// the other partitions never change, and autoRollback returns the canary (ADR 48); so does a
// version that turns ready but fails every upload (a store that refuses object writes), on
// its error ratio.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { MeshworkClient, type DeviceClient } from '@meshwork/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { slotOf } from '../../dataplane/src/slots.ts';
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

  /** The address of a running gateway pod. */
  async function gatewayUrl(): Promise<string> {
    const gatewayPod = (
      await cluster.core.listNamespacedPod({ namespace: cluster.namespace, labelSelector: 'app.kubernetes.io/component=gateway' })
    ).items.find((p) => p.status?.podIP && !p.metadata?.deletionTimestamp)!;
    return `http://${gatewayPod.status!.podIP}:8080`;
  }

  /** The partition index serving `id`'s slot (the even layout of 3: 0-1364, 1365-2729, 2730-4095). */
  const partitionOf = (id: string): number => Math.min(2, Math.floor((slotOf(id) * 3) / 4096));

  /**
   * Writes directory entries (`If-None-Match: *`) into each writer's object, one loop per
   * object, until stopped; resolves with what was acknowledged and what failed, by object.
   */
  function writeLoad(writers: readonly { device: DeviceClient; objectId: string }[]) {
    let stopped = false;
    const acknowledged = new Map<string, string[]>(writers.map((w) => [w.objectId, []]));
    const failures: string[] = [];
    const loops = writers.map(async ({ device, objectId }) => {
      for (let i = 0; !stopped; i++) {
        const path = `w${i}`;
        try {
          await device.putEntry(objectId, path, { kind: 'directory' }, { ifNoneMatch: '*' });
          acknowledged.get(objectId)!.push(path);
        } catch (err) {
          const status = (err as { status?: number }).status;
          // A repeat of a create whose first answer was lost finds the entry there: 412, committed.
          if (status === 412) acknowledged.get(objectId)!.push(path);
          else failures.push(`${path}: ${status ?? ''} ${(err as Error).message}`);
        }
        // Paced below the per-device rate limit, so that every failure would be the ramp's.
        await delay(100);
      }
    });
    return {
      stop: async () => {
        stopped = true;
        await Promise.all(loops);
        return { acknowledged, failures };
      },
    };
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
        gateway: { replicas: 1, resources: { cpu: '100m', memory: '256Mi' } },
        // A member on a busy machine may take a minute to start; the bad version's test shortens this.
        rollout: { bakeSeconds, progressDeadlineSeconds: 180 },
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

  it('rolls a good version through the partitions in order, one member at a time, baking each step, across a leader change', async () => {
    const before = await mesh();
    expect(before.status?.rollout).toMatchObject({ state: 'Complete', steps: 3 });
    const stable = before.status!.rollout!.revision!;
    // Writers in every partition, reached through the gateway.
    const baseUrl = await gatewayUrl();
    const retry = { maxAttempts: 10, baseDelayMs: 200, maxDelayMs: 2_000 };
    const admin = new MeshworkClient({ baseUrl, token: cluster.adminToken, retry });
    // An object lives in its owner's slot: one user (and device) per partition, two objects each.
    const owners: (DeviceClient | undefined)[] = [undefined, undefined, undefined];
    for (let i = 0; i < 60 && owners.some((o) => o === undefined); i++) {
      const user = await admin.createUser(`ramp${i}`);
      const index = partitionOf(user.id);
      if (owners[index]) continue;
      owners[index] = await new MeshworkClient({ baseUrl, token: user.token, retry }).registerDeviceClient('laptop');
    }
    expect(owners.every((o) => o !== undefined)).toBe(true);
    const writers: { device: DeviceClient; objectId: string }[] = [];
    for (const device of owners as DeviceClient[]) {
      for (const name of ['a', 'b']) writers.push({ device, objectId: (await device.createObject({ name })).id });
    }
    const load = writeLoad(writers);

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
    // In the middle of step 2 the operator stops and a new process takes the lead.
    let restart: { step: number; message: string } | undefined;
    let halted: string | undefined;
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
        if (!restart && m.status?.rollout?.step === 2 && m.status.rollout.revision === target) {
          restart = { step: 2, message: m.status.rollout.message ?? '' };
          await cluster.restartOperator();
        }
        if (m.status?.rollout?.state === 'Halted') halted = `it halted: ${m.status.rollout.message ?? ''}`;
        return m.status?.rollout?.state === 'Complete' && m.status.rollout.revision === target;
      },
      { description: 'the good version to reach every partition', timeoutMs: 240_000, intervalMs: 200, abortIf: () => halted },
    );
    const seconds = (Date.now() - started) / 1000;
    const { acknowledged, failures } = await load.stop();
    const acked = [...acknowledged.values()].reduce((n, paths) => n + paths.length, 0);
    console.log(
      `A 3-partition ramp of ${replicas} members each with bakeSeconds ${bakeSeconds} took ${seconds.toFixed(1)} s; ` +
        `${acked} writes acknowledged meanwhile, ${failures.length} failed${failures.length > 0 ? `: ${failures.slice(0, 5).join('; ')}` : ''}`,
    );
    // Writes kept flowing into every partition, none failed, and every acknowledged one is there.
    for (const { device, objectId } of writers) {
      const paths = acknowledged.get(objectId)!;
      expect(paths.length, `writes acknowledged by the partition of ${objectId}`).toBeGreaterThan(0);
      const listed = new Set((await device.listAllEntries(objectId)).entries.map((e) => e.path));
      expect(paths.filter((p) => !listed.has(p))).toEqual([]);
    }
    expect(failures).toEqual([]);

    expect(restart, 'the operator was restarted during step 2').toBeDefined();
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
    await patchMesh({ stores: { s3: { endpoint: 'http://127.0.0.1:9' } }, rollout: { progressDeadlineSeconds: 25 } });
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

  it('halts a version that stays ready but fails a share of requests at the canary, on its error ratio', async () => {
    const stable = (await mesh()).status!.rollout!.stableRevision!;
    const untouched = { p1: await podUids('ramp-p1'), p2: await podUids('ramp-p2') };
    // The bad version's object store: MinIO behind a proxy that answers every object upload with
    // 500 InternalError and passes the rest (the readiness check's HeadBucket among it): its
    // members turn ready, then fail every block upload with 503.
    const minio = new URL(goodS3);
    let refused = 0;
    const proxy = createServer((req, res) => {
      const [, bucket, key] = /^\/([^/?]+)\/?([^?]*)/.exec(req.url ?? '') ?? [];
      if (req.method === 'PUT' && bucket && key) {
        refused++;
        req.resume();
        res.writeHead(500, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>');
        return;
      }
      const upstream = httpRequest(
        { host: minio.hostname, port: minio.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

    // Uploads into the canary partition, through the gateway, never retried: each failure counts.
    const baseUrl = await gatewayUrl();
    const admin = new MeshworkClient({ baseUrl, token: cluster.adminToken });
    let uploader: DeviceClient | undefined;
    for (let i = 0; i < 60 && uploader === undefined; i++) {
      const user = await admin.createUser(`upload${i}`);
      if (partitionOf(user.id) === 0)
        uploader = await new MeshworkClient({ baseUrl, token: user.token, retry: { maxAttempts: 1 } }).registerDeviceClient('uploader');
    }
    expect(uploader).toBeDefined();
    let stopped = false;
    const outcomes = { stored: 0, failed: new Map<number, number>() };
    const uploads = Array.from({ length: 3 }, async () => {
      while (!stopped) {
        try {
          await uploader!.putBlock(randomBytes(1024));
          outcomes.stored++;
        } catch (err) {
          const status = (err as { status?: number }).status ?? 0;
          outcomes.failed.set(status, (outcomes.failed.get(status) ?? 0) + 1);
        }
        await delay(50);
      }
    });
    try {
      // Judged from 20 requests on, so that the bake cannot end before the figure is read.
      await patchMesh({ stores: { s3: { endpoint: proxyUrl } }, rollout: { autoRollback: false, analysis: { minRequests: 20 } } });
      const halted = await waitForState('Halted', 180_000);
      const { halt } = halted.status!.rollout!;
      console.log(`The rollout halted: ${halt?.figure}; threshold ${halt?.threshold}; ${refused} uploads refused by the store`);
      expect(halt).toMatchObject({ reason: 'ErrorRatioExceeded', partition: 'ramp-p0', threshold: 'maxErrorPercent 5%' });
      expect(halt?.figure).toMatch(/^error ratio \d+\.\d% \(\d+ of \d+ requests answered 5xx\)$/);
      // The member that took the version was ready all along: the halt is the analysis's, not readiness's.
      const p0 = await cluster.partition('ramp-p0');
      const updated = (p0.status?.members ?? []).filter((m) => m.revision === p0.status?.updateRevision);
      expect(updated.length).toBeGreaterThan(0);
      expect(updated.map((m) => m.health)).toEqual(updated.map(() => 'Healthy'));
      expect({ p1: await podUids('ramp-p1'), p2: await podUids('ramp-p2') }).toEqual(untouched);
      const revs = await revisions();
      expect([revs['ramp-p1'], revs['ramp-p2']]).toEqual([stable, stable]);
    } finally {
      stopped = true;
      await Promise.all(uploads);
    }
    // What the clients saw: documented 503s, nothing else of the 5xx kind.
    expect([...outcomes.failed.keys()].filter((s) => s >= 500 && s !== 503)).toEqual([]);
    expect(outcomes.failed.get(503) ?? 0).toBeGreaterThan(0);

    await patchMesh({ rollout: { autoRollback: true, analysis: { minRequests: 100 } } });
    const back = await waitForState('RolledBack', 120_000);
    expect(back.status!.rollout).toMatchObject({ stableRevision: stable });
    expect((await cluster.partition('ramp-p0')).spec.stores.s3.endpoint).toBe(goodS3);
    proxy.close();
  });

  it('holds a new version while paused, and a version set back to the stable one completes without moving a member', async () => {
    const stable = (await mesh()).status!.rollout!.stableRevision!;
    const uids = Object.fromEntries(await Promise.all(partitions.map(async (p) => [p, await podUids(p)] as const)));
    // Paused first, then a new version: the rollout sees it and moves nothing.
    await patchMesh({ rollout: { paused: true } });
    await patchMesh({ stores: { s3: { endpoint: goodS3 } }, throttling: { userBurst: 251 } });
    const paused = await waitFor(
      async () => {
        const m = await mesh();
        const r = m.status?.rollout;
        return r?.state === 'Paused' && r.revision !== stable && m.status!.observedGeneration === m.metadata.generation ? m : undefined;
      },
      { description: 'the rollout of the new version to be Paused', timeoutMs: 30_000 },
    );
    expect(paused.status!.rollout).toMatchObject({ step: 1, message: 'Paused at step 1 of 3' });
    expect(paused.status!.conditions!.find((c) => c.type === 'Progressing')).toMatchObject({ status: 'True', reason: 'RolloutPaused' });
    expect(Object.values(await revisions())).toEqual([stable, stable, stable]);
    // Back to the stable template, resumed: every step passes at once, since no partition has to change.
    await patchMesh({ throttling: { userBurst: 250 } });
    await patchMesh({ rollout: { paused: false } });
    const done = await waitFor(
      async () => {
        const m = await mesh();
        const r = m.status?.rollout;
        return r?.state === 'Complete' && r.revision === stable ? m : undefined;
      },
      { description: 'the rollout back to the stable revision to complete', timeoutMs: 30_000 },
    );
    expect(done.status!.conditions!.find((c) => c.type === 'RolloutHalted')).toMatchObject({ status: 'False' });
    expect(Object.fromEntries(await Promise.all(partitions.map(async (p) => [p, await podUids(p)] as const)))).toEqual(uids);
  });
});
