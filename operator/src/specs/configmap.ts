// The partition's configuration as environment for its pods (xcopy configuration: no
// install step inside the pod, everything comes from here and is validated at start).
import { createHash } from 'node:crypto';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { formatSlots, type MeshPartition, type MeshPartitionSpec } from '../api/v1alpha1.ts';
import { adminTokenMountPath, dataplaneNodeOptions, names, ownedMetadata, terminationMessagePath } from './common.ts';

/** The data plane's throttling variables; byte quantities pass as written (the data plane reads `64Mi`). */
export function throttlingEnvironment(throttling: MeshPartitionSpec['throttling']): Record<string, string> {
  return {
    MESHWORK_THROTTLE_USER_RPS: String(throttling.userRequestsPerSecond),
    MESHWORK_THROTTLE_USER_BURST: String(throttling.userBurst),
    MESHWORK_THROTTLE_DEVICE_RPS: String(throttling.deviceRequestsPerSecond),
    MESHWORK_THROTTLE_DEVICE_BURST: String(throttling.deviceBurst),
    MESHWORK_THROTTLE_USER_BYTES_PER_SECOND: String(throttling.userBytesPerSecond),
    MESHWORK_THROTTLE_DEVICE_BYTES_PER_SECOND: String(throttling.deviceBytesPerSecond),
    MESHWORK_THROTTLE_DEVICE_LONG_POLLS: String(throttling.deviceLongPolls),
    MESHWORK_THROTTLE_MAX_ENTRY_BYTES: String(throttling.maxEntrySize),
    MESHWORK_THROTTLE_EVENT_LOOP_LAG_MS: String(throttling.eventLoopLagMilliseconds),
    MESHWORK_THROTTLE_CONCURRENCY_MIN: String(throttling.concurrency.min),
    MESHWORK_THROTTLE_CONCURRENCY_MAX: String(throttling.concurrency.max),
  };
}

/** The environment every member of the partition shares, keyed by variable name. */
export function partitionEnvironment(partition: MeshPartition): Record<string, string> {
  const { spec } = partition;
  return {
    MESHWORK_PARTITION: partition.metadata.name,
    MESHWORK_SLOTS: formatSlots(spec.slots),
    MESHWORK_ETCD_ENDPOINTS: spec.stores.etcd.endpoints.join(','),
    MESHWORK_S3_ENDPOINT: spec.stores.s3.endpoint,
    MESHWORK_S3_BUCKET: spec.stores.s3.bucket,
    MESHWORK_DATA_DIRS: Array.from({ length: spec.storage.volumes }, (_, i) => `/var/lib/meshwork/${names.volume(i)}`).join(','),
    ...throttlingEnvironment(spec.throttling),
    MESHWORK_TERMINATION_MESSAGE_PATH: terminationMessagePath,
    MESHWORK_ADMIN_TOKEN_FILE: `${adminTokenMountPath}/token`,
    NODE_OPTIONS: dataplaneNodeOptions,
  };
}

/** Builds the ConfigMap that holds the partition's configuration. */
export function buildConfigMap(partition: MeshPartition): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: ownedMetadata(partition, names.configMap(partition)),
    data: partitionEnvironment(partition),
  };
}

/** A short digest of the configuration, stamped on the pod template so a change rolls the pods. */
export function configHash(partition: MeshPartition): string {
  const env = partitionEnvironment(partition);
  const canonical = JSON.stringify(Object.keys(env).sort().map((k) => [k, env[k]]));
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}
