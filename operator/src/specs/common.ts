// Names, labels and ownership shared by every object built for a MeshPartition.
import { createHash } from 'node:crypto';
import type { V1OwnerReference } from '@kubernetes/client-node';
import { apiVersion, meshPartitionKind, type MeshPartition } from '../api/v1alpha1.ts';

/** The field manager of every server-side apply the operator makes. */
export const fieldManager = 'meshwork-operator';
/** Label that marks objects the operator manages; its informers select on it. */
export const managedByLabel = 'app.kubernetes.io/managed-by';
export const managedByValue = 'meshwork-operator';
export const partitionLabel = 'meshwork.io/partition';
/** The data plane's HTTP port (API, probes and metrics). */
export const httpPort = 8080;
/** Where the data plane writes why it exited, for the watchdog to classify. */
export const terminationMessagePath = '/dev/termination-log';
/** Where the administrator token Secret is mounted in data-plane pods (key `token`). */
export const adminTokenMountPath = '/etc/meshwork/admin';
/** Node.js flags of data-plane processes (young generation of 2 MiB: see dataplane/src/node-flags.ts). */
export const dataplaneNodeOptions = '--max-semi-space-size=2';
/** Image used when neither the MeshPartition nor the operator's configuration names one. */
export const defaultImage = 'meshwork/meshwork:0.1.0';

/** Labels that select a partition's pods (stable: a StatefulSet selector is immutable). */
export function selectorLabels(partition: MeshPartition): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'meshwork',
    'app.kubernetes.io/component': 'partition',
    'app.kubernetes.io/instance': partition.metadata.name,
  };
}

/** Labels on every object built for a partition. */
export function commonLabels(partition: MeshPartition): Record<string, string> {
  return { ...selectorLabels(partition), [managedByLabel]: managedByValue, [partitionLabel]: partition.metadata.name };
}

/** The label selector of a partition's pods, as a string for `status.selector` and list calls. */
export function selectorString(partition: MeshPartition): string {
  return Object.entries(selectorLabels(partition))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** The controller owner reference that lets the garbage collector remove what a partition owned. */
export function ownerReference(partition: MeshPartition): V1OwnerReference {
  if (!partition.metadata.uid) throw new Error(`MeshPartition ${partition.metadata.namespace}/${partition.metadata.name} has no uid`);
  return {
    apiVersion,
    kind: meshPartitionKind,
    name: partition.metadata.name,
    uid: partition.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Metadata of an owned object named `name` in the partition's namespace. */
export function ownedMetadata(partition: MeshPartition, name: string): {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  ownerReferences: V1OwnerReference[];
} {
  return { name, namespace: partition.metadata.namespace, labels: commonLabels(partition), ownerReferences: [ownerReference(partition)] };
}

export const names = {
  statefulSet: (p: MeshPartition): string => p.metadata.name,
  clientService: (p: MeshPartition): string => p.metadata.name,
  headlessService: (p: MeshPartition): string => `${p.metadata.name}-peers`,
  configMap: (p: MeshPartition): string => `${p.metadata.name}-config`,
  podDisruptionBudget: (p: MeshPartition): string => p.metadata.name,
  volume: (index: number): string => `data-${index}`,
};

/**
 * The node label that marks a node unsuitable for this partition's members (the watchdog's
 * reschedule); the StatefulSet's template keeps members off nodes that carry it.
 */
export function unsuitableNodeLabel(partition: MeshPartition): string {
  const name = `${partition.metadata.namespace}.${partition.metadata.name}`;
  // A label name has at most 63 characters: long names keep a prefix and a hash.
  if (name.length <= 63) return `unsuitable.meshwork.io/${name}`;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 10);
  return `unsuitable.meshwork.io/${name.slice(0, 52)}-${hash}`;
}
