// A defaulted MeshPartition and Mesh for tests, as the API server would return it: the defaults come
// from the schema in v1alpha1.ts, so a fixture cannot disagree with the CRD.
import {
  apiVersion,
  defaultedMeshPartitionSpec,
  defaultedMeshSpec,
  meshKind,
  meshPartitionKind,
  type Mesh,
  type MeshPartition,
  type MeshPartitionSpec,
  type MeshSpec,
} from './v1alpha1.ts';

/** A MeshPartition with the CRD's defaults applied; `spec` overrides fields. */
export function samplePartition(name = 'p0', spec: Partial<MeshPartitionSpec> = {}, namespace = 'mesh'): MeshPartition {
  return {
    apiVersion,
    kind: meshPartitionKind,
    metadata: { name, namespace, uid: '00000000-0000-4000-8000-000000000001', generation: 1 },
    spec: defaultedMeshPartitionSpec({
      slots: [{ start: 0, end: 1023 }],
      stores: {
        etcd: { endpoints: ['http://etcd-0:2379', 'http://etcd-1:2379'] },
        s3: { endpoint: 'http://minio:9000', bucket: 'blocks', credentialsSecretRef: { name: 's3-credentials' } },
      },
      ...spec,
    }),
  };
}

/** A Mesh with the CRD's defaults applied; `spec` overrides fields. */
export function sampleMesh(name = 'm', spec: Partial<MeshSpec> = {}, namespace = 'mesh'): Mesh {
  return {
    apiVersion,
    kind: meshKind,
    metadata: { name, namespace, uid: '00000000-0000-4000-8000-00000000000a', generation: 1 },
    spec: defaultedMeshSpec({
      stores: {
        etcd: { endpoints: ['http://etcd-0:2379', 'http://etcd-1:2379'] },
        s3: { endpoint: 'http://minio:9000', bucket: 'blocks', credentialsSecretRef: { name: 's3-credentials' } },
      },
      ...spec,
    }),
  };
}
