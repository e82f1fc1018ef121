// The MeshPartitions of a Mesh: each gets one range of the layout (mesh/layout.ts) and
// everything else from the Mesh (replicas, image, stores, the shared administrator token,
// sizing, throttling and watchdog), so that every partition of a Mesh runs alike.
import { partitionComponent, type SlotRange } from '@meshwork/contract';
import { apiVersion, meshPartitionKind, type Mesh, type MeshPartitionSpec } from '../api/v1alpha1.ts';
import { meshNames, meshOwnedMetadata } from './mesh-common.ts';

/** The body the Mesh reconciler applies for one MeshPartition (the API server fills the defaults). */
export interface MeshPartitionApply {
  apiVersion: typeof apiVersion;
  kind: typeof meshPartitionKind;
  metadata: ReturnType<typeof meshOwnedMetadata>;
  spec: MeshPartitionSpec;
}

/** Builds the MeshPartition `name` of the Mesh's layout, serving `slots`. */
export function buildMeshPartition(mesh: Mesh, name: string, slots: SlotRange): MeshPartitionApply {
  const { spec } = mesh;
  return {
    apiVersion,
    kind: meshPartitionKind,
    metadata: meshOwnedMetadata(mesh, name, partitionComponent),
    spec: {
      replicas: spec.replicasPerPartition,
      slots: [{ start: slots.first, end: slots.last }],
      ...(spec.image ? { image: spec.image } : {}),
      adminTokenSecretRef: { name: meshNames.adminTokenSecret(mesh) },
      stores: structuredClone(spec.stores),
      resources: structuredClone(spec.resources),
      storage: structuredClone(spec.storage),
      throttling: structuredClone(spec.throttling),
      watchdog: structuredClone(spec.watchdog),
      ...(spec.telemetry?.otlpEndpoint ? { telemetry: { otlpEndpoint: spec.telemetry.otlpEndpoint } } : {}),
    },
  };
}
