// Meshwork on the local stack: the operator installed with the Helm chart, and a sample
// MeshPartition on the local etcd and MinIO, awaited until Ready.
import { randomBytes } from 'node:crypto';
import { KubeConfig, CustomObjectsApi } from '@kubernetes/client-node';
import { chartDir, mustRun } from '../harness/commands.ts';
import { waitFor } from '../harness/wait.ts';

/** Where the sample partition lives, and what it is called. */
export const sampleNamespace = 'meshwork';
export const samplePartition = 'p0';

/** Installs (or upgrades) the operator from the chart, running the local image, and waits for it. */
export async function installOperator(kubeconfig: string): Promise<void> {
  await mustRun(
    'helm',
    [
      'upgrade',
      '--install',
      'meshwork',
      chartDir,
      '--namespace',
      'meshwork-system',
      '--create-namespace',
      '--set',
      'image.tag=dev',
      '--wait',
      '--timeout',
      '4m',
    ],
    { kubeconfig, timeoutMs: 260_000 },
  );
}

/** Applies the sample partition (3 members, all 4096 slots) with its Secrets; one that exists is pointed at the current stores. */
export async function applySamplePartition(
  kubeconfig: string,
  stores: { etcd: string; minio: { endpoint: string; accessKey: string; secretKey: string; bucket: string } },
  otlpEndpoint?: string,
): Promise<void> {
  const existing = await mustRun('kubectl', ['get', 'meshpartitions', '-n', sampleNamespace, '--ignore-not-found', '-o', 'name'], {
    kubeconfig,
  }).catch(() => '');
  if (existing.trim()) {
    // A stack restored from an earlier run keeps its data; its partition is pointed at the stores
    // as they run now (a stack made by an older layout had other ports), and the operator rolls it
    // if anything moved. For a stack whose addresses were kept, this changes nothing.
    const patch = {
      spec: {
        stores: { etcd: { endpoints: [stores.etcd] }, s3: { endpoint: stores.minio.endpoint, bucket: stores.minio.bucket } },
        ...(otlpEndpoint ? { telemetry: { otlpEndpoint } } : {}),
      },
    };
    await mustRun(
      'kubectl',
      ['patch', 'meshpartition', samplePartition, '-n', sampleNamespace, '--type', 'merge', '-p', JSON.stringify(patch)],
      {
        kubeconfig,
      },
    );
    return;
  }
  const adminToken = randomBytes(24).toString('base64url');
  const manifest = `
apiVersion: v1
kind: Namespace
metadata: { name: ${sampleNamespace} }
---
apiVersion: v1
kind: Secret
metadata: { name: ${samplePartition}-s3, namespace: ${sampleNamespace} }
stringData: { accessKeyId: '${stores.minio.accessKey}', secretAccessKey: '${stores.minio.secretKey}' }
---
apiVersion: v1
kind: Secret
metadata: { name: ${samplePartition}-admin, namespace: ${sampleNamespace} }
stringData: { token: '${adminToken}' }
---
apiVersion: meshwork.io/v1alpha1
kind: MeshPartition
metadata: { name: ${samplePartition}, namespace: ${sampleNamespace} }
spec:
  replicas: 3
  slots: [{ start: 0, end: 4095 }]
  # Smaller than the commodity default so that the three members and the operator fit on two
  # of the three local nodes (2 CPU / 8 GiB each): room for one lost node (N+1).
  resources: { cpu: 500m, memory: 2Gi }
  # A node the watchdog marked unsuitable takes members again after a minute Ready (600 s by default).
  watchdog: { nodeProbationSeconds: 60 }
  storage: { volumes: 4, size: 10Gi, storageClassName: meshwork-local }
  stores:
    etcd: { endpoints: ['${stores.etcd}'] }
    s3: { endpoint: '${stores.minio.endpoint}', bucket: ${stores.minio.bucket}, credentialsSecretRef: { name: ${samplePartition}-s3 } }
${otlpEndpoint ? `  telemetry: { otlpEndpoint: '${otlpEndpoint}' }\n` : ''}`;
  await mustRun('kubectl', ['apply', '-f', '-'], { kubeconfig, input: manifest });
}

interface PartitionStatus {
  readyReplicas?: number;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
}

/** Waits until the sample partition's Ready condition is True; returns its status. */
export async function waitForPartitionReady(kubeconfig: string, timeoutMs: number): Promise<PartitionStatus> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const custom = kc.makeApiClient(CustomObjectsApi);
  let last: PartitionStatus | undefined;
  try {
    return await waitFor(
      async () => {
        const mp = (await custom.getNamespacedCustomObject({
          group: 'meshwork.io',
          version: 'v1alpha1',
          namespace: sampleNamespace,
          plural: 'meshpartitions',
          name: samplePartition,
        })) as { status?: PartitionStatus };
        last = mp.status;
        return mp.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? mp.status : undefined;
      },
      { description: `MeshPartition ${sampleNamespace}/${samplePartition} to be Ready`, timeoutMs, intervalMs: 1000 },
    );
  } catch (err) {
    const ready = last?.conditions?.find((c) => c.type === 'Ready');
    throw new Error(
      `${(err as Error).message}; last Ready condition: ${ready ? `${ready.status} ${ready.reason ?? ''}: ${ready.message ?? ''}` : 'none'}`,
      { cause: err },
    );
  }
}
