// The MeshPartitions of a Mesh: each gets one range of the layout (mesh/layout.ts), the Mesh's
// replica count, and a partition template (image, stores, the shared administrator token,
// sizing, throttling, watchdog and telemetry). The template is the Mesh's own, or during a
// rollout the one the partition already runs or the last good one (mesh/rollout.ts, ADR 48);
// the annotation `meshwork.io/template-revision` names which.
import { partitionComponent, type SlotRange } from '@meshwork/contract';
import {
  apiVersion,
  meshPartitionKind,
  type Mesh,
  type MeshPartitionSpec,
  type MeshSpec,
  type PartitionTemplate,
} from '../api/v1alpha1.ts';
import { meshNames, meshOwnedMetadata } from './mesh-common.ts';

/** Annotation of a Mesh's MeshPartition naming the partition template revision its spec carries. */
export const templateRevisionAnnotation = 'meshwork.io/template-revision';

/** The body the Mesh reconciler applies for one MeshPartition (the API server fills the defaults). */
export interface MeshPartitionApply {
  apiVersion: typeof apiVersion;
  kind: typeof meshPartitionKind;
  metadata: ReturnType<typeof meshOwnedMetadata> & { annotations?: Record<string, string> };
  spec: MeshPartitionSpec;
}

/** The partition template the Mesh's spec asks for. */
export function meshPartitionTemplate(mesh: Mesh): PartitionTemplate {
  return { ...sharedTemplate(mesh.spec), adminTokenSecretRef: { name: meshNames.adminTokenSecret(mesh) } };
}

/** The partition template a MeshPartition's spec carries. */
export function partitionTemplateOf(spec: MeshPartitionSpec): PartitionTemplate {
  return {
    ...sharedTemplate(spec),
    ...(spec.adminTokenSecretRef ? { adminTokenSecretRef: structuredClone(spec.adminTokenSecretRef) } : {}),
  };
}

/** The template fields a Mesh's spec and a MeshPartition's spec both carry, copied. */
function sharedTemplate(spec: MeshSpec | MeshPartitionSpec): Omit<PartitionTemplate, 'adminTokenSecretRef'> {
  return {
    ...(spec.image ? { image: spec.image } : {}),
    stores: structuredClone(spec.stores),
    resources: structuredClone(spec.resources),
    storage: structuredClone(spec.storage),
    throttling: structuredClone(spec.throttling),
    watchdog: structuredClone(spec.watchdog),
    ...(spec.telemetry?.otlpEndpoint ? { telemetry: { otlpEndpoint: spec.telemetry.otlpEndpoint } } : {}),
  };
}

/** How one MeshPartition is built: which template (and its revision) and how many members the StatefulSet holds back. */
export interface PartitionRollout {
  template: PartitionTemplate;
  revision: string;
  hold: number;
}

/**
 * Builds the MeshPartition `name` of the Mesh's layout, serving `slots`, with `rollout`'s template
 * and hold (the Mesh's own template and no hold when left out).
 */
export function buildMeshPartition(
  mesh: Mesh,
  name: string,
  slots: SlotRange | readonly SlotRange[],
  rollout?: PartitionRollout,
): MeshPartitionApply {
  const ranges = 'first' in slots ? [slots] : slots;
  const template = rollout?.template ?? meshPartitionTemplate(mesh);
  return {
    apiVersion,
    kind: meshPartitionKind,
    metadata: {
      ...meshOwnedMetadata(mesh, name, partitionComponent),
      ...(rollout ? { annotations: { [templateRevisionAnnotation]: rollout.revision } } : {}),
    },
    spec: {
      replicas: mesh.spec.replicasPerPartition,
      slots: ranges.map((r) => ({ start: r.first, end: r.last })),
      ...structuredClone(template),
      rollout: { partition: Math.min(rollout?.hold ?? 0, mesh.spec.replicasPerPartition) },
    },
  };
}
