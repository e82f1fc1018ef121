// The watchdog's decisions, apart from any I/O: what a member's signals say about it
// (`classifyMember`), where it stands on the failure ladder and what to do next
// (`nextLadderLevel`), and whether the bounds let that action happen (`admitAction`,
// `systemicFailure`). Time is always passed in, so every rule is a table test.
// The data plane's exit codes and termination messages are read through the contract
// (@meshwork/contract, exit-codes.ts), which the data plane exits with.
import { ExitCode, isVolumeFaultTermination } from '@meshwork/contract';
import { watchdogSpecDefaults, type FencingPolicy, type RemediationAction, type WatchdogSpec } from '../api/v1alpha1.ts';

/** The watchdog's settings in milliseconds, every optional field filled. */
export interface WatchdogSettings {
  mode: 'Enforce' | 'Observe';
  tolerationMs: number;
  healthyResetMs: number;
  nodeLostMs: number;
  maxConcurrent: number;
  actionsPerHour: number;
  fencing: FencingPolicy;
  recoveryMs: number;
  probeTimeoutMs: number;
  probePeriodMs: number;
  nodeProbationMs: number;
}

/** Production defaults: the CRD's defaults of spec.watchdog, from the one definition. */
export const watchdogDefaults = watchdogSpecDefaults satisfies Required<WatchdogSpec>;

/** The settings of a partition's `spec.watchdog`, defaults filled in. */
export function watchdogSettings(spec: Partial<WatchdogSpec> | undefined): WatchdogSettings {
  const s = { ...watchdogDefaults, ...spec };
  return {
    mode: s.mode,
    tolerationMs: s.tolerationSeconds * 1000,
    healthyResetMs: s.healthyResetSeconds * 1000,
    nodeLostMs: s.nodeLostSeconds * 1000,
    maxConcurrent: s.maxConcurrent,
    actionsPerHour: s.actionsPerHour,
    fencing: s.fencing,
    recoveryMs: s.recoverySeconds * 1000,
    probeTimeoutMs: s.probeTimeoutSeconds * 1000,
    probePeriodMs: s.probePeriodSeconds * 1000,
    nodeProbationMs: s.nodeProbationSeconds * 1000,
  };
}

/** Outcome of the operator's own probe of a member's /healthz/deep. */
export type DeepCheck = 'ok' | 'failing' | 'unavailable' | 'unknown';

/** What the watchdog observed about one member, gathered from pods, nodes, Leases, PVCs and its probe. */
export interface MemberSignals {
  /** When the pod object was created (ms). */
  podCreated: number;
  scheduled: boolean;
  ready: boolean;
  terminating: boolean;
  /** The container's last termination, if any. */
  lastTermination?: { exitCode: number; message?: string; finishedAt: number };
  /** The container's waiting reason (CrashLoopBackOff, ...). */
  waitingReason?: string;
  deepCheck: DeepCheck;
  /** The member's node, when it has one and the node is known. */
  node?: { ready: boolean; leaseRenewed?: number; leaseDurationMs?: number; notReadySince?: number };
  /** For an unscheduled pod: a node its volumes are bound to that it can no longer run on. */
  pinnedTo?: { node: string; why: 'lost' | 'unsuitable' };
  /** For an unscheduled pod: why the scheduler found no node for it. */
  schedulerMessage?: string;
  /**
   * The pod's owner lease in etcd (ADR 29), when known: alive (its record exists), or expired
   * (the record this pod's process wrote at `registeredAt` is gone since `goneAt`, ms).
   */
  ownerLease?: { live: true; registeredAt: number } | { live: false; registeredAt: number; goneAt: number };
}

/** What the signals say: healthy, a soft failure (tolerated for a while), or a hard one. */
export type Verdict =
  | { kind: 'healthy' }
  /** `heartbeat`: the last renewal of the node's Lease, when the member has a node. */
  | { kind: 'failing'; reason: 'NotReady' | 'DeepCheckFailing' | 'CrashLoop' | 'Terminating'; heartbeat?: number }
  /** No node takes the pod, for a reason other than its volumes (capacity, affinity): the scheduler's message. */
  | { kind: 'failing'; reason: 'Unschedulable' | 'InsufficientCapacity'; message?: string; heartbeat?: undefined }
  /** Its process stopped renewing its owner lease while its node is fine: hung (or cut off from etcd). */
  | { kind: 'leaseExpired'; reason: 'OwnerLeaseExpired'; at: number }
  /** The node stopped heartbeating, but not yet for `nodeLostSeconds`: nothing can be done through it, so wait. */
  | { kind: 'nodeUnreachable'; reason: 'NodeUnreachable'; lostAt: number }
  | { kind: 'nodeLost'; reason: 'NodeLost' }
  | { kind: 'volumeFault'; reason: 'VolumeFault'; at: number }
  /** The pod cannot listen on its address on this node: move it (level 2). */
  | { kind: 'listenFailed'; reason: 'ListenFailed'; at: number }
  /** Its configuration or command is wrong: no repair can help, a person must fix the MeshPartition. */
  | { kind: 'misconfigured'; reason: 'InvalidConfiguration'; message: string }
  /** etcd or S3 did not answer at start: systemic, not this member's fault; nothing to repair here. */
  | { kind: 'storesUnreachable'; reason: 'StoresUnreachable' }
  | { kind: 'pinned'; reason: 'VolumePinnedToLostNode' | 'VolumePinnedToUnsuitableNode' };

/**
 * Slack when comparing a pod's creationTimestamp (whole seconds, the API server's clock) with
 * the operator's own times.
 */
export const timestampSlackMs = 5000;

/** Default Lease duration of a kubelet, used when a Lease does not say. */
const defaultLeaseDurationMs = 40_000;
/**
 * How long an owner record must stay missing before its lease counts as expired: a process
 * whose lease lapsed while it could still reach etcd re-acquires within this (its first retry
 * is after 200 ms), and the one read of the slot map that missed it is not acted on.
 */
export const ownerLeaseExpiryGraceMs = 1500;
/**
 * A process renews its 10 s owner lease every 3.3 s, so it stopped at least 6.7 s before its
 * record went; a node heartbeat later than 5 s before that shows the node outlived the process.
 */
const heartbeatAfterStallMs = 5000;
/** While a silent node's member keeps renewing its owner lease, how often to look again. */
const ownerLeaseRecheckMs = 10_000;
/** The scheduler's reason for a node where the pod's bound volumes cannot be used (today's wording, and older releases'). */
const volumeConflict = /didn't match PersistentVolume's node affinity|volume node affinity conflict/i;

/** Whether the member's owner lease has expired (and stayed so past the grace). */
function ownerLeaseExpired(signals: MemberSignals, now: number): boolean {
  const owner = signals.ownerLease;
  return owner !== undefined && !owner.live && now - owner.goneAt >= ownerLeaseExpiryGraceMs;
}

/** Whether a termination is the data plane's volume-fault exit. */
export function isVolumeFault(termination: { exitCode: number; message?: string } | undefined): boolean {
  return termination !== undefined && isVolumeFaultTermination(termination);
}

/** Reads a member's signals into a verdict. */
export function classifyMember(signals: MemberSignals, now: number, settings: WatchdogSettings): Verdict {
  const node = signals.node;
  const leaseExpired = ownerLeaseExpired(signals, now);
  let nodeFresh = false;
  if (signals.scheduled && node) {
    // The member's own lease decides what the node's silence cannot (ADR 29): a NotReady node
    // whose member let its owner lease expire holds nothing that can still commit, so the
    // member is fenced at once; a member still renewing is alive, and never fenced.
    if (!node.ready && leaseExpired) return { kind: 'nodeLost', reason: 'NodeLost' };
    // Without a Lease, the Ready condition's last transition is the last sign of life.
    const renewed = node.leaseRenewed ?? (node.ready ? undefined : node.notReadySince);
    const leaseAge = renewed === undefined ? Infinity : now - renewed;
    const fresh = leaseAge <= (node.leaseDurationMs ?? defaultLeaseDurationMs);
    nodeFresh = fresh && node.ready;
    if (!fresh && signals.ownerLease?.live)
      return { kind: 'nodeUnreachable', reason: 'NodeUnreachable', lostAt: now + ownerLeaseRecheckMs };
    // Never act through a node whose Lease is fresh as if it were lost; never act through a silent one at all.
    if (!fresh) {
      const lostAt = (renewed ?? now) + settings.nodeLostMs;
      if (!node.ready && now >= lostAt) return { kind: 'nodeLost', reason: 'NodeLost' };
      return { kind: 'nodeUnreachable', reason: 'NodeUnreachable', lostAt: node.ready ? Math.max(lostAt, now + 1000) : lostAt };
    }
  }
  if (!signals.scheduled && !signals.terminating) {
    // New volumes help only when the scheduler says the old ones are what keeps every node away.
    const message = signals.schedulerMessage;
    if (signals.pinnedTo && message !== undefined && volumeConflict.test(message)) {
      return { kind: 'pinned', reason: signals.pinnedTo.why === 'lost' ? 'VolumePinnedToLostNode' : 'VolumePinnedToUnsuitableNode' };
    }
    if (message !== undefined) {
      return { kind: 'failing', reason: /\bInsufficient\b/.test(message) ? 'InsufficientCapacity' : 'Unschedulable', message };
    }
  }
  const termination = signals.lastTermination;
  // A hang: the process stopped renewing its owner lease on a node that is fine, and did not
  // die (a crash is the kubelet's to restart, and shows as a later termination).
  if (
    leaseExpired &&
    nodeFresh &&
    !signals.terminating &&
    signals.ownerLease !== undefined &&
    !signals.ownerLease.live &&
    // Only a record this pod's process was seen to write and lose is a hang; one never seen may be a slow start.
    Number.isFinite(signals.ownerLease.registeredAt) &&
    !signals.waitingReason &&
    !(termination && termination.finishedAt >= signals.ownerLease.registeredAt - timestampSlackMs)
  ) {
    const goneAt = signals.ownerLease.goneAt;
    // The node must have heartbeated after the process stopped renewing, or it may be the node
    // that died (powered off, frozen) and is not yet NotReady: then it is fenced once it is,
    // not restarted through it.
    if ((node?.leaseRenewed ?? -Infinity) <= goneAt - heartbeatAfterStallMs) {
      return { kind: 'nodeUnreachable', reason: 'NodeUnreachable', lostAt: now + ownerLeaseRecheckMs / 5 };
    }
    return { kind: 'leaseExpired', reason: 'OwnerLeaseExpired', at: goneAt };
  }
  // How the process last died says what is wrong, as long as it has not come back since.
  if (!signals.terminating && termination && !(signals.ready && signals.deepCheck !== 'failing')) {
    if (isVolumeFault(termination)) return { kind: 'volumeFault', reason: 'VolumeFault', at: termination.finishedAt };
    const code = termination.exitCode;
    if (code === ExitCode.configInvalid || code === ExitCode.usage) {
      return { kind: 'misconfigured', reason: 'InvalidConfiguration', message: termination.message ?? `exit code ${code}` };
    }
    if (code === ExitCode.storeUnreachable) return { kind: 'storesUnreachable', reason: 'StoresUnreachable' };
    if (code === ExitCode.listenFailed) return { kind: 'listenFailed', reason: 'ListenFailed', at: termination.finishedAt };
  }
  const heartbeat = signals.scheduled && node?.leaseRenewed !== undefined ? { heartbeat: node.leaseRenewed } : {};
  if (signals.terminating) return { kind: 'failing', reason: 'Terminating', ...heartbeat };
  if (!signals.scheduled) return { kind: 'failing', reason: 'Unschedulable' };
  if (signals.waitingReason === 'CrashLoopBackOff') return { kind: 'failing', reason: 'CrashLoop', ...heartbeat };
  if (!signals.ready) return { kind: 'failing', reason: 'NotReady', ...heartbeat };
  if (signals.deepCheck === 'failing') return { kind: 'failing', reason: 'DeepCheckFailing', ...heartbeat };
  return { kind: 'healthy' };
}

/** A member's place on the ladder, as persisted in status.members[]. Times in ms. */
export interface LadderState {
  level: number;
  healthy: boolean;
  /** When the member last turned healthy or unhealthy. */
  since: number;
  lastAction?: RemediationAction;
  lastActionTime?: number;
  /** The uid of the pod the last action was taken on. */
  lastActionPod?: string;
}

/** What else the ladder needs to know about the member and the watchdog. */
export interface LadderContext {
  podCreated: number;
  /** The uid of the member's current pod, if it has one. */
  podUid?: string;
  /** A person asked for the ladder to start over for actions before this time (ms). */
  resetRequestedAt?: number;
  /** When remediation last resumed after a pause: members get the recovery allowance from then, as after a restart. */
  resumedAt?: number;
}

/** One step the watchdog wants to take. */
export interface PlannedAction {
  action: RemediationAction;
  level: number;
  reason: string;
}

export interface LadderDecision {
  state: LadderState;
  action?: PlannedAction;
  /** When to look at this member again even if nothing changes (ms), if a deadline is running. */
  wakeAt?: number;
}

/** The highest level: the watchdog has given up on the member. */
export const gaveUpLevel = 4;

/** The action of a ladder level; level 2 fences instead of rescheduling when the node is lost. */
export function actionForLevel(level: number, verdict: Verdict): RemediationAction {
  if (level >= gaveUpLevel) return 'GiveUp';
  if (level === 3) return 'RecreateVolume';
  if (level === 2) return verdict.kind === 'nodeLost' ? 'Fence' : 'Reschedule';
  return 'Restart';
}

/**
 * The member's next ladder state and the action to take, if any. Level 0 observes: a
 * failure is tolerated for `toleration`; past it the member goes one level up (restart,
 * reschedule, recreate the volume, give up). After an action the member has `recovery`
 * to come back; once back, it must stay healthy for `healthyReset` before its level returns
 * to 0, and a failure inside that window goes on from the level it reached. Hard signals
 * skip ahead: a volume fault or a volume pinned to a node it cannot run on goes to level 3,
 * a lost node to level 2 (fencing), but only when they are newer than the last action.
 */
export function nextLadderLevel(
  previous: LadderState | undefined,
  verdict: Verdict,
  now: number,
  settings: WatchdogSettings,
  context: LadderContext,
): LadderDecision {
  const healthy = verdict.kind === 'healthy';
  let state: LadderState = previous
    ? { ...previous, healthy, since: previous.healthy === healthy ? previous.since : now }
    : // A member first seen failing has been so since its pod started, as far as anyone knows.
      { level: 0, healthy, since: healthy ? now : Math.min(now, context.podCreated) };

  if (context.resetRequestedAt !== undefined && state.level > 0 && (state.lastActionTime ?? 0) < context.resetRequestedAt) {
    state = { ...state, level: 0, lastAction: 'Reset', lastActionTime: now };
    return { state, action: { action: 'Reset', level: 0, reason: 'ResetRequested' } };
  }

  if (healthy) {
    if (state.level === 0) return { state };
    const probationStart = Math.max(state.since, state.lastActionTime ?? 0);
    const probationEnd = probationStart + settings.healthyResetMs;
    if (now >= probationEnd) return { state: { ...state, level: 0 } };
    return { state, wakeAt: probationEnd };
  }

  if (state.level >= gaveUpLevel) return { state };
  if (verdict.kind === 'nodeUnreachable') return { state, wakeAt: verdict.lostAt };

  const lastAction = state.lastActionTime ?? -Infinity;
  const take = (level: number): LadderDecision => {
    const target = Math.min(level, gaveUpLevel);
    const action = actionForLevel(target, verdict);
    const next: LadderState = { ...state, level: target, lastAction: action, lastActionTime: now };
    if (context.podUid) next.lastActionPod = context.podUid;
    else delete next.lastActionPod;
    return { state: next, action: { action, level: target, reason: verdict.reason } };
  };
  // A hard signal acts at once, but only when it is news since the last action: about another
  // pod than the one acted on (which may still be on its way out), or a later termination.
  const otherPod = state.lastActionPod !== undefined ? context.podUid !== state.lastActionPod : context.podCreated > lastAction;
  if (verdict.kind === 'volumeFault' && verdict.at > lastAction) return take(state.level < 3 ? 3 : state.level + 1);
  if (verdict.kind === 'pinned' && otherPod) return take(state.level < 3 ? 3 : state.level + 1);
  // A restart cannot take a pod off a lost node (nobody is there to stop it): fence it.
  if (verdict.kind === 'nodeLost' && (otherPod || state.lastAction === 'Restart')) return take(state.level < 2 ? 2 : state.level + 1);
  if (verdict.kind === 'listenFailed' && verdict.at > lastAction) return take(state.level < 2 ? 2 : state.level + 1);
  if (verdict.kind === 'leaseExpired' && verdict.at > lastAction) return take(state.level + 1);
  // Neither a restart nor a move can fix a wrong configuration or a store that is down.
  if (verdict.kind === 'misconfigured' || verdict.kind === 'storesUnreachable') return { state };

  // A pod no node will take is the scheduler's and the cluster's problem (capacity, affinity):
  // deleting or moving it changes nothing, so the watchdog only reports it.
  if (verdict.kind === 'failing' && (verdict.reason === 'Unschedulable' || verdict.reason === 'InsufficientCapacity')) return { state };

  // The allowances for a starting pod and for an action last only until the member is first
  // healthy: a member that came back and then failed again gets the toleration alone.
  const deadline = Math.max(
    state.since + settings.tolerationMs,
    state.since <= context.podCreated + timestampSlackMs ? context.podCreated + settings.recoveryMs : -Infinity,
    state.since <= lastAction ? lastAction + settings.recoveryMs : -Infinity,
    // Members come back from a systemic outage one by one, like after a restart.
    (context.resumedAt ?? -Infinity) + settings.recoveryMs,
  );
  if (now < deadline) return { state, wakeAt: deadline };
  // A node that has not heartbeated since the member went bad may be the one failing: the
  // Lease decides that, so wait for the next renewal (or for the node to count as lost).
  if (verdict.kind === 'failing' && verdict.heartbeat !== undefined && verdict.heartbeat < state.since)
    return { state, wakeAt: now + 2000 };
  return take(state.level + 1);
}

/**
 * Whether a node's unsuitable mark has served its probation (ADR 30): the node has been Ready
 * with a fresh Lease since `readySince` (undefined: it is not), and both that and the mark
 * (`markedAt`, the label's value in seconds) are at least `probationMs` old.
 */
export function probationServed(readySince: number | undefined, markedAt: string, probationMs: number, now: number): boolean {
  if (readySince === undefined) return false;
  const marked = Number(markedAt) * 1000;
  return now - Math.max(readySince, Number.isNaN(marked) ? 0 : marked) >= probationMs;
}

/** Why an action may not happen now. */
export type Refusal = 'Observe' | 'Paused' | 'MaxConcurrent' | 'ActionBudget';

/** The refusals that leave a due action undone (Observe records it as an intention instead). */
export const refusals: readonly Exclude<Refusal, 'Observe'>[] = ['Paused', 'MaxConcurrent', 'ActionBudget'];

export interface BoundsContext {
  settings: WatchdogSettings;
  paused: boolean;
  /** Other members of the partition whose repair has not yet held. */
  repairsInProgress: number;
  /** Actions performed on the partition in the last hour. */
  actionsLastHour: number;
}

/** Whether the bounds admit `action`: undefined when it may be performed, else why not. */
export function admitAction(action: RemediationAction, bounds: BoundsContext): Refusal | undefined {
  if (bounds.paused) return 'Paused';
  if (action === 'Reset') return undefined;
  if (bounds.settings.mode === 'Observe') return 'Observe';
  // Giving up only records; it frees a repair slot rather than taking one.
  if (action === 'GiveUp') return undefined;
  if (bounds.repairsInProgress >= bounds.settings.maxConcurrent) return 'MaxConcurrent';
  if (bounds.actionsLastHour >= bounds.settings.actionsPerHour) return 'ActionBudget';
  return undefined;
}

/** Whether a failing member is still starting: its pod is young and it has not been healthy in it. */
export function stillStarting(state: LadderState, podCreated: number, now: number, settings: WatchdogSettings): boolean {
  return !state.healthy && state.since <= podCreated + timestampSlackMs && now - podCreated < settings.recoveryMs;
}

/** Whether a member's repair is still running: it was acted on and has not been healthy since. */
export function repairInProgress(state: LadderState): boolean {
  if (state.level === 0 || state.level >= gaveUpLevel || state.lastActionTime === undefined) return false;
  return !state.healthy || state.since < state.lastActionTime;
}

/** Whether so many members are unhealthy that the failure is systemic and nothing should be repaired. */
export function systemicFailure(unhealthy: number, total: number, maxUnhealthyPercent: number): boolean {
  if (total === 0) return false;
  return (unhealthy * 100) / total > maxUnhealthyPercent;
}
