// Labels, annotations and the field manager by which the operator marks what it owns and the
// watchdog marks nodes, and by which every other part (Services, the watchdog's informers, the
// Helm chart's tests, the end-to-end scenarios, a person with kubectl) finds them again.
import { createHash } from 'node:crypto';

/** The recommended Kubernetes labels Meshwork sets. */
export const appLabels = {
  name: 'app.kubernetes.io/name',
  component: 'app.kubernetes.io/component',
  instance: 'app.kubernetes.io/instance',
  managedBy: 'app.kubernetes.io/managed-by',
} as const;

/** The value of `app.kubernetes.io/name` on every Meshwork object. */
export const appName = 'meshwork';
/** The value of `app.kubernetes.io/component` on partition members. */
export const partitionComponent = 'partition';
/** The value of `app.kubernetes.io/managed-by` on objects the operator owns; its informers select on it. */
export const managedByOperator = 'meshwork-operator';
/** The field manager of every server-side apply the operator makes. */
export const fieldManager = 'meshwork-operator';

/** Label naming the MeshPartition an object belongs to. */
export const partitionLabel = 'meshwork.io/partition';
/** Pod-template annotation that changes whenever the partition's configuration does, so a change rolls the pods. */
export const configHashAnnotation = 'meshwork.io/config-hash';
/** MeshPartition annotation: members acted on before this time (RFC 3339) start the watchdog's ladder over. */
export const watchdogResetAnnotation = 'meshwork.io/watchdog-reset';
/** Node annotation saying the watchdog put the out-of-service taint there (and may take it off). */
export const outOfServiceAnnotation = 'meshwork.io/out-of-service-taint';
/** Prefix of the node labels that mark a node unsuitable for one partition. */
export const unsuitableNodeLabelPrefix = 'unsuitable.meshwork.io/';

/** The labels that select a partition's member pods (stable: a StatefulSet selector is immutable). */
export function partitionPodLabels(partition: string): Record<string, string> {
  return { [appLabels.name]: appName, [appLabels.component]: partitionComponent, [appLabels.instance]: partition };
}

/** A label selector of every partition's member pods (and their claims), whichever partition. */
export const allPartitionPodsSelector = `${appLabels.name}=${appName},${appLabels.component}=${partitionComponent}`;

/**
 * The node label that marks a node unsuitable for the partition `namespace/name` (the watchdog's
 * reschedule); the StatefulSet's template keeps members off nodes that carry it.
 */
export function unsuitableNodeLabel(namespace: string, name: string): string {
  const key = `${namespace}.${name}`;
  // A label name has at most 63 characters: long names keep a prefix and a hash.
  if (key.length <= 63) return `${unsuitableNodeLabelPrefix}${key}`;
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 10);
  return `${unsuitableNodeLabelPrefix}${key.slice(0, 52)}-${hash}`;
}
