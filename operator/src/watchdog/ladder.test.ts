import { describe, expect, it } from 'vitest';
import {
  admitAction,
  classifyMember,
  nextLadderLevel,
  probationServed,
  repairInProgress,
  systemicFailure,
  watchdogDefaults,
  watchdogSettings,
  type LadderState,
  type MemberSignals,
  type Verdict,
} from './ladder.ts';

const s = 1000;
const settings = watchdogSettings({ tolerationSeconds: 60, healthyResetSeconds: 600, nodeLostSeconds: 300, recoverySeconds: 180 });
const now = 1_000_000 * s;
const longAgo = now - 3600 * s;

const signals = (over: Partial<MemberSignals> = {}): MemberSignals => ({
  podCreated: longAgo,
  scheduled: true,
  ready: true,
  terminating: false,
  deepCheck: 'ok',
  node: { ready: true, leaseRenewed: now - 5 * s, leaseDurationMs: 40 * s },
  ...over,
});

describe('watchdogSettings', () => {
  it('fills production defaults that leave room for a slow start and a real node outage', () => {
    const d = watchdogSettings(undefined);
    expect(d).toEqual({
      mode: 'Enforce',
      tolerationMs: 60 * s,
      healthyResetMs: 600 * s,
      nodeLostMs: 300 * s,
      maxConcurrent: 1,
      actionsPerHour: 6,
      fencing: 'ForceDelete',
      recoveryMs: 180 * s,
      probeTimeoutMs: 5 * s,
      probePeriodMs: 10 * s,
      nodeProbationMs: 600 * s,
    });
    // A failure is tolerated for a while, a probe answers well within its period, and the
    // probation outlasts both the toleration and the recovery allowance.
    expect(d.tolerationMs).toBeLessThan(d.healthyResetMs);
    expect(d.tolerationMs).toBeLessThan(d.nodeLostMs);
    expect(d.probeTimeoutMs).toBeLessThan(d.probePeriodMs);
    expect(d.recoveryMs).toBeLessThan(d.healthyResetMs);
    // A node is only declared lost well after Kubernetes' own grace period (40 s) has passed.
    expect(d.nodeLostMs).toBeGreaterThan(40 * s);
    expect(watchdogDefaults.mode).toBe('Enforce');
  });

  it('keeps what the spec sets', () => {
    expect(watchdogSettings({ tolerationSeconds: 5, fencing: 'OutOfServiceTaint', mode: 'Observe' })).toMatchObject({
      tolerationMs: 5 * s,
      fencing: 'OutOfServiceTaint',
      mode: 'Observe',
    });
  });
});

const volumeMessage =
  "0/4 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 3 node(s) didn't match PersistentVolume's node affinity.";
const cpuMessage =
  '0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 Insufficient cpu. preemption: 0/3 nodes are available.';
const expired = (forMs: number): MemberSignals['ownerLease'] => ({ live: false, registeredAt: longAgo, goneAt: now - forMs });

describe('classifyMember', () => {
  it.each<[string, Partial<MemberSignals>, Verdict['kind'], string?]>([
    ['a ready member whose deep check passes', {}, 'healthy'],
    ['a ready member without a deep check', { deepCheck: 'unavailable' }, 'healthy'],
    ['a ready member not probed yet', { deepCheck: 'unknown' }, 'healthy'],
    ['a frozen member: Ready but its deep check times out', { deepCheck: 'failing' }, 'failing', 'DeepCheckFailing'],
    ["a failing member carries its node's last heartbeat", { ready: false }, 'failing', undefined],
    ['a member that is not ready', { ready: false }, 'failing', 'NotReady'],
    [
      'a crash-looping member',
      { ready: false, waitingReason: 'CrashLoopBackOff', lastTermination: { exitCode: 1, finishedAt: now - s } },
      'failing',
      'CrashLoop',
    ],
    ['a member being deleted', { terminating: true }, 'failing', 'Terminating'],
    ['an unscheduled member', { scheduled: false, ready: false, node: undefined }, 'failing', 'Unschedulable'],
    [
      'a member that exited with the volume-fault code',
      { ready: false, lastTermination: { exitCode: 4, finishedAt: now - s } },
      'volumeFault',
      'VolumeFault',
    ],
    [
      'a member whose termination message says volume fault',
      { ready: false, lastTermination: { exitCode: 1, message: 'volume fault: /data-2 is read-only', finishedAt: now - s } },
      'volumeFault',
    ],
    ['a member that came back healthy after a volume fault', { lastTermination: { exitCode: 4, finishedAt: now - s } }, 'healthy'],
    [
      'a member whose configuration is invalid',
      {
        ready: false,
        waitingReason: 'CrashLoopBackOff',
        lastTermination: { exitCode: 2, message: 'invalid configuration: MESHWORK_SLOTS: bad', finishedAt: now - s },
      },
      'misconfigured',
      'InvalidConfiguration',
    ],
    ['a member started with a wrong command', { ready: false, lastTermination: { exitCode: 64, finishedAt: now - s } }, 'misconfigured'],
    [
      'a member that found no store at start',
      { ready: false, lastTermination: { exitCode: 3, message: 'stores unreachable', finishedAt: now - s } },
      'storesUnreachable',
      'StoresUnreachable',
    ],
    [
      'a member that could not listen on its address',
      { ready: false, lastTermination: { exitCode: 6, finishedAt: now - s } },
      'listenFailed',
      'ListenFailed',
    ],
    [
      'a member that lost its slot lease is an ordinary crash',
      { ready: false, waitingReason: 'CrashLoopBackOff', lastTermination: { exitCode: 5, finishedAt: now - s } },
      'failing',
      'CrashLoop',
    ],
    [
      'a member on a node whose Lease is fresh but reports NotReady',
      { ready: false, node: { ready: false, leaseRenewed: now - 5 * s } },
      'failing',
      'NotReady',
    ],
    [
      'a member on a silent node, before nodeLost',
      { ready: false, node: { ready: false, leaseRenewed: now - 100 * s } },
      'nodeUnreachable',
    ],
    ['a member on a silent node still marked Ready', { node: { ready: true, leaseRenewed: now - 400 * s } }, 'nodeUnreachable'],
    [
      'a member on a node silent past nodeLost',
      { ready: false, node: { ready: false, leaseRenewed: now - 301 * s } },
      'nodeLost',
      'NodeLost',
    ],
    [
      'a member on a node NotReady for long, without a Lease',
      { ready: false, node: { ready: false, notReadySince: now - 301 * s } },
      'nodeLost',
    ],
    [
      'a member on a node just turned NotReady, without a Lease',
      { ready: false, node: { ready: false, notReadySince: now - 60 * s } },
      'nodeUnreachable',
    ],
    [
      'a pending member whose volume is on a lost node',
      { scheduled: false, ready: false, node: undefined, pinnedTo: { node: 'n1', why: 'lost' }, schedulerMessage: volumeMessage },
      'pinned',
      'VolumePinnedToLostNode',
    ],
    [
      'a pending member whose volume is on an unsuitable node',
      { scheduled: false, ready: false, node: undefined, pinnedTo: { node: 'n1', why: 'unsuitable' }, schedulerMessage: volumeMessage },
      'pinned',
      'VolumePinnedToUnsuitableNode',
    ],
    [
      'a pending member pinned to an unsuitable node, before the scheduler has said why',
      { scheduled: false, ready: false, node: undefined, pinnedTo: { node: 'n1', why: 'unsuitable' } },
      'failing',
      'Unschedulable',
    ],
    [
      'a pending member pinned to an unsuitable node that no other node has room for: new volumes would not help',
      { scheduled: false, ready: false, node: undefined, pinnedTo: { node: 'n1', why: 'unsuitable' }, schedulerMessage: cpuMessage },
      'failing',
      'InsufficientCapacity',
    ],
    [
      'a pending member no node has room for',
      { scheduled: false, ready: false, node: undefined, schedulerMessage: cpuMessage },
      'failing',
      'InsufficientCapacity',
    ],
    [
      'a pending member that no node tolerates',
      { scheduled: false, ready: false, node: undefined, schedulerMessage: '0/3 nodes are available: 3 node(s) had untolerated taint.' },
      'failing',
      'Unschedulable',
    ],
    // The owner lease in etcd (ADR 29).
    [
      'a member on a NotReady node whose owner lease expired is lost at once',
      { ready: false, node: { ready: false, leaseRenewed: now - 25 * s }, ownerLease: expired(3 * s) },
      'nodeLost',
      'NodeLost',
    ],
    [
      'a member on a NotReady node whose owner lease has just gone is not lost yet (it may re-acquire)',
      { ready: false, node: { ready: false, leaseRenewed: now - 25 * s }, ownerLease: expired(0.5 * s) },
      'failing',
      'NotReady',
    ],
    [
      'a member on a node silent past nodeLost that still renews its owner lease is never lost',
      { ready: false, node: { ready: false, leaseRenewed: now - 3000 * s }, ownerLease: { live: true, registeredAt: longAgo } },
      'nodeUnreachable',
    ],
    ['a member on a fresh node whose owner lease expired is hung', { ownerLease: expired(10 * s) }, 'leaseExpired', 'OwnerLeaseExpired'],
    [
      'a member whose owner lease expired on a node that has not heartbeated since may be on a dead node: wait',
      { ownerLease: expired(3 * s), node: { ready: true, leaseRenewed: now - 9 * s, leaseDurationMs: 40 * s } },
      'nodeUnreachable',
      'NodeUnreachable',
    ],
    [
      'a member whose owner lease went with its crash is the kubelet’s to restart',
      { ready: false, ownerLease: expired(3 * s), lastTermination: { exitCode: 1, finishedAt: now - 3 * s } },
      'failing',
      'NotReady',
    ],
    [
      'a member waiting to restart after its lease went is not hung',
      { ready: false, ownerLease: expired(3 * s), waitingReason: 'CrashLoopBackOff' },
      'failing',
      'CrashLoop',
    ],
    ['a member being deleted has released its lease', { terminating: true, ownerLease: expired(3 * s) }, 'failing', 'Terminating'],
    ['a member whose owner lease is renewed', { ownerLease: { live: true, registeredAt: longAgo } }, 'healthy'],
    [
      'a member never seen registering is not hung (it may be starting)',
      { ownerLease: { live: false, registeredAt: NaN, goneAt: now - 60 * s } },
      'healthy',
    ],
    [
      'a member on a NotReady node with no owner record since the operator started is lost',
      {
        ready: false,
        node: { ready: false, leaseRenewed: now - 25 * s },
        ownerLease: { live: false, registeredAt: NaN, goneAt: now - 5 * s },
      },
      'nodeLost',
    ],
  ])('%s', (_name, over, kind, reason) => {
    const verdict = classifyMember(signals(over), now, settings);
    expect(verdict.kind).toBe(kind);
    if (reason) expect(verdict).toMatchObject({ reason });
  });

  it('says when a silent node will count as lost', () => {
    expect(classifyMember(signals({ ready: false, node: { ready: false, leaseRenewed: now - 100 * s } }), now, settings)).toEqual({
      kind: 'nodeUnreachable',
      reason: 'NodeUnreachable',
      lostAt: now + 200 * s,
    });
  });
});

const failing: Verdict = { kind: 'failing', reason: 'DeepCheckFailing' };
const healthy: Verdict = { kind: 'healthy' };
const ctx = { podCreated: longAgo };
type Ctx = { podCreated: number; podUid?: string; resetRequestedAt?: number; resumedAt?: number };
const state = (over: Partial<LadderState>): LadderState => ({ level: 0, healthy: true, since: longAgo, ...over });

describe('nextLadderLevel', () => {
  it.each<[string, LadderState | undefined, Verdict, Ctx, Partial<LadderState>, string | undefined, number | undefined]>([
    // name, previous, verdict, context, expected state (subset), action, wakeAt
    ['a new healthy member starts at level 0', undefined, healthy, ctx, { level: 0, healthy: true, since: now }, undefined, undefined],
    [
      'a first failure after a long healthy time is observed (level 0)',
      state({}),
      failing,
      ctx,
      { level: 0, healthy: false, since: now },
      undefined,
      now + 60 * s,
    ],
    [
      'a failure inside the toleration is still observed',
      state({ healthy: false, since: now - 59 * s }),
      failing,
      ctx,
      { level: 0 },
      undefined,
      now + s,
    ],
    [
      'a failure past the toleration restarts the member',
      state({ healthy: false, since: now - 60 * s }),
      failing,
      ctx,
      { level: 1, lastAction: 'Restart', lastActionTime: now },
      'Restart',
      undefined,
    ],
    [
      'a fresh pod gets the recovery allowance before anything happens',
      state({ healthy: false, since: now - 100 * s }),
      failing,
      { podCreated: now - 10 * s },
      { level: 0 },
      undefined,
      now + 170 * s,
    ],
    [
      'a restarted member not back within recovery is rescheduled',
      state({ level: 1, healthy: false, since: now - 200 * s, lastAction: 'Restart', lastActionTime: now - 180 * s }),
      failing,
      { podCreated: now - 180 * s },
      { level: 2, lastAction: 'Reschedule' },
      'Reschedule',
      undefined,
    ],
    [
      'a restarted member still inside recovery waits',
      state({ level: 1, healthy: false, since: now - 200 * s, lastActionTime: now - 100 * s }),
      failing,
      { podCreated: now - 90 * s },
      { level: 1 },
      undefined,
      now + 90 * s,
    ],
    [
      'a failure inside probation escalates past the toleration',
      state({ level: 1, healthy: false, since: now - 60 * s, lastActionTime: now - 300 * s }),
      failing,
      { podCreated: now - 290 * s },
      { level: 2 },
      'Reschedule',
      undefined,
    ],
    [
      'a failure inside probation is still tolerated at first',
      state({ level: 1, healthy: true, since: now - 100 * s, lastActionTime: now - 300 * s }),
      failing,
      { podCreated: now - 290 * s },
      { level: 1, healthy: false, since: now },
      undefined,
      now + 60 * s,
    ],
    [
      'a rescheduled member that fails again gets its volume recreated',
      state({ level: 2, healthy: false, since: now - 60 * s, lastActionTime: now - 400 * s }),
      failing,
      { podCreated: now - 390 * s },
      { level: 3, lastAction: 'RecreateVolume' },
      'RecreateVolume',
      undefined,
    ],
    [
      'a failure on a node that has not heartbeated since waits for the Lease',
      state({ healthy: false, since: now - 60 * s }),
      { kind: 'failing', reason: 'DeepCheckFailing', heartbeat: now - 61 * s },
      ctx,
      { level: 0 },
      undefined,
      now + 2 * s,
    ],
    [
      "a failure on a node that heartbeated since is the member's own",
      state({ healthy: false, since: now - 60 * s }),
      { kind: 'failing', reason: 'DeepCheckFailing', heartbeat: now - 5 * s },
      ctx,
      { level: 1 },
      'Restart',
      undefined,
    ],
    [
      'an unscheduled member is left to the scheduler',
      state({ healthy: false, since: now - 600 * s }),
      { kind: 'failing', reason: 'Unschedulable' },
      ctx,
      { level: 0 },
      undefined,
      undefined,
    ],
    [
      'a member that came back in its new pod and failed again gets the toleration alone',
      state({ level: 1, healthy: false, since: now - 60 * s, lastActionTime: now - 75 * s }),
      failing,
      { podCreated: now - 70 * s },
      { level: 2 },
      'Reschedule',
      undefined,
    ],
    [
      'a member first seen failing is dated from its pod start',
      undefined,
      failing,
      { podCreated: now - 10 * s },
      { level: 0, healthy: false, since: now - 10 * s },
      undefined,
      now + 170 * s,
    ],
    [
      'a misconfigured member is not repaired',
      state({ healthy: false, since: now - 600 * s }),
      { kind: 'misconfigured', reason: 'InvalidConfiguration', message: 'x' },
      ctx,
      { level: 0 },
      undefined,
      undefined,
    ],
    [
      'a member without its stores is not repaired',
      state({ healthy: false, since: now - 600 * s }),
      { kind: 'storesUnreachable', reason: 'StoresUnreachable' },
      ctx,
      { level: 0 },
      undefined,
      undefined,
    ],
    [
      'a member that cannot listen on its node is moved at once',
      state({}),
      { kind: 'listenFailed', reason: 'ListenFailed', at: now - s },
      ctx,
      { level: 2, lastAction: 'Reschedule' },
      'Reschedule',
      undefined,
    ],
    [
      'a member that failed at every level is given up',
      state({ level: 3, healthy: false, since: now - 60 * s, lastActionTime: now - 400 * s }),
      failing,
      { podCreated: now - 390 * s },
      { level: 4, lastAction: 'GiveUp' },
      'GiveUp',
      undefined,
    ],
    [
      'a given-up member is left alone',
      state({ level: 4, healthy: false, since: now - 600 * s, lastActionTime: now - 400 * s }),
      failing,
      ctx,
      { level: 4 },
      undefined,
      undefined,
    ],
    [
      'a member healthy through probation returns to level 0',
      state({ level: 2, healthy: true, since: now - 600 * s, lastActionTime: now - 700 * s }),
      healthy,
      ctx,
      { level: 0 },
      undefined,
      undefined,
    ],
    [
      'a member in probation keeps its level until probation ends',
      state({ level: 2, healthy: true, since: now - 100 * s, lastActionTime: now - 120 * s }),
      healthy,
      ctx,
      { level: 2 },
      undefined,
      now + 500 * s,
    ],
    [
      'a given-up member healthy for the probation returns to level 0',
      state({ level: 4, healthy: true, since: now - 600 * s, lastActionTime: now - 900 * s }),
      healthy,
      ctx,
      { level: 0 },
      undefined,
      undefined,
    ],
    [
      'a volume fault goes straight to level 3',
      state({}),
      { kind: 'volumeFault', reason: 'VolumeFault', at: now - s },
      ctx,
      { level: 3, lastAction: 'RecreateVolume' },
      'RecreateVolume',
      undefined,
    ],
    [
      'a volume fault older than the last action is not news',
      state({ level: 3, healthy: false, since: now - 10 * s, lastActionTime: now - 5 * s }),
      { kind: 'volumeFault', reason: 'VolumeFault', at: now - 6 * s },
      { podCreated: now - 4 * s },
      { level: 3 },
      undefined,
      now + 176 * s,
    ],
    [
      'a new volume fault after a volume recreation gives up',
      state({ level: 3, healthy: false, since: now - 10 * s, lastActionTime: now - 60 * s }),
      { kind: 'volumeFault', reason: 'VolumeFault', at: now - s },
      { podCreated: now - 50 * s },
      { level: 4 },
      'GiveUp',
      undefined,
    ],
    [
      'a lost node is fenced at level 2',
      state({}),
      { kind: 'nodeLost', reason: 'NodeLost' },
      ctx,
      { level: 2, lastAction: 'Fence' },
      'Fence',
      undefined,
    ],
    [
      'a fenced pod still on its lost node waits for recovery',
      state({ level: 2, healthy: false, since: now - 400 * s, lastActionTime: now - 10 * s }),
      { kind: 'nodeLost', reason: 'NodeLost' },
      ctx,
      { level: 2 },
      undefined,
      now + 170 * s,
    ],
    [
      'a silent node that is not yet lost is waited for',
      state({ healthy: false, since: now - 100 * s }),
      { kind: 'nodeUnreachable', reason: 'NodeUnreachable', lostAt: now + 200 * s },
      ctx,
      { level: 0 },
      undefined,
      now + 200 * s,
    ],
    [
      'a new pod pinned to a lost node gets fresh volumes',
      state({ level: 2, healthy: false, since: now - 400 * s, lastActionTime: now - 10 * s }),
      { kind: 'pinned', reason: 'VolumePinnedToLostNode' },
      { podCreated: now - 5 * s },
      { level: 3, lastAction: 'RecreateVolume' },
      'RecreateVolume',
      undefined,
    ],
    [
      'a pod pinned is news when it is another pod than the one acted on',
      state({ level: 2, healthy: false, since: now - 400 * s, lastActionTime: now - 0.2 * s, lastActionPod: 'old' }),
      { kind: 'pinned', reason: 'VolumePinnedToLostNode' },
      { podCreated: now - 1 * s, podUid: 'new' },
      { level: 3, lastActionPod: 'new' },
      'RecreateVolume',
      undefined,
    ],
    [
      'the pod acted on, still pinned while it goes, is not news',
      state({ level: 3, healthy: false, since: now - 400 * s, lastActionTime: now - 0.2 * s, lastActionPod: 'new' }),
      { kind: 'pinned', reason: 'VolumePinnedToLostNode' },
      { podCreated: now - 1 * s, podUid: 'new' },
      { level: 3 },
      undefined,
      now + 179.8 * s,
    ],
    [
      'a member whose pod started just before it was first seen keeps the start-up allowance',
      state({ healthy: false, since: now - 20 * s }),
      failing,
      { podCreated: now - 21 * s },
      { level: 0 },
      undefined,
      now + 159 * s,
    ],
    [
      'a pod pinned before the last action is not news',
      state({ level: 3, healthy: false, since: now - 400 * s, lastActionTime: now - 10 * s }),
      { kind: 'pinned', reason: 'VolumePinnedToUnsuitableNode' },
      { podCreated: now - 15 * s },
      { level: 3 },
      undefined,
      now + 170 * s,
    ],
    [
      'a reset request returns a member to level 0',
      state({ level: 4, healthy: false, since: now - 600 * s, lastActionTime: now - 400 * s }),
      failing,
      { podCreated: longAgo, resetRequestedAt: now - 10 * s },
      { level: 0, lastAction: 'Reset' },
      'Reset',
      undefined,
    ],
    [
      'a reset request older than the last action is spent',
      state({ level: 1, healthy: false, since: now - 10 * s, lastAction: 'Reset', lastActionTime: now - 5 * s }),
      failing,
      { podCreated: longAgo, resetRequestedAt: now - 10 * s },
      { level: 1 },
      undefined,
      now + 175 * s,
    ],
    [
      'after a pause every failing member gets the recovery allowance',
      state({ healthy: false, since: now - 600 * s }),
      failing,
      { podCreated: longAgo, resumedAt: now - 30 * s },
      { level: 0 },
      undefined,
      now + 150 * s,
    ],
  ])('%s', (_name, previous, verdict, context, expected, action, wakeAt) => {
    const decision = nextLadderLevel(previous, verdict, now, settings, context);
    expect(decision.state).toMatchObject(expected);
    expect(decision.action?.action).toBe(action);
    expect(decision.wakeAt).toBe(wakeAt);
  });

  it.each<[string, LadderState, Partial<LadderState>, string | undefined]>([
    ['a hung member is restarted at once, without the toleration', state({}), { level: 1, lastAction: 'Restart' }, 'Restart'],
    [
      'a member hung again after a restart is rescheduled',
      state({ level: 1, lastAction: 'Restart', lastActionTime: now - 120 * s, since: now - 60 * s }),
      { level: 2 },
      'Reschedule',
    ],
    [
      'a lease that went before the last action is not news',
      state({ level: 1, lastAction: 'Restart', lastActionTime: now - 2 * s, healthy: false, since: now - 10 * s }),
      { level: 1 },
      undefined,
    ],
  ])('owner lease expired: %s', (_name, previous, expected, action) => {
    const verdict: Verdict = { kind: 'leaseExpired', reason: 'OwnerLeaseExpired', at: now - 5 * s };
    const decision = nextLadderLevel(previous, verdict, now, settings, { podCreated: longAgo });
    expect(decision.state).toMatchObject(expected);
    expect(decision.action?.action).toBe(action);
  });

  it('fences a member restarted on a node that turned out lost', () => {
    const previous = state({
      level: 1,
      lastAction: 'Restart',
      lastActionTime: now - 10 * s,
      lastActionPod: 'uid-1',
      healthy: false,
      since: now - 20 * s,
    });
    const decision = nextLadderLevel(previous, { kind: 'nodeLost', reason: 'NodeLost' }, now, settings, {
      podCreated: longAgo,
      podUid: 'uid-1',
    });
    expect(decision.action).toMatchObject({ action: 'Fence', level: 2 });
  });

  it.each<Verdict>([
    { kind: 'failing', reason: 'InsufficientCapacity', message: 'x' },
    { kind: 'failing', reason: 'Unschedulable' },
  ])('leaves a pod no node takes to the scheduler: %o', (verdict) => {
    const decision = nextLadderLevel(state({ healthy: false, since: now - 3600 * s }), verdict, now, settings, ctx);
    expect(decision.action).toBeUndefined();
  });

  it('walks the whole ladder for a member that never recovers', () => {
    let t = now;
    let current: LadderState | undefined = state({});
    const actions: string[] = [];
    const podCreated = longAgo;
    for (let step = 0; step < 20 && (current?.level ?? 0) < 4; step++) {
      const d = nextLadderLevel(current, failing, t, settings, { podCreated });
      current = d.state;
      if (d.action) actions.push(d.action.action);
      t = d.wakeAt ?? t + s;
    }
    expect(actions).toEqual(['Restart', 'Reschedule', 'RecreateVolume', 'GiveUp']);
  });
});

describe('bounds', () => {
  const bounds = { settings, paused: false, repairsInProgress: 0, actionsLastHour: 0 };
  it.each<[string, Parameters<typeof admitAction>[0], Partial<typeof bounds> & { mode?: 'Observe' }, string | undefined]>([
    ['an action within every bound', 'Restart', {}, undefined],
    ['any action while paused', 'Restart', { paused: true }, 'Paused'],
    ['giving up while paused', 'GiveUp', { paused: true }, 'Paused'],
    ['an action in Observe mode', 'Restart', { mode: 'Observe' }, 'Observe'],
    ['giving up in Observe mode', 'GiveUp', { mode: 'Observe' }, 'Observe'],
    ['a reset in Observe mode', 'Reset', { mode: 'Observe' }, undefined],
    ['a second repair beside a running one', 'Reschedule', { repairsInProgress: 1 }, 'MaxConcurrent'],
    ['an action past the hourly budget', 'RecreateVolume', { actionsLastHour: 6 }, 'ActionBudget'],
    ['giving up past the hourly budget', 'GiveUp', { actionsLastHour: 6, repairsInProgress: 1 }, undefined],
  ])('%s', (_name, action, over, refusal) => {
    const { mode, ...rest } = over;
    expect(admitAction(action, { ...bounds, ...rest, settings: { ...settings, mode: mode ?? 'Enforce' } })).toBe(refusal);
  });

  it.each([
    [0, 3, 50, false],
    [1, 3, 50, false],
    [2, 3, 50, true],
    [3, 3, 50, true],
    [1, 2, 50, false],
    [0, 0, 50, false],
    [5, 10, 50, false],
    [6, 10, 50, true],
  ])('%i of %i unhealthy with maxUnhealthyPercent %i is systemic: %s', (unhealthy, total, percent, expected) => {
    expect(systemicFailure(unhealthy, total, percent)).toBe(expected);
  });

  it.each<[Partial<LadderState>, boolean]>([
    [{ level: 0 }, false],
    [{ level: 1, healthy: false, lastActionTime: now - s }, true],
    [{ level: 1, healthy: true, since: now - 2 * s, lastActionTime: now - 10 * s }, false],
    [{ level: 2, healthy: true, since: now - 20 * s, lastActionTime: now - 10 * s }, true],
    [{ level: 4, healthy: false, lastActionTime: now - s }, false],
  ])('repairInProgress(%j) is %s', (over, expected) => {
    expect(repairInProgress(state(over))).toBe(expected);
  });
});

describe('probationServed', () => {
  it.each<[string, number | undefined, string, boolean]>([
    ['a node not Ready', undefined, String((now - 3600 * s) / 1000), false],
    ['Ready long enough after a mark long ago', now - 61 * s, String((now - 3600 * s) / 1000), true],
    ['Ready again only just', now - 10 * s, String((now - 3600 * s) / 1000), false],
    ['Ready all along, marked just now (a reschedule)', now - 3600 * s, String((now - 10 * s) / 1000), false],
    ['Ready all along, marked long enough ago', now - 3600 * s, String((now - 60 * s) / 1000), true],
    ['a mark whose value is not a time', now - 61 * s, 'x', true],
  ])('%s', (_name, readySince, markedAt, expected) => {
    expect(probationServed(readySince, markedAt, 60 * s, now)).toBe(expected);
  });
});

describe('the heartbeat a failing verdict carries', () => {
  it('is the Lease renewal of the member node', () => {
    expect(classifyMember(signals({ ready: false }), now, settings)).toEqual({
      kind: 'failing',
      reason: 'NotReady',
      heartbeat: now - 5 * s,
    });
  });
});

describe('the CRD', () => {
  it('defaults spec.watchdog to the same production values the operator falls back on', async () => {
    const { readFileSync } = await import('node:fs');
    const { parse } = await import('yaml');
    const crd = parse(readFileSync(new URL('../../../crds/meshwork.io_meshpartitions.yaml', import.meta.url), 'utf8')) as {
      spec: {
        versions: {
          schema: {
            openAPIV3Schema: {
              properties: { spec: { properties: { watchdog: { default: unknown; properties: Record<string, { default: unknown }> } } } };
            };
          };
        }[];
      };
    };
    const watchdog = crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec.properties.watchdog;
    expect(watchdog.default).toEqual(watchdogDefaults);
    expect(Object.fromEntries(Object.entries(watchdog.properties).map(([k, v]) => [k, v.default]))).toEqual(watchdogDefaults);
  });
});
