// The operator and the data plane agree on the partition pod's environment: what the ConfigMap
// and the StatefulSet's container env give a pod, resolved as a kubelet resolves it (ConfigMap
// and Secret references, downward-API fields, $(VAR) expansion, mounted Secrets), is accepted by
// the data plane's own parser and reads back as the values the MeshPartition asked for.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { dataplaneHttpPort, dataplaneNodeOptions, PartitionEnv, partitionEnvSchema, type PartitionEnvName } from '@meshwork/contract';
import { describe, expect, it } from 'vitest';
import { parsePartitionConfig, type PartitionConfig } from '../../../dataplane/src/config.ts';
import { containerEnv, type PodFacts, type ReferenceResolver } from '../../../e2e/node-agent/container-env.ts';
import { samplePartition } from '../api/fixtures.ts';
import type { MeshPartition, MeshPartitionSpec } from '../api/v1alpha1.ts';
import { buildConfigMap } from './configmap.ts';
import { adminTokenSecretName, buildStatefulSet } from './statefulset.ts';

const facts: PodFacts = { podIP: '198.18.0.7', hostIP: '198.18.0.1', nodeName: 'node-b' };
const adminToken = 'a-token-of-sixteen-characters';
const s3 = { accessKeyId: 'access-key-id', secretAccessKey: 'secret-access-key' };

// Set for others than the data plane's parser: expanded by the kubelet into MESHWORK_LISTEN,
// read by Node.js itself, or resolved by config.ts from a value or a file.
const readOutsideTheSchema = new Set<PartitionEnvName>([
  PartitionEnv.podIp,
  PartitionEnv.nodeName,
  PartitionEnv.nodeOptions,
  PartitionEnv.s3AccessKey,
  PartitionEnv.s3SecretKey,
  PartitionEnv.adminTokenFile,
]);

/** The pod the StatefulSet controller would create as member `ordinal`, and its container. */
function memberPod(partition: MeshPartition, ordinal: number): { pod: V1Pod; container: V1Container } {
  const template = buildStatefulSet(partition).spec!.template;
  const pod: V1Pod = {
    metadata: { ...template.metadata, name: `${partition.metadata.name}-${ordinal}`, namespace: partition.metadata.namespace },
    spec: { ...template.spec!, nodeName: facts.nodeName },
  };
  return { pod, container: pod.spec!.containers[0]! };
}

/** What the kubelet finds in the partition's namespace: its ConfigMap and the two Secrets its members need. */
function namespaceObjects(partition: MeshPartition): ReferenceResolver & { secrets: Record<string, Record<string, string>> } {
  const configMaps: Record<string, Record<string, string>> = {
    [buildConfigMap(partition).metadata!.name!]: buildConfigMap(partition).data!,
  };
  const secrets: Record<string, Record<string, string>> = {
    [partition.spec.stores.s3.credentialsSecretRef.name]: s3,
    [adminTokenSecretName(partition)]: { token: adminToken },
  };
  return {
    secrets,
    configMapKey: async (name, key) => Promise.resolve(configMaps[name]?.[key]),
    secretKey: async (name, key) => Promise.resolve(secrets[name]?.[key]),
    configMap: async (name) => Promise.resolve(configMaps[name]),
    secret: async (name) => Promise.resolve(secrets[name]),
  };
}

/** Reads a file inside the pod as the data plane would: only Secrets mounted by the pod's spec exist. */
function mountedSecretReader(
  pod: V1Pod,
  container: V1Container,
  secrets: Record<string, Record<string, string>>,
): (path: string) => string {
  return (path) => {
    for (const mount of container.volumeMounts ?? []) {
      if (!path.startsWith(`${mount.mountPath}/`)) continue;
      const secret = pod.spec!.volumes?.find((v) => v.name === mount.name)?.secret;
      const value = secret ? secrets[secret.secretName!]?.[path.slice(mount.mountPath.length + 1)] : undefined;
      if (value !== undefined) return value;
    }
    throw new Error(`ENOENT: no such file in the pod: ${path}`);
  };
}

/** The member's environment as the kubelet gives it, and the data plane's configuration parsed from it. */
async function startMember(
  partition: MeshPartition,
  ordinal = 1,
): Promise<{ env: Record<string, string>; config: PartitionConfig; container: V1Container }> {
  const { pod, container } = memberPod(partition, ordinal);
  const objects = namespaceObjects(partition);
  const env = await containerEnv(pod, container, facts, objects);
  return { env, config: parsePartitionConfig(env, mountedSecretReader(pod, container, objects.secrets)), container };
}

const defaults = samplePartition().spec.throttling;
const defaultLimits = {
  userRequestsPerSecond: 100,
  userBurst: 200,
  deviceRequestsPerSecond: 50,
  deviceBurst: 100,
  userBytesPerSecond: 64 * 2 ** 20,
  deviceBytesPerSecond: 32 * 2 ** 20,
  deviceLongPolls: 4,
  maxEntryBytes: 16 * 2 ** 30,
  eventLoopLagMs: 100,
  concurrency: { min: 4, max: 512 },
};

describe('the partition environment the operator builds', () => {
  it('is what the data plane reads back for the sample partition', async () => {
    const partition = samplePartition();
    const { env, config, container } = await startMember(partition, 2);
    expect(config).toMatchObject({
      listen: { host: facts.podIP, port: dataplaneHttpPort },
      advertiseUrl: `http://${facts.podIP}:${dataplaneHttpPort}`,
      partition: 'p0',
      replica: 'p0-2',
      slots: [{ first: 0, last: 1023 }],
      etcdEndpoints: ['http://etcd-0:2379', 'http://etcd-1:2379'],
      s3: { bucket: 'blocks', region: 'us-east-1', accessKey: s3.accessKeyId, secretKey: s3.secretAccessKey },
      adminToken,
      throttle: defaultLimits,
    });
    expect(config.s3.endpoint.href).toBe('http://minio:9000/');
    // The process writes its last words where the kubelet reads them, and runs with the data plane's flags.
    expect(env[PartitionEnv.terminationMessagePath]).toBe(container.terminationMessagePath);
    expect(env[PartitionEnv.nodeOptions]).toBe(dataplaneNodeOptions);
    expect(env[PartitionEnv.nodeName]).toBe(facts.nodeName);
    // Every data directory is a mounted volume claim, one per volume.
    const claimMounts = container.volumeMounts!.filter((m) => m.name.startsWith('data-')).map((m) => m.mountPath);
    expect(config.dataDirs).toEqual(claimMounts);
    expect(config.dataDirs).toHaveLength(partition.spec.storage.volumes);
  });

  it('exports traces where spec.telemetry says, and only then', async () => {
    expect((await startMember(samplePartition())).config.otlpEndpoint).toBeUndefined();
    const partition = samplePartition('p0', { telemetry: { otlpEndpoint: 'http://jaeger.observability:4318' } });
    const { env, config } = await startMember(partition);
    expect(env[PartitionEnv.otlpEndpoint]).toBe('http://jaeger.observability:4318');
    expect(config.otlpEndpoint).toBe('http://jaeger.observability:4318');
  });

  it('redirects block downloads to the store only when spec.stores.s3.downloadRedirect says, for its expiry', async () => {
    expect((await startMember(samplePartition())).config.s3.downloadRedirect).toBeUndefined();
    const s3 = {
      endpoint: 'http://minio:9000',
      bucket: 'blocks',
      credentialsSecretRef: { name: 's3-credentials' },
      downloadRedirect: { endpoint: 'https://s3.example.com', expirySeconds: 600, uploads: false },
    };
    const partition = samplePartition('p0', { stores: { etcd: { endpoints: ['http://etcd-0:2379'] }, s3 } });
    const { env, config } = await startMember(partition);
    expect(env[PartitionEnv.s3DownloadRedirectEndpoint]).toBe('https://s3.example.com');
    expect(config.s3.downloadRedirect).toEqual({ endpoint: new URL('https://s3.example.com'), expiresInSeconds: 600 });
    expect(config.s3.uploadRedirect).toBe(false);
    const uploads = { ...s3, downloadRedirect: { ...s3.downloadRedirect, uploads: true } };
    const both = await startMember(samplePartition('p0', { stores: { etcd: { endpoints: ['http://etcd-0:2379'] }, s3: uploads } }));
    expect(both.env[PartitionEnv.s3UploadRedirect]).toBe('on');
    expect(both.config.s3.uploadRedirect).toBe(true);
  });

  it('sets only variables of the contract, each read by the data plane or named as read elsewhere', async () => {
    const { env } = await startMember(samplePartition());
    const contractNames = new Set<string>(Object.values(PartitionEnv));
    const schemaNames = new Set(Object.keys(partitionEnvSchema.shape));
    const containerNames = memberPod(samplePartition(), 0).container.env!.map((e) => e.name);
    const built = [...Object.keys(buildConfigMap(samplePartition()).data!), ...containerNames];
    for (const name of built) {
      expect(contractNames, `${name} is not a variable of the contract`).toContain(name);
      expect(schemaNames.has(name) || readOutsideTheSchema.has(name as PartitionEnvName), `nothing reads ${name}`).toBe(true);
      expect(env[name], `${name} did not reach the container`).toBeDefined();
    }
  });

  it.each<{
    case: string;
    spec: Partial<MeshPartitionSpec>;
    throttle?: PartitionConfig['throttle'];
    slots?: PartitionConfig['slots'];
    volumes?: number;
  }>([
    {
      case: 'tight static bounds and byte rates as plain numbers',
      spec: {
        throttling: {
          ...defaults,
          ...{ userRequestsPerSecond: 5, userBurst: 10, deviceRequestsPerSecond: 2, deviceBurst: 3, deviceLongPolls: 1 },
          ...{ userBytesPerSecond: 1048576, maxEntrySize: 4294967296 },
        },
      },
      throttle: {
        ...defaultLimits,
        ...{ userRequestsPerSecond: 5, userBurst: 10, deviceRequestsPerSecond: 2, deviceBurst: 3, deviceLongPolls: 1 },
        ...{ userBytesPerSecond: 1048576, maxEntryBytes: 4294967296 },
      },
    },
    {
      case: 'decimal and fractional quantities and a pinned concurrency limit',
      spec: {
        throttling: {
          ...defaults,
          userBytesPerSecond: '100M',
          deviceBytesPerSecond: '1.5Mi',
          maxEntrySize: '1e9',
          concurrency: { min: 64, max: 64 },
        },
      },
      throttle: {
        ...defaultLimits,
        userBytesPerSecond: 1e8,
        deviceBytesPerSecond: 1.5 * 2 ** 20,
        maxEntryBytes: 1e9,
        concurrency: { min: 64, max: 64 },
      },
    },
    {
      case: 'a lenient event-loop lag threshold',
      spec: { throttling: { ...defaults, eventLoopLagMilliseconds: 500 } },
      throttle: { ...defaultLimits, eventLoopLagMs: 500 },
    },
    { case: 'one volume', spec: { storage: { volumes: 1, size: '1Gi' } }, volumes: 1 },
    { case: 'eight volumes of a storage class', spec: { storage: { volumes: 8, size: '10Gi', storageClassName: 'fast' } }, volumes: 8 },
    {
      case: 'several slot ranges, out of order, and a single slot',
      spec: {
        slots: [
          { start: 2048, end: 2100 },
          { start: 7, end: 7 },
          { start: 4000, end: 4095 },
        ],
      },
      slots: [
        { first: 7, last: 7 },
        { first: 2048, last: 2100 },
        { first: 4000, last: 4095 },
      ],
    },
  ])('reads back $case', async ({ spec, throttle, slots, volumes }) => {
    const partition = samplePartition('p3', spec, 'tenant-a');
    const { config, container } = await startMember(partition);
    expect(config.partition).toBe('p3');
    expect(config.replica).toBe('p3-1');
    expect(config.throttle).toEqual(throttle ?? defaultLimits);
    expect(config.slots).toEqual(slots ?? [{ first: 0, last: 1023 }]);
    expect(config.dataDirs).toHaveLength(volumes ?? 4);
    expect(config.dataDirs).toEqual(container.volumeMounts!.filter((m) => m.name.startsWith('data-')).map((m) => m.mountPath));
  });
});
