// One pass of the watchdog over one partition, without I/O: every member's signals become a
// verdict, the ladder picks a next step, the bounds admit it or not, and the result is the
// status the partition should show (members, history, conditions) and the actions to take.
import type { V1Pod } from '@kubernetes/client-node';
import { watchdogResetAnnotation } from '@meshwork/contract';
import {
  maxRemediations,
  type Member,
  type MemberHealth,
  type MeshPartition,
  type MeshPartitionStatus,
  type Remediation,
  type RemediationAction,
} from '../api/v1alpha1.ts';
import { names } from '../specs/common.ts';
import {
  admitAction,
  classifyMember,
  gaveUpLevel,
  nextLadderLevel,
  repairInProgress,
  stillStarting,
  watchdogSettings,
  type LadderState,
  type MemberSignals,
  type Refusal,
  type Verdict,
  type WatchdogSettings,
} from './ladder.ts';

/** An action to carry out after the status that records it is written. */
export interface MemberAction {
  pod: string;
  /** The uid of the pod acted on, so a successor with the same name is never hit. */
  uid?: string;
  node?: string;
  action: RemediationAction;
  level: number;
  reason: string;
  /** The member's node is lost: removing its pod needs fencing. */
  nodeLost: boolean;
  /** Performed, or only recorded (Observe mode). */
  outcome: 'Performed' | 'Observed';
}

/** What the watchdog concluded for one partition. */
export interface Assessment {
  members: Member[];
  remediations: Remediation[];
  actions: MemberAction[];
  /** Members still failing after the whole ladder. */
  gaveUp: string[];
  /** Members no node takes for a reason other than their volumes, with the scheduler's message. */
  unschedulable: { pod: string; reason: 'Unschedulable' | 'InsufficientCapacity'; message: string }[];
  /** Members whose process says its configuration is invalid, with what it said. */
  misconfigured: { pod: string; message: string }[];
  /** Why an action was held back, per pod (for a log line, not for status). */
  refused: { pod: string; action: RemediationAction; refusal: Refusal }[];
  /** Members failing for long enough to count toward the cluster-wide bound (not ones still starting). */
  unhealthy: number;
  total: number;
  /** The earliest time something is due (ms). */
  wakeAt?: number;
  levels: number[];
  /**
   * Members healthy again in this pass after an unhealthy spell: since when they were unhealthy
   * (ms) and the level of the last action taken in that spell (0: none).
   */
  recovered: { pod: string; unhealthySince: number; level: number }[];
}

export interface AssessInputs {
  partition: MeshPartition;
  pods: readonly V1Pod[];
  /** The status as last written (newer than the cache when this process just wrote it). */
  live: MeshPartitionStatus | undefined;
  signals: (pod: V1Pod) => MemberSignals;
  paused: boolean;
  resumedAt?: number;
  now: number;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function parse(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : t;
}

function ordinal(name: string): number {
  const match = /-(\d+)$/.exec(name);
  return match ? Number(match[1]) : Number.MAX_SAFE_INTEGER;
}

/** The ladder state a status entry records. */
export function ladderStateOf(member: Member | undefined): LadderState | undefined {
  if (!member) return undefined;
  const since = parse(member.since);
  if (since === undefined) return undefined;
  const lastActionTime = parse(member.lastActionTime);
  return {
    level: member.level,
    healthy: member.health === 'Healthy',
    since,
    ...(member.lastAction ? { lastAction: member.lastAction } : {}),
    ...(lastActionTime !== undefined ? { lastActionTime } : {}),
    ...(member.lastActionPod ? { lastActionPod: member.lastActionPod } : {}),
  };
}

function healthOf(verdict: Verdict, signals: MemberSignals): MemberHealth {
  if (verdict.kind === 'healthy') return 'Healthy';
  if (verdict.kind === 'pinned' || !signals.scheduled) return 'Pending';
  if (verdict.kind === 'nodeUnreachable') return 'Unknown';
  return 'Unhealthy';
}

/** Actions performed on the partition within the hour before `now`, from its history. */
export function actionsInLastHour(history: readonly Remediation[], now: number): number {
  return history.filter(
    (r) => r.outcome === 'Performed' && r.action !== 'GiveUp' && r.action !== 'Reset' && now - (parse(r.time) ?? 0) < 3_600_000,
  ).length;
}

/** Runs the watchdog over one partition's members. */
export function assessPartition(inputs: AssessInputs): Assessment {
  const { partition, live, now } = inputs;
  const settings: WatchdogSettings = watchdogSettings(partition.spec.watchdog);
  const previous = new Map((live?.members ?? []).map((m) => [m.pod, m]));
  const history = [...(live?.remediations ?? [])];
  const resetRequestedAt = parse(partition.metadata.annotations?.[watchdogResetAnnotation]);

  // Every ordinal the StatefulSet should have is a member, even while its pod is being replaced,
  // so a member's ladder state survives the pod it acted on.
  const byName = new Map(inputs.pods.map((p) => [p.metadata?.name ?? '', p]));
  const wanted = Array.from({ length: partition.spec.replicas }, (_, i) => `${names.statefulSet(partition)}-${i}`);
  const podNames = [...new Set([...wanted, ...byName.keys()])].sort((a, b) => ordinal(a) - ordinal(b));

  const evaluated = podNames.map((name) => {
    const pod = byName.get(name);
    const signals: MemberSignals = pod
      ? inputs.signals(pod)
      : { podCreated: now, scheduled: false, ready: false, terminating: false, deepCheck: 'unknown' };
    const verdict = classifyMember(signals, now, settings);
    return { name, pod, signals, verdict, before: ladderStateOf(previous.get(name)) };
  });

  const result: Assessment = {
    members: [],
    remediations: history,
    actions: [],
    gaveUp: [],
    unschedulable: [],
    misconfigured: [],
    refused: [],
    unhealthy: 0,
    total: evaluated.length,
    levels: [],
    recovered: [],
  };
  let performedThisHour = actionsInLastHour(history, now);
  const states = new Map<string, LadderState | undefined>(evaluated.map((e) => [e.name, e.before]));
  const wake = (t: number | undefined): void => {
    if (t !== undefined && (result.wakeAt === undefined || t < result.wakeAt)) result.wakeAt = t;
  };

  for (const { name, pod, signals, verdict, before } of evaluated) {
    const decision = nextLadderLevel(before, verdict, now, settings, {
      podCreated: signals.podCreated,
      ...(pod?.metadata?.uid ? { podUid: pod.metadata.uid } : {}),
      ...(resetRequestedAt !== undefined ? { resetRequestedAt } : {}),
      ...(inputs.resumedAt !== undefined ? { resumedAt: inputs.resumedAt } : {}),
    });
    // A member still starting (a new pod within its recovery allowance, a soft failure) is not
    // evidence of a systemic failure: creating a partition must not pause the watchdog.
    // Nor is a pod no node takes: the watchdog does nothing for it, so it cannot hold anything back.
    const starting = verdict.kind === 'failing' && stillStarting(decision.state, signals.podCreated, now, settings);
    const unscheduled = verdict.kind === 'failing' && (verdict.reason === 'Unschedulable' || verdict.reason === 'InsufficientCapacity');
    if (unscheduled && pod && verdict.message !== undefined) {
      result.unschedulable.push({ pod: name, reason: verdict.reason, message: verdict.message });
    }
    if (verdict.kind !== 'healthy' && verdict.kind !== 'misconfigured' && !starting && !unscheduled) result.unhealthy++;
    if (verdict.kind === 'misconfigured') result.misconfigured.push({ pod: name, message: verdict.message });
    let state = decision.state;
    wake(decision.wakeAt);
    const planned = decision.action;
    if (planned) {
      const repairsInProgress = [...states].filter(([other, s]) => other !== name && s !== undefined && repairInProgress(s)).length;
      const refusal = admitAction(planned.action, {
        settings,
        paused: inputs.paused,
        repairsInProgress,
        actionsLastHour: performedThisHour,
      });
      if (refusal === undefined || refusal === 'Observe') {
        const outcome = refusal === 'Observe' ? 'Observed' : 'Performed';
        if (outcome === 'Performed' && planned.action !== 'GiveUp' && planned.action !== 'Reset') performedThisHour++;
        const node = pod?.spec?.nodeName;
        result.actions.push({
          pod: name,
          ...(pod?.metadata?.uid ? { uid: pod.metadata.uid } : {}),
          ...(node ? { node } : {}),
          action: planned.action,
          level: planned.level,
          reason: planned.reason,
          nodeLost: verdict.kind === 'nodeLost',
          outcome,
        });
        history.push({
          time: iso(now),
          pod: name,
          ...(node ? { node } : {}),
          level: planned.level,
          action: planned.action,
          reason: planned.reason,
          outcome,
        });
        // The member is looked at again once the action had time to work.
        wake(now + settings.recoveryMs);
      } else {
        // Held back: keep the ladder where it was and look again soon.
        state = { level: before?.level ?? 0, healthy: state.healthy, since: state.since };
        if (before?.lastAction) state.lastAction = before.lastAction;
        if (before?.lastActionTime !== undefined) state.lastActionTime = before.lastActionTime;
        if (before?.lastActionPod) state.lastActionPod = before.lastActionPod;
        result.refused.push({ pod: name, action: planned.action, refusal });
        wake(now + 5000);
      }
    }
    if (before && !before.healthy && state.healthy) {
      const actedInSpell = before.lastActionTime !== undefined && before.lastActionTime >= before.since;
      result.recovered.push({ pod: name, unhealthySince: before.since, level: actedInSpell ? before.level : 0 });
    }
    states.set(name, state);
    if (state.level >= gaveUpLevel && !state.healthy) result.gaveUp.push(name);
    result.levels.push(state.level);
    const member: Member = { pod: name, health: healthOf(verdict, signals), level: state.level, since: iso(state.since) };
    const node = pod?.spec?.nodeName;
    if (node) member.node = node;
    if (verdict.kind !== 'healthy') member.reason = pod ? verdict.reason : 'PodMissing';
    const revision = pod?.metadata?.labels?.['controller-revision-hash'];
    if (revision) member.revision = revision;
    if (state.lastAction) member.lastAction = state.lastAction;
    if (state.lastActionTime !== undefined) member.lastActionTime = iso(state.lastActionTime);
    if (state.lastActionPod) member.lastActionPod = state.lastActionPod;
    result.members.push(member);
  }
  result.remediations = history.slice(-maxRemediations);
  return result;
}
