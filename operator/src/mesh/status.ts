// The Mesh's status, computed from the MeshPartitions it owns and its gateway Deployment.
// Pure: the reconciler passes what its caches hold and the time. Slot coverage counts the
// slots owned by exactly one ready partition, so a gap and an overlap both show; a partition is
// ready when its Ready condition is True for its current generation. Once a Mesh's slots have
// owner keys (ADR 34), the reconciler passes the owners and coverage counts the slots whose
// owner is a ready partition instead, since moves leave the partitions' specs behind.
import type { V1Deployment } from '@kubernetes/client-node';
import { formatSlotRanges, slotCount } from '@meshwork/contract';
import type { Condition, Mesh, MeshPartition, MeshPartitionReadiness, MeshRolloutStatus, MeshStatus } from '../api/v1alpha1.ts';
import { templateRevisionAnnotation } from '../specs/meshpartition.ts';
import { sameStatus } from '../api/status-equality.ts';
import { slotsText } from '../specs/common.ts';
import type { ApplyProblem } from '../meshpartition/status.ts';
import { meshNames } from '../specs/mesh-common.ts';
import type { PartitionPlan } from './layout.ts';
import { slotCoverage } from './layout.ts';
import { ownerCoverage } from './move-step.ts';

export interface MeshStatusInputs {
  mesh: Mesh;
  plan: PartitionPlan;
  /** The MeshPartitions the Mesh owns, as the cache holds them (the layout's and any left to remove). */
  partitions: readonly MeshPartition[];
  gateway: V1Deployment | undefined;
  problem?: ApplyProblem;
  /** Where the rollout stands (rollout.ts), when the reconciler planned one. */
  rollout?: MeshRolloutStatus;
  /** The partition serving each slot by its owner key ('' for none), when the Mesh's slots have keys: coverage is counted from them. */
  owners?: readonly string[];
  /** What the slot moves are doing (ADR 34), when the reconciler runs them. */
  slotMoves?: SlotMovesProgress;
  /** Why slots cannot move: the Mesh's etcd is shared (shared-etcd.ts, ADR 63). */
  sharedEtcd?: string;
  now: Date;
}

/** What the status says of a Mesh's slot moves. */
export interface SlotMovesProgress {
  /** Slots moved so far by the pass that runs now (0: none moving). */
  moving: number;
  /** The layout's partitions the last pass waits for (no ready member yet). */
  waitingFor?: string[];
  /** Why the last pass failed, when it did. */
  failure?: string;
}

/** Rollout states in which the RolloutHalted condition is True. */
const haltedStates: ReadonlySet<string> = new Set(['Halted', 'RollingBack', 'RolledBack']);

/** The RolloutHalted condition: True, with the figure and threshold, from a halt until the next version. */
function rolloutHaltedDraft(rollout: MeshRolloutStatus | undefined): ConditionDraft {
  if (rollout?.state && haltedStates.has(rollout.state)) {
    return {
      type: 'RolloutHalted',
      status: 'True',
      reason: rollout.halt?.reason ?? 'Halted',
      message: rollout.message ?? `Halted at step ${rollout.step ?? 0} of ${rollout.steps ?? 0}`,
    };
  }
  return { type: 'RolloutHalted', status: 'False', reason: 'NotHalted', message: 'The rollout has not halted' };
}

/** Progressing while a rollout moves or waits (when nothing else is moving). */
function rolloutProgress(rollout: MeshRolloutStatus | undefined): ConditionDraft | undefined {
  if (!rollout?.state || rollout.state === 'Complete' || haltedStates.has(rollout.state)) return undefined;
  const reason = rollout.state === 'Paused' ? 'RolloutPaused' : 'RollingOut';
  return { type: 'Progressing', status: 'True', reason, message: rollout.message ?? `Rolling out revision ${rollout.revision ?? ''}` };
}

type ConditionDraft = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

function settle(draft: ConditionDraft, previous: readonly Condition[], generation: number, now: Date): Condition {
  const before = previous.find((c) => c.type === draft.type);
  const lastTransitionTime =
    before && before.status === draft.status ? before.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { type: draft.type, status: draft.status, observedGeneration: generation, lastTransitionTime, ...draftText(draft) };
}

function draftText(draft: ConditionDraft): { reason: string; message: string } {
  return { reason: draft.reason, message: draft.message.slice(0, 1024) };
}

function condition(partition: MeshPartition, type: string): Condition | undefined {
  return partition.status?.conditions?.find((c) => c.type === type);
}

/** Whether a partition has seen its current spec: its status and every condition are of its generation. */
function observedCurrent(partition: MeshPartition): boolean {
  const generation = partition.metadata.generation ?? 0;
  return partition.status?.observedGeneration === generation && condition(partition, 'Ready')?.observedGeneration === generation;
}

/** Whether a partition serves its slots: Ready=True for its current generation. */
export function partitionReady(partition: MeshPartition): boolean {
  return observedCurrent(partition) && condition(partition, 'Ready')?.status === 'True';
}

/** A partition's entry in the Mesh's status. */
export function partitionReadiness(partition: MeshPartition): MeshPartitionReadiness {
  const entry: MeshPartitionReadiness = {
    name: partition.metadata.name,
    slots: slotsText(partition.spec.slots),
    ready: partitionReady(partition),
    replicas: partition.status?.replicas ?? 0,
    readyReplicas: partition.status?.readyReplicas ?? 0,
  };
  const reason = observedCurrent(partition) ? condition(partition, 'Ready')?.reason : 'NotObserved';
  if (reason) entry.reason = reason;
  const revision = partition.metadata.annotations?.[templateRevisionAnnotation];
  if (revision) entry.revision = revision;
  return entry;
}

function partitionIndex(mesh: Mesh, name: string): number {
  const suffix = name.slice(mesh.metadata.name.length + 2);
  return /^\d+$/.test(suffix) ? Number(suffix) : Number.MAX_SAFE_INTEGER;
}

function names(list: readonly string[]): string {
  return list.length > 3 ? `${list.slice(0, 3).join(', ')} and ${list.length - 3} more` : list.join(', ');
}

/** Why the Mesh is still moving toward its spec, or undefined when it has settled. */
function progress(inputs: MeshStatusInputs): ConditionDraft | undefined {
  const { plan, partitions, gateway, mesh } = inputs;
  const byName = new Map(partitions.map((p) => [p.metadata.name, p]));
  const missing = plan.keep.filter((p) => !byName.has(p.name)).map((p) => p.name);
  if (missing.length > 0) {
    return { type: 'Progressing', status: 'True', reason: 'CreatingPartitions', message: `Creating MeshPartitions ${names(missing)}` };
  }
  const slotMoves = inputs.slotMoves;
  if (slotMoves && slotMoves.moving > 0) {
    return {
      type: 'Progressing',
      status: 'True',
      reason: 'MovingSlots',
      message: `Moving slots to the layout: ${slotMoves.moving} moved so far`,
    };
  }
  const removing = plan.remove.filter((name) => byName.has(name));
  if (removing.length > 0) {
    // A surplus partition goes once its slots have moved to the layout's partitions.
    const why = slotMoves?.failure ? `; slots cannot move: ${slotMoves.failure}` : '';
    return {
      type: 'Progressing',
      status: 'True',
      reason: 'RemovingPartitions',
      message: `Removing MeshPartitions ${names(removing)}${why}`,
    };
  }
  const moving = plan.keep
    .map((p) => byName.get(p.name)!)
    .filter((p) => !observedCurrent(p) || condition(p, 'Progressing')?.status === 'True')
    .map((p) => p.metadata.name);
  if (moving.length > 0) {
    return {
      type: 'Progressing',
      status: 'True',
      reason: 'PartitionsProgressing',
      message: `MeshPartitions ${names(moving)} have not settled on their spec`,
    };
  }
  if (slotMoves?.waitingFor && slotMoves.waitingFor.length > 0) {
    return {
      type: 'Progressing',
      status: 'True',
      reason: 'WaitingToMoveSlots',
      message: `Slots move once MeshPartitions ${names(slotMoves.waitingFor)} have a ready member`,
    };
  }
  if (!gateway)
    return { type: 'Progressing', status: 'True', reason: 'CreatingGateway', message: 'The gateway Deployment does not exist yet' };
  const want = mesh.spec.gateway.replicas;
  const status = gateway.status;
  if ((status?.observedGeneration ?? 0) < (gateway.metadata?.generation ?? 0) || (status?.updatedReplicas ?? 0) < want) {
    return {
      type: 'Progressing',
      status: 'True',
      reason: 'GatewayRollingOut',
      message: `${status?.updatedReplicas ?? 0} of ${want} gateway pods run the latest template`,
    };
  }
  return undefined;
}

/** Computes the whole status the operator owns for a Mesh. */
export function computeMeshStatus(inputs: MeshStatusInputs): MeshStatus {
  const { mesh, plan, partitions, gateway, problem, now } = inputs;
  const generation = mesh.metadata.generation ?? 0;
  const previous = mesh.status?.conditions ?? [];
  const sorted = [...partitions].sort(
    (a, b) =>
      partitionIndex(mesh, a.metadata.name) - partitionIndex(mesh, b.metadata.name) || a.metadata.name.localeCompare(b.metadata.name),
  );
  const entries = sorted.map(partitionReadiness);
  const ready = sorted.filter(partitionReady);
  const coverage = inputs.owners
    ? ownerCoverage(inputs.owners, new Set(ready.map((p) => p.metadata.name)))
    : slotCoverage(ready.flatMap((p) => p.spec.slots.map((r) => ({ first: r.start, last: r.end }))));
  const layoutNames = new Set(plan.keep.map((p) => p.name));
  const readyInLayout = ready.filter((p) => layoutNames.has(p.metadata.name)).length;
  const gatewayWant = mesh.spec.gateway.replicas;
  const gatewayReady = gateway?.status?.readyReplicas ?? 0;
  const degradedPartitions = sorted.filter((p) => condition(p, 'Degraded')?.status === 'True');
  const moving = progress(inputs) ?? rolloutProgress(inputs.rollout);
  const uncovered = formatSlotRanges(coverage.uncovered);

  const readyDraft: ConditionDraft = problem
    ? { type: 'Ready', status: 'False', reason: problem.reason, message: problem.message }
    : coverage.covered < slotCount
      ? {
          type: 'Ready',
          status: 'False',
          reason: 'SlotsNotCovered',
          message: `${coverage.covered} of ${slotCount} slots are owned by exactly one ready partition (not: ${uncovered}); ${readyInLayout} of ${plan.keep.length} partitions ready`,
        }
      : readyInLayout < plan.keep.length
        ? {
            type: 'Ready',
            status: 'False',
            reason: 'PartitionsNotReady',
            message: `${readyInLayout} of ${plan.keep.length} partitions ready`,
          }
        : gatewayReady < gatewayWant
          ? { type: 'Ready', status: 'False', reason: 'GatewayNotReady', message: `${gatewayReady} of ${gatewayWant} gateway pods ready` }
          : {
              type: 'Ready',
              status: 'True',
              reason: 'AllReady',
              message: `All ${slotCount} slots served by ${readyInLayout} ready partitions; ${gatewayReady} of ${gatewayWant} gateway pods ready`,
            };
  // A shared etcd comes before the partitions' own problems: it is the Mesh's, and may be their cause.
  const degradedDraft: ConditionDraft = problem
    ? { type: 'Degraded', status: 'True', reason: problem.reason, message: problem.message }
    : inputs.sharedEtcd
      ? { type: 'Degraded', status: 'True', reason: 'SharedEtcd', message: inputs.sharedEtcd }
      : degradedPartitions.length > 0
        ? {
            type: 'Degraded',
            status: 'True',
            reason: 'PartitionDegraded',
            message: degradedPartitions.map((p) => `${p.metadata.name}: ${condition(p, 'Degraded')!.message}`).join('; '),
          }
        : { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'No problem found' };
  const drafts = [
    readyDraft,
    moving ?? { type: 'Progressing', status: 'False', reason: 'Settled', message: 'The partitions and the gateway match the spec' },
    degradedDraft,
    ...(inputs.rollout ? [rolloutHaltedDraft(inputs.rollout)] : []),
  ] satisfies ConditionDraft[];

  const status: MeshStatus = {
    observedGeneration: generation,
    readyPartitions: readyInLayout,
    slotsCovered: coverage.covered,
    uncoveredSlots: uncovered,
    partitions: entries,
    gateway: { replicas: gateway?.status?.replicas ?? 0, readyReplicas: gatewayReady, service: meshNames.gatewayService(mesh) },
    ...(inputs.rollout ? { rollout: inputs.rollout } : {}),
    conditions: drafts.map((d) => settle(d, previous, generation, now)),
  };
  return status;
}

/** Whether the live status already says what `desired` says (so no write is needed). */
export function meshStatusUpToDate(desired: MeshStatus, live: MeshStatus | undefined): boolean {
  return sameStatus(desired, live ?? {});
}
