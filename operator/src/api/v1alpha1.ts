// The meshwork.io/v1alpha1 custom resources, defined once (ADR 23): the schemas below are what
// `make crds` writes into crds/meshwork.io_meshpartitions.yaml, crds/meshwork.io_meshes.yaml and
// the chart, and the types the operator reads objects with are inferred from them, so the two
// cannot drift. Choices of the schemas themselves are in ADR 12 (MeshPartition) and ADR 33 (Mesh).
import { throttlingDefaults } from '@meshwork/contract';
import {
  applyDefaults,
  array,
  atLeast,
  between,
  boolean,
  integer,
  object,
  oneOf,
  opaqueObject,
  quantity,
  string,
  stringMap,
  toOpenApi,
  wholeBytes,
  type Infer,
  type JsonSchemaProps,
} from './schema.ts';

/** The API group of Meshwork's custom resources. */
export const group = 'meshwork.io';
/** The one served and stored version. */
export const version = 'v1alpha1';
/** `apiVersion` of every object of this version. */
export const apiVersion = `${group}/${version}`;
/** The MeshPartition kind. */
export const meshPartitionKind = 'MeshPartition';
/** The MeshPartition resource in URLs and RBAC rules. */
export const meshPartitionPlural = 'meshpartitions';

/** The metadata the operator reads; the API server owns its schema, so it is typed here by hand. */
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

/** How many entries status.remediations keeps. */
export const maxRemediations = 20;

/** The size of one member by default: a commodity server (DESIGN.md §1). */
export const resourceDefaults = { cpu: '2', memory: '8Gi' } as const;

/** Each member's volumes by default. */
export const storageDefaults = { volumes: 4, size: '100Gi' } as const;

/** The throttling defaults: the data plane's own, from the contract (the CRD defaults spec.throttling to them). */
export { throttlingDefaults };

/** The watchdog's production defaults (DESIGN.md §6); the CRD defaults spec.watchdog to exactly these. */
export const watchdogSpecDefaults = {
  mode: 'Enforce',
  tolerationSeconds: 60,
  healthyResetSeconds: 600,
  nodeLostSeconds: 300,
  maxConcurrent: 1,
  actionsPerHour: 6,
  fencing: 'ForceDelete',
  recoverySeconds: 180,
  probeTimeoutSeconds: 5,
  probePeriodSeconds: 10,
  nodeProbationSeconds: 600,
} as const;

const slotCount = 4096;

const secretRef = (description?: string) => {
  const ref = object({ name: string().required().with({ minLength: 1, maxLength: 253 }) });
  return description === undefined ? ref : ref.describe(description);
};

const slotRange = object({
  start: integer().required(),
  end: integer().required(),
}).validate(
  { rule: `self.start >= 0 && self.end <= ${slotCount - 1}`, message: `slot ranges must lie inside 0-${slotCount - 1}` },
  { rule: 'self.start <= self.end', message: "a slot range's start must not be after its end" },
);

// Shared by MeshPartition and Mesh (which passes them to its partitions).
const stores = object({
  etcd: object({
    endpoints: array(string().with({ minLength: 1, maxLength: 512 }))
      .required()
      .with({ minItems: 1, maxItems: 16 }),
  }).required(),
  s3: object({
    endpoint: string().required().with({ minLength: 1, maxLength: 512 }),
    bucket: string().required().with({ minLength: 3, maxLength: 63 }),
    credentialsSecretRef: secretRef('A Secret in the same namespace with keys accessKeyId and secretAccessKey.').required(),
    downloadRedirect: object({
      endpoint: string()
        .required()
        .describe(
          'The store as clients reach it: an origin (scheme, host, port) with no path. Block downloads (GET /v1/blocks/{sha256}) answer 307 to a URL presigned for this address; file content is still streamed.',
        )
        .with({ maxLength: 512, pattern: '^https?://[^/?#@\\s]+/?$' }),
      expirySeconds: integer().default(300).describe('How long a presigned URL stays valid.').validate(between(60, 86400)),
      uploads: boolean()
        .default(false)
        .describe(
          'Also give presigned PUT URLs at this address for block uploads (POST /v1/blocks/uploads) to users without a quota. Only for a store that checks x-amz-checksum-sha256 on a PUT (AWS S3, MinIO).',
        ),
    })
      .optionalInType()
      .describe('Absent (the default): blocks are streamed through the partition. Set: clients fetch block bytes from the store itself.'),
  }).required(),
});

const resources = object({
  cpu: quantity().default(resourceDefaults.cpu),
  memory: quantity().default(resourceDefaults.memory),
})
  .default({})
  .describe('Requests and limits of each data-plane container (a commodity server by default).');

const storage = object({
  volumes: integer()
    .default(storageDefaults.volumes)
    .describe('Volumes per replica (one PersistentVolumeClaim each).')
    .validate(between(1, 8)),
  size: quantity().default(storageDefaults.size),
  storageClassName: string().with({ maxLength: 253 }),
})
  .default({})
  .describe("Volumes of each replica; fixed once created (a StatefulSet's claim templates cannot change).")
  .validate({ rule: 'self == oldSelf', message: 'storage cannot be changed after creation' });

const byteRate = (description: string, fallback: string) =>
  quantity().default(fallback).describe(description).validate(wholeBytes('1', '1Pi'));
const rate = (description: string, fallback: number, max: number) =>
  integer().default(fallback).describe(description).validate(between(1, max));

const throttling = object({
  userRequestsPerSecond: rate(
    'Requests per second a user may make with all its tokens together.',
    throttlingDefaults.userRequestsPerSecond,
    1_000_000,
  ),
  userBurst: rate('Requests a user may make at once after being idle.', throttlingDefaults.userBurst, 1_000_000),
  deviceRequestsPerSecond: rate(
    'Requests per second one device may make (they count against its user too).',
    throttlingDefaults.deviceRequestsPerSecond,
    1_000_000,
  ),
  deviceBurst: rate('Requests a device may make at once after being idle.', throttlingDefaults.deviceBurst, 1_000_000),
  /** A quantity of bytes (`64Mi`). */
  userBytesPerSecond: byteRate('Request and response bytes per second of a user.', throttlingDefaults.userBytesPerSecond),
  /** A quantity of bytes (`32Mi`). */
  deviceBytesPerSecond: byteRate('Request and response bytes per second of a device.', throttlingDefaults.deviceBytesPerSecond),
  deviceLongPolls: rate(
    'Long polls (notifications, changes with wait) one device may hold open at once.',
    throttlingDefaults.deviceLongPolls,
    10_000,
  ),
  /** A quantity of bytes (`16Gi`). */
  maxEntrySize: byteRate('The largest file an entry may describe (413 beyond it).', throttlingDefaults.maxEntrySize),
  eventLoopLagMilliseconds: rate(
    'Event-loop delay above which a pod refuses new requests (503) until it recovers.',
    throttlingDefaults.eventLoopLagMilliseconds,
    60_000,
  ),
  concurrency: object({
    min: integer().default(throttlingDefaults.concurrency.min).validate(between(1, 100_000)),
    max: integer().default(throttlingDefaults.concurrency.max).validate(between(1, 100_000)),
  })
    .default({})
    .describe("Bounds of each pod's adaptive concurrency limit, which follows latency between them."),
})
  .default({})
  .describe(
    'Static bounds per user and per device (429 with Retry-After beyond them) ' +
      "and the bounds of each pod's dynamic limits (503 with Retry-After under overload). Health and metrics routes are never throttled.",
  )
  .validate({
    rule: '!has(self.concurrency) || self.concurrency.min <= self.concurrency.max',
    message: 'throttling.concurrency.min must not exceed throttling.concurrency.max',
    fieldPath: '.concurrency.min',
  });

const telemetry = object({
  otlpEndpoint: string()
    .describe(
      'OTLP/HTTP base URL the pods export traces to (set as OTEL_EXPORTER_OTLP_ENDPOINT; spans go to <url>/v1/traces). ' +
        'Empty or absent: no spans are made and OpenTelemetry is not loaded; log lines still carry the trace_id of a request that came with a traceparent.',
    )
    .with({ maxLength: 512, pattern: '^$|^https?://[^\\s]+$' }),
})
  .optionalInType()
  .describe('Where the pods send telemetry that is pushed (traces); metrics are scraped from /metrics.');

const fencingPolicy = oneOf(['ForceDelete', 'OutOfServiceTaint']);

const watchdog = object({
  mode: oneOf(['Enforce', 'Observe'])
    .default(watchdogSpecDefaults.mode)
    .describe('Enforce acts; Observe records what it would do and does nothing.'),
  tolerationSeconds: integer()
    .default(watchdogSpecDefaults.tolerationSeconds)
    .describe('How long a member may fail before the watchdog acts.')
    .validate(atLeast(1)),
  healthyResetSeconds: integer()
    .default(watchdogSpecDefaults.healthyResetSeconds)
    .describe('How long a member must stay healthy after an action before its level returns to 0 (probation).'),
  nodeLostSeconds: integer()
    .default(watchdogSpecDefaults.nodeLostSeconds)
    .describe("How long a NotReady node's Lease must be stale before its members are fenced."),
  maxConcurrent: integer()
    .default(watchdogSpecDefaults.maxConcurrent)
    .describe('Members of this partition under repair at once.')
    .validate(atLeast(1)),
  actionsPerHour: integer()
    .default(watchdogSpecDefaults.actionsPerHour)
    .describe(
      `Actions the watchdog may take on this partition in any hour (counted from status.remediations, which keeps ${maxRemediations}).`,
    )
    .validate(between(0, maxRemediations)),
  // The fields below came after the others; code that builds a partial watchdog spec
  // (tests, benchmarks) leaves them out and `watchdogSettings` fills them.
  fencing: fencingPolicy
    .default(watchdogSpecDefaults.fencing)
    .optionalInType()
    .describe(
      'How a member is taken off a lost node. ForceDelete removes its pod at once; ' +
        'OutOfServiceTaint taints the node node.kubernetes.io/out-of-service so Kubernetes releases all its pods and volumes.',
    ),
  recoverySeconds: integer()
    .default(watchdogSpecDefaults.recoverySeconds)
    .optionalInType()
    .describe('How long a new member pod, or one the watchdog just acted on, has to become healthy before the next level.')
    .validate(atLeast(1)),
  probeTimeoutSeconds: integer()
    .default(watchdogSpecDefaults.probeTimeoutSeconds)
    .optionalInType()
    .describe("Deadline of the operator's probe of a member's /healthz/deep.")
    .validate(between(1, 60)),
  probePeriodSeconds: integer()
    .default(watchdogSpecDefaults.probePeriodSeconds)
    .optionalInType()
    .describe("Time between two probes of a member's /healthz/deep.")
    .validate(between(1, 300)),
  nodeProbationSeconds: integer()
    .default(watchdogSpecDefaults.nodeProbationSeconds)
    .optionalInType()
    .describe(
      "How long a node the watchdog marked unsuitable for this partition must be Ready, with a fresh Lease, before it may take the partition's members again.",
    )
    .validate(between(0, 86400)),
})
  .default(watchdogSpecDefaults)
  .describe(`The watchdog's thresholds and bounds (docs/operations.md, "The watchdog").`)
  .validate(
    {
      rule: 'self.tolerationSeconds < self.healthyResetSeconds',
      message: 'watchdog.tolerationSeconds must be shorter than healthyResetSeconds',
    },
    { rule: 'self.tolerationSeconds < self.nodeLostSeconds', message: 'watchdog.tolerationSeconds must be shorter than nodeLostSeconds' },
    {
      rule: 'self.probeTimeoutSeconds <= self.probePeriodSeconds',
      message: 'watchdog.probeTimeoutSeconds must not be longer than probePeriodSeconds',
    },
  );

const spec = object({
  replicas: integer().default(3).validate(atLeast(0)),
  slots: array(slotRange)
    .required()
    .describe(`Slot ranges (inclusive) this partition serves, inside 0-${slotCount - 1} and not overlapping.`)
    .with({ minItems: 1, maxItems: 64, 'x-kubernetes-list-type': 'atomic' })
    .validate({
      rule: 'self.all(a, self.filter(b, a.start <= b.end && b.start <= a.end).size() == 1)',
      message: 'slot ranges must not overlap',
    }),
  image: string().describe("Container image of the data plane; the operator's default when empty.").with({ maxLength: 512 }),
  resources,
  storage,
  adminTokenSecretRef: secretRef(
    "A Secret in the same namespace whose key `token` is the data plane's administrator token (16 characters or more). Defaults to `<name>-admin`.",
  ),
  stores: stores.required(),
  throttling,
  watchdog,
  telemetry,
  rollout: object({
    partition: integer()
      .default(0)
      .describe('Pods with an ordinal below this keep the old revision during a rolling update.')
      .validate(atLeast(0)),
  }),
}).validate({
  rule: '!has(self.rollout) || self.rollout.partition <= self.replicas',
  message: 'rollout.partition must not exceed replicas',
  fieldPath: '.rollout.partition',
});

const remediationAction = oneOf(['Restart', 'Reschedule', 'Fence', 'RecreateVolume', 'GiveUp', 'Reset']);
const dateTime = () => string().with({ format: 'date-time' });

// metav1.Condition's schema, as Kubernetes' own types declare it.
const condition = object({
  type: string().required().with({ maxLength: 316 }),
  status: oneOf(['True', 'False', 'Unknown']).required(),
  observedGeneration: integer('int64').with({ minimum: 0 }),
  lastTransitionTime: dateTime().required(),
  reason: string().required().with({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$' }),
  message: string().required().with({ maxLength: 32768 }),
});

const member = object({
  pod: string().required(),
  node: string(),
  // Every writer of status sets health and level; the schema requires them so a reader can rely on them.
  health: oneOf(['Healthy', 'Unhealthy', 'Pending', 'Unknown']).required(),
  reason: string().describe('Why the member is not healthy.'),
  since: dateTime().describe('When the member last turned healthy or unhealthy.'),
  revision: string(),
  level: integer()
    .required()
    .describe('Watchdog ladder level (0 observe, 1 restarted, 2 rescheduled or fenced, 3 volume recreated, 4 given up).'),
  lastAction: remediationAction,
  lastActionTime: dateTime(),
  lastActionPod: string().describe('The uid of the pod the last action was taken on.'),
});

const remediation = object({
  time: dateTime().required(),
  pod: string().required(),
  node: string(),
  level: integer().required(),
  action: remediationAction.required(),
  reason: string().required(),
  message: string(),
  /** Performed; Observed (mode Observe: recorded, not done); Failed (the API refused it). */
  outcome: oneOf(['Performed', 'Observed', 'Failed']).required(),
});

const status = object({
  observedGeneration: integer('int64'),
  replicas: integer(),
  readyReplicas: integer(),
  selector: string(),
  slots: string().describe('The slot ranges, written as 0-1023,2048-2100.'),
  image: string().describe("The image the members' StatefulSet runs: spec.image, or the operator's default when that is empty."),
  currentRevision: string(),
  updateRevision: string(),
  conditions: array(condition).with({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
  members: array(member)
    .describe('One entry per member (StatefulSet ordinal) with its health and watchdog ladder state.')
    .with({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['pod'] }),
  remediations: array(remediation)
    .describe("The watchdog's latest actions, oldest first.")
    .with({ maxItems: maxRemediations, 'x-kubernetes-list-type': 'atomic' }),
});

/** The schema of a whole MeshPartition, root of the CRD's openAPIV3Schema. */
export const meshPartitionSchema = object({
  apiVersion: string(),
  kind: string(),
  metadata: opaqueObject(),
  spec: spec.required(),
  status,
}).describe('A MeshPartition owns slot ranges of the mesh and runs N symmetric replicas that serve them.');

/** The MeshPartition CRD's openAPIV3Schema. */
export function meshPartitionOpenApiSchema(): JsonSchemaProps {
  return toOpenApi(meshPartitionSchema);
}

/** A MeshPartition spec as the API server returns it, its defaults applied. */
export function defaultedMeshPartitionSpec(
  input: Partial<MeshPartitionSpec> & Pick<MeshPartitionSpec, 'slots' | 'stores'>,
): MeshPartitionSpec {
  return applyDefaults(spec, input) as MeshPartitionSpec;
}

/** Where `kubectl scale` and an HPA read and write the replica count. */
export const meshPartitionScale = {
  specReplicasPath: '.spec.replicas',
  statusReplicasPath: '.status.replicas',
  labelSelectorPath: '.status.selector',
} as const;

/** The columns of `kubectl get meshpartitions` (priority 1: only with `-o wide`). */
export const meshPartitionPrinterColumns = [
  { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: 'Replicas', type: 'integer', jsonPath: meshPartitionScale.specReplicasPath },
  { name: 'Slots', type: 'string', jsonPath: '.status.slots' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  { name: 'Ready-Replicas', type: 'integer', jsonPath: '.status.readyReplicas', priority: 1 },
  { name: 'Revision', type: 'string', jsonPath: '.status.updateRevision', priority: 1 },
  { name: 'Image', type: 'string', jsonPath: '.status.image', priority: 1 },
  { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
] as const;

/** The MeshPartition spec, as stored after defaulting. */
export type MeshPartitionSpec = Infer<typeof spec>;
/** The MeshPartition status the operator writes. */
export type MeshPartitionStatus = Infer<typeof status>;
/** An inclusive range of slots. */
export type SlotRange = Infer<typeof slotRange>;
/** Thresholds and bounds of the watchdog (DESIGN.md §6); every field is defaulted by the CRD. */
export type WatchdogSpec = Infer<typeof watchdog>;
/** How the watchdog takes a member off a lost node. */
export type FencingPolicy = Infer<typeof fencingPolicy>;
/** metav1.Condition. */
export type Condition = Infer<typeof condition>;
/** A member's health as status reports it. */
export type MemberHealth = Member['health'];
/** What the watchdog did (or, in Observe mode, would have done) to a member. */
export type RemediationAction = Infer<typeof remediationAction>;
/** One member (StatefulSet ordinal) with its health and the watchdog's ladder state. */
export type Member = Infer<typeof member>;
/** One entry of the bounded history of the watchdog's actions. */
export type Remediation = Infer<typeof remediation>;

/** A MeshPartition as the operator reads it. */
export interface MeshPartition {
  apiVersion: typeof apiVersion;
  kind: typeof meshPartitionKind;
  metadata: ObjectMeta;
  spec: MeshPartitionSpec;
  status?: MeshPartitionStatus;
}

// ---------------------------------------------------------------------------------------------
// Mesh: the whole service (ADR 33). It reuses the MeshPartition's stores, resources, storage,
// throttling and watchdog definitions, so what a Mesh passes to its partitions has the same
// schema, defaults and rules as what a MeshPartition accepts.
// ---------------------------------------------------------------------------------------------

/** The Mesh kind. */
export const meshKind = 'Mesh';
/** The Mesh resource in URLs and RBAC rules. */
export const meshPlural = 'meshes';

/** The longest Mesh name: its partitions are `<mesh>-p<index>`, and their pods' names and labels must stay short enough. */
export const maxMeshNameLength = 40;
/** The most partitions a Mesh may have. */
export const maxMeshPartitions = 256;

/** A Mesh's values when left out. */
export const meshDefaults = {
  partitions: 1,
  replicasPerPartition: 3,
  gateway: { replicas: 2, resources: { cpu: '1', memory: '1Gi' }, serviceType: 'ClusterIP' },
} as const;

const gatewayServiceType = oneOf(['ClusterIP', 'NodePort', 'LoadBalancer']);

const meshGateway = object({
  replicas: integer()
    .default(meshDefaults.gateway.replicas)
    .describe('Gateway pods (a Deployment); a PodDisruptionBudget keeps all but one of them through voluntary disruptions.')
    .validate(between(0, 100)),
  resources: object({
    cpu: quantity().default(meshDefaults.gateway.resources.cpu),
    memory: quantity().default(meshDefaults.gateway.resources.memory),
  })
    .default({})
    .describe('Requests and limits of each gateway container.'),
  service: object({
    type: gatewayServiceType.default(meshDefaults.gateway.serviceType).describe('The type of the Service in front of the gateway pods.'),
    annotations: stringMap()
      .with({ maxProperties: 64 })
      .describe("Annotations of the gateway's Service (for a cloud load balancer, for example)."),
  })
    .default({})
    .describe("The gateway's Service: the one address of the Mesh."),
  tls: object({
    secretName: string()
      .required()
      .with({ minLength: 1, maxLength: 253 })
      .describe('A Secret in the same namespace with keys tls.crt and tls.key (the layout cert-manager writes).'),
  }).describe('Serve HTTPS with this certificate; without it the gateway serves plain HTTP (behind an ingress that terminates TLS).'),
})
  .default({})
  .describe('The gateway: the one entry point that routes each request to the partition owning its slot.');

const meshProber = object({
  accountTokenSecretRef: secretRef(
    "A Secret in the same namespace whose key `token` is the probe account's token (a user made for probing).",
  ).required(),
  intervalSeconds: integer().default(30).describe('Seconds between the starts of two journeys.').validate(between(1, 3600)),
  target: string()
    .with({ maxLength: 2048 })
    .describe(
      "The URL the prober reaches the gateway at; the gateway Service's in-cluster address when empty (set the public name when the gateway serves TLS).",
    ),
}).describe(
  "A prober: one pod that runs a user's journey (create, upload, notification, download, delete) through the gateway every interval and exports how each step went.",
);

/** The ramp's values when left out (docs/operations.md, "Rolling out a new version"). */
export const rolloutDefaults = {
  canaryPartitions: 1,
  bakeSeconds: 300,
  maxUnavailablePartitions: 1,
  progressDeadlineSeconds: 600,
  paused: false,
  autoRollback: false,
  analysis: {
    maxErrorPercent: 5,
    maxP99Milliseconds: 5000,
    minRequests: 100,
    maxWatchdogActions: 0,
    minProberSuccessPercent: 80,
    minProberJourneys: 5,
  },
} as const;

const meshRollout = object({
  canaryPartitions: integer()
    .default(rolloutDefaults.canaryPartitions)
    .describe('Partitions (the first ones, in index order) that take a new version first and bake before any other partition changes.')
    .validate(between(1, maxMeshPartitions)),
  bakeSeconds: integer()
    .default(rolloutDefaults.bakeSeconds)
    .describe(
      "How long a step's partitions must stay ready and pass the analysis, once all their members run the new version, before the next step.",
    )
    .validate(between(0, 86400)),
  maxUnavailablePartitions: integer()
    .default(rolloutDefaults.maxUnavailablePartitions)
    .describe('Partitions that roll at once in each step after the canary (each moves one member at a time).')
    .validate(between(1, maxMeshPartitions)),
  progressDeadlineSeconds: integer()
    .default(rolloutDefaults.progressDeadlineSeconds)
    .describe('How long a member that took the new version may take to become ready before the rollout halts.')
    .validate(between(1, 86400)),
  paused: boolean()
    .default(rolloutDefaults.paused)
    .describe('Moves no further member and starts no further step while true; the rollout resumes where it was when set back to false.'),
  autoRollback: boolean()
    .default(rolloutDefaults.autoRollback)
    .describe('When a step fails its analysis, return the partitions that took the new version to the last good revision.'),
  analysis: object({
    maxErrorPercent: integer()
      .default(rolloutDefaults.analysis.maxErrorPercent)
      .describe("Highest share (percent) of 5xx answers among the updated members' requests; 100 turns the check off.")
      .validate(between(0, 100)),
    maxP99Milliseconds: integer()
      .default(rolloutDefaults.analysis.maxP99Milliseconds)
      .describe("Highest p99 latency (milliseconds) of the updated members' requests, long polls left out; 0 turns the check off.")
      .validate(between(0, 3_600_000)),
    minRequests: integer()
      .default(rolloutDefaults.analysis.minRequests)
      .describe('Requests the updated members must have answered before their error ratio and latency are judged.')
      .validate(between(1, 1_000_000_000)),
    maxWatchdogActions: integer()
      .default(rolloutDefaults.analysis.maxWatchdogActions)
      .describe("Watchdog actions on a step's partitions, since the step began, that a step tolerates.")
      .validate(between(0, maxRemediations)),
    minProberSuccessPercent: integer()
      .default(rolloutDefaults.analysis.minProberSuccessPercent)
      .describe("Lowest share (percent) of the Mesh prober's journeys since the step began that must succeed; 0 turns the check off.")
      .validate(between(0, 100)),
    minProberJourneys: integer()
      .default(rolloutDefaults.analysis.minProberJourneys)
      .describe('Prober journeys since the step began before their success is judged.')
      .validate(between(1, 1_000_000)),
  })
    .default({})
    .describe("The thresholds each step is judged by, from the data plane's own metrics and the partitions' status."),
})
  .default({})
  .describe(
    "How a change of the partitions' template (image, resources, throttling, watchdog, stores, telemetry) reaches them: " +
      'the canary partitions first, then maxUnavailablePartitions at a time, one member at a time, each step baking before the next.',
  );

/** The partition template a rollout moves between: what every partition of a Mesh shares, besides replicas and slots. */
const partitionTemplate = object({
  image: string().with({ maxLength: 512 }),
  adminTokenSecretRef: secretRef(),
  stores: stores.required(),
  resources,
  storage,
  throttling,
  watchdog,
  telemetry,
});

const rolloutHalt = object({
  reason: oneOf(['MemberNotReady', 'ErrorRatioExceeded', 'LatencyExceeded', 'ProberFailing', 'WatchdogActed']).required(),
  partition: string().required(),
  figure: string().required().describe('What the analysis measured.'),
  threshold: string().required().describe('The threshold the figure broke.'),
  time: dateTime().required(),
});

const meshRolloutStatus = object({
  revision: string().describe("The revision (a hash of the partition template) the rollout moves to: the Mesh's spec."),
  stableRevision: string().describe('The last revision every partition ran after a completed rollout.'),
  stableTemplate: partitionTemplate.describe('The partition template of stableRevision, which a rollback returns to.'),
  state: oneOf(['Progressing', 'Baking', 'Paused', 'Halted', 'RollingBack', 'RolledBack', 'Complete']),
  step: integer().describe('The step under way, counting from 1 (the canary); equal to steps once Complete.'),
  steps: integer(),
  stepStartedAt: dateTime(),
  movedAt: dateTime().describe("When the step's last member was given the new version."),
  bakeStartedAt: dateTime().describe("When every member of the step's partitions was ready on the new version."),
  message: string(),
  halt: rolloutHalt.describe('Why the rollout halted: the figure and the threshold it broke.'),
  proberBaseline: object({
    ok: integer().required(),
    error: integer().required(),
    pods: array(string()).required().describe('The uids of the prober pods these counters are from.'),
  }).describe("The prober's journey counters when the step began: its success is judged from there."),
});

const meshSpec = object({
  partitions: integer()
    .default(meshDefaults.partitions)
    .describe(
      `How many MeshPartitions share the ${slotCount} slots, evenly. ` +
        'Changing it moves slots between the running partitions online and deletes a surplus partition once it owns none (docs/adr/0034-online-slot-moves.md).',
    )
    .validate(between(1, maxMeshPartitions)),
  replicasPerPartition: integer()
    .default(meshDefaults.replicasPerPartition)
    .describe('Replicas of each MeshPartition (at least one: a partition without members serves nothing).')
    .validate(between(1, 100)),
  image: string()
    .describe("Container image of the partitions and the gateway; the operator's default when empty.")
    .with({ maxLength: 512 }),
  adminTokenSecretRef: secretRef(
    "A Secret in the same namespace whose key `token` is the data plane's administrator token, shared by every partition. Defaults to `<name>-admin`.",
  ),
  stores: stores.required().describe('The etcd cluster and S3 bucket every partition of the Mesh shares.'),
  resources,
  storage,
  throttling,
  watchdog,
  telemetry: telemetry.describe('Where the pods (partitions and gateway) send traces; passed to every partition of the Mesh.'),
  gateway: meshGateway,
  prober: meshProber,
  rollout: meshRollout,
});

const meshPartitionReadiness = object({
  name: string().required(),
  slots: string().describe(
    "The slot ranges of the partition's spec, written as 0-1023,2048-2100: those it was created with; once slots have owner keys, the keys decide what it serves.",
  ),
  ready: boolean().required().describe('The partition reports Ready=True for its current generation.'),
  replicas: integer(),
  readyReplicas: integer(),
  reason: string().describe("The reason of the partition's Ready condition."),
  revision: string().describe('The partition template revision the partition runs (or is moving to).'),
});

const meshStatus = object({
  observedGeneration: integer('int64'),
  readyPartitions: integer().describe('Partitions of the layout that are ready.'),
  slotsCovered: integer().describe(`Slots (of ${slotCount}) owned by exactly one ready partition.`),
  uncoveredSlots: string().describe('The slots not owned by exactly one ready partition, written as 0-1023,2048-2100; empty when all are.'),
  partitions: array(meshPartitionReadiness)
    .describe('One entry per MeshPartition the Mesh owns, with the slots it is given and whether it is ready.')
    .with({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] }),
  gateway: object({
    replicas: integer(),
    readyReplicas: integer(),
    service: string().describe("The gateway Service's name."),
  }),
  rollout: meshRolloutStatus.describe('Where the rollout of the partition template stands (docs/operations.md).'),
  conditions: array(condition).with({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
});

/** The schema of a whole Mesh, root of the CRD's openAPIV3Schema. */
export const meshSchema = object({
  apiVersion: string(),
  kind: string(),
  metadata: opaqueObject(),
  spec: meshSpec.required(),
  status: meshStatus,
})
  .describe('A Mesh is the whole service: its MeshPartitions with the slot layout, and the gateway in front of them.')
  .validate({
    rule: `self.metadata.name.size() <= ${maxMeshNameLength}`,
    message: `a Mesh name must be at most ${maxMeshNameLength} characters (its partitions are named <mesh>-p<index>)`,
  });

/** The Mesh CRD's openAPIV3Schema. */
export function meshOpenApiSchema(): JsonSchemaProps {
  return toOpenApi(meshSchema);
}

/** A Mesh spec as the API server returns it, its defaults applied. */
export function defaultedMeshSpec(input: Partial<MeshSpec> & Pick<MeshSpec, 'stores'>): MeshSpec {
  return applyDefaults(meshSpec, input) as MeshSpec;
}

/** The columns of `kubectl get meshes` (priority 1: only with `-o wide`). */
export const meshPrinterColumns = [
  { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: 'Partitions', type: 'integer', jsonPath: '.spec.partitions' },
  { name: 'Ready-Partitions', type: 'integer', jsonPath: '.status.readyPartitions' },
  { name: 'Slots-Covered', type: 'integer', jsonPath: '.status.slotsCovered' },
  { name: 'Gateway', type: 'integer', jsonPath: '.status.gateway.readyReplicas' },
  { name: 'Rollout', type: 'string', jsonPath: '.status.rollout.state' },
  { name: 'Step', type: 'integer', jsonPath: '.status.rollout.step' },
  { name: 'Revision', type: 'string', jsonPath: '.status.rollout.revision' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicasPerPartition', priority: 1 },
  { name: 'Image', type: 'string', jsonPath: '.spec.image', priority: 1 },
  { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
] as const;

/** The Mesh spec, as stored after defaulting. */
export type MeshSpec = Infer<typeof meshSpec>;
/** The Mesh status the operator writes. */
export type MeshStatus = Infer<typeof meshStatus>;
/** How a Mesh rolls a new partition template out. */
export type MeshRollout = Infer<typeof meshRollout>;
/** Where a Mesh's rollout stands. */
export type MeshRolloutStatus = Infer<typeof meshRolloutStatus>;
/** Why a rollout halted. */
export type RolloutHalt = Infer<typeof rolloutHalt>;
/** What every partition of a Mesh shares besides replicas and slots; a rollout moves partitions between two of these. */
export type PartitionTemplate = Infer<typeof partitionTemplate>;
/** One partition's entry in a Mesh's status. */
export type MeshPartitionReadiness = Infer<typeof meshPartitionReadiness>;
/** The type of the gateway's Service. */
export type GatewayServiceType = Infer<typeof gatewayServiceType>;

/** A Mesh as the operator reads it. */
export interface Mesh {
  apiVersion: typeof apiVersion;
  kind: typeof meshKind;
  metadata: ObjectMeta;
  spec: MeshSpec;
  status?: MeshStatus;
}
