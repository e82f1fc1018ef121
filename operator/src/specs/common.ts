// Names, labels and ownership shared by every object built for a MeshPartition. The labels,
// annotations, port and paths that other parts read (the data plane, the watchdog, Services,
// tests) come from the contract (@meshwork/contract); what only the operator's builders need
// to agree on among themselves is here.
import type { V1Container, V1OwnerReference, V1Probe } from '@kubernetes/client-node';
import {
  appLabels,
  dataplaneHttpPortName,
  defaultTerminationMessagePath,
  formatSlotRanges,
  healthPaths,
  managedByOperator,
  partitionLabel,
  partitionPodLabels,
  unsuitableNodeLabel as unsuitableNodeLabelOf,
} from '@meshwork/contract';
import { apiVersion, meshPartitionKind, type MeshPartition, type SlotRange } from '../api/v1alpha1.ts';
import { ReconcileError } from '../errors.ts';

/** Where the administrator token Secret is mounted in data-plane pods (key `token`). */
export const adminTokenMountPath = '/etc/meshwork/admin';
/** Where data volume `index` is mounted in data-plane pods; the same path is listed in MESHWORK_DATA_DIRS. */
export function dataDirPath(index: number): string {
  return `/var/lib/meshwork/${names.volume(index)}`;
}
/**
 * The probes, termination message and security context every data-plane container (partition
 * member or gateway) has: they answer on the same health routes of the same port.
 */
export function dataplaneContainerChecks(
  scheme: 'HTTP' | 'HTTPS',
): Pick<
  V1Container,
  'startupProbe' | 'livenessProbe' | 'readinessProbe' | 'terminationMessagePath' | 'terminationMessagePolicy' | 'securityContext'
> {
  const probe = (path: string, periodSeconds: number, failureThreshold: number): V1Probe => ({
    httpGet: { path, port: dataplaneHttpPortName, scheme },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold,
  });
  return {
    startupProbe: probe(healthPaths.live, 2, 30),
    livenessProbe: probe(healthPaths.live, 10, 3),
    readinessProbe: probe(healthPaths.ready, 5, 2),
    terminationMessagePath: defaultTerminationMessagePath,
    terminationMessagePolicy: 'FallbackToLogsOnError',
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
  };
}
/** Image used when neither the MeshPartition nor the operator's configuration names one. */
export const defaultImage = 'meshwork/meshwork:0.1.0';

/** Labels that select a partition's pods (stable: a StatefulSet selector is immutable). */
export function selectorLabels(partition: MeshPartition): Record<string, string> {
  return partitionPodLabels(partition.metadata.name);
}

/** Labels on every object built for a partition. */
export function commonLabels(partition: MeshPartition): Record<string, string> {
  return { ...selectorLabels(partition), [appLabels.managedBy]: managedByOperator, [partitionLabel]: partition.metadata.name };
}

/** The label selector of a partition's pods, as a string for `status.selector` and list calls. */
export function selectorString(partition: MeshPartition): string {
  return Object.entries(selectorLabels(partition))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** The partition's slot ranges in the contract's text form (`0-1023,2048-2100`), which the data plane parses. */
export function slotsText(slots: readonly SlotRange[]): string {
  return formatSlotRanges(slots.map((r) => ({ first: r.start, last: r.end })));
}

/** The controller owner reference that lets the garbage collector remove what a partition owned. */
export function ownerReference(partition: MeshPartition): V1OwnerReference {
  if (!partition.metadata.uid)
    throw new ReconcileError(`MeshPartition ${partition.metadata.namespace}/${partition.metadata.name} has no uid`);
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
export function ownedMetadata(
  partition: MeshPartition,
  name: string,
): {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  ownerReferences: V1OwnerReference[];
} {
  return { name, namespace: partition.metadata.namespace, labels: commonLabels(partition), ownerReferences: [ownerReference(partition)] };
}

/** The names of the objects built for a partition. */
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
  return unsuitableNodeLabelOf(partition.metadata.namespace, partition.metadata.name);
}
