// Meshwork on the local stack: the operator installed with the Helm chart, and a sample
// Mesh (two partitions of two members and a gateway) on the local etcd and MinIO, awaited
// until Ready.
import { randomBytes } from 'node:crypto';
import { KubeConfig, CustomObjectsApi } from '@kubernetes/client-node';
import { chartDir, mustRun } from '../harness/commands.ts';
import { waitFor } from '../harness/wait.ts';

/** Where the sample Mesh lives, what it is called, and the names the operator gives its parts. */
export const sampleNamespace = 'meshwork';
export const sampleMesh = 'meshwork';
/** The Mesh's partitions (the operator names them `<mesh>-p<i>`): two, of two members each. */
export const samplePartitions = [`${sampleMesh}-p0`, `${sampleMesh}-p1`];
/** The gateway's Service (and Deployment): the one address of the Mesh. */
export const sampleGateway = `${sampleMesh}-gateway`;
/** The Secret holding the data plane's administrator token. */
export const sampleAdminSecret = `${sampleMesh}-admin`;
/** The bare MeshPartition that stacks made before the sample became a Mesh carried. */
const legacyPartition = 'p0';

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

/**
 * Applies the sample Mesh (two partitions of two members, slots 0-2047 and 2048-4095, one
 * gateway behind a NodePort Service) with its Secrets; one that exists is pointed at the current stores. A bare
 * MeshPartition `p0` left by a stack made before the sample was a Mesh is deleted first: the
 * data lives in etcd and MinIO under slot keys, so the Mesh's partitions serve it as it was.
 */
export async function applySampleMesh(
  kubeconfig: string,
  stores: { etcd: string; minio: { endpoint: string; accessKey: string; secretKey: string; bucket: string } },
  otlpEndpoint?: string,
  log: (message: string, fields?: Record<string, unknown>) => void = () => undefined,
): Promise<void> {
  // One read of p0: absent (nothing printed), or its owners (none: the bare partition of an older stack).
  const legacy = (
    await mustRun('kubectl', ['get', 'meshpartition', legacyPartition, '-n', sampleNamespace, '--ignore-not-found', '-o', 'json'], {
      kubeconfig,
    }).catch(() => '')
  ).trim();
  const bareLegacy =
    legacy !== '' && !((JSON.parse(legacy) as { metadata?: { ownerReferences?: unknown[] } }).metadata?.ownerReferences?.length ?? 0);
  if (bareLegacy) {
    log('Deleting the MeshPartition p0 of an older stack: the sample is a Mesh now, and its partition takes the same slots and data');
    await mustRun('kubectl', ['delete', 'meshpartition', legacyPartition, '-n', sampleNamespace, '--wait=true', '--timeout=120s'], {
      kubeconfig,
      timeoutMs: 130_000,
    });
  }
  const existing = await mustRun('kubectl', ['get', 'meshes', sampleMesh, '-n', sampleNamespace, '--ignore-not-found', '-o', 'name'], {
    kubeconfig,
  }).catch(() => '');
  if (existing.trim()) {
    // A stack restored from an earlier run keeps its data; its Mesh is pointed at the stores as
    // they run now (a stack made by an older layout had other ports), and the operator rolls the
    // partitions if anything moved. For a stack whose addresses were kept, this changes nothing.
    const patch = {
      spec: {
        stores: { etcd: { endpoints: [stores.etcd] }, s3: { endpoint: stores.minio.endpoint, bucket: stores.minio.bucket } },
        ...(otlpEndpoint ? { telemetry: { otlpEndpoint } } : {}),
      },
    };
    await mustRun('kubectl', ['patch', 'mesh', sampleMesh, '-n', sampleNamespace, '--type', 'merge', '-p', JSON.stringify(patch)], {
      kubeconfig,
    });
    return;
  }
  // A stack from before the Mesh has its administrator token in p0-admin: kept, so that its
  // users' administrator keeps working.
  const oldToken = await mustRun(
    'kubectl',
    ['get', 'secret', `${legacyPartition}-admin`, '-n', sampleNamespace, '--ignore-not-found', '-o', 'jsonpath={.data.token}'],
    {
      kubeconfig,
    },
  ).catch(() => '');
  const adminToken = oldToken.trim() ? Buffer.from(oldToken.trim(), 'base64').toString('utf8') : randomBytes(24).toString('base64url');
  const manifest = `
apiVersion: v1
kind: Namespace
metadata: { name: ${sampleNamespace} }
---
apiVersion: v1
kind: Secret
metadata: { name: ${sampleMesh}-s3, namespace: ${sampleNamespace} }
stringData: { accessKeyId: '${stores.minio.accessKey}', secretAccessKey: '${stores.minio.secretKey}' }
---
apiVersion: v1
kind: Secret
metadata: { name: ${sampleAdminSecret}, namespace: ${sampleNamespace} }
stringData: { token: '${adminToken}' }
---
apiVersion: meshwork.io/v1alpha1
kind: Mesh
metadata: { name: ${sampleMesh}, namespace: ${sampleNamespace} }
spec:
  partitions: 2
  replicasPerPartition: 2
  # Smaller than the commodity default so that the four members, the gateway and the operator
  # fit on two of the three local nodes (2 CPU / 8 GiB each): room for one lost node (N+1).
  resources: { cpu: 500m, memory: 2Gi }
  # A node the watchdog marked unsuitable takes members again after a minute Ready (600 s by default).
  watchdog: { nodeProbationSeconds: 60 }
  storage: { volumes: 4, size: 10Gi, storageClassName: meshwork-local }
  stores:
    etcd: { endpoints: ['${stores.etcd}'] }
    s3: { endpoint: '${stores.minio.endpoint}', bucket: ${stores.minio.bucket}, credentialsSecretRef: { name: ${sampleMesh}-s3 } }
  gateway:
    replicas: 1
    resources: { cpu: 250m, memory: 512Mi }
    # Reachable from the machine at a node's address (make up prints it).
    service: { type: NodePort }
${otlpEndpoint ? `  telemetry: { otlpEndpoint: '${otlpEndpoint}' }\n` : ''}`;
  await mustRun('kubectl', ['apply', '-f', '-'], { kubeconfig, input: manifest });
}

interface MeshStatus {
  readyPartitions?: number;
  slotsCovered?: number;
  gateway?: { replicas?: number; readyReplicas?: number; service?: string };
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
}

/** Waits until the sample Mesh's Ready condition is True (every slot covered, the gateway ready); returns its status. */
export async function waitForMeshReady(kubeconfig: string, timeoutMs: number): Promise<MeshStatus> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const custom = kc.makeApiClient(CustomObjectsApi);
  let last: MeshStatus | undefined;
  try {
    return await waitFor(
      async () => {
        const mesh = (await custom.getNamespacedCustomObject({
          group: 'meshwork.io',
          version: 'v1alpha1',
          namespace: sampleNamespace,
          plural: 'meshes',
          name: sampleMesh,
        })) as { status?: MeshStatus };
        last = mesh.status;
        return mesh.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? mesh.status : undefined;
      },
      { description: `Mesh ${sampleNamespace}/${sampleMesh} to be Ready`, timeoutMs, intervalMs: 1000 },
    );
  } catch (err) {
    const ready = last?.conditions?.find((c) => c.type === 'Ready');
    throw new Error(
      `${(err as Error).message}; last Ready condition: ${ready ? `${ready.status} ${ready.reason ?? ''}: ${ready.message ?? ''}` : 'none'}`,
      { cause: err },
    );
  }
}

/**
 * The gateway's address as the machine reaches it: a node's address and the NodePort of the
 * gateway Service (kube-proxy on every node forwards it to a ready gateway pod).
 */
export async function gatewayUrl(kubeconfig: string): Promise<string> {
  const nodePort = (
    await mustRun('kubectl', ['get', 'service', sampleGateway, '-n', sampleNamespace, '-o', 'jsonpath={.spec.ports[0].nodePort}'], {
      kubeconfig,
    })
  ).trim();
  const nodeIP = (
    await mustRun('kubectl', ['get', 'nodes', '-o', 'jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}'], {
      kubeconfig,
    })
  ).trim();
  if (!nodePort || !nodeIP)
    throw new Error(`the gateway Service ${sampleNamespace}/${sampleGateway} has no NodePort, or the nodes no address`);
  return `http://${nodeIP}:${nodePort}`;
}
