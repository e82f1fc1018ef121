import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { watchdogResetAnnotation } from '@meshwork/contract';
import { samplePartition } from '../api/fixtures.ts';
import type { Member, MeshPartitionStatus, Remediation, WatchdogSpec } from '../api/v1alpha1.ts';
import { actionsInLastHour, assessPartition } from './assess.ts';
import type { MemberSignals } from './ladder.ts';

const s = 1000;
const now = Date.parse('2026-01-01T12:00:00Z');
const iso = (t: number): string => new Date(t).toISOString();
const longAgo = now - 3600 * s;

const pod = (name: string, node = 'n1'): V1Pod => ({
  metadata: { name, uid: `uid-${name}`, labels: { 'controller-revision-hash': 'p0-abc' } },
  spec: { containers: [], nodeName: node },
});
const healthySignals: MemberSignals = {
  podCreated: longAgo,
  scheduled: true,
  ready: true,
  terminating: false,
  deepCheck: 'ok',
  node: { ready: true, leaseRenewed: now - s },
};
const hung: MemberSignals = { ...healthySignals, deepCheck: 'failing' };
const failingFor = (pod: string, seconds: number, extra: Partial<Member> = {}): Member => ({
  pod,
  health: 'Unhealthy',
  level: 0,
  since: iso(now - seconds * s),
  ...extra,
});
const healthy = (pod: string): Member => ({ pod, health: 'Healthy', level: 0, since: iso(longAgo) });

function assess(options: {
  members?: Member[];
  remediations?: Remediation[];
  signals?: Record<string, MemberSignals>;
  watchdog?: Partial<WatchdogSpec>;
  paused?: boolean;
  pods?: V1Pod[];
  annotations?: Record<string, string>;
}) {
  const partition = samplePartition('p0', {
    watchdog: {
      mode: 'Enforce',
      tolerationSeconds: 60,
      healthyResetSeconds: 600,
      nodeLostSeconds: 300,
      maxConcurrent: 1,
      actionsPerHour: 6,
      ...options.watchdog,
    },
  });
  if (options.annotations) partition.metadata.annotations = options.annotations;
  const live: MeshPartitionStatus = {
    members: options.members ?? [],
    ...(options.remediations ? { remediations: options.remediations } : {}),
  };
  return assessPartition({
    partition,
    pods: options.pods ?? [pod('p0-0'), pod('p0-1'), pod('p0-2', 'n2')],
    live,
    signals: (p) => options.signals?.[p.metadata!.name!] ?? healthySignals,
    paused: options.paused ?? false,
    now,
  });
}

describe('assessPartition', () => {
  it('lists every member with its health and level, and writes nothing new for a healthy partition', () => {
    const members = ['p0-0', 'p0-1', 'p0-2'].map(healthy);
    const a = assess({ members });
    expect(a.members).toEqual([
      { pod: 'p0-0', node: 'n1', health: 'Healthy', level: 0, since: iso(longAgo), revision: 'p0-abc' },
      { pod: 'p0-1', node: 'n1', health: 'Healthy', level: 0, since: iso(longAgo), revision: 'p0-abc' },
      { pod: 'p0-2', node: 'n2', health: 'Healthy', level: 0, since: iso(longAgo), revision: 'p0-abc' },
    ]);
    expect(a.actions).toEqual([]);
    expect(a.remediations).toEqual([]);
    expect(a.wakeAt).toBeUndefined();
  });

  it('keeps a member whose pod is being replaced, with its ladder state', () => {
    const a = assess({
      members: [
        healthy('p0-0'),
        failingFor('p0-1', 5, { level: 1, lastAction: 'Restart', lastActionTime: iso(now - 5 * s) }),
        healthy('p0-2'),
      ],
      pods: [pod('p0-0'), pod('p0-2', 'n2')],
    });
    expect(a.members[1]).toEqual({
      pod: 'p0-1',
      health: 'Pending',
      reason: 'PodMissing',
      level: 1,
      lastAction: 'Restart',
      lastActionTime: iso(now - 5 * s),
      since: iso(now - 5 * s),
    });
    expect(a.actions).toEqual([]);
  });

  it('reports the members healthy again, since when they were not, and the level of the last action in between', () => {
    const a = assess({
      members: [
        // Came back by itself.
        failingFor('p0-0', 30),
        // Restarted (level 1) 20 s ago, failing for 90 s.
        failingFor('p0-1', 90, { level: 1, lastAction: 'Restart', lastActionTime: iso(now - 20 * s) }),
        // Still at level 2 from a reschedule before this spell began: none in it.
        failingFor('p0-2', 10, { level: 2, lastAction: 'Reschedule', lastActionTime: iso(now - 300 * s) }),
      ],
    });
    expect(a.recovered).toEqual([
      { pod: 'p0-0', unhealthySince: now - 30 * s, level: 0 },
      { pod: 'p0-1', unhealthySince: now - 90 * s, level: 1 },
      { pod: 'p0-2', unhealthySince: now - 10 * s, level: 0 },
    ]);
    // Healthy before and after, or failing still: nothing recovered.
    expect(assess({ members: [healthy('p0-0'), failingFor('p0-1', 5), healthy('p0-2')], signals: { 'p0-1': hung } }).recovered).toEqual([]);
  });

  it('restarts a member failing past the toleration and records it before anything else', () => {
    const a = assess({ members: [healthy('p0-0'), failingFor('p0-1', 61), healthy('p0-2')], signals: { 'p0-1': hung } });
    expect(a.actions).toEqual([
      {
        pod: 'p0-1',
        uid: 'uid-p0-1',
        node: 'n1',
        action: 'Restart',
        level: 1,
        reason: 'DeepCheckFailing',
        nodeLost: false,
        outcome: 'Performed',
      },
    ]);
    expect(a.remediations).toEqual([
      { time: iso(now), pod: 'p0-1', node: 'n1', level: 1, action: 'Restart', reason: 'DeepCheckFailing', outcome: 'Performed' },
    ]);
    expect(a.members[1]).toMatchObject({
      level: 1,
      lastAction: 'Restart',
      lastActionTime: iso(now),
      health: 'Unhealthy',
      reason: 'DeepCheckFailing',
    });
  });

  it('repairs at most maxConcurrent members at once', () => {
    const a = assess({
      members: [failingFor('p0-0', 100), failingFor('p0-1', 100), healthy('p0-2')],
      signals: { 'p0-0': hung, 'p0-1': hung },
    });
    expect(a.actions.map((x) => x.pod)).toEqual(['p0-0']);
    expect(a.refused).toEqual([{ pod: 'p0-1', action: 'Restart', refusal: 'MaxConcurrent' }]);
    expect(a.members[1]).toMatchObject({ level: 0 });
    expect(
      assess({
        members: [failingFor('p0-0', 100), failingFor('p0-1', 100), healthy('p0-2')],
        signals: { 'p0-0': hung, 'p0-1': hung },
        watchdog: { maxConcurrent: 2 },
      }).actions,
    ).toHaveLength(2);
  });

  it('stops at the hourly budget, counted from the history', () => {
    const history: Remediation[] = Array.from({ length: 6 }, (_, i) => ({
      time: iso(now - (i + 1) * 60 * s),
      pod: 'p0-0',
      level: 1,
      action: 'Restart',
      reason: 'NotReady',
      outcome: 'Performed',
    }));
    const a = assess({
      members: [healthy('p0-0'), failingFor('p0-1', 100), healthy('p0-2')],
      signals: { 'p0-1': hung },
      remediations: history,
    });
    expect(a.actions).toEqual([]);
    expect(a.refused).toEqual([{ pod: 'p0-1', action: 'Restart', refusal: 'ActionBudget' }]);
    const older = history.map((r) => ({ ...r, time: iso(now - 2 * 3600 * s) }));
    expect(
      assess({ members: [healthy('p0-0'), failingFor('p0-1', 100), healthy('p0-2')], signals: { 'p0-1': hung }, remediations: older })
        .actions,
    ).toHaveLength(1);
  });

  it('keeps at most 20 entries of history', () => {
    const history: Remediation[] = Array.from({ length: 20 }, (_, i) => ({
      time: iso(now - 5 * 3600 * s + i),
      pod: 'p0-0',
      level: 1,
      action: 'Restart',
      reason: 'NotReady',
      outcome: 'Performed',
    }));
    const a = assess({
      members: [healthy('p0-0'), failingFor('p0-1', 100), healthy('p0-2')],
      signals: { 'p0-1': hung },
      remediations: history,
    });
    expect(a.remediations).toHaveLength(20);
    expect(a.remediations.at(-1)).toMatchObject({ pod: 'p0-1', time: iso(now) });
    expect(a.remediations[0]).toEqual(history[1]);
  });

  it('in Observe mode records the intention and advances the ladder without an action to perform', () => {
    const a = assess({
      members: [healthy('p0-0'), failingFor('p0-1', 100), healthy('p0-2')],
      signals: { 'p0-1': hung },
      watchdog: { mode: 'Observe' },
    });
    expect(a.actions.map((x) => x.outcome)).toEqual(['Observed']);
    expect(a.remediations.map((r) => r.outcome)).toEqual(['Observed']);
    expect(a.members[1]).toMatchObject({ level: 1, lastAction: 'Restart' });
  });

  it('while paused does nothing and leaves the ladder where it was', () => {
    const a = assess({
      members: [
        healthy('p0-0'),
        failingFor('p0-1', 100, { level: 1, lastAction: 'Restart', lastActionTime: iso(now - 400 * s) }),
        healthy('p0-2'),
      ],
      signals: { 'p0-1': hung },
      paused: true,
    });
    expect(a.actions).toEqual([]);
    expect(a.refused).toEqual([{ pod: 'p0-1', action: 'Reschedule', refusal: 'Paused' }]);
    expect(a.members[1]).toMatchObject({ level: 1, lastAction: 'Restart', lastActionTime: iso(now - 400 * s) });
    expect(a.wakeAt).toBe(now + 5 * s);
  });

  it('counts failing members toward the cluster-wide bound, but not ones still starting', () => {
    const starting: MemberSignals = { ...healthySignals, podCreated: now - 10 * s, ready: false };
    const unscheduled: MemberSignals = { ...healthySignals, scheduled: false, ready: false };
    const a = assess({
      members: [failingFor('p0-0', 10), failingFor('p0-1', 10), failingFor('p0-2', 900)],
      signals: { 'p0-0': hung, 'p0-1': starting, 'p0-2': unscheduled },
    });
    expect([a.unhealthy, a.total]).toEqual([1, 3]);
    expect(a.actions).toEqual([]);
  });

  it('hands a volume fault straight to level 3 and a give-up to Degraded', () => {
    const fault: MemberSignals = {
      ...healthySignals,
      ready: false,
      lastTermination: { exitCode: 4, message: 'volume fault: data-1 is read-only', finishedAt: now - s },
    };
    const a = assess({ members: [healthy('p0-0'), healthy('p0-1'), healthy('p0-2')], signals: { 'p0-2': fault } });
    expect(a.actions).toMatchObject([{ pod: 'p0-2', action: 'RecreateVolume', level: 3, reason: 'VolumeFault' }]);
    const again = assess({
      members: [
        healthy('p0-0'),
        healthy('p0-1'),
        failingFor('p0-2', 100, { level: 3, lastAction: 'RecreateVolume', lastActionTime: iso(now - 60 * s) }),
      ],
      signals: { 'p0-2': fault },
    });
    expect(again.actions).toMatchObject([{ pod: 'p0-2', action: 'GiveUp', level: 4 }]);
    expect(again.gaveUp).toEqual(['p0-2']);
  });

  it('resets members acted on before the reset annotation', () => {
    const a = assess({
      members: [
        healthy('p0-0'),
        failingFor('p0-1', 900, { level: 4, lastAction: 'GiveUp', lastActionTime: iso(now - 600 * s) }),
        healthy('p0-2'),
      ],
      signals: { 'p0-1': hung },
      annotations: { [watchdogResetAnnotation]: iso(now - 10 * s) },
    });
    expect(a.members[1]).toMatchObject({ level: 0, lastAction: 'Reset' });
    expect(a.remediations).toMatchObject([{ pod: 'p0-1', action: 'Reset', level: 0, outcome: 'Performed' }]);
    expect(a.gaveUp).toEqual([]);
  });

  it('counts performed actions of the last hour, not observations, give-ups or resets', () => {
    const r = (minutes: number, action: Remediation['action'], outcome: Remediation['outcome'] = 'Performed'): Remediation => ({
      time: iso(now - minutes * 60 * s),
      pod: 'p0-0',
      level: 1,
      action,
      reason: 'x',
      outcome,
    });
    expect(
      actionsInLastHour(
        [r(5, 'Restart'), r(59, 'Reschedule'), r(61, 'Restart'), r(1, 'Restart', 'Observed'), r(1, 'GiveUp'), r(1, 'Reset')],
        now,
      ),
    ).toBe(2);
  });
});
