// The MeshPartition reconciler: read the partition and its owned objects from the
// caches, build the desired objects, apply only those that drifted (server-side apply,
// one field manager, forced), record what changed as one Event, and write status through
// /status only when it changed. Level-triggered and idempotent; the steady state writes nothing.
import type { KubernetesObject, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { fieldManager, partitionLabel } from '@meshwork/contract';
import { apiVersion, meshPartitionKind, meshPartitionPlural, type MeshPartition, type MeshPartitionStatus } from '../api/v1alpha1.ts';
import { applyOwned } from '../controller/apply.ts';
import type { HandlerResult } from '../controller/workqueue.ts';
import { ReconcileError } from '../errors.ts';
import { KubeApiError, type KubeClient, type KubeObject, type ResourceRef } from '../kube/client.ts';
import { buildConfigMap } from '../specs/configmap.ts';
import { buildPodDisruptionBudget } from '../specs/poddisruptionbudget.ts';
import { buildClientService, buildHeadlessService } from '../specs/services.ts';
import { buildStatefulSet } from '../specs/statefulset.ts';
import { containsDesired, firstDifference } from './compare.ts';
import type { EventRecorder } from './events.ts';
import { computeStatus, statusUpToDate, type ApplyProblem } from './status.ts';
import type { Watchdog } from '../watchdog/watchdog.ts';

/** Read access to a cache of one kind. */
export interface ObjectLookup<T> {
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): readonly T[];
}

/** The caches the reconciler reads instead of the API server. */
export interface MeshPartitionCaches {
  partitions: ObjectLookup<MeshPartition>;
  statefulSets: ObjectLookup<V1StatefulSet>;
  services: ObjectLookup<KubernetesObject>;
  configMaps: ObjectLookup<KubernetesObject>;
  podDisruptionBudgets: ObjectLookup<KubernetesObject>;
  pods: ObjectLookup<V1Pod>;
}

export interface ReconcilerOptions {
  client: KubeClient;
  caches: MeshPartitionCaches;
  events: EventRecorder;
  log: Logger;
  defaultImage?: string;
  /** Assesses members and repairs them; without it, status only reports health. */
  watchdog?: Watchdog;
}

interface OwnedKind {
  kind: string;
  ref: (namespace: string, name: string) => ResourceRef;
  cache: (caches: MeshPartitionCaches) => ObjectLookup<KubernetesObject>;
  build: (partition: MeshPartition, defaultImage: string | undefined) => KubeObject;
}

/** One of the partition's Services, built by `build`. */
function serviceKind(build: OwnedKind['build']): OwnedKind {
  return {
    kind: 'Service',
    ref: (namespace, name) => ({ apiVersion: 'v1', resource: 'services', namespace, name }),
    cache: (c) => c.services,
    build,
  };
}

const ownedKinds: OwnedKind[] = [
  {
    kind: 'ConfigMap',
    ref: (namespace, name) => ({ apiVersion: 'v1', resource: 'configmaps', namespace, name }),
    cache: (c) => c.configMaps,
    build: (p) => buildConfigMap(p) as KubeObject,
  },
  serviceKind((p) => buildHeadlessService(p) as KubeObject),
  serviceKind((p) => buildClientService(p) as KubeObject),
  {
    kind: 'StatefulSet',
    ref: (namespace, name) => ({ apiVersion: 'apps/v1', resource: 'statefulsets', namespace, name }),
    cache: (c) => c.statefulSets,
    build: (p, defaultImage) => buildStatefulSet(p, { defaultImage }) as KubeObject,
  },
  {
    kind: 'PodDisruptionBudget',
    ref: (namespace, name) => ({ apiVersion: 'policy/v1', resource: 'poddisruptionbudgets', namespace, name }),
    cache: (c) => c.podDisruptionBudgets,
    build: (p) => buildPodDisruptionBudget(p) as KubeObject,
  },
];

/** The controller owner of an object, if it is another object than `uid`. */
function foreignController(observed: KubernetesObject, uid: string | undefined): string | undefined {
  const owner = observed.metadata?.ownerReferences?.find((o) => o.controller);
  if (!owner || owner.uid === uid) return undefined;
  return `${owner.kind} ${owner.name}`;
}

/** Reconciles one MeshPartition per call; keys are `namespace/name`. */
export class MeshPartitionReconciler {
  readonly #options: ReconcilerOptions;
  /**
   * The status this process last wrote, per partition: the informer may not have seen it
   * yet, and the watchdog must never act twice on a ladder step it already recorded.
   */
  readonly #written = new Map<string, { uid: string | undefined; status: MeshPartitionStatus }>();

  constructor(options: ReconcilerOptions) {
    this.#options = options;
  }

  /** Brings the partition's owned objects and status in line with its spec. */
  async reconcile(key: string): Promise<HandlerResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const { caches, client, log } = this.#options;
    const partition = caches.partitions.get(name, namespace);
    // Deleted: the garbage collector removes what it owned.
    if (!partition || partition.metadata.deletionTimestamp) {
      this.#written.delete(key);
      this.#options.watchdog?.forget(key);
      return {};
    }
    const ref = `${namespace}/${name}`;

    const changed: string[] = [];
    let problem: ApplyProblem | undefined;
    let statefulSet = caches.statefulSets.get(name, namespace);
    // Owned objects do not depend on each other (pods wait for their ConfigMap), so they are applied together.
    const outcomes = await Promise.allSettled(
      ownedKinds.map(async (owned) => {
        const desired = owned.build(partition, this.#options.defaultImage);
        const objectName = desired.metadata!.name!;
        const observed = owned.cache(caches).get(objectName, namespace);
        if (observed) {
          const foreign = foreignController(observed, partition.metadata.uid);
          if (foreign) {
            problem = { reason: 'ObjectConflict', message: `${owned.kind} ${objectName} is controlled by ${foreign}` };
            return;
          }
          if (containsDesired(desired, observed)) return;
        }
        const outcome = await applyOwned(client, owned.ref(namespace, objectName), desired, owned.kind);
        if (outcome.rejected) {
          problem = outcome.rejected;
          return;
        }
        if (owned.kind === 'StatefulSet') statefulSet = outcome.applied;
        const verb = observed ? 'Updated' : 'Created';
        changed.push(`${verb} ${owned.kind} ${objectName}`);
        log.info(
          { meshpartition: ref, kind: owned.kind, name: objectName, field: observed ? firstDifference(desired, observed) : undefined },
          `${verb} ${owned.kind} ${namespace}/${objectName}`,
        );
      }),
    );
    // Events are recorded beside the status write rather than before it: one round trip less per reconcile.
    const events: Promise<void>[] = [];
    if (changed.length > 0) events.push(this.#options.events.record(partition, 'Normal', 'Applied', changed.join(', ')));
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failure) {
      await Promise.all(events);
      throw failure.reason;
    }
    const reported = partition.status?.conditions?.find((c) => c.type === 'Degraded');
    if (problem && reported?.message !== problem.message) {
      events.push(this.#options.events.record(partition, 'Warning', problem.reason, problem.message));
    }
    let wakeAt: number | undefined;
    try {
      wakeAt = await this.#writeStatus(partition, statefulSet, problem);
    } finally {
      await Promise.all(events);
    }
    // A conflict may clear itself (an old owner being garbage-collected): look again later.
    const requeues = [
      problem?.reason === 'ObjectConflict' ? 10_000 : Infinity,
      wakeAt === undefined ? Infinity : Math.max(500, wakeAt - Date.now()),
    ];
    const requeueAfterMs = Math.min(...requeues);
    return Number.isFinite(requeueAfterMs) ? { requeueAfterMs } : {};
  }

  /**
   * Writes status through /status when it differs from what the partition already shows,
   * then carries out the watchdog's actions that status records. Resolves to when the
   * watchdog wants to look again, if it does.
   */
  async #writeStatus(
    partition: MeshPartition,
    statefulSet: V1StatefulSet | undefined,
    problem: ApplyProblem | undefined,
  ): Promise<number | undefined> {
    const { caches, client, log, watchdog } = this.#options;
    const { name, namespace } = partition.metadata;
    const ref = `${namespace}/${name}`;
    const pods = caches.pods.list(namespace).filter((pod) => pod.metadata?.labels?.[partitionLabel] === name);
    const written = this.#written.get(ref);
    const live = written && written.uid === partition.metadata.uid ? written.status : partition.status;
    const assessment = watchdog?.assess(partition, pods, live);
    const status = computeStatus({
      partition,
      statefulSet,
      pods,
      problem,
      now: new Date(),
      ...(watchdog && assessment ? { watchdog: { assessment, paused: watchdog.paused, pauseMessage: watchdog.pauseMessage() } } : {}),
    });
    // A member that cannot start with this configuration is reported once, when it is first seen.
    const degraded = status.conditions?.find((c) => c.type === 'Degraded');
    const before = live?.conditions?.find((c) => c.type === 'Degraded');
    if (degraded?.reason === 'InvalidConfiguration' && degraded.message !== before?.message) {
      await this.#options.events.record(partition, 'Warning', 'InvalidConfiguration', degraded.message);
    }
    if (!statusUpToDate(status, live)) {
      try {
        await client.apply(
          { apiVersion, resource: meshPartitionPlural, namespace, name, subresource: 'status' },
          { apiVersion, kind: meshPartitionKind, metadata: { name, namespace }, status },
          fieldManager,
        );
      } catch (err) {
        // Deleted while we worked: nothing left to report on.
        if (err instanceof KubeApiError && err.status === 404) return undefined;
        throw new ReconcileError(`Could not write the status of MeshPartition ${ref}`, { cause: err });
      }
      this.#written.set(ref, { uid: partition.metadata.uid, status });
      const members = status.members?.map((m) => `${m.pod}:${m.health}${m.reason ? `/${m.reason}` : ''}:${m.level}`).join(' ');
      log.debug({ meshpartition: ref, generation: partition.metadata.generation, members }, `Updated status of MeshPartition ${ref}`);
    }
    // Only now that status records them (and a new leader would continue from there) are the actions taken.
    if (watchdog && assessment && assessment.actions.length > 0) await watchdog.perform(partition, assessment.actions);
    return assessment?.wakeAt;
  }
}
