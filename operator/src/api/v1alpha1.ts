// Types of the meshwork.io/v1alpha1 custom resources, as stored by the API server after
// defaulting (crds/meshwork.io_meshpartitions.yaml is the schema they mirror).

export const group = 'meshwork.io';
export const version = 'v1alpha1';
export const apiVersion = `${group}/${version}`;
export const meshPartitionKind = 'MeshPartition';
export const meshPartitionPlural = 'meshpartitions';

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  deletionTimestamp?: string;
}

/** An inclusive range of slots. */
export interface SlotRange {
  start: number;
  end: number;
}

export interface MeshPartitionSpec {
  replicas: number;
  slots: SlotRange[];
  image?: string;
  resources: { cpu: string | number; memory: string | number };
  storage: { volumes: number; size: string | number; storageClassName?: string };
  /** Secret (key `token`) holding the data plane's administrator token; default `<name>-admin`. */
  adminTokenSecretRef?: { name: string };
  stores: {
    etcd: { endpoints: string[] };
    s3: { endpoint: string; bucket: string; credentialsSecretRef: { name: string } };
  };
  throttling: {
    userRequestsPerSecond: number;
    userBurst: number;
    deviceRequestsPerSecond: number;
    deviceBurst: number;
    /** Quantities of bytes (`64Mi`). */
    userBytesPerSecond: string | number;
    deviceBytesPerSecond: string | number;
    deviceLongPolls: number;
    maxEntrySize: string | number;
    eventLoopLagMilliseconds: number;
    concurrency: { min: number; max: number };
  };
  watchdog: {
    mode: 'Enforce' | 'Observe';
    tolerationSeconds: number;
    healthyResetSeconds: number;
    nodeLostSeconds: number;
    maxConcurrent: number;
    actionsPerHour: number;
  };
  rollout?: { partition: number };
}

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export type MemberHealth = 'Healthy' | 'Unhealthy' | 'Pending' | 'Unknown';

export interface Member {
  pod: string;
  node?: string;
  health: MemberHealth;
  revision?: string;
  level: number;
  lastAction?: string;
}

export interface MeshPartitionStatus {
  observedGeneration?: number;
  replicas?: number;
  readyReplicas?: number;
  selector?: string;
  slots?: string;
  currentRevision?: string;
  updateRevision?: string;
  conditions?: Condition[];
  members?: Member[];
}

export interface MeshPartition {
  apiVersion: typeof apiVersion;
  kind: typeof meshPartitionKind;
  metadata: ObjectMeta;
  spec: MeshPartitionSpec;
  status?: MeshPartitionStatus;
}

/** Writes slot ranges the way people read them: `0-1023,2048-2100` (a single slot as `7`). */
export function formatSlots(slots: readonly SlotRange[]): string {
  return [...slots]
    .sort((a, b) => a.start - b.start)
    .map((r) => (r.start === r.end ? `${r.start}` : `${r.start}-${r.end}`))
    .join(',');
}
