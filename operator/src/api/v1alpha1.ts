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
  watchdog: WatchdogSpec;
  rollout?: { partition: number };
}

/** How the watchdog takes a member off a lost node. */
export type FencingPolicy = 'OutOfServiceTaint' | 'ForceDelete';

/** Thresholds and bounds of the watchdog (DESIGN.md §6); every field is defaulted by the CRD. */
export interface WatchdogSpec {
  mode: 'Enforce' | 'Observe';
  /** How long a failure may last before the watchdog acts on it. */
  tolerationSeconds: number;
  /** How long a member must stay healthy after an action before its level returns to 0. */
  healthyResetSeconds: number;
  /** How long a node's Lease must be stale before its members are fenced. */
  nodeLostSeconds: number;
  maxConcurrent: number;
  actionsPerHour: number;
  /** Optional in stored objects created before these fields existed; `watchdogSettings` fills them. */
  fencing?: FencingPolicy;
  /** How long a freshly created member pod, or an action, has to bring a member back before the next level. */
  recoverySeconds?: number;
  /** Deadline of one probe of a member's /healthz/deep. */
  probeTimeoutSeconds?: number;
  /** Time between two probes of the same member. */
  probePeriodSeconds?: number;
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

/** What the watchdog did (or, in Observe mode, would have done) to a member. */
export type RemediationAction = 'Restart' | 'Reschedule' | 'Fence' | 'RecreateVolume' | 'GiveUp' | 'Reset';

export interface Member {
  pod: string;
  node?: string;
  health: MemberHealth;
  /** Why the member is not healthy (NotReady, DeepCheckFailing, NodeLost, VolumeFault, ...). */
  reason?: string;
  /** When the member last turned healthy or unhealthy (RFC 3339). */
  since?: string;
  revision?: string;
  /** The watchdog's ladder level: 0 observe, 1 restarted, 2 rescheduled, 3 volume recreated, 4 given up. */
  level: number;
  lastAction?: RemediationAction;
  lastActionTime?: string;
  /** The uid of the pod the last action was taken on (a later signal about it is not news). */
  lastActionPod?: string;
}

/** One entry of the bounded history of the watchdog's actions. */
export interface Remediation {
  time: string;
  pod: string;
  node?: string;
  level: number;
  action: RemediationAction;
  reason: string;
  message?: string;
  /** Performed; Observed (mode Observe: recorded, not done); Failed (the API refused it). */
  outcome: 'Performed' | 'Observed' | 'Failed';
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
  /** The watchdog's latest actions, newest last, at most `maxRemediations`. */
  remediations?: Remediation[];
}

/** How many entries status.remediations keeps. */
export const maxRemediations = 20;

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
