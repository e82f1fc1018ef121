// A defaulted MeshPartition for tests, as the API server would return it.
import { apiVersion, meshPartitionKind, type MeshPartition, type MeshPartitionSpec } from './v1alpha1.ts';

/** A MeshPartition with the CRD's defaults applied; `spec` overrides fields. */
export function samplePartition(name = 'p0', spec: Partial<MeshPartitionSpec> = {}, namespace = 'mesh'): MeshPartition {
  return {
    apiVersion,
    kind: meshPartitionKind,
    metadata: { name, namespace, uid: '00000000-0000-4000-8000-000000000001', generation: 1 },
    spec: {
      replicas: 3,
      slots: [{ start: 0, end: 1023 }],
      resources: { cpu: '2', memory: '8Gi' },
      storage: { volumes: 4, size: '100Gi' },
      stores: {
        etcd: { endpoints: ['http://etcd-0:2379', 'http://etcd-1:2379'] },
        s3: { endpoint: 'http://minio:9000', bucket: 'blocks', credentialsSecretRef: { name: 's3-credentials' } },
      },
      throttling: {
        userRequestsPerSecond: 100,
        userBurst: 200,
        deviceRequestsPerSecond: 50,
        deviceBurst: 100,
        userBytesPerSecond: '64Mi',
        deviceBytesPerSecond: '32Mi',
        deviceLongPolls: 4,
        maxEntrySize: '16Gi',
        eventLoopLagMilliseconds: 100,
        concurrency: { min: 4, max: 512 },
      },
      watchdog: { mode: 'Enforce', tolerationSeconds: 60, healthyResetSeconds: 600, nodeLostSeconds: 300, maxConcurrent: 1, actionsPerHour: 6 },
      ...spec,
    },
  };
}
