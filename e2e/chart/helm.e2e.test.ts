// helm install runs the operator on the local cluster under the chart's RBAC only; upgrade
// rolls it without losing MeshPartitions; uninstall keeps the CRD and the custom resources.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiextensionsV1Api, AppsV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { adminKubeConfig } from '../harness/stack.ts';
import { waitFor } from '../harness/wait.ts';
import { NodeAgent } from '../node-agent/agent.ts';
import { chartDir, mustRun, runTool } from '../harness/commands.ts';

const stack = inject('stack');
const kubeconfig = stack.controlPlane.adminKubeconfig;
const kc = adminKubeConfig(stack);
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const suffix = randomBytes(3).toString('hex');
const releaseNamespace = 'meshwork-system';
const tenant = `tenant-${suffix}`;

const isReady = (pod: V1Pod): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

async function operatorPods(count: number, exclude: string[] = []): Promise<V1Pod[]> {
  return waitFor(
    async () => {
      const pods = (
        await core.listNamespacedPod({ namespace: releaseNamespace, labelSelector: 'app.kubernetes.io/component=operator' })
      ).items.filter((p) => !p.metadata?.deletionTimestamp && !exclude.includes(p.metadata?.name ?? ''));
      return pods.length === count && pods.every((p) => p.status?.phase === 'Running' && isReady(p)) ? pods : undefined;
    },
    { description: `${count} Running and Ready operator pods`, timeoutMs: 120_000, intervalMs: 500 },
  );
}

const meshPartition = (name: string): string => `
apiVersion: v1
kind: Secret
metadata: { name: meshwork-s3, namespace: ${tenant} }
stringData: { accessKeyId: trial, secretAccessKey: trial-secret }
---
apiVersion: meshwork.io/v1alpha1
kind: MeshPartition
metadata: { name: ${name}, namespace: ${tenant} }
spec:
  replicas: 1
  slots: [{ start: 0, end: 1023 }]
  stores:
    etcd: { endpoints: ['${stack.etcd.endpoint}'] }
    s3: { endpoint: '${stack.minio.endpoint}', bucket: ${stack.minio.bucket}, credentialsSecretRef: { name: meshwork-s3 } }
`;

describe('helm install, upgrade and uninstall', () => {
  let agent: NodeAgent;
  let dataDir = '';

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'meshwork-helm-nodes-'));
    agent = new NodeAgent({
      kubeconfig,
      dataDir,
      namePrefix: `helm-${suffix}`,
      addressBlock: 3,
      backoff: { baseMs: 1000, maxMs: 10_000, resetAfterMs: 60_000 },
      log: process.env.MESHWORK_NODE_AGENT_LOG
        ? (message, fields) => console.log(new Date().toISOString(), message, JSON.stringify(fields))
        : undefined,
    });
    await agent.start();
    await core.createNamespace({ body: { metadata: { name: tenant } } });
  });

  afterAll(async () => {
    await agent?.stop({ deregister: true });
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** Marks Meshwork's CRDs that exist already as the release's own, so that `helm install` adopts them. */
  async function adoptExistingCrds(): Promise<void> {
    for (const crd of ['meshes.meshwork.io', 'meshpartitions.meshwork.io']) {
      if ((await runTool('kubectl', ['get', 'crd', crd], { kubeconfig })).status !== 0) continue;
      await mustRun('kubectl', ['label', '--overwrite', 'crd', crd, 'app.kubernetes.io/managed-by=Helm'], { kubeconfig });
      await mustRun(
        'kubectl',
        ['annotate', '--overwrite', 'crd', crd, 'meta.helm.sh/release-name=mw', `meta.helm.sh/release-namespace=${releaseNamespace}`],
        { kubeconfig },
      );
    }
  }

  it('refuses values that break the schema before creating anything', async () => {
    const namespace = `refused-${suffix}`;
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    const result = await runTool('helm', ['install', 'bad', chartDir, '--namespace', namespace, '--set', 'operator.replicas=0'], {
      kubeconfig,
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("at '/operator/replicas': minimum: got 0, want 1");
    const secrets = await core.listNamespacedSecret({ namespace });
    expect(secrets.items.map((x) => x.metadata?.name)).toEqual([]);
    expect((await apps.listNamespacedDeployment({ namespace })).items).toEqual([]);
    expect((await core.listNamespacedServiceAccount({ namespace })).items.map((x) => x.metadata?.name)).not.toContain('bad-meshwork');
  });

  it("installs the operator, which runs, elects a leader and reconciles a MeshPartition with the chart's RBAC", async () => {
    // Other test files on this control plane may have applied the CRDs with kubectl first, as a
    // person following docs/operations.md would: the release adopts them the way Helm documents.
    await adoptExistingCrds();
    await mustRun(
      'helm',
      [
        'install',
        'mw',
        chartDir,
        '--namespace',
        releaseNamespace,
        '--create-namespace',
        '--set',
        'image.tag=dev',
        '--wait',
        '--timeout',
        '3m',
      ],
      {
        kubeconfig,
        timeoutMs: 200_000,
      },
    );
    const pods = await operatorPods(2);
    expect(pods.map((p) => p.spec?.serviceAccountName)).toEqual(['mw-meshwork', 'mw-meshwork']);
    const leases = kc.makeApiClient(CoordinationV1Api);
    const holder = await waitFor(
      async () => (await leases.readNamespacedLease({ name: 'meshwork-operator', namespace: releaseNamespace })).spec?.holderIdentity,
      { description: 'an operator replica to hold the leader Lease', timeoutMs: 60_000 },
    );
    expect(pods.map((p) => p.metadata?.name)).toContain(holder);

    await mustRun('kubectl', ['apply', '-f', '-'], { input: meshPartition('p0'), kubeconfig });
    const sts = await waitFor(() => apps.readNamespacedStatefulSet({ name: 'p0', namespace: tenant }).catch(() => undefined), {
      description: 'the operator to create the StatefulSet of MeshPartition p0',
      timeoutMs: 60_000,
    });
    expect(sts.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'MeshPartition', name: 'p0', controller: true });
    const custom = kc.makeApiClient(CustomObjectsApi);
    await waitFor(
      async () => {
        const mp = (await custom.getNamespacedCustomObject({
          group: 'meshwork.io',
          version: 'v1alpha1',
          namespace: tenant,
          plural: 'meshpartitions',
          name: 'p0',
        })) as {
          metadata: { generation: number };
          status?: { observedGeneration?: number };
        };
        return mp.status?.observedGeneration === mp.metadata.generation;
      },
      { description: 'the status of p0 to be written', timeoutMs: 60_000 },
    );
  });

  it('rolls the operator on helm upgrade and keeps the MeshPartitions', async () => {
    const before = (await operatorPods(2)).map((p) => p.metadata!.name!);
    await mustRun(
      'helm',
      [
        'upgrade',
        'mw',
        chartDir,
        '--namespace',
        releaseNamespace,
        '--reuse-values',
        '--set',
        'operator.logLevel=debug',
        '--wait',
        '--timeout',
        '3m',
      ],
      {
        kubeconfig,
        timeoutMs: 200_000,
      },
    );
    const after = await operatorPods(2, before);
    expect(after.map((p) => p.metadata?.name).filter((n) => before.includes(n!))).toEqual([]);
    const env = after[0]!.spec?.containers[0]?.env?.find((e) => e.name === 'MESHWORK_LOG_LEVEL');
    expect(env?.value).toBe('debug');
    const list = await mustRun('kubectl', ['get', 'meshpartitions', '-n', tenant, '-o', 'name'], { kubeconfig });
    expect(list.trim()).toBe('meshpartition.meshwork.io/p0');
  });

  it('removes the operator on helm uninstall and keeps the CRD and the MeshPartitions', async () => {
    await mustRun('helm', ['uninstall', 'mw', '--namespace', releaseNamespace, '--wait', '--timeout', '2m'], {
      kubeconfig,
      timeoutMs: 150_000,
    });
    await waitFor(async () => (await apps.listNamespacedDeployment({ namespace: releaseNamespace })).items.length === 0, {
      description: 'the operator Deployment to be removed',
      timeoutMs: 60_000,
    });
    const crd = await kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: 'meshpartitions.meshwork.io' });
    expect(crd.metadata?.name).toBe('meshpartitions.meshwork.io');
    const list = await mustRun('kubectl', ['get', 'meshpartitions', '-n', tenant, '-o', 'name'], { kubeconfig });
    expect(list.trim()).toBe('meshpartition.meshwork.io/p0');
  });
});
