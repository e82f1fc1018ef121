// The StatefulSet of a partition's symmetric members: commodity-sized containers, one
// PersistentVolumeClaim per disk, probes on the data plane's health routes, spread across
// nodes, and a rolling update held back by `spec.rollout.partition`. The port, probe paths,
// termination-message path and environment names are the contract's (@meshwork/contract).
import type { V1EnvVar, V1PersistentVolumeClaim, V1StatefulSet } from '@kubernetes/client-node';
import { configHashAnnotation, dataplaneHttpPort, dataplaneHttpPortName, PartitionEnv, type PartitionEnvName } from '@meshwork/contract';
import type { MeshPartition } from '../api/v1alpha1.ts';
import { configHash } from './configmap.ts';
import {
  adminTokenMountPath,
  commonLabels,
  dataDirPath,
  dataplaneContainerChecks,
  defaultImage,
  names,
  ownedMetadata,
  selectorLabels,
  unsuitableNodeLabel,
} from './common.ts';

/** Options of the StatefulSet builder that come from the operator, not the MeshPartition. */
export interface StatefulSetOptions {
  /** Image for partitions that do not name one. */
  defaultImage?: string;
}

/** A container environment variable whose name is one of the partition pod's contract names. */
export type PartitionEnvVar = V1EnvVar & { name: PartitionEnvName };

/** Kubernetes quantities may arrive as numbers from an int-or-string field. */
function quantity(value: string | number): string {
  return String(value);
}

/** The Secret holding the data plane's administrator token. */
export function adminTokenSecretName(partition: MeshPartition): string {
  return partition.spec.adminTokenSecretRef?.name ?? `${partition.metadata.name}-admin`;
}

/** The container's own variables, beside the ConfigMap's: the pod's identity and the S3 credentials. */
export function podEnvironment(partition: MeshPartition): PartitionEnvVar[] {
  const secret = partition.spec.stores.s3.credentialsSecretRef.name;
  return [
    { name: PartitionEnv.podName, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: PartitionEnv.podIp, valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: PartitionEnv.nodeName, valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    // Each member listens on its own pod IP, which is also the address it advertises.
    { name: PartitionEnv.listen, value: `$(${PartitionEnv.podIp}):${dataplaneHttpPort}` },
    { name: PartitionEnv.s3AccessKey, valueFrom: { secretKeyRef: { name: secret, key: 'accessKeyId' } } },
    { name: PartitionEnv.s3SecretKey, valueFrom: { secretKeyRef: { name: secret, key: 'secretAccessKey' } } },
  ];
}

function volumeClaimTemplates(partition: MeshPartition): V1PersistentVolumeClaim[] {
  const { storage } = partition.spec;
  return Array.from({ length: storage.volumes }, (_, i) => ({
    metadata: { name: names.volume(i), labels: selectorLabels(partition) },
    spec: {
      accessModes: ['ReadWriteOnce'],
      ...(storage.storageClassName ? { storageClassName: storage.storageClassName } : {}),
      resources: { requests: { storage: quantity(storage.size) } },
    },
  }));
}

/** Builds the StatefulSet that runs a partition's members. */
export function buildStatefulSet(partition: MeshPartition, options: StatefulSetOptions = {}): V1StatefulSet {
  const { spec } = partition;
  const sizing = { cpu: quantity(spec.resources.cpu), memory: quantity(spec.resources.memory) };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: ownedMetadata(partition, names.statefulSet(partition)),
    spec: {
      replicas: spec.replicas,
      serviceName: names.headlessService(partition),
      selector: { matchLabels: selectorLabels(partition) },
      // Members are symmetric: none waits for another to start or stop.
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: spec.rollout?.partition ?? 0 } },
      template: {
        metadata: {
          labels: commonLabels(partition),
          annotations: { [configHashAnnotation]: configHash(partition) },
        },
        spec: {
          terminationGracePeriodSeconds: 30,
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001 },
          // The watchdog reschedules a member by labelling its node unsuitable for this partition;
          // the rule is in the template from the start, so no action ever changes the template.
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [{ matchExpressions: [{ key: unsuitableNodeLabel(partition), operator: 'DoesNotExist' }] }],
              },
            },
          },
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'DoNotSchedule',
              labelSelector: { matchLabels: selectorLabels(partition) },
            },
          ],
          containers: [
            {
              name: 'partition',
              image: spec.image || options.defaultImage || defaultImage,
              // The image's entry point is `node meshwork.ts <role>`.
              args: ['partition'],
              ports: [{ name: dataplaneHttpPortName, containerPort: dataplaneHttpPort, protocol: 'TCP' }],
              envFrom: [{ configMapRef: { name: names.configMap(partition) } }],
              env: podEnvironment(partition),
              resources: { requests: sizing, limits: sizing },
              ...dataplaneContainerChecks('HTTP'),
              volumeMounts: [
                ...Array.from({ length: spec.storage.volumes }, (_, i) => ({
                  name: names.volume(i),
                  mountPath: dataDirPath(i),
                })),
                { name: 'admin-token', mountPath: adminTokenMountPath, readOnly: true },
              ],
            },
          ],
          volumes: [{ name: 'admin-token', secret: { secretName: adminTokenSecretName(partition), defaultMode: 0o440 } }],
        },
      },
      volumeClaimTemplates: volumeClaimTemplates(partition),
    },
  };
}
