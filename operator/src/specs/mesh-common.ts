// Names, labels and ownership shared by every object built for a Mesh: its MeshPartitions and
// its gateway's Deployment, Service and PodDisruptionBudget. The recommended labels and the
// field manager are the contract's (@meshwork/contract).
import type { V1OwnerReference } from '@kubernetes/client-node';
import { appLabels, appName, managedByOperator } from '@meshwork/contract';
import { apiVersion, meshKind, type Mesh } from '../api/v1alpha1.ts';
import { ReconcileError } from '../errors.ts';

/** Label naming the Mesh an object was built for (its MeshPartitions, the gateway's objects and pods). */
export const meshLabel = 'meshwork.io/mesh';
/**
 * Annotation of the gateway Service listing the annotation keys the Mesh sets on it: when one is
 * removed from the Mesh, this value changes, so the drift check applies the Service again and
 * server-side apply removes the key.
 */
export const managedAnnotationsAnnotation = 'meshwork.io/managed-annotations';
/** The value of `app.kubernetes.io/component` on gateway pods. */
export const gatewayComponent = 'gateway';
/** The value of `app.kubernetes.io/component` on a Mesh's prober. */
export const proberComponent = 'prober';

/** The names of the objects built for a Mesh (its partitions are named by layout.ts). */
export const meshNames = {
  gatewayDeployment: (mesh: Mesh): string => `${mesh.metadata.name}-gateway`,
  gatewayService: (mesh: Mesh): string => `${mesh.metadata.name}-gateway`,
  proberDeployment: (mesh: Mesh): string => `${mesh.metadata.name}-prober`,
  gatewayPodDisruptionBudget: (mesh: Mesh): string => `${mesh.metadata.name}-gateway`,
  adminTokenSecret: (mesh: Mesh): string => mesh.spec.adminTokenSecretRef?.name ?? `${mesh.metadata.name}-admin`,
};

/** Labels that select a Mesh's gateway pods (stable: a Deployment's selector is immutable). */
export function gatewaySelectorLabels(mesh: Mesh): Record<string, string> {
  return { [appLabels.name]: appName, [appLabels.component]: gatewayComponent, [appLabels.instance]: mesh.metadata.name };
}

/**
 * Labels on every object built for a Mesh. Gateway pods carry the selector labels and the Mesh
 * label but not `managed-by`, which the MeshPartition controller's pod informer selects on.
 */
export function meshObjectLabels(mesh: Mesh, component: string): Record<string, string> {
  return {
    [appLabels.name]: appName,
    [appLabels.component]: component,
    [appLabels.instance]: mesh.metadata.name,
    [appLabels.managedBy]: managedByOperator,
    [meshLabel]: mesh.metadata.name,
  };
}

/** The controller owner reference that lets the garbage collector remove what a Mesh owned. */
export function meshOwnerReference(mesh: Mesh): V1OwnerReference {
  if (!mesh.metadata.uid) throw new ReconcileError(`Mesh ${mesh.metadata.namespace}/${mesh.metadata.name} has no uid`);
  return { apiVersion, kind: meshKind, name: mesh.metadata.name, uid: mesh.metadata.uid, controller: true, blockOwnerDeletion: true };
}

/** Metadata of an object named `name` that the Mesh owns, in its namespace. */
export function meshOwnedMetadata(
  mesh: Mesh,
  name: string,
  component: string,
): { name: string; namespace: string; labels: Record<string, string>; ownerReferences: V1OwnerReference[] } {
  return {
    name,
    namespace: mesh.metadata.namespace,
    labels: meshObjectLabels(mesh, component),
    ownerReferences: [meshOwnerReference(mesh)],
  };
}
