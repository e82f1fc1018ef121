// Whether a Mesh shares its etcd with another Mesh or with a MeshPartition it does not own,
// pure. The owner keys (`/mw/own/<slot>`) and the slot map have no Mesh in their name (ADR 34),
// so a pass of one Mesh would read the other's owners as its own and plan to move every slot
// to its partitions: the reconciler runs no pass for a Mesh that shares its etcd, and reports
// why (ADR 63). Endpoints are compared as written; two spellings of one etcd are not caught.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Mesh, MeshPartition } from '../api/v1alpha1.ts';

/** What else uses a Mesh's etcd: the Meshes and foreign MeshPartitions that name one of its endpoints. */
export interface SharedEtcd {
  meshes: string[];
  partitions: string[];
}

function endpointsOf(stores: { etcd: { endpoints: readonly string[] } }): Set<string> {
  return new Set(stores.etcd.endpoints.map((e) => e.trim().replace(/\/+$/, '').toLowerCase()));
}

function sharesAny(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const e of a) if (b.has(e)) return true;
  return false;
}

/**
 * The other Meshes (`namespace/name`) and the MeshPartitions no Mesh controls
 * (`namespace/name`) that use one of `mesh`'s etcd endpoints; undefined when none does.
 * Partitions controlled by a Mesh are that Mesh's business and count through it.
 */
export function sharedEtcd(mesh: Mesh, meshes: readonly Mesh[], partitions: readonly MeshPartition[]): SharedEtcd | undefined {
  const mine = endpointsOf(mesh.spec.stores);
  const others = meshes
    .filter((m) => m.metadata.uid !== mesh.metadata.uid && !m.metadata.deletionTimestamp)
    .filter((m) => sharesAny(mine, endpointsOf(m.spec.stores)))
    .map((m) => `${m.metadata.namespace}/${m.metadata.name}`);
  const standalone = partitions
    .filter((p) => !(p as KubernetesObject).metadata?.ownerReferences?.some((o) => o.controller && o.kind === 'Mesh'))
    .filter((p) => !p.metadata.deletionTimestamp && sharesAny(mine, endpointsOf(p.spec.stores)))
    .map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
  return others.length > 0 || standalone.length > 0 ? { meshes: others.sort(), partitions: standalone.sort() } : undefined;
}

/** One line for a condition or an Event. */
export function describeSharedEtcd(shared: SharedEtcd): string {
  const what = [
    ...(shared.meshes.length > 0 ? [`Mesh ${shared.meshes.join(', ')}`] : []),
    ...(shared.partitions.length > 0 ? [`MeshPartition ${shared.partitions.join(', ')}`] : []),
  ].join(' and ');
  return `The etcd of this Mesh is also used by ${what}: slots do not move and no surplus partition is deleted until each Mesh has its own etcd`;
}
