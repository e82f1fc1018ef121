// The operator's Prometheus metrics, in a private registry: the controller-runtime
// equivalents (reconciles, work queue) plus API requests, informers and leadership.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric the operator exports, registered in `registry`. */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal = new Counter({
    name: 'meshwork_reconcile_total',
    help: 'Reconciles by controller and result (success, error, requeue).',
    labelNames: ['controller', 'result'] as const,
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'meshwork_reconcile_errors_total',
    help: 'Reconciles that failed, by controller.',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly reconcileTime = new Histogram({
    name: 'meshwork_reconcile_time_seconds',
    help: 'Time of one reconcile, by controller.',
    labelNames: ['controller'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly workqueueDepth = new Gauge({
    name: 'meshwork_workqueue_depth',
    help: 'Keys waiting in the work queue.',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  readonly workqueueAdds = new Counter({
    name: 'meshwork_workqueue_adds_total',
    help: 'Keys added to the work queue (including duplicates that were merged).',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  readonly workqueueQueueDuration = new Histogram({
    name: 'meshwork_workqueue_queue_duration_seconds',
    help: 'Time a key waited in the work queue before a worker took it.',
    labelNames: ['name'] as const,
    buckets: [0.0001, 0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
    registers: [this.registry],
  });
  readonly workqueueRetries = new Counter({
    name: 'meshwork_workqueue_retries_total',
    help: 'Keys requeued with backoff after a failed reconcile.',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  readonly apiRequests = new Counter({
    name: 'meshwork_kube_api_requests_total',
    help: 'Kubernetes API requests by verb, resource and HTTP status code ("error" when no answer came).',
    labelNames: ['verb', 'resource', 'code'] as const,
    registers: [this.registry],
  });
  readonly apiRequestDuration = new Histogram({
    name: 'meshwork_kube_api_request_duration_seconds',
    help: 'Latency of Kubernetes API requests (watches excluded), by verb and resource.',
    labelNames: ['verb', 'resource'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly informerRestarts = new Counter({
    name: 'meshwork_informer_restarts_total',
    help: 'Informers restarted after their list or watch failed, by resource.',
    labelNames: ['resource'] as const,
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'meshwork_leader_election_is_leader',
    help: '1 while this process holds the leader Lease.',
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: 'meshwork_events_total',
    help: 'Kubernetes Events recorded, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly watchdogActions = new Counter({
    name: 'meshwork_watchdog_actions_total',
    help: 'Actions the watchdog performed on partition members, by action (Restart, Reschedule, Fence, RecreateVolume, GiveUp) and reason.',
    labelNames: ['action', 'reason'] as const,
    registers: [this.registry],
  });
  readonly watchdogIntentions = new Counter({
    name: 'meshwork_watchdog_intentions_total',
    help: 'Actions the watchdog would have performed in Observe mode, by action and reason.',
    labelNames: ['action', 'reason'] as const,
    registers: [this.registry],
  });
  readonly watchdogMembers = new Gauge({
    name: 'meshwork_watchdog_members',
    help: 'Partition members by watchdog ladder level (0 observe, 1 restarted, 2 rescheduled, 3 volume recreated, 4 given up).',
    labelNames: ['level'] as const,
    registers: [this.registry],
  });
  readonly meshRolloutHalts = new Counter({
    name: 'meshwork_mesh_rollout_halts_total',
    help: "Rollouts of a Mesh's partition template that halted, by the analysis' reason (MemberNotReady, ErrorRatioExceeded, WatchdogActed).",
    labelNames: ['mesh_namespace', 'mesh', 'reason'] as const,
    registers: [this.registry],
  });
  readonly meshRolloutHalted = new Gauge({
    name: 'meshwork_mesh_rollout_halted',
    help: "1 while a Mesh's rollout is halted (condition RolloutHalted=True), else 0; set by the leader.",
    labelNames: ['mesh_namespace', 'mesh'] as const,
    registers: [this.registry],
  });
  readonly meshSlotsCovered = new Gauge({
    name: 'meshwork_mesh_slots_covered',
    help: 'Slots (of 4096) owned by exactly one ready partition, per Mesh (status.slotsCovered); set by the leader.',
    // Not `namespace`: a scrape sets that to the operator pod's namespace.
    labelNames: ['mesh_namespace', 'mesh'] as const,
    registers: [this.registry],
  });
  readonly watchdogRefused = new Gauge({
    name: 'meshwork_watchdog_refused_members',
    help: 'Partition members whose due action the watchdog holds back, by refusal (Paused, MaxConcurrent, ActionBudget: the hourly action budget is spent).',
    labelNames: ['refusal'] as const,
    registers: [this.registry],
  });
  readonly watchdogRecovery = new Histogram({
    name: 'meshwork_watchdog_recovery_seconds',
    help: 'Time to recover: seconds from the watchdog first seeing a partition member unhealthy to seeing it healthy again, by the level of the last remediation in between (0: none).',
    labelNames: ['level'] as const,
    buckets: [1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [this.registry],
  });
  readonly watchdogPaused = new Gauge({
    name: 'meshwork_watchdog_remediation_paused',
    help: '1 while the watchdog repairs nothing because too many members are unhealthy.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'meshwork_operator_' });
    // Every level's series exists from the start, so a first recovery counts in increase().
    for (const level of ['0', '1', '2', '3', '4']) this.watchdogRecovery.zero({ level });
  }
}

/** The API verbs that change state; the rest only read. */
export const writeVerbs: ReadonlySet<string> = new Set(['create', 'update', 'apply', 'patch', 'delete']);
