// The operator as it will run: its own process, authenticated as its ServiceAccount with
// only the shipped RBAC, driven with kubectl against the real control plane.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { V1ConfigMap, V1PodDisruptionBudget, V1Service, V1StatefulSet } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mintServiceAccountKubeconfig } from '../../../e2e/harness/controlplane.ts';
import { repoRoot } from '../../../e2e/harness/binaries.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import type { MeshPartition } from '../api/v1alpha1.ts';
import {
  installCrds,
  namespacedGetters,
  startOperatorUnderRbac,
  stopOperatorUnderRbac,
  kubectl,
  kubectlOk,
  rbacManifest,
  reconcileWrites,
  startOperator,
  waitForWritesToSettle,
  type OperatorProcess,
} from '../../../e2e/operator/harness.ts';

const stack = inject('stack');
const admin = stack.controlPlane.adminKubeconfig;
const suffix = randomBytes(3).toString('hex');
const operatorNamespace = `mw-operator-${suffix}`;
const namespace = `mw-partitions-${suffix}`;
const sample = join(repoRoot, 'crds/samples/meshpartition.yaml');

const setup = { admin, suffix, operatorNamespace, namespace };
const { getJson, tryGet } = namespacedGetters(admin, namespace);

describe('the operator under its ServiceAccount with the shipped RBAC', () => {
  let operator: OperatorProcess;

  beforeAll(async () => {
    operator = await startOperatorUnderRbac(setup, join(stack.controlPlane.dir, 'logs', `operator-${suffix}.log`));
  });

  afterAll(() => stopOperatorUnderRbac(setup, operator));

  it('creates the ConfigMap, Services, StatefulSet and PodDisruptionBudget of an applied MeshPartition', async () => {
    await kubectlOk(admin, ['apply', '-n', namespace, '-f', sample]);
    const partition = await getJson<MeshPartition>('meshpartition', 'p0');
    const sts = await waitFor(() => tryGet<V1StatefulSet>('statefulset', 'p0'), { description: 'StatefulSet p0', timeoutMs: 30_000 });
    const owner = { apiVersion: 'meshwork.io/v1alpha1', kind: 'MeshPartition', name: 'p0', uid: partition.metadata.uid, controller: true };
    expect(sts.metadata!.ownerReferences).toEqual([expect.objectContaining(owner)]);
    expect(sts.spec!.replicas).toBe(3);
    expect(sts.spec!.serviceName).toBe('p0-peers');
    expect(sts.spec!.volumeClaimTemplates!.map((v) => v.metadata!.name)).toEqual(['data-0', 'data-1', 'data-2', 'data-3']);
    const container = sts.spec!.template.spec!.containers[0]!;
    expect(container.resources).toEqual({ requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '2', memory: '8Gi' } });
    expect(container.livenessProbe!.httpGet).toMatchObject({ path: '/livez', port: 'http' });
    expect(container.readinessProbe!.httpGet).toMatchObject({ path: '/readyz', port: 'http' });
    expect(container.terminationMessagePath).toBe('/dev/termination-log');
    expect(sts.spec!.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { partition: 0 } });

    const headless = await waitFor(() => tryGet<V1Service>('service', 'p0-peers'), { description: 'Service p0-peers', timeoutMs: 30_000 });
    expect(headless.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
    expect(headless.metadata!.ownerReferences).toEqual([expect.objectContaining(owner)]);
    const client = await waitFor(() => tryGet<V1Service>('service', 'p0'), { description: 'Service p0', timeoutMs: 30_000 });
    expect(client.spec!.clusterIP).toBe('None');
    expect(client.spec!.publishNotReadyAddresses).toBeFalsy();
    const pdb = await waitFor(() => tryGet<V1PodDisruptionBudget>('pdb', 'p0'), {
      description: 'PodDisruptionBudget p0',
      timeoutMs: 30_000,
    });
    expect(pdb.spec!.maxUnavailable).toBe(1);
    const config = await waitFor(() => tryGet<V1ConfigMap>('configmap', 'p0-config'), {
      description: 'ConfigMap p0-config',
      timeoutMs: 30_000,
    });
    expect(config.data).toMatchObject({ MESHWORK_SLOTS: '0-1023', MESHWORK_PARTITION: 'p0', MESHWORK_S3_BUCKET: 'meshwork-blocks' });
    // The CRD's throttling defaults reach the pods.
    expect(config.data).toMatchObject({
      MESHWORK_THROTTLE_USER_RPS: '100',
      MESHWORK_THROTTLE_USER_BYTES_PER_SECOND: '64Mi',
      MESHWORK_THROTTLE_CONCURRENCY_MAX: '512',
    });

    // The StatefulSet controller acts on it: pods and their claims exist.
    await waitFor(async () => (await kubectlOk(admin, ['get', 'pods', '-n', namespace, '-o', 'name'])).includes('pod/p0-2'), {
      description: 'the StatefulSet controller to create pod p0-2',
      timeoutMs: 30_000,
    });
    const events = await kubectlOk(admin, [
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      'involvedObject.kind=MeshPartition,reason=Applied',
      '-o',
      'json',
    ]);
    expect((JSON.parse(events) as { items: { message: string }[] }).items.map((e) => e.message).join()).toContain('Created StatefulSet p0');
  });

  it('shows the printer columns in kubectl get, and more with -o wide', async () => {
    const line = await waitFor(
      async () => {
        const out = await kubectlOk(admin, ['get', 'meshpartitions', '-n', namespace]);
        return out.includes('0-1023') ? out : undefined;
      },
      { description: 'the Slots column to be filled', timeoutMs: 30_000 },
    );
    const [header, row] = line
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/));
    expect(header).toEqual(['NAME', 'READY', 'REPLICAS', 'SLOTS', 'AGE']);
    expect(row!.slice(0, 4)).toEqual(['p0', 'False', '3', '0-1023']);
    const wide = await kubectlOk(admin, ['get', 'meshpartitions', '-n', namespace, '-o', 'wide']);
    expect(wide.split('\n')[0]!.trim().split(/\s+/)).toEqual([
      'NAME',
      'READY',
      'REPLICAS',
      'SLOTS',
      'AGE',
      'READY-REPLICAS',
      'REVISION',
      'IMAGE',
      'REASON',
    ]);
  });

  it('writes conditions by the API conventions with observedGeneration tracking the generation', async () => {
    const partition = await waitFor(
      async () => {
        const p = await getJson<MeshPartition>('meshpartition', 'p0');
        const caughtUp = p.status?.observedGeneration === p.metadata.generation && p.status?.members?.length === 3;
        // The scheduler reports that no node takes the pods a moment after they are created.
        const reported = p.status?.conditions?.some((c) => c.type === 'Degraded' && c.status === 'True');
        return caughtUp && reported ? p : undefined;
      },
      { description: 'status to catch up with generation 1 and report the unschedulable members', timeoutMs: 30_000 },
    );
    const conditions = partition.status!.conditions!;
    expect(conditions.map((c) => c.type).sort()).toEqual(['Degraded', 'Progressing', 'Ready', 'RemediationPaused']);
    for (const c of conditions) {
      expect(['True', 'False', 'Unknown']).toContain(c.status);
      expect(c.reason).toMatch(/^[A-Z][A-Za-z0-9]*$/);
      expect(c.observedGeneration).toBe(partition.metadata.generation);
      expect(Date.parse(c.lastTransitionTime)).not.toBeNaN();
      expect(c.message).not.toBe('');
    }
    // No kubelets run the pods, so the partition is not ready, and says why.
    expect(conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ReplicasNotReady' });
    // No node at all can take them: Degraded names the members and the scheduler's reason (ADR 30).
    expect(conditions.find((c) => c.type === 'Degraded')).toMatchObject({ status: 'True', reason: 'Unschedulable' });
    expect(conditions.find((c) => c.type === 'Degraded')!.message).toMatch(/^p0-\d cannot be scheduled: /);
    // Every member is still starting: that is not a systemic failure, and nothing was done yet.
    expect(conditions.find((c) => c.type === 'RemediationPaused')).toMatchObject({ status: 'False', reason: 'AsExpected' });
    expect(partition.status!.remediations).toBeUndefined();
    expect(partition.status!.members!.every((m) => m.health === 'Pending' && m.level === 0)).toBe(true);
    expect(partition.status).toMatchObject({ replicas: 3, readyReplicas: 0, slots: '0-1023' });
    expect(partition.status!.members!.map((m) => m.pod)).toEqual(['p0-0', 'p0-1', 'p0-2']);
    expect(partition.status!.updateRevision).toMatch(/^p0-/);
    expect((partition as unknown as { status: Record<string, unknown> }).status.phase).toBeUndefined();
  });

  it('scales the StatefulSet with kubectl scale through the scale subresource', async () => {
    await kubectlOk(admin, ['scale', '-n', namespace, 'meshpartition/p0', '--replicas=5']);
    await waitFor(async () => (await getJson<V1StatefulSet>('statefulset', 'p0')).spec!.replicas === 5, {
      description: 'StatefulSet p0 to have 5 replicas',
      timeoutMs: 30_000,
    });
    const partition = await waitFor(
      async () => {
        const p = await getJson<MeshPartition>('meshpartition', 'p0');
        return p.status?.observedGeneration === p.metadata.generation && p.status?.replicas === 5 ? p : undefined;
      },
      { description: 'status to observe generation 2 with 5 replicas', timeoutMs: 30_000 },
    );
    expect(partition.metadata.generation).toBe(2);
    expect(partition.status!.conditions!.every((c) => c.observedGeneration === 2)).toBe(true);
    const scale = JSON.parse(
      await kubectlOk(admin, ['get', '--raw', `/apis/meshwork.io/v1alpha1/namespaces/${namespace}/meshpartitions/p0/scale`]),
    ) as {
      spec: { replicas: number };
      status: { replicas: number; selector: string };
    };
    expect(scale.spec.replicas).toBe(5);
    expect(scale.status.selector).toContain('app.kubernetes.io/instance=p0');
  });

  it('puts back a hand edit of a managed StatefulSet field', async () => {
    await kubectlOk(admin, ['patch', '-n', namespace, 'statefulset/p0', '--type=merge', '-p', '{"spec":{"replicas":1}}']);
    await kubectlOk(admin, [
      'patch',
      '-n',
      namespace,
      'statefulset/p0',
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/spec/template/spec/containers/0/resources/limits/cpu","value":"3"}]',
    ]);
    const sts = await waitFor(
      async () => {
        const s = await getJson<V1StatefulSet>('statefulset', 'p0');
        return s.spec!.replicas === 5 && s.spec!.template.spec!.containers[0]!.resources!.limits!.cpu === '2' ? s : undefined;
      },
      { description: 'the operator to revert the hand edits', timeoutMs: 30_000 },
    );
    expect(sts.spec!.template.spec!.containers[0]!.resources!.limits!.memory).toBe('8Gi');
    const withFields = await getJson<V1StatefulSet>('statefulset', 'p0', '--show-managed-fields');
    const appliers = withFields.metadata!.managedFields!.filter((f) => f.operation === 'Apply').map((f) => f.manager);
    expect(appliers).toEqual(['meshwork-operator']);
  });

  it('makes no API writes in the steady state', async () => {
    // Settled: the StatefulSet controller has recreated the members after the hand edit,
    // status shows them, and the operator's write count has stopped moving.
    await waitFor(
      async () => {
        const p = await getJson<MeshPartition>('meshpartition', 'p0');
        const progressing = p.status?.conditions?.find((c) => c.type === 'Progressing');
        return p.status?.members?.length === 5 && p.status.replicas === 5 && progressing?.status === 'False';
      },
      { description: 'MeshPartition p0 to settle on 5 members', timeoutMs: 60_000 },
    );
    await waitForWritesToSettle(operator, { description: 'the write count to stop moving', timeoutMs: 60_000, intervalMs: 2_000 });
    const versions = async (): Promise<string> =>
      kubectlOk(admin, [
        'get',
        '-n',
        namespace,
        'meshpartition,statefulset,service,configmap,pdb',
        '-o',
        'jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion} {end}',
      ]);
    const before = reconcileWrites(await operator.metrics());
    const versionsBefore = await versions();
    const reconcilesBefore = await operator.metric('meshwork_reconcile_total');
    // Absence of writes can only be shown over a window; pods keep changing meanwhile (the
    // scheduler retries them), so the operator does reconcile, and must find nothing to do.
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    expect(reconcileWrites(await operator.metrics())).toBe(before);
    expect(await versions()).toBe(versionsBefore);
    expect(await operator.metric('meshwork_reconcile_total')).toBeGreaterThanOrEqual(reconcilesBefore);
  });

  it('lets the garbage collector remove everything the MeshPartition owned when it is deleted', async () => {
    await kubectlOk(admin, ['delete', '-n', namespace, 'meshpartition/p0', '--wait=true']);
    await waitFor(
      async () => {
        const left = await kubectlOk(admin, [
          'get',
          '-n',
          namespace,
          'statefulset,service,configmap,pdb',
          '-l',
          'app.kubernetes.io/managed-by=meshwork-operator',
          '-o',
          'name',
        ]);
        return left.trim() === '';
      },
      { description: 'the garbage collector to remove the owned objects', timeoutMs: 60_000 },
    );
    expect(await operator.metric('meshwork_reconcile_errors_total')).toBe(0);
  });
});

describe('validation by the API server', () => {
  beforeAll(async () => {
    await installCrds(admin);
  });

  const base = {
    apiVersion: 'meshwork.io/v1alpha1',
    kind: 'MeshPartition',
    metadata: { name: 'invalid', namespace: 'default' },
    spec: {
      slots: [{ start: 0, end: 10 }],
      stores: {
        etcd: { endpoints: ['http://etcd:2379'] },
        s3: { endpoint: 'http://s3:9000', bucket: 'blocks', credentialsSecretRef: { name: 's3' } },
      },
    },
  };
  it.each([
    {
      case: 'overlapping slots',
      spec: {
        slots: [
          { start: 0, end: 100 },
          { start: 50, end: 200 },
        ],
      },
      message: 'slot ranges must not overlap',
    },
    { case: 'slot 5000', spec: { slots: [{ start: 4000, end: 5000 }] }, message: 'slot ranges must lie inside 0-4095' },
    {
      case: 'a range that ends before it starts',
      spec: { slots: [{ start: 9, end: 3 }] },
      message: "a slot range's start must not be after its end",
    },
    { case: '0 volumes', spec: { storage: { volumes: 0 } }, message: 'storage.volumes must be between 1 and 8' },
    { case: '9 volumes', spec: { storage: { volumes: 9 } }, message: 'storage.volumes must be between 1 and 8' },
    { case: 'negative replicas', spec: { replicas: -1 }, message: 'replicas must be 0 or more' },
    {
      case: 'a toleration longer than the healthy reset',
      spec: { watchdog: { tolerationSeconds: 900 } },
      message: 'watchdog.tolerationSeconds must be shorter than healthyResetSeconds',
    },
    {
      case: 'a rollout partition above replicas',
      spec: { replicas: 2, rollout: { partition: 3 } },
      message: 'rollout.partition must not exceed replicas',
    },
    {
      case: 'zero requests per second',
      spec: { throttling: { userRequestsPerSecond: 0 } },
      message: 'throttling.userRequestsPerSecond must be between 1 and 1000000',
    },
    {
      case: 'a fractional byte rate',
      spec: { throttling: { deviceBytesPerSecond: '0.5' } },
      message: 'throttling.deviceBytesPerSecond must be a whole number of bytes from 1 to 1Pi',
    },
    {
      case: 'a byte rate in millibytes',
      spec: { throttling: { userBytesPerSecond: '1500m' } },
      message: 'throttling.userBytesPerSecond must be a whole number of bytes from 1 to 1Pi',
    },
    {
      case: 'an entry size of 0',
      spec: { throttling: { maxEntrySize: 0 } },
      message: 'throttling.maxEntrySize must be a whole number of bytes from 1 to 1Pi',
    },
    {
      case: 'no long polls',
      spec: { throttling: { deviceLongPolls: 0 } },
      message: 'throttling.deviceLongPolls must be between 1 and 10000',
    },
    {
      case: 'a concurrency minimum above its maximum',
      spec: { throttling: { concurrency: { min: 64, max: 32 } } },
      message: 'throttling.concurrency.min must not exceed throttling.concurrency.max',
    },
  ])('rejects $case with the rule message', async ({ spec, message }) => {
    const result = await kubectl(admin, ['apply', '-f', '-'], JSON.stringify({ ...base, spec: { ...base.spec, ...spec } }));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(message);
  });

  it('accepts the sample', async () => {
    const result = await kubectl(admin, ['apply', '--dry-run=server', '-n', 'default', '-f', sample]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});

describe('the RBAC test itself', () => {
  const rbacSuffix = `${suffix}-norule`;
  const ns = `mw-norule-${suffix}`;
  let operator: OperatorProcess | undefined;

  afterAll(async () => {
    await operator?.process.stop();
    await kubectl(admin, ['delete', 'namespace', ns, '--wait=false']);
    await kubectl(admin, [
      'delete',
      'clusterrole,clusterrolebinding',
      `meshwork-operator-${rbacSuffix}`,
      `meshwork-operator-nodes-${rbacSuffix}`,
    ]);
  });

  it('fails when a rule is missing: without patch on StatefulSets nothing is created', async () => {
    await installCrds(admin);
    await kubectlOk(admin, ['create', 'namespace', ns]);
    const withoutStatefulSetPatch = (doc: Record<string, unknown>): void => {
      if (doc.kind !== 'ClusterRole') return;
      for (const rule of doc.rules as { resources: string[]; verbs: string[] }[]) {
        if (rule.resources.includes('statefulsets')) rule.verbs = rule.verbs.filter((v) => v !== 'patch' && v !== 'create');
      }
    };
    await kubectlOk(admin, ['apply', '-f', '-'], rbacManifest(ns, rbacSuffix, withoutStatefulSetPatch));
    operator = await startOperator({
      kubeconfig: await mintServiceAccountKubeconfig(admin, ns, 'meshwork-operator'),
      namespace: ns,
      watchNamespace: ns,
      logFile: join(stack.controlPlane.dir, 'logs', `operator-${rbacSuffix}.log`),
      leaseName: `meshwork-operator-${rbacSuffix}`,
    });
    await kubectlOk(admin, ['apply', '-n', ns, '-f', sample]);
    await waitFor(
      async () =>
        (await operator!.metric('meshwork_kube_api_requests_total', { verb: 'apply', resource: 'statefulsets', code: '403' })) >= 1,
      {
        description: 'the operator to be refused the StatefulSet',
        timeoutMs: 30_000,
      },
    );
    // The reconcile fails once its other applies have returned; the error count follows.
    await waitFor(async () => (await operator!.metric('meshwork_reconcile_errors_total')) >= 1, {
      description: 'the reconcile to fail',
      timeoutMs: 30_000,
    });
    expect((await kubectl(admin, ['get', '-n', ns, 'statefulset', 'p0'])).code).not.toBe(0);
  });
});
