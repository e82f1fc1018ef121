// The Mesh reconciler as it will run: the operator in its own process, authenticated as its
// ServiceAccount with only the shipped RBAC, driven with kubectl against the real control
// plane. No kubelets run the pods here, so partitions never become ready: the test checks
// what the operator creates, the layout, the status it reports, and re-layout on a new count.
// The Mesh's etcd is a real one on loopback, in which no partition ever registers: the slot
// moves answer that no slot has an owner, and the operator falls back to ADR 33's re-layout.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1ConfigMap, V1Deployment, V1PodDisruptionBudget, V1Service } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { repoRoot } from '../../../e2e/harness/binaries.ts';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import type { Mesh, MeshPartition } from '../api/v1alpha1.ts';
import {
  installCrds,
  namespacedGetters,
  startOperatorUnderRbac,
  stopOperatorUnderRbac,
  kubectl,
  kubectlOk,
  reconcileWrites,
  waitForWritesToSettle,
  type OperatorProcess,
} from '../../../e2e/operator/harness.ts';

const stack = inject('stack');
const admin = stack.controlPlane.adminKubeconfig;
const suffix = randomBytes(3).toString('hex');
const operatorNamespace = `mw-mesh-operator-${suffix}`;
const namespace = `mw-mesh-${suffix}`;
const sample = join(repoRoot, 'crds/samples/mesh.yaml');

const setup = { admin, suffix, operatorNamespace, namespace };
const { getJson, tryGet } = namespacedGetters(admin, namespace);

/** The Mesh's MeshPartitions by name, each with its slots as text. */
async function layout(): Promise<Record<string, string>> {
  const list = await getJson<{ items: MeshPartition[] }>('meshpartitions', '-l', 'meshwork.io/mesh=mesh');
  return Object.fromEntries(
    list.items
      .filter((p) => !p.metadata.deletionTimestamp)
      .map((p) => [p.metadata.name, p.spec.slots.map((r) => `${r.start}-${r.end}`).join(',')]),
  );
}

/** Waits until the Mesh's status describes its current generation with `partitions` entries. */
async function settledMesh(partitions: number): Promise<Mesh> {
  return waitFor(
    async () => {
      const mesh = await getJson<Mesh>('mesh', 'mesh');
      return mesh.status?.observedGeneration === mesh.metadata.generation && mesh.status?.partitions?.length === partitions
        ? mesh
        : undefined;
    },
    { description: `the Mesh's status to show generation and ${partitions} partitions`, timeoutMs: 60_000 },
  );
}

describe('the Mesh reconciler under its ServiceAccount with the shipped RBAC', () => {
  let operator: OperatorProcess;
  let etcd: EtcdServer;
  /** The sample Mesh with its etcd pointed at the test's own. */
  let meshManifest: string;

  beforeAll(async () => {
    etcd = await startEtcd({ name: `etcd-mesh-${suffix}` });
    meshManifest = readFileSync(sample, 'utf8').replace('http://etcd.meshwork-system.svc:2379', etcd.endpoint);
    operator = await startOperatorUnderRbac(setup, join(stack.controlPlane.dir, 'logs', `operator-mesh-${suffix}.log`));
  });

  afterAll(async () => {
    await stopOperatorUnderRbac(setup, operator);
    await etcd?.stop();
  });

  it('creates MeshPartitions with even slot ranges, owned by the Mesh, and the partitions get their StatefulSets', async () => {
    await kubectlOk(admin, ['apply', '-n', namespace, '-f', '-'], meshManifest);
    const mesh = await getJson<Mesh>('mesh', 'mesh');
    await waitFor(async () => Object.keys(await layout()).length === 2, { description: 'two MeshPartitions', timeoutMs: 30_000 });
    expect(await layout()).toEqual({ 'mesh-p0': '0-2047', 'mesh-p1': '2048-4095' });
    const owner = { apiVersion: 'meshwork.io/v1alpha1', kind: 'Mesh', name: 'mesh', uid: mesh.metadata.uid, controller: true };
    const p1 = await getJson<MeshPartition>('meshpartition', 'mesh-p1');
    expect((p1.metadata as { ownerReferences?: unknown }).ownerReferences).toEqual([expect.objectContaining(owner)]);
    expect(p1.spec).toMatchObject({ replicas: 3, adminTokenSecretRef: { name: 'mesh-admin' }, stores: mesh.spec.stores });
    // The MeshPartition reconciler takes over from there.
    const config = await waitFor(() => tryGet<V1ConfigMap>('configmap', 'mesh-p1-config'), {
      description: 'ConfigMap mesh-p1-config',
      timeoutMs: 30_000,
    });
    expect(config.data).toMatchObject({ MESHWORK_SLOTS: '2048-4095', MESHWORK_PARTITION: 'mesh-p1' });
    await waitFor(() => tryGet('statefulset', 'mesh-p0'), { description: 'StatefulSet mesh-p0', timeoutMs: 30_000 });
  });

  it('creates the gateway Deployment, Service and PodDisruptionBudget', async () => {
    const mesh = await getJson<Mesh>('mesh', 'mesh');
    const owner = { kind: 'Mesh', name: 'mesh', uid: mesh.metadata.uid, controller: true };
    const deployment = await waitFor(() => tryGet<V1Deployment>('deployment', 'mesh-gateway'), {
      description: 'Deployment mesh-gateway',
      timeoutMs: 30_000,
    });
    expect(deployment.metadata!.ownerReferences).toEqual([expect.objectContaining(owner)]);
    expect(deployment.spec!.replicas).toBe(2);
    const container = deployment.spec!.template.spec!.containers[0]!;
    expect(container.args).toEqual(['gateway']);
    expect(container.env).toEqual(
      expect.arrayContaining([
        { name: 'MESHWORK_ETCD_ENDPOINTS', value: etcd.endpoint },
        { name: 'MESHWORK_GATEWAY_PLAIN_HTTP', value: 'true' },
      ]),
    );
    const service = await waitFor(() => tryGet<V1Service>('service', 'mesh-gateway'), {
      description: 'Service mesh-gateway',
      timeoutMs: 30_000,
    });
    expect(service.metadata!.ownerReferences).toEqual([expect.objectContaining(owner)]);
    expect(service.spec).toMatchObject({ type: 'ClusterIP', selector: deployment.spec!.selector.matchLabels });
    expect(service.spec!.ports).toEqual([expect.objectContaining({ name: 'http', port: 80, targetPort: 'http' })]);
    // The prober's Deployment exists too, at zero pods: the sample Mesh asks for no prober.
    const prober = await waitFor(() => tryGet<V1Deployment>('deployment', 'mesh-prober'), {
      description: 'Deployment mesh-prober',
      timeoutMs: 30_000,
    });
    expect(prober.metadata!.ownerReferences).toEqual([expect.objectContaining(owner)]);
    expect(prober.spec!.replicas).toBe(0);
    expect(prober.spec!.template.spec!.containers[0]!.args).toEqual(['prober']);
    const pdb = await waitFor(() => tryGet<V1PodDisruptionBudget>('pdb', 'mesh-gateway'), {
      description: 'PodDisruptionBudget mesh-gateway',
      timeoutMs: 30_000,
    });
    expect(pdb.spec!.maxUnavailable).toBe(1);
    // The Deployment controller acts on it.
    await waitFor(async () => (await tryGet<V1Deployment>('deployment', 'mesh-gateway'))?.status?.replicas === 2, {
      description: 'the Deployment controller to create two gateway pods',
      timeoutMs: 30_000,
    });
  });

  it('reports conditions, slot coverage and per-partition readiness, and kubectl get meshes shows them', async () => {
    await settledMesh(2);
    // Once the partitions' StatefulSets and the gateway's Deployment match their specs, the Mesh has settled.
    const mesh = await waitFor(
      async () => {
        const m = await getJson<Mesh>('mesh', 'mesh');
        const settled = m.status?.conditions?.find((c) => c.type === 'Progressing')?.status === 'False';
        // The scheduler reports a moment after the pods exist that no node takes them; the partitions say so, then the Mesh.
        const reported = m.status?.conditions?.find((c) => c.type === 'Degraded')?.status === 'True';
        return settled && reported ? m : undefined;
      },
      { description: 'the Mesh to settle on its spec and report its unschedulable partitions', timeoutMs: 60_000 },
    );
    const status = mesh.status!;
    const conditions = Object.fromEntries(status.conditions!.map((c) => [c.type, c]));
    expect(Object.keys(conditions).sort()).toEqual(['Degraded', 'Progressing', 'Ready', 'RolloutHalted']);
    for (const c of status.conditions!) {
      expect(c.observedGeneration).toBe(mesh.metadata.generation);
      expect(c.reason).toMatch(/^[A-Z][A-Za-z0-9]*$/);
      expect(Date.parse(c.lastTransitionTime)).not.toBeNaN();
    }
    // No kubelets: no partition is ready, so no slot is covered, and the Mesh says so; no node
    // takes the members, so each partition is Degraded (Unschedulable), and the Mesh names them.
    expect(conditions.Ready).toMatchObject({ status: 'False', reason: 'SlotsNotCovered' });
    expect(conditions.Degraded).toMatchObject({ status: 'True', reason: 'PartitionDegraded' });
    expect(conditions.Degraded!.message).toMatch(/^mesh-p\d: /);
    expect(conditions.Progressing).toMatchObject({ status: 'False', reason: 'Settled' });
    expect(conditions.RolloutHalted).toMatchObject({ status: 'False', reason: 'NotHalted' });
    // A new Mesh takes its spec at once: its first revision is the stable one, on every partition.
    const revision = status.rollout?.revision;
    expect(status.rollout).toMatchObject({ state: 'Complete', stableRevision: revision, step: 2, steps: 2 });
    expect(revision).toMatch(/^[0-9a-f]{10}$/);
    expect(status.partitions!.map((p) => p.revision)).toEqual([revision, revision]);
    expect(status).toMatchObject({ slotsCovered: 0, uncoveredSlots: '0-4095', readyPartitions: 0 });
    expect(status.partitions).toEqual([
      expect.objectContaining({ name: 'mesh-p0', slots: '0-2047', ready: false }),
      expect.objectContaining({ name: 'mesh-p1', slots: '2048-4095', ready: false }),
    ]);
    expect(status.gateway).toMatchObject({ service: 'mesh-gateway', readyReplicas: 0 });
    expect(await operator.metrics()).toContain(`meshwork_mesh_slots_covered{mesh_namespace="${namespace}",mesh="mesh"} 0`);

    const out = await kubectlOk(admin, ['get', 'meshes', '-n', namespace]);
    const [header, row] = out
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/));
    expect(header).toEqual([
      'NAME',
      'READY',
      'PARTITIONS',
      'READY-PARTITIONS',
      'SLOTS-COVERED',
      'GATEWAY',
      'ROLLOUT',
      'STEP',
      'REVISION',
      'AGE',
    ]);
    expect(row!.slice(0, 9)).toEqual(['mesh', 'False', '2', '0', '0', '0', 'Complete', '2', revision]);
    const wide = await kubectlOk(admin, ['get', 'meshes', '-n', namespace, '-o', 'wide']);
    expect(wide.split('\n')[0]!.trim().split(/\s+/).slice(10)).toEqual(['REPLICAS', 'IMAGE', 'REASON']);
  });

  it('re-lays the slot ranges when partitions goes from 2 to 3 and back to 2 while no partition has registered (ADR 33)', async () => {
    await kubectlOk(admin, ['patch', '-n', namespace, 'mesh/mesh', '--type=merge', '-p', '{"spec":{"partitions":3}}']);
    await waitFor(async () => Object.keys(await layout()).length === 3, { description: 'a third MeshPartition', timeoutMs: 30_000 });
    await waitFor(async () => (await layout())['mesh-p0'] === '0-1364', { description: 'mesh-p0 to be re-laid', timeoutMs: 30_000 });
    expect(await layout()).toEqual({ 'mesh-p0': '0-1364', 'mesh-p1': '1365-2729', 'mesh-p2': '2730-4095' });
    // The new ranges reach the partitions' configuration, which rolls their members.
    await waitFor(async () => (await tryGet<V1ConfigMap>('configmap', 'mesh-p1-config'))?.data?.MESHWORK_SLOTS === '1365-2729', {
      description: "mesh-p1's ConfigMap to carry its new range",
      timeoutMs: 30_000,
    });
    const grown = await settledMesh(3);
    expect(grown.status!.partitions!.map((p) => `${p.name}:${p.slots}`)).toEqual([
      'mesh-p0:0-1364',
      'mesh-p1:1365-2729',
      'mesh-p2:2730-4095',
    ]);

    await kubectlOk(admin, ['patch', '-n', namespace, 'mesh/mesh', '--type=merge', '-p', '{"spec":{"partitions":2}}']);
    await waitFor(async () => (await tryGet('meshpartition', 'mesh-p2')) === undefined, {
      description: 'mesh-p2 to be deleted',
      timeoutMs: 60_000,
    });
    await waitFor(async () => (await layout())['mesh-p1'] === '2048-4095', { description: 'mesh-p1 to be re-laid', timeoutMs: 30_000 });
    expect(await layout()).toEqual({ 'mesh-p0': '0-2047', 'mesh-p1': '2048-4095' });
    await settledMesh(2);
    const events = await kubectlOk(admin, [
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      'involvedObject.kind=Mesh,reason=Applied',
      '-o',
      'jsonpath={.items[*].message}',
    ]);
    expect(events).toContain('Created MeshPartition mesh-p2');
    expect(events).toContain('Deleted MeshPartition mesh-p2');
  });

  it('puts back a hand edit of a MeshPartition it owns', async () => {
    await kubectlOk(admin, ['patch', '-n', namespace, 'meshpartition/mesh-p0', '--type=merge', '-p', '{"spec":{"replicas":1}}']);
    await waitFor(async () => (await getJson<MeshPartition>('meshpartition', 'mesh-p0')).spec.replicas === 3, {
      description: 'the operator to revert the hand edit',
      timeoutMs: 30_000,
    });
  });

  it("sets the gateway Service's annotations from the Mesh, and removes one the Mesh no longer has", async () => {
    // A merge patch: a key set to null is removed from the Mesh.
    const annotate = async (annotations: Record<string, string | null> | null): Promise<void> => {
      const patch = { spec: { gateway: { service: { annotations } } } };
      await kubectlOk(admin, ['patch', '-n', namespace, 'mesh/mesh', '--type=merge', '-p', JSON.stringify(patch)]);
    };
    const annotations = async (): Promise<Record<string, string>> =>
      (await getJson<V1Service>('service', 'mesh-gateway')).metadata!.annotations ?? {};
    await annotate({ 'lb.example.com/internal': 'true', 'lb.example.com/zone': 'a' });
    await waitFor(async () => (await annotations())['lb.example.com/zone'] === 'a', {
      description: 'the annotations to reach the Service',
      timeoutMs: 30_000,
    });
    await annotate({ 'lb.example.com/zone': null });
    await waitFor(async () => !('lb.example.com/zone' in (await annotations())), {
      description: 'the removed annotation to leave the Service',
      timeoutMs: 30_000,
    });
    expect(await annotations()).toMatchObject({ 'lb.example.com/internal': 'true' });
    await annotate(null);
  });

  it('makes no API writes for the Mesh in the steady state', async () => {
    await settledMesh(2);
    await waitForWritesToSettle(operator, { description: 'the write count to stop moving', timeoutMs: 60_000, intervalMs: 2_000 });
    const versions = async (): Promise<string> =>
      kubectlOk(admin, [
        'get',
        '-n',
        namespace,
        'mesh,meshpartition,deployment,service,pdb',
        '-l',
        'meshwork.io/mesh=mesh',
        '-o',
        'jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion} {end}',
      ]);
    const meshVersion = async (): Promise<string> => (await getJson<Mesh>('mesh', 'mesh')).metadata.resourceVersion!;
    const before = reconcileWrites(await operator.metrics());
    const versionsBefore = await versions();
    const meshBefore = await meshVersion();
    // Absence of writes can only be shown over a window.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(reconcileWrites(await operator.metrics())).toBe(before);
    expect(await versions()).toBe(versionsBefore);
    expect(await meshVersion()).toBe(meshBefore);
    expect(await operator.metric('meshwork_reconcile_total', { controller: 'mesh' })).toBeGreaterThan(0);
  });

  it('reports two Meshes on one etcd as Degraded on both, and clears it when one goes (ADR 63)', async () => {
    const { spec } = await getJson<Mesh>('mesh', 'mesh');
    const other = {
      apiVersion: 'meshwork.io/v1alpha1',
      kind: 'Mesh',
      metadata: { name: 'other', namespace },
      spec: { ...spec, partitions: 1 },
    };
    await kubectlOk(admin, ['apply', '-n', namespace, '-f', '-'], JSON.stringify(other));
    const degraded = async (name: string) => (await getJson<Mesh>('mesh', name)).status?.conditions?.find((c) => c.type === 'Degraded');
    for (const [name, names] of [
      ['mesh', `Mesh ${namespace}/other`],
      ['other', `Mesh ${namespace}/mesh`],
    ] as const) {
      const condition = await waitFor(async () => ((await degraded(name))?.reason === 'SharedEtcd' ? degraded(name) : undefined), {
        description: `Mesh ${name} to report its shared etcd`,
        timeoutMs: 30_000,
      });
      expect(condition).toMatchObject({ status: 'True' });
      expect(condition.message).toContain(`also used by ${names}`);
    }
    const warnings = await kubectlOk(admin, [
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      'involvedObject.kind=Mesh,involvedObject.name=mesh,reason=SharedEtcd',
      '-o',
      'name',
    ]);
    expect(warnings.trim()).not.toBe('');
    await kubectlOk(admin, ['delete', '-n', namespace, 'mesh/other', '--wait=true']);
    // Its partitions are still Degraded (no node takes their pods): the shared etcd is no longer the reason.
    await waitFor(async () => (await degraded('mesh'))?.reason === 'PartitionDegraded', {
      description: 'Mesh mesh to be alone on its etcd again',
      timeoutMs: 30_000,
    });
  });

  it('lets the garbage collector remove the partitions and the gateway when the Mesh is deleted', async () => {
    await kubectlOk(admin, ['delete', '-n', namespace, 'mesh/mesh', '--wait=true']);
    await waitFor(
      async () => {
        const left = await kubectlOk(admin, [
          'get',
          '-n',
          namespace,
          'meshpartition,deployment,service,pdb',
          '-l',
          'meshwork.io/mesh=mesh',
          '-o',
          'name',
        ]);
        return left.trim() === '';
      },
      { description: 'the garbage collector to remove what the Mesh owned', timeoutMs: 60_000 },
    );
    expect(await operator.metric('meshwork_reconcile_errors_total', { controller: 'mesh' })).toBe(0);
    await waitFor(async () => !(await operator.metrics()).includes(`mesh="mesh"`), {
      description: "the Mesh's coverage series to go with it",
      timeoutMs: 30_000,
    });
  });
});

describe('validation of a Mesh by the API server', () => {
  beforeAll(async () => {
    await installCrds(admin);
  });

  const base = {
    apiVersion: 'meshwork.io/v1alpha1',
    kind: 'Mesh',
    metadata: { name: 'invalid', namespace: 'default' },
    spec: {
      stores: {
        etcd: { endpoints: ['http://etcd:2379'] },
        s3: { endpoint: 'http://s3:9000', bucket: 'blocks', credentialsSecretRef: { name: 's3' } },
      },
    },
  };
  it.each([
    { case: 'no partitions', spec: { partitions: 0 }, message: 'partitions must be between 1 and 256' },
    { case: '257 partitions', spec: { partitions: 257 }, message: 'partitions must be between 1 and 256' },
    { case: 'no replicas', spec: { replicasPerPartition: 0 }, message: 'replicasPerPartition must be between 1 and 100' },
    {
      case: 'a Service type the gateway does not use',
      spec: { gateway: { service: { type: 'ExternalName' } } },
      message: 'Unsupported value',
    },
    { case: 'an empty TLS Secret name', spec: { gateway: { tls: { secretName: '' } } }, message: 'spec.gateway.tls.secretName' },
    {
      case: 'a bad watchdog default',
      spec: { watchdog: { tolerationSeconds: 900 } },
      message: 'watchdog.tolerationSeconds must be shorter',
    },
  ])('rejects $case', async ({ spec, message }) => {
    const result = await kubectl(
      admin,
      ['apply', '--dry-run=server', '-f', '-'],
      JSON.stringify({ ...base, spec: { ...base.spec, ...spec } }),
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(message);
  });

  it('rejects a name too long for its partitions', async () => {
    const manifest = { ...base, metadata: { ...base.metadata, name: 'm'.repeat(41) } };
    const result = await kubectl(admin, ['apply', '--dry-run=server', '-f', '-'], JSON.stringify(manifest));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('a Mesh name must be at most 40 characters');
  });

  it('accepts the sample and a storage it cannot change afterwards', async () => {
    const result = await kubectl(admin, ['apply', '--dry-run=server', '-n', 'default', '-f', sample]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const created = { ...base, metadata: { name: `storage-${suffix}`, namespace: 'default' } };
    await kubectlOk(admin, ['apply', '-f', '-'], JSON.stringify({ ...created, spec: { ...created.spec, storage: { volumes: 2 } } }));
    try {
      const changed = await kubectl(
        admin,
        ['apply', '-f', '-'],
        JSON.stringify({ ...created, spec: { ...created.spec, storage: { volumes: 3 } } }),
      );
      expect(changed.code).not.toBe(0);
      expect(changed.stderr).toContain('storage cannot be changed after creation');
    } finally {
      await kubectl(admin, ['delete', '-n', 'default', 'mesh', created.metadata.name]);
    }
  });
});
