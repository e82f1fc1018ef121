import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { samplePartition } from '../api/fixtures.ts';
import type { Condition, MeshPartition } from '../api/v1alpha1.ts';
import { computeStatus, memberHealth, statusUpToDate } from './status.ts';
import { buildStatefulSet } from '../specs/statefulset.ts';
import type { Assessment } from '../watchdog/assess.ts';

const now = new Date('2026-01-02T03:04:05.678Z');

function statefulSet(status: Record<string, unknown>, generation = 1): V1StatefulSet {
  return { metadata: { name: 'p0', generation }, status: { replicas: 0, ...status } };
}

function pod(name: string, phase: string, ready: boolean, node?: string): V1Pod {
  return {
    metadata: { name, labels: { 'controller-revision-hash': 'p0-1' } },
    spec: { containers: [], ...(node ? { nodeName: node } : {}) },
    status: { phase, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

function condition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

describe('computeStatus', () => {
  it.each([
    { case: 'no StatefulSet yet', sts: undefined, ready: 'False', readyReason: 'Creating', progressing: 'True' },
    {
      case: 'controller behind',
      sts: statefulSet({ observedGeneration: 1 }, 2),
      ready: 'False',
      readyReason: 'Applying',
      progressing: 'True',
    },
    {
      case: 'scaling up',
      sts: statefulSet({ observedGeneration: 1, replicas: 1 }),
      ready: 'False',
      readyReason: 'Scaling',
      progressing: 'True',
    },
    {
      case: 'rolling',
      sts: statefulSet({
        observedGeneration: 1,
        replicas: 3,
        readyReplicas: 3,
        updatedReplicas: 1,
        currentRevision: 'a',
        updateRevision: 'b',
      }),
      ready: 'False',
      readyReason: 'RollingUpdate',
      progressing: 'True',
    },
    {
      case: 'not ready',
      sts: statefulSet({ observedGeneration: 1, replicas: 3, readyReplicas: 2 }),
      ready: 'False',
      readyReason: 'ReplicasNotReady',
      progressing: 'False',
    },
    {
      case: 'all ready',
      sts: statefulSet({ observedGeneration: 1, replicas: 3, readyReplicas: 3, currentRevision: 'a', updateRevision: 'a' }),
      ready: 'True',
      readyReason: 'AllReplicasReady',
      progressing: 'False',
    },
  ])('$case: Ready=$ready ($readyReason), Progressing=$progressing', ({ sts, ready, readyReason, progressing }) => {
    const status = computeStatus({ partition: samplePartition(), statefulSet: sts, pods: [], now });
    expect(condition(status.conditions, 'Ready')).toMatchObject({ status: ready, reason: readyReason, observedGeneration: 1 });
    expect(condition(status.conditions, 'Progressing')!.status).toBe(progressing);
    expect(condition(status.conditions, 'Degraded')!.status).toBe('False');
    expect(status.observedGeneration).toBe(1);
  });

  it("reports the image the members' StatefulSet runs, also when the spec names none", () => {
    const partition = samplePartition();
    expect(partition.spec.image ?? '').toBe('');
    const sts = buildStatefulSet(partition, { defaultImage: 'registry.example/meshwork:1.2.3' });
    sts.status = { replicas: 3, readyReplicas: 3, observedGeneration: 1 };
    sts.metadata = { ...sts.metadata, generation: 1 };
    expect(computeStatus({ partition, statefulSet: sts, pods: [], now }).image).toBe('registry.example/meshwork:1.2.3');
    expect(computeStatus({ partition, statefulSet: undefined, pods: [], now }).image).toBeUndefined();
  });

  it('reports an apply problem as Degraded and not Ready', () => {
    const status = computeStatus({
      partition: samplePartition(),
      statefulSet: statefulSet({ observedGeneration: 1, replicas: 3, readyReplicas: 3 }),
      pods: [],
      problem: { reason: 'ObjectConflict', message: 'StatefulSet p0 is controlled by Other x' },
      now,
    });
    expect(condition(status.conditions, 'Degraded')).toMatchObject({ status: 'True', reason: 'ObjectConflict' });
    expect(condition(status.conditions, 'Ready')).toMatchObject({ status: 'False', reason: 'ObjectConflict' });
  });

  it('keeps lastTransitionTime while a condition keeps its status, and moves it on a change', () => {
    const sts = statefulSet({ observedGeneration: 1, replicas: 3, readyReplicas: 2 });
    const first = computeStatus({ partition: samplePartition(), statefulSet: sts, pods: [], now });
    const partition: MeshPartition = { ...samplePartition(), status: first };
    const later = new Date('2026-01-02T04:00:00Z');
    const same = computeStatus({
      partition,
      statefulSet: statefulSet({ observedGeneration: 1, replicas: 3, readyReplicas: 1 }),
      pods: [],
      now: later,
    });
    expect(condition(same.conditions, 'Ready')!.lastTransitionTime).toBe('2026-01-02T03:04:05Z');
    const changed = computeStatus({
      partition,
      statefulSet: statefulSet({ observedGeneration: 1, replicas: 3, readyReplicas: 3 }),
      pods: [],
      now: later,
    });
    expect(condition(changed.conditions, 'Ready')!.lastTransitionTime).toBe('2026-01-02T04:00:00Z');
  });

  it('lists members in ordinal order with their node and health', () => {
    const pods = [pod('p0-10', 'Running', true, 'n2'), pod('p0-2', 'Running', false, 'n1'), pod('p0-1', 'Pending', false)];
    const status = computeStatus({ partition: samplePartition(), statefulSet: undefined, pods, now });
    expect(status.members).toEqual([
      { pod: 'p0-1', health: 'Pending', level: 0, revision: 'p0-1' },
      { pod: 'p0-2', node: 'n1', health: 'Unhealthy', level: 0, revision: 'p0-1' },
      { pod: 'p0-10', node: 'n2', health: 'Healthy', level: 0, revision: 'p0-1' },
    ]);
  });
});

describe('memberHealth', () => {
  it.each([
    { phase: 'Running', ready: true, node: 'n', health: 'Healthy' },
    { phase: 'Running', ready: false, node: 'n', health: 'Unhealthy' },
    { phase: 'Failed', ready: false, node: 'n', health: 'Unhealthy' },
    { phase: 'Pending', ready: false, node: 'n', health: 'Pending' },
    { phase: 'Running', ready: true, node: undefined, health: 'Pending' },
    { phase: 'Succeeded', ready: false, node: 'n', health: 'Unknown' },
  ])('$phase ready=$ready node=$node is $health', ({ phase, ready, node, health }) => {
    expect(memberHealth(pod('p0-0', phase, ready, node))).toBe(health);
  });
});

describe('statusUpToDate', () => {
  it('needs no write when nothing changed, whatever the key order', () => {
    const status = computeStatus({ partition: samplePartition(), statefulSet: undefined, pods: [], now });
    const reordered = JSON.parse(JSON.stringify(status, Object.keys(status).reverse())) as typeof status;
    expect(statusUpToDate(status, { ...reordered, conditions: status.conditions, members: undefined })).toBe(true);
  });

  it('needs a write when the generation moved', () => {
    const status = computeStatus({ partition: samplePartition(), statefulSet: undefined, pods: [], now });
    expect(statusUpToDate({ ...status, observedGeneration: 2 }, status)).toBe(false);
    expect(statusUpToDate(status, undefined)).toBe(false);
  });
});

describe('computeStatus with the watchdog', () => {
  const now = new Date('2026-01-01T12:00:00Z');
  const assessment = (over: Partial<Assessment> = {}): Assessment => ({
    members: [{ pod: 'p0-0', health: 'Healthy', level: 0, since: '2026-01-01T11:00:00.000Z' }],
    remediations: [],
    actions: [],
    gaveUp: [],
    unschedulable: [],
    misconfigured: [],
    refused: [],
    unhealthy: 0,
    total: 1,
    levels: [0],
    recovered: [],
    ...over,
  });
  const conditionOf = (type: string, over: Partial<Assessment>, paused = false): Condition | undefined =>
    computeStatus({
      partition: samplePartition(),
      statefulSet: undefined,
      pods: [],
      now,
      watchdog: { assessment: assessment(over), paused, pauseMessage: 'paused' },
    }).conditions!.find((c) => c.type === type);

  it.each<[string, string, Partial<Assessment>, boolean, Partial<Condition>]>([
    ['nothing wrong', 'Degraded', {}, false, { status: 'False', reason: 'AsExpected' }],
    ['a member given up', 'Degraded', { gaveUp: ['p0-1'] }, false, { status: 'True', reason: 'RemediationExhausted' }],
    [
      'a member with a bad configuration',
      'Degraded',
      { misconfigured: [{ pod: 'p0-1', message: 'invalid configuration: MESHWORK_SLOTS: bad' }] },
      false,
      { status: 'True', reason: 'InvalidConfiguration', message: 'p0-1: invalid configuration: MESHWORK_SLOTS: bad' },
    ],
    [
      'a member no node has room for',
      'Degraded',
      { unschedulable: [{ pod: 'p0-2', reason: 'InsufficientCapacity', message: '0/3 nodes are available: 3 Insufficient cpu.' }] },
      false,
      { status: 'True', reason: 'InsufficientCapacity', message: 'p0-2 cannot be scheduled: 0/3 nodes are available: 3 Insufficient cpu.' },
    ],
    [
      'a member no node tolerates',
      'Degraded',
      { unschedulable: [{ pod: 'p0-2', reason: 'Unschedulable', message: '0/3 nodes are available: 3 node(s) had untolerated taint.' }] },
      false,
      { status: 'True', reason: 'Unschedulable' },
    ],
    ['remediation active', 'RemediationPaused', {}, false, { status: 'False', reason: 'AsExpected' }],
    ['remediation paused', 'RemediationPaused', {}, true, { status: 'True', reason: 'TooManyUnhealthy', message: 'paused' }],
  ])('%s: %s', (_name, type, over, paused, expected) => {
    expect(conditionOf(type, over, paused)).toMatchObject(expected);
  });

  it('takes members and a history from the watchdog, and leaves the history out while empty', () => {
    const history = [
      {
        time: '2026-01-01T11:59:00.000Z',
        pod: 'p0-0',
        level: 1,
        action: 'Restart' as const,
        reason: 'NotReady',
        outcome: 'Performed' as const,
      },
    ];
    const withHistory = computeStatus({
      partition: samplePartition(),
      statefulSet: undefined,
      pods: [],
      now,
      watchdog: { assessment: assessment({ remediations: history }), paused: false, pauseMessage: '' },
    });
    expect(withHistory.members).toEqual(assessment().members);
    expect(withHistory.remediations).toEqual(history);
    const without = computeStatus({
      partition: samplePartition(),
      statefulSet: undefined,
      pods: [],
      now,
      watchdog: { assessment: assessment(), paused: false, pauseMessage: '' },
    });
    expect(without.remediations).toBeUndefined();
  });
});
