// The partition's configuration as environment for its pods (xcopy configuration: no
// install step inside the pod, everything comes from here and is validated at start). The
// variable names are the contract's (@meshwork/contract, env.ts), whose schema the data plane
// parses this environment with; environment.test.ts proves it accepts what is built here.
import { createHash } from 'node:crypto';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { dataplaneNodeOptions, defaultTerminationMessagePath, PartitionEnv, type PartitionEnvironment } from '@meshwork/contract';
import type { MeshPartition, MeshPartitionSpec } from '../api/v1alpha1.ts';
import { adminTokenMountPath, dataDirPath, names, ownedMetadata, slotsText } from './common.ts';

/** The data plane's throttling variables; byte quantities pass as written (the data plane reads `64Mi`). */
export function throttlingEnvironment(throttling: MeshPartitionSpec['throttling']): PartitionEnvironment {
  return {
    [PartitionEnv.throttleUserRps]: String(throttling.userRequestsPerSecond),
    [PartitionEnv.throttleUserBurst]: String(throttling.userBurst),
    [PartitionEnv.throttleDeviceRps]: String(throttling.deviceRequestsPerSecond),
    [PartitionEnv.throttleDeviceBurst]: String(throttling.deviceBurst),
    [PartitionEnv.throttleUserBytesPerSecond]: String(throttling.userBytesPerSecond),
    [PartitionEnv.throttleDeviceBytesPerSecond]: String(throttling.deviceBytesPerSecond),
    [PartitionEnv.throttleDeviceLongPolls]: String(throttling.deviceLongPolls),
    [PartitionEnv.throttleMaxEntryBytes]: String(throttling.maxEntrySize),
    [PartitionEnv.throttleEventLoopLagMs]: String(throttling.eventLoopLagMilliseconds),
    [PartitionEnv.throttleConcurrencyMin]: String(throttling.concurrency.min),
    [PartitionEnv.throttleConcurrencyMax]: String(throttling.concurrency.max),
  };
}

/** The environment every member of the partition shares, keyed by variable name. */
export function partitionEnvironment(partition: MeshPartition): PartitionEnvironment {
  const { spec } = partition;
  return {
    [PartitionEnv.partition]: partition.metadata.name,
    [PartitionEnv.slots]: slotsText(spec.slots),
    [PartitionEnv.etcdEndpoints]: spec.stores.etcd.endpoints.join(','),
    [PartitionEnv.s3Endpoint]: spec.stores.s3.endpoint,
    [PartitionEnv.s3Bucket]: spec.stores.s3.bucket,
    ...(spec.stores.s3.downloadRedirect
      ? {
          [PartitionEnv.s3DownloadRedirectEndpoint]: spec.stores.s3.downloadRedirect.endpoint,
          [PartitionEnv.s3DownloadRedirectSeconds]: String(spec.stores.s3.downloadRedirect.expirySeconds),
          ...(spec.stores.s3.downloadRedirect.uploads ? { [PartitionEnv.s3UploadRedirect]: 'on' } : {}),
        }
      : {}),
    [PartitionEnv.dataDirs]: Array.from({ length: spec.storage.volumes }, (_, i) => dataDirPath(i)).join(','),
    ...throttlingEnvironment(spec.throttling),
    [PartitionEnv.terminationMessagePath]: defaultTerminationMessagePath,
    [PartitionEnv.adminTokenFile]: `${adminTokenMountPath}/token`,
    [PartitionEnv.nodeOptions]: dataplaneNodeOptions,
    ...(spec.telemetry?.otlpEndpoint ? { [PartitionEnv.otlpEndpoint]: spec.telemetry.otlpEndpoint } : {}),
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
  const env: Record<string, string | undefined> = partitionEnvironment(partition);
  const canonical = JSON.stringify(
    Object.keys(env)
      .sort()
      .map((k) => [k, env[k]]),
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}
