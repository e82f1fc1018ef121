// The Mesh reconciler: read the Mesh and what it owns from the caches, plan the partitions
// (layout.ts) and the rollout of their template (rollout.ts), apply the MeshPartitions and the
// gateway's objects that drifted (server-side apply, the operator's field manager), delete
// partitions the layout no longer has once no slot names them, record what changed as Events,
// and write status through /status only when it changed. Level-triggered and idempotent: the
// steady state writes nothing. The rollout's whole state is in the Mesh's status, so a new
// leader resumes where it was. Slots move between running partitions (ADR 34): after the apply,
// the reconciler asks the move driver (move-driver.ts) for a pass with the partitions that are
// ready and reads what the last pass answered, never waiting on etcd itself.
import type { KubernetesObject, V1Deployment, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { dataplaneHttpPort, fieldManager, partitionPodLabels } from '@meshwork/contract';
import {
  apiVersion,
  meshKind,
  meshPartitionPlural,
  meshPlural,
  type Mesh,
  type MeshPartition,
  type MeshRolloutStatus,
  type MeshStatus,
  type PartitionTemplate,
} from '../api/v1alpha1.ts';
import { applyOwned } from '../controller/apply.ts';
import type { HandlerResult } from '../controller/workqueue.ts';
import { ReconcileError } from '../errors.ts';
import { KubeApiError, type KubeClient, type KubeObject, type ResourceRef } from '../kube/client.ts';
import { containsDesired, firstDifference } from '../meshpartition/compare.ts';
import type { EventRecorder } from '../meshpartition/events.ts';
import type { ObjectLookup } from '../meshpartition/reconcile.ts';
import type { ApplyProblem } from '../meshpartition/status.ts';
import { buildGatewayDeployment, buildGatewayPodDisruptionBudget, buildGatewayService } from '../specs/gateway.ts';
import { buildProberDeployment, proberSelectorLabels } from '../specs/prober.ts';
import {
  buildMeshPartition,
  meshPartitionTemplate,
  partitionTemplateOf,
  templateRevisionAnnotation,
  type PartitionRollout,
} from '../specs/meshpartition.ts';
import { addFigures, readMemberFigures, readProberJourneys } from './analysis.ts';
import { answerForLayout, layoutSlots, planPartitions, partitionsToDelete } from './layout.ts';
import type { MeshMoveDriver } from './move-driver.ts';
import { describeSharedEtcd, sharedEtcd } from './shared-etcd.ts';
import {
  partitionProgressOf,
  planRollout,
  stepUnderAnalysis,
  templateRevision,
  type PartitionAssignment,
  type ProberFigures,
  type RequestFigures,
  type RolloutPlan,
} from './rollout.ts';
import { computeMeshStatus, meshStatusUpToDate, partitionReady, type SlotMovesProgress } from './status.ts';

/** What the status says of the slot moves, from what the move driver knows. */
function slotMovesProgress(moves: ReturnType<MeshMoveDriver['state']>): SlotMovesProgress {
  const step = moves.outcome?.step;
  return {
    moving: moves.moving,
    ...(step?.kind === 'wait' ? { waitingFor: step.partitions } : {}),
    ...(moves.failure !== undefined ? { failure: moves.failure } : {}),
  };
}

/** The caches the Mesh reconciler reads instead of the API server. */
export interface MeshCaches {
  meshes: ObjectLookup<Mesh>;
  partitions: ObjectLookup<MeshPartition>;
  deployments: ObjectLookup<V1Deployment>;
  services: ObjectLookup<KubernetesObject>;
  podDisruptionBudgets: ObjectLookup<KubernetesObject>;
}

export interface MeshReconcilerOptions {
  client: KubeClient;
  caches: MeshCaches;
  events: EventRecorder;
  log: Logger;
  defaultImage?: string;
  /** Hears each Mesh's slot coverage after its status is computed, and `undefined` once the Mesh is gone (for a metric). */
  coverage?: (namespace: string, mesh: string, slotsCovered: number | undefined) => void;
  /** Hears each Mesh's rollout state after planning (`undefined` once the Mesh is gone) and the reason of a halt as it happens (for metrics). */
  rollout?: (namespace: string, mesh: string, state: MeshRolloutStatus['state'], haltReason?: string) => void;
  /** The owner of every slot by the Mesh's owner keys, when its etcd has some (owner-keys.ts); coverage is counted from them. */
  ownerKeys?: { owners(key: string, mesh: Mesh): string[] | undefined; forget(key: string): void };
  /** Queues a Mesh: another that shares the etcd of one that came, changed or went (ADR 63). */
  enqueue?: (key: string) => void;
  /** Runs the slot-move passes (ADR 34); without it nothing moves and the layout is re-laid as in ADR 33. */
  moves?: Pick<MeshMoveDriver, 'state' | 'request' | 'forget'>;
  /** Reads one member's request figures (the data plane's /metrics); tests replace it. */
  readFigures?: (ip: string, port: number, timeoutMs: number) => Promise<RequestFigures | undefined>;
  /** Reads one prober pod's journey counters (its /metrics); tests replace it. */
  readProber?: (ip: string, port: number, timeoutMs: number) => Promise<{ ok: number; error: number } | undefined>;
}

/** How long reading one member's /metrics may take before the analysis does without it. */
const figuresTimeoutMs = 2_000;

/** One object the Mesh wants: how to reach it, where its cache is, and its body. */
interface DesiredObject {
  kind: string;
  ref: ResourceRef;
  observed: KubernetesObject | undefined;
  body: KubeObject;
}

/** The uid of the object's controller, when it has one. */
function controllerOf(obj: KubernetesObject): { uid: string; what: string } | undefined {
  const owner = obj.metadata?.ownerReferences?.find((o) => o.controller);
  return owner ? { uid: owner.uid, what: `${owner.kind} ${owner.name}` } : undefined;
}

/** Whether `obj` is controlled by the Mesh `mesh`. */
export function ownedByMesh(obj: KubernetesObject, mesh: Mesh): boolean {
  const owner = obj.metadata?.ownerReferences?.find((o) => o.controller);
  return owner !== undefined && owner.kind === meshKind && owner.apiVersion === apiVersion && owner.uid === mesh.metadata.uid;
}

/** Reconciles one Mesh per call; keys are `namespace/name`. */
export class MeshReconciler {
  readonly #options: MeshReconcilerOptions;
  /** The status this process last wrote per Mesh, which the informer may not have delivered yet. */
  readonly #written = new Map<string, { uid: string | undefined; status: MeshStatus }>();
  /** The number of the last slot-move pass whose Events were recorded, per Mesh. */
  readonly #reportedPasses = new Map<string, number>();
  /** The last slot-move failure reported as an Event, per Mesh. */
  readonly #reportedFailures = new Map<string, string>();
  /** The last shared-etcd message recorded as an Event, per Mesh. */
  readonly #reportedSharing = new Map<string, string>();

  constructor(options: MeshReconcilerOptions) {
    this.#options = options;
  }

  /** Brings the Mesh's partitions, gateway and status in line with its spec. */
  async reconcile(key: string): Promise<HandlerResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const { caches, client, log } = this.#options;
    const mesh = caches.meshes.get(name, namespace);
    // Deleted: the garbage collector removes what it owned.
    if (!mesh || mesh.metadata.deletionTimestamp) {
      this.#written.delete(key);
      this.#options.ownerKeys?.forget(key);
      this.#options.moves?.forget(key);
      this.#reportedPasses.delete(key);
      this.#reportedFailures.delete(key);
      // The Meshes it shared its etcd with may be alone now.
      if (this.#reportedSharing.delete(key)) for (const other of this.#reportedSharing.keys()) this.#options.enqueue?.(other);
      this.#options.coverage?.(namespace, name, undefined);
      this.#options.rollout?.(namespace, name, undefined);
      return {};
    }
    const owned = caches.partitions.list(namespace).filter((p) => ownedByMesh(p as KubernetesObject, mesh));
    const plan = planPartitions(
      name,
      mesh.spec.partitions,
      owned.map((p) => p.metadata.name),
    );
    // Without the move driver (or while nothing has registered) the layout is re-laid as in ADR 33.
    // A Mesh whose etcd another uses runs no pass: it would take the other's owners for its own (ADR 63).
    const shared = sharedEtcd(mesh, caches.meshes.list(), caches.partitions.list());
    const moves = shared ? undefined : this.#options.moves?.state(key);
    const lastStep = !this.#options.moves ? { kind: 'unowned' as const, slots: 0 } : moves?.outcome?.step;
    const laid = layoutSlots(
      plan,
      new Map(owned.map((p) => [p.metadata.name, p.spec.slots.map((r) => ({ first: r.start, last: r.end }))])),
      lastStep?.kind === 'unowned',
    );
    // A partition is deleted only on the word of a pass for this layout with none after it (answerForLayout).
    const toDelete = partitionsToDelete(plan, moves ? answerForLayout(plan, moves) : lastStep);

    const rollout = await this.#planRollout(
      mesh,
      plan.keep.map((p) => p.name),
      owned,
    );

    const gatewayDeployment = buildGatewayDeployment(mesh, { defaultImage: this.#options.defaultImage });
    const gatewayService = buildGatewayService(mesh);
    const gatewayBudget = buildGatewayPodDisruptionBudget(mesh);
    const proberDeployment = buildProberDeployment(mesh, { defaultImage: this.#options.defaultImage });
    const named = (body: { metadata?: { name?: string } }): string => body.metadata!.name!;
    const desired: DesiredObject[] = [
      ...laid.map((p) => ({
        kind: 'MeshPartition',
        ref: { apiVersion, resource: meshPartitionPlural, namespace, name: p.name },
        observed: caches.partitions.get(p.name, namespace) as KubernetesObject | undefined,
        body: buildMeshPartition(
          mesh,
          p.name,
          p.slots,
          this.#partitionRollout(
            rollout,
            p.name,
            owned.find((o) => o.metadata.name === p.name),
          ),
        ) as unknown as KubeObject,
      })),
      {
        kind: 'Deployment',
        ref: { apiVersion: 'apps/v1', resource: 'deployments', namespace, name: named(gatewayDeployment) },
        observed: caches.deployments.get(named(gatewayDeployment), namespace),
        body: gatewayDeployment as KubeObject,
      },
      {
        kind: 'Service',
        ref: { apiVersion: 'v1', resource: 'services', namespace, name: named(gatewayService) },
        observed: caches.services.get(named(gatewayService), namespace),
        body: gatewayService as KubeObject,
      },
      {
        kind: 'PodDisruptionBudget',
        ref: { apiVersion: 'policy/v1', resource: 'poddisruptionbudgets', namespace, name: named(gatewayBudget) },
        observed: caches.podDisruptionBudgets.get(named(gatewayBudget), namespace),
        body: gatewayBudget as KubeObject,
      },
      {
        kind: 'Deployment',
        ref: { apiVersion: 'apps/v1', resource: 'deployments', namespace, name: named(proberDeployment) },
        observed: caches.deployments.get(named(proberDeployment), namespace),
        body: proberDeployment as KubeObject,
      },
    ];

    const changed: string[] = [];
    let problem: ApplyProblem | undefined;
    let gateway = caches.deployments.get(named(gatewayDeployment), namespace);
    const applied = new Map<string, MeshPartition>();
    const outcomes = await Promise.allSettled([
      ...desired.map(async (d) => {
        const objectName = d.ref.name!;
        if (d.observed) {
          // Never adopted: an object of the same name that this Mesh does not control is someone else's.
          const controller = controllerOf(d.observed);
          if (controller?.uid !== mesh.metadata.uid) {
            const by = controller ? `controlled by ${controller.what}` : 'not controlled by this Mesh';
            problem = { reason: 'ObjectConflict', message: `${d.kind} ${objectName} exists and is ${by}` };
            return;
          }
          if (containsDesired(d.body, d.observed)) return;
        }
        const outcome = await applyOwned(client, d.ref, d.body, d.kind);
        if (outcome.rejected) {
          problem = outcome.rejected;
          return;
        }
        const result = outcome.applied;
        if (d.kind === 'Deployment' && objectName === named(gatewayDeployment)) gateway = result;
        if (d.kind === 'MeshPartition') applied.set(objectName, result as unknown as MeshPartition);
        const verb = d.observed ? 'Updated' : 'Created';
        changed.push(`${verb} ${d.kind} ${objectName}`);
        log.info(
          { mesh: key, kind: d.kind, name: objectName, field: d.observed ? firstDifference(d.body, d.observed) : undefined },
          `${verb} ${d.kind} ${namespace}/${objectName}`,
        );
      }),
      ...toDelete.map(async (partitionName) => {
        const partition = owned.find((p) => p.metadata.name === partitionName);
        if (!partition || partition.metadata.deletionTimestamp) return;
        try {
          await client.delete(
            { apiVersion, resource: meshPartitionPlural, namespace, name: partitionName },
            { ...(partition.metadata.uid ? { uid: partition.metadata.uid } : {}) },
          );
        } catch (err) {
          throw new ReconcileError(`Could not delete MeshPartition ${namespace}/${partitionName}`, { cause: err });
        }
        changed.push(`Deleted MeshPartition ${partitionName}`);
        log.info({ mesh: key, name: partitionName }, `Deleted MeshPartition ${namespace}/${partitionName}`);
      }),
    ]);
    const recorded: Promise<void>[] = [];
    recorded.push(...this.#moveEvents(key, mesh, moves));
    if (changed.length > 0) recorded.push(this.#event(mesh, 'Normal', 'Applied', changed.sort().join(', ')));
    recorded.push(...this.#rolloutEvents(mesh, rollout.plan));
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failure) {
      await Promise.all(recorded);
      throw failure.reason;
    }
    const reported = mesh.status?.conditions?.find((c) => c.type === 'Degraded');
    if (problem && reported?.message !== problem.message) recorded.push(this.#event(mesh, 'Warning', problem.reason, problem.message));
    const sharing = shared ? describeSharedEtcd(shared) : undefined;
    if (sharing === undefined) {
      if (this.#reportedSharing.delete(key)) for (const other of this.#reportedSharing.keys()) this.#options.enqueue?.(other);
    } else if (this.#reportedSharing.get(key) !== sharing) {
      this.#reportedSharing.set(key, sharing);
      recorded.push(this.#event(mesh, 'Warning', 'SharedEtcd', sharing));
      // The others learn of it now, not at their next change; each queues the rest only when its own finding changes.
      for (const other of shared!.meshes) this.#options.enqueue?.(other);
    }

    // What was just applied is newer than the cache; partitions being deleted still count until they are gone.
    const partitions = [...owned.filter((p) => !applied.has(p.metadata.name)), ...applied.values()];
    // The pass starts after the apply, so that a new partition exists before slots are planned for it.
    if (!shared)
      this.#options.moves?.request(key, mesh, {
        layout: plan.keep.map((p) => p.name),
        ready: new Set(partitions.filter(partitionReady).map((p) => p.metadata.name)),
        surplus: plan.remove.filter((name) => !toDelete.includes(name)),
      });
    const owners = this.#options.ownerKeys?.owners(key, mesh);
    try {
      await this.#writeStatus(mesh, (live) =>
        computeMeshStatus({
          mesh: { ...mesh, status: live },
          plan,
          partitions,
          gateway,
          problem,
          rollout: rollout.plan.status,
          ...(owners ? { owners } : {}),
          ...(moves ? { slotMoves: slotMovesProgress(moves) } : {}),
          ...(sharing ? { sharedEtcd: sharing } : {}),
          now: new Date(),
        }),
      );
    } finally {
      await Promise.all(recorded);
    }
    const halt = rollout.plan.actions.find((a) => a.kind === 'halt');
    this.#options.rollout?.(namespace, name, rollout.plan.status.state, halt?.kind === 'halt' ? halt.halt.reason : undefined);
    // A conflict may clear itself (an old owner being garbage-collected): look again later.
    const waits = [problem?.reason === 'ObjectConflict' ? 10_000 : undefined, rollout.plan.requeueAfterMs].filter(
      (ms): ms is number => ms !== undefined,
    );
    return waits.length > 0 ? { requeueAfterMs: Math.max(0, Math.min(...waits)) } : {};
  }

  /** Plans the rollout of the Mesh's partition template from the caches, the live status and the step's own figures. */
  async #planRollout(
    mesh: Mesh,
    layout: readonly string[],
    owned: readonly MeshPartition[],
  ): Promise<{ plan: RolloutPlan; template: PartitionTemplate; target: string }> {
    const template = meshPartitionTemplate(mesh);
    const target = templateRevision(template);
    const previous = this.#liveStatus(mesh)?.rollout;
    const byName = new Map(owned.map((p) => [p.metadata.name, p]));
    const progress = layout.map((n) => partitionProgressOf(n, byName.get(n), mesh.spec.replicasPerPartition));
    const analysed = stepUnderAnalysis(previous, target, layout, mesh.spec.rollout);
    const requests = await this.#stepFigures(
      mesh,
      analysed.flatMap((n) => byName.get(n) ?? []),
    );
    // The prober is read only when its figures count: a step under analysis, or a new version
    // whose first step takes them as its baseline; not on every pass of a settled Mesh.
    const starting = previous?.revision !== undefined && previous.revision !== target;
    const judged = mesh.spec.rollout.analysis.minProberSuccessPercent > 0 && (analysed.length > 0 || starting);
    const prober = judged ? await this.#proberFigures(mesh) : undefined;
    const plan = planRollout({ settings: mesh.spec.rollout, target, partitions: progress, previous, requests, prober, now: new Date() });
    if (plan.completed) plan.status.stableTemplate = structuredClone(template);
    return { plan, template, target };
  }

  /** What one partition of the layout is built with: the template the plan chose for it and its hold. */
  #partitionRollout(
    rollout: { plan: RolloutPlan; template: PartitionTemplate; target: string },
    name: string,
    observed: MeshPartition | undefined,
  ): PartitionRollout {
    const assignment: PartitionAssignment = rollout.plan.assignments.get(name) ?? { template: 'target', hold: 0 };
    const { stableTemplate, stableRevision } = rollout.plan.status;
    if (assignment.template === 'stable' && stableTemplate && stableRevision) {
      return { template: stableTemplate, revision: stableRevision, hold: assignment.hold };
    }
    if (assignment.template === 'current' && observed) {
      const template = partitionTemplateOf(observed.spec);
      const revision = observed.metadata.annotations?.[templateRevisionAnnotation] ?? templateRevision(template);
      return { template, revision, hold: assignment.hold };
    }
    return { template: rollout.template, revision: rollout.target, hold: assignment.hold };
  }

  /** The journey counters of the Mesh's ready prober pods, summed; undefined unless every one of them answered. */
  async #proberFigures(mesh: Mesh): Promise<ProberFigures | undefined> {
    const selector = Object.entries(proberSelectorLabels(mesh))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const list = await this.#options.client.list<V1Pod>(
      { apiVersion: 'v1', resource: 'pods', namespace: mesh.metadata.namespace },
      { labelSelector: selector },
    );
    const pods = list.items.filter(
      (pod) => pod.metadata?.uid && pod.status?.podIP && pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    if (pods.length === 0) return undefined;
    const read = this.#options.readProber ?? readProberJourneys;
    const counts = await Promise.all(pods.map((pod) => read(pod.status!.podIP!, dataplaneHttpPort, figuresTimeoutMs)));
    // A pod that did not answer would make the sum look like a drop: judge nothing this pass.
    if (counts.some((c) => c === undefined)) return undefined;
    return {
      ok: counts.reduce((sum, c) => sum + c!.ok, 0),
      error: counts.reduce((sum, c) => sum + c!.error, 0),
      pods: pods.map((pod) => pod.metadata!.uid!),
    };
  }

  /** The request figures of the updated, ready members of `partitions`, summed; undefined when none answered. */
  async #stepFigures(mesh: Mesh, partitions: readonly MeshPartition[]): Promise<RequestFigures | undefined> {
    if (partitions.length === 0) return undefined;
    const read = this.#options.readFigures ?? readMemberFigures;
    const pods = await Promise.all(
      partitions.map(async (p) => {
        const selector = Object.entries(partitionPodLabels(p.metadata.name))
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        const list = await this.#options.client.list<V1Pod>(
          { apiVersion: 'v1', resource: 'pods', namespace: mesh.metadata.namespace },
          { labelSelector: selector },
        );
        const revision = p.status?.updateRevision;
        return list.items.filter(
          (pod) =>
            revision !== undefined &&
            pod.metadata?.labels?.['controller-revision-hash'] === revision &&
            pod.status?.podIP &&
            pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        );
      }),
    );
    const figures = await Promise.all(pods.flat().map((pod) => read(pod.status!.podIP!, dataplaneHttpPort, figuresTimeoutMs)));
    const answered = figures.filter((f): f is RequestFigures => f !== undefined);
    return answered.length > 0 ? answered.reduce(addFigures) : undefined;
  }

  /** Events for the rollout's moves: a new version, each step, a halt, a rollback, the end. */
  #rolloutEvents(mesh: Mesh, plan: RolloutPlan): Promise<void>[] {
    const previous = this.#liveStatus(mesh)?.rollout;
    const { status } = plan;
    const events: Promise<void>[] = [];
    if (previous?.revision && previous.revision !== status.revision) {
      events.push(this.#event(mesh, 'Normal', 'RolloutStarted', `Rolling out revision ${status.revision} in ${status.steps ?? 0} steps`));
    }
    for (const action of plan.actions) {
      if (action.kind === 'halt') {
        const h = action.halt;
        events.push(this.#event(mesh, 'Warning', 'RolloutHalted', `Partition ${h.partition}: ${h.figure}; threshold ${h.threshold}`));
      } else if (action.kind === 'advance') {
        events.push(this.#event(mesh, 'Normal', 'RolloutAdvanced', `Started step ${action.step} of ${status.steps ?? 0}`));
      } else if (action.kind === 'rollback' && previous?.state !== 'RollingBack') {
        events.push(
          this.#event(
            mesh,
            'Warning',
            'RolloutRollingBack',
            `Returning ${action.partitions.join(', ')} to revision ${status.stableRevision ?? ''}`,
          ),
        );
      } else if (action.kind === 'done' && plan.completed && previous?.revision && previous.state !== 'Complete') {
        events.push(this.#event(mesh, 'Normal', 'RolloutComplete', `Revision ${status.revision} runs on every partition`));
      }
    }
    if (status.state === 'RolledBack' && previous?.state === 'RollingBack') {
      events.push(this.#event(mesh, 'Normal', 'RolloutRolledBack', `Every partition runs revision ${status.stableRevision ?? ''} again`));
    }
    return events;
  }

  /** An Event for each finished slot-move pass that moved slots, and a Warning when passes start failing. */
  #moveEvents(key: string, mesh: Mesh, moves: ReturnType<MeshMoveDriver['state']> | undefined): Promise<void>[] {
    if (!moves) return [];
    const events: Promise<void>[] = [];
    const reported = this.#reportedPasses.get(key) ?? 0;
    const outcome = moves.lastMove;
    if (outcome && outcome.pass > reported) {
      const left = outcome.step.kind === 'remove' ? `; ${outcome.step.partitions.join(', ')} own no slot any more` : '';
      events.push(
        this.#event(
          mesh,
          'Normal',
          'MovedSlots',
          `Moved ${outcome.moved} slots to the layout of ${mesh.spec.partitions} partitions${left}`,
        ),
      );
    }
    this.#reportedPasses.set(key, moves.passes);
    if (moves.failure === undefined) this.#reportedFailures.delete(key);
    else if (this.#reportedFailures.get(key) !== moves.failure) {
      this.#reportedFailures.set(key, moves.failure);
      events.push(this.#event(mesh, 'Warning', 'SlotMovesFailed', `Could not move slots: ${moves.failure}`));
    }
    return events;
  }

  /** The status this process last wrote for the Mesh, or the cache's when it wrote none (or for an older Mesh of the name). */
  #liveStatus(mesh: Mesh): MeshStatus | undefined {
    const written = this.#written.get(`${mesh.metadata.namespace}/${mesh.metadata.name}`);
    return written && written.uid === mesh.metadata.uid ? written.status : mesh.status;
  }

  async #event(mesh: Mesh, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const { name, namespace, uid, resourceVersion } = mesh.metadata;
    await this.#options.events.recordOn({ apiVersion, kind: meshKind, name, namespace, uid, resourceVersion }, type, reason, message);
  }

  /** Writes the status `compute` makes from the live one, through /status, unless the live one says the same. */
  async #writeStatus(mesh: Mesh, compute: (live: MeshStatus | undefined) => MeshStatus): Promise<void> {
    const { name, namespace } = mesh.metadata;
    const ref = `${namespace}/${name}`;
    const live = this.#liveStatus(mesh);
    const status = compute(live);
    this.#options.coverage?.(namespace, name, status.slotsCovered);
    if (meshStatusUpToDate(status, live)) return;
    try {
      await this.#options.client.apply(
        { apiVersion, resource: meshPlural, namespace, name, subresource: 'status' },
        { apiVersion, kind: meshKind, metadata: { name, namespace }, status },
        fieldManager,
      );
    } catch (err) {
      // Deleted while we worked: nothing left to report on.
      if (err instanceof KubeApiError && err.status === 404) return;
      throw new ReconcileError(`Could not write the status of Mesh ${ref}`, { cause: err });
    }
    this.#written.set(ref, { uid: mesh.metadata.uid, status });
    this.#options.log.debug({ mesh: ref, generation: mesh.metadata.generation }, `Updated status of Mesh ${ref}`);
  }
}
