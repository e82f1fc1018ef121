// The MeshPartition's status, computed from what the StatefulSet and its pods report.
// Conditions follow metav1.Condition: Ready is the summary, a condition's
// lastTransitionTime moves only when its status does, and each carries observedGeneration.
import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { Condition, Member, MemberHealth, MeshPartition, MeshPartitionStatus } from '../api/v1alpha1.ts';
import { sameStatus } from '../api/status-equality.ts';
import { selectorString, slotsText } from '../specs/common.ts';
import type { Assessment } from '../watchdog/assess.ts';

/** A problem the reconciler met while applying, reported through Degraded. */
export interface ApplyProblem {
  reason: string;
  message: string;
}

export interface StatusInputs {
  partition: MeshPartition;
  statefulSet: V1StatefulSet | undefined;
  pods: readonly V1Pod[];
  problem?: ApplyProblem;
  now: Date;
  /** The watchdog's view: members with their ladder state, its history, and the pause. */
  watchdog?: { assessment: Assessment; paused: boolean; pauseMessage: string };
}

type ConditionDraft = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/** Keeps the previous transition time when a condition's status did not change. */
function settle(draft: ConditionDraft, previous: readonly Condition[], generation: number, now: Date): Condition {
  const before = previous.find((c) => c.type === draft.type);
  const lastTransitionTime =
    before && before.status === draft.status ? before.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    type: draft.type,
    status: draft.status,
    observedGeneration: generation,
    lastTransitionTime,
    reason: draft.reason,
    message: draft.message,
  };
}

function ordinal(pod: V1Pod): number {
  const match = /-(\d+)$/.exec(pod.metadata?.name ?? '');
  return match ? Number(match[1]) : Number.MAX_SAFE_INTEGER;
}

/** A pod cut down to what membership needs, so 1,500 cached pods stay small. */
export function slimPod(pod: V1Pod): V1Pod {
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  const slim: V1Pod = {
    metadata: {
      name: pod.metadata?.name,
      namespace: pod.metadata?.namespace,
      resourceVersion: pod.metadata?.resourceVersion,
      labels: pod.metadata?.labels,
    },
    spec: { containers: [], ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}) },
    status: { phase: pod.status?.phase, ...(ready ? { conditions: [{ type: 'Ready', status: ready.status }] } : {}) },
  };
  return slim;
}

/** How a member pod is doing, from its phase and Ready condition. */
export function memberHealth(pod: V1Pod): MemberHealth {
  const phase = pod.status?.phase;
  if (phase === 'Pending' || !pod.spec?.nodeName) return 'Pending';
  if (phase === 'Failed') return 'Unhealthy';
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  if (phase === 'Running') return ready?.status === 'True' ? 'Healthy' : 'Unhealthy';
  return 'Unknown';
}

/** The members list: one entry per pod, in ordinal order. */
export function members(pods: readonly V1Pod[]): Member[] {
  return [...pods]
    .sort((a, b) => ordinal(a) - ordinal(b))
    .map((pod) => {
      const member: Member = { pod: pod.metadata?.name ?? '', health: memberHealth(pod), level: 0 };
      if (pod.spec?.nodeName) member.node = pod.spec.nodeName;
      const revision = pod.metadata?.labels?.['controller-revision-hash'];
      if (revision) member.revision = revision;
      return member;
    });
}

/** Why the StatefulSet is still moving, or undefined when it has settled on the spec. */
function progress(partition: MeshPartition, sts: V1StatefulSet | undefined): ConditionDraft | undefined {
  if (!sts) return { type: 'Progressing', status: 'True', reason: 'Creating', message: 'The StatefulSet does not exist yet' };
  const status = sts.status;
  if ((status?.observedGeneration ?? 0) < (sts.metadata?.generation ?? 0)) {
    return {
      type: 'Progressing',
      status: 'True',
      reason: 'Applying',
      message: 'The StatefulSet controller has not yet seen the latest spec',
    };
  }
  const want = partition.spec.replicas;
  const have = status?.replicas ?? 0;
  if (have !== want) return { type: 'Progressing', status: 'True', reason: 'Scaling', message: `${have} of ${want} replicas exist` };
  const held = partition.spec.rollout?.partition ?? 0;
  const updated = status?.updatedReplicas ?? 0;
  if (status?.updateRevision && status.currentRevision !== status.updateRevision && updated < want - held) {
    return {
      type: 'Progressing',
      status: 'True',
      reason: 'RollingUpdate',
      message: `${updated} of ${want - held} replicas run revision ${status.updateRevision}`,
    };
  }
  return undefined;
}

/**
 * Degraded for members no node takes (reason InsufficientCapacity when the scheduler names a
 * resource no node has enough of), with the scheduler's own message: the watchdog does not act
 * on them, since neither a restart nor new volumes would place them (ADR 30).
 */
function unschedulableCondition(members: readonly { pod: string; reason: string; message: string }[]): ConditionDraft {
  const capacity = members.some((m) => m.reason === 'InsufficientCapacity');
  return {
    type: 'Degraded',
    status: 'True',
    reason: capacity ? 'InsufficientCapacity' : 'Unschedulable',
    message: members
      .map((m) => `${m.pod} cannot be scheduled: ${m.message}`)
      .join('; ')
      .slice(0, 1024),
  };
}

/** Computes the whole status the operator owns. */
export function computeStatus(inputs: StatusInputs): MeshPartitionStatus {
  const { partition, statefulSet: sts, pods, problem, now, watchdog } = inputs;
  const generation = partition.metadata.generation ?? 0;
  const previous = partition.status?.conditions ?? [];
  const want = partition.spec.replicas;
  const ready = sts?.status?.readyReplicas ?? 0;
  const moving = progress(partition, sts);
  const drafts: ConditionDraft[] = [
    moving && problem === undefined
      ? { type: 'Ready', status: 'False', reason: moving.reason, message: `${moving.message}; ${ready} of ${want} replicas ready` }
      : problem
        ? { type: 'Ready', status: 'False', reason: problem.reason, message: problem.message }
        : ready >= want
          ? { type: 'Ready', status: 'True', reason: 'AllReplicasReady', message: `${ready} of ${want} replicas ready` }
          : { type: 'Ready', status: 'False', reason: 'ReplicasNotReady', message: `${ready} of ${want} replicas ready` },
    moving ?? { type: 'Progressing', status: 'False', reason: 'Settled', message: 'The StatefulSet matches the spec' },
    problem
      ? { type: 'Degraded', status: 'True', reason: problem.reason, message: problem.message }
      : watchdog && watchdog.assessment.misconfigured.length > 0
        ? {
            type: 'Degraded',
            status: 'True',
            reason: 'InvalidConfiguration',
            message: watchdog.assessment.misconfigured
              .map((m) => `${m.pod}: ${m.message}`)
              .join('; ')
              .slice(0, 1024),
          }
        : watchdog && watchdog.assessment.gaveUp.length > 0
          ? {
              type: 'Degraded',
              status: 'True',
              reason: 'RemediationExhausted',
              message: `The watchdog gave up on ${watchdog.assessment.gaveUp.join(', ')}: every level of its ladder failed; a person must replace the hardware and reset them`,
            }
          : watchdog && watchdog.assessment.unschedulable.length > 0
            ? unschedulableCondition(watchdog.assessment.unschedulable)
            : { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'No problem found' },
  ];
  if (watchdog) {
    drafts.push(
      watchdog.paused
        ? { type: 'RemediationPaused', status: 'True', reason: 'TooManyUnhealthy', message: watchdog.pauseMessage }
        : { type: 'RemediationPaused', status: 'False', reason: 'AsExpected', message: 'The watchdog repairs members within its bounds' },
    );
  }
  const status: MeshPartitionStatus = {
    observedGeneration: generation,
    replicas: sts?.status?.replicas ?? 0,
    readyReplicas: ready,
    selector: selectorString(partition),
    slots: slotsText(partition.spec.slots),
    conditions: drafts.map((d) => settle(d, previous, generation, now)),
    members: watchdog ? watchdog.assessment.members : members(pods),
  };
  if (watchdog && watchdog.assessment.remediations.length > 0) status.remediations = watchdog.assessment.remediations;
  const image = sts?.spec?.template.spec?.containers.find((c) => c.name === 'partition')?.image;
  if (image) status.image = image;
  if (sts?.status?.currentRevision) status.currentRevision = sts.status.currentRevision;
  if (sts?.status?.updateRevision) status.updateRevision = sts.status.updateRevision;
  return status;
}

/** Whether the live status already says what `desired` says (so no write is needed). */
export function statusUpToDate(desired: MeshPartitionStatus, live: MeshPartitionStatus | undefined): boolean {
  const liveMembers = live?.members ?? [];
  const normalized = { ...live, members: liveMembers.length === 0 ? [] : liveMembers };
  return sameStatus(desired, normalized);
}
