// The Mesh's status as tables: which partitions count as ready, slot coverage, and the
// conditions for each state of partitions and gateway.
import type { V1Deployment } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { sampleMesh, samplePartition } from '../api/fixtures.ts';
import type { Condition, Mesh, MeshPartition, MeshRolloutStatus } from '../api/v1alpha1.ts';
import { planPartitions } from './layout.ts';
import { computeMeshStatus, meshStatusUpToDate, partitionReadiness, partitionReady } from './status.ts';

const now = new Date('2026-01-02T03:04:05Z');
const earlier = '2026-01-01T00:00:00Z';

interface PartitionState {
  ready?: boolean;
  generation?: number;
  observed?: number;
  progressing?: boolean;
  degraded?: string;
}

function partition(name: string, start: number, end: number, state: PartitionState = {}): MeshPartition {
  const { ready = true, generation = 1, observed = generation, progressing = false, degraded } = state;
  const p = samplePartition(name, { slots: [{ start, end }] }, 'mesh');
  p.metadata.generation = generation;
  const cond = (type: string, status: boolean, reason: string): Condition => ({
    type,
    status: status ? 'True' : 'False',
    reason,
    message: reason,
    observedGeneration: observed,
    lastTransitionTime: earlier,
  });
  p.status = {
    observedGeneration: observed,
    replicas: 3,
    readyReplicas: ready ? 3 : 1,
    conditions: [
      cond('Ready', ready, ready ? 'AllReplicasReady' : 'ReplicasNotReady'),
      cond('Progressing', progressing, progressing ? 'RollingUpdate' : 'Settled'),
      degraded ? { ...cond('Degraded', true, 'InvalidConfiguration'), message: degraded } : cond('Degraded', false, 'AsExpected'),
    ],
  };
  return p;
}

function gateway(ready: number, updated = ready, replicas = 2): V1Deployment {
  return {
    metadata: { name: 'm-gateway', generation: 1 },
    spec: { replicas, selector: {}, template: {} },
    status: { observedGeneration: 1, replicas, readyReplicas: ready, updatedReplicas: updated },
  };
}

function statusOf(
  mesh: Mesh,
  partitions: MeshPartition[],
  deployment: V1Deployment | undefined,
  problem?: { reason: string; message: string },
) {
  const plan = planPartitions(
    mesh.metadata.name,
    mesh.spec.partitions,
    partitions.map((p) => p.metadata.name),
  );
  return computeMeshStatus({ mesh, plan, partitions, gateway: deployment, now, ...(problem ? { problem } : {}) });
}

const two = sampleMesh('m', { partitions: 2 });
const three = sampleMesh('m', { partitions: 3 });
const laidForTwo = () => [partition('m-p0', 0, 2047), partition('m-p1', 2048, 4095)];

describe('partitionReady', () => {
  it.each([
    { case: 'Ready for its generation', state: {}, ready: true, reason: 'AllReplicasReady' },
    { case: 'not Ready', state: { ready: false }, ready: false, reason: 'ReplicasNotReady' },
    { case: 'Ready for an older generation', state: { generation: 2, observed: 1 }, ready: false, reason: 'NotObserved' },
  ])('$case', ({ state, ready, reason }) => {
    const p = partition('m-p0', 0, 4095, state);
    expect(partitionReady(p)).toBe(ready);
    expect(partitionReadiness(p)).toMatchObject({ name: 'm-p0', slots: '0-4095', ready, reason });
  });

  it('is not ready before it has any status', () => {
    const p = samplePartition('m-p0');
    expect(partitionReadiness(p)).toEqual({
      name: 'm-p0',
      slots: '0-1023',
      ready: false,
      replicas: 0,
      readyReplicas: 0,
      reason: 'NotObserved',
    });
  });
});

describe('computeMeshStatus', () => {
  // Each condition as `status reason`; slots covered, the uncovered ranges, and the partitions that count as ready.
  it.each<[string, Mesh, MeshPartition[], V1Deployment | undefined, [string, string, string], number, string, number]>([
    ['everything ready', two, laidForTwo(), gateway(2), ['True AllReady', 'False Settled', 'False AsExpected'], 4096, '', 2],
    [
      'a new Mesh with nothing created yet',
      two,
      [],
      undefined,
      ['False SlotsNotCovered', 'True CreatingPartitions', 'False AsExpected'],
      0,
      '0-4095',
      0,
    ],
    [
      'one partition not ready',
      two,
      [partition('m-p0', 0, 2047), partition('m-p1', 2048, 4095, { ready: false, progressing: true })],
      gateway(2),
      ['False SlotsNotCovered', 'True PartitionsProgressing', 'False AsExpected'],
      2048,
      '2048-4095',
      1,
    ],
    [
      'grown to 3: the old two re-laid but not yet observed, the third missing',
      three,
      [partition('m-p0', 0, 1364, { generation: 2, observed: 1 }), partition('m-p1', 1365, 2729, { generation: 2, observed: 1 })],
      gateway(2),
      ['False SlotsNotCovered', 'True CreatingPartitions', 'False AsExpected'],
      0,
      '0-4095',
      0,
    ],
    [
      'shrunk to 2 with the third still there and ready: its slots overlap',
      two,
      [...laidForTwo(), partition('m-p2', 2730, 4095)],
      gateway(2),
      ['False SlotsNotCovered', 'True RemovingPartitions', 'False AsExpected'],
      2730,
      '2730-4095',
      2,
    ],
    [
      'the gateway not ready',
      two,
      laidForTwo(),
      gateway(1),
      ['False GatewayNotReady', 'True GatewayRollingOut', 'False AsExpected'],
      4096,
      '',
      2,
    ],
    [
      'a degraded partition',
      two,
      [partition('m-p0', 0, 2047), partition('m-p1', 2048, 4095, { ready: false, degraded: 'm-p1-0: bad slots' })],
      gateway(2),
      ['False SlotsNotCovered', 'False Settled', 'True PartitionDegraded'],
      2048,
      '2048-4095',
      1,
    ],
  ])('%s', (_case, mesh, partitions, deployment, [ready, progressing, degraded], covered, uncovered, readyPartitions) => {
    const status = statusOf(mesh, partitions, deployment);
    const conditions = Object.fromEntries(status.conditions!.map((c) => [c.type, `${c.status} ${c.reason}`]));
    expect(conditions).toEqual({ Ready: ready, Progressing: progressing, Degraded: degraded });
    expect(status).toMatchObject({ observedGeneration: 1, slotsCovered: covered, uncoveredSlots: uncovered, readyPartitions });
    expect(status.partitions!.map((p) => p.name)).toEqual(partitions.map((p) => p.metadata.name));
    expect(status.gateway).toEqual({
      replicas: deployment?.status?.replicas ?? 0,
      readyReplicas: deployment?.status?.readyReplicas ?? 0,
      service: 'm-gateway',
    });
    for (const c of status.conditions!) {
      expect(c.reason).toMatch(/^[A-Z][A-Za-z]*$/);
      expect(c.message).not.toBe('');
    }
  });

  it('counts coverage from the owner keys when it has them, not from the specs', () => {
    // After a 2 → 3 grow, p0 and p1 still carry their old ranges in their specs; the keys say who serves.
    const partitions = [partition('m-p0', 0, 2047), partition('m-p1', 2048, 4095), partition('m-p2', 0, 4095)];
    const plan = planPartitions('m', 3, ['m-p0', 'm-p1', 'm-p2']);
    const owners = Array.from({ length: 4096 }, (_, slot) => (slot < 1366 ? 'm-p0' : slot < 2731 ? 'm-p1' : 'm-p2'));
    const settled = computeMeshStatus({ mesh: three, plan, partitions, gateway: gateway(2), owners, now });
    expect(settled).toMatchObject({ slotsCovered: 4096, uncoveredSlots: '' });
    expect(settled.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'AllReady' });
    // The same specs without the keys overlap everywhere.
    expect(computeMeshStatus({ mesh: three, plan, partitions, gateway: gateway(2), now }).slotsCovered).toBe(0);
    // A partition that is not ready leaves exactly the slots its keys give it uncovered.
    partitions[2] = partition('m-p2', 0, 4095, { ready: false });
    const oneDown = computeMeshStatus({ mesh: three, plan, partitions, gateway: gateway(2), owners, now });
    expect(oneDown).toMatchObject({ slotsCovered: 2731, uncoveredSlots: '2731-4095' });
  });

  it.each([
    { case: 'a pass moving slots', slotMoves: { moving: 128 }, owned: 3, progressing: 'True MovingSlots', message: '128 moved so far' },
    {
      case: 'a pass waiting for a new partition',
      slotMoves: { moving: 0, waitingFor: ['m-p2'] },
      owned: 3,
      progressing: 'True WaitingToMoveSlots',
      message: 'm-p2 have a ready member',
    },
    {
      case: 'a surplus partition whose slots cannot move',
      slotMoves: { moving: 0, failure: 'no answer from etcd' },
      owned: 4,
      progressing: 'True RemovingPartitions',
      message: 'slots cannot move: no answer from etcd',
    },
    { case: 'nothing to move', slotMoves: { moving: 0 }, owned: 3, progressing: 'False Settled', message: 'match the spec' },
  ])('slot moves: $case → Progressing $progressing', ({ slotMoves, owned, progressing, message }) => {
    const partitions = [partition('m-p0', 0, 2047), partition('m-p1', 2048, 4095), partition('m-p2', 2730, 4095), partition('m-p3', 0, 0)];
    const held = partitions.slice(0, owned);
    const plan = planPartitions(
      'm',
      3,
      held.map((p) => p.metadata.name),
    );
    const status = computeMeshStatus({ mesh: three, plan, partitions: held, gateway: gateway(2), slotMoves, now });
    const cond = status.conditions!.find((c) => c.type === 'Progressing')!;
    expect(`${cond.status} ${cond.reason}`).toBe(progressing);
    expect(cond.message).toContain(message);
  });

  it('reports a shared etcd as Degraded before a degraded partition, and Ready still by coverage', () => {
    const plan = planPartitions('m', 2, ['m-p0', 'm-p1']);
    const status = computeMeshStatus({
      mesh: two,
      plan,
      partitions: [partition('m-p0', 0, 2047, { degraded: 'Unschedulable' }), partition('m-p1', 2048, 4095)],
      gateway: gateway(2),
      sharedEtcd: 'shared with Mesh x/y',
      now,
    });
    expect(status.conditions!.find((c) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'SharedEtcd',
      message: 'shared with Mesh x/y',
    });
    expect(status.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
  });

  it('reports a problem met while applying as Degraded and not Ready', () => {
    const status = statusOf(two, laidForTwo(), gateway(2), { reason: 'ObjectConflict', message: 'Service m-gateway exists' });
    expect(status.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ObjectConflict' });
    expect(status.conditions!.find((c) => c.type === 'Degraded')).toMatchObject({ status: 'True', message: 'Service m-gateway exists' });
  });

  it('lists partitions by index, p10 after p9', () => {
    const mesh = sampleMesh('m', { partitions: 11 });
    const partitions = [10, 2, 9, 0, 1, 3, 4, 5, 6, 7, 8].map((i) => partition(`m-p${i}`, i, i));
    expect(statusOf(mesh, partitions, gateway(2)).partitions!.map((p) => p.name)).toEqual(Array.from({ length: 11 }, (_, i) => `m-p${i}`));
  });

  it('keeps a transition time while a condition keeps its status, and moves it when the status changes', () => {
    const first = statusOf(two, laidForTwo(), gateway(2));
    const settled = { ...two, status: { ...first, conditions: first.conditions!.map((c) => ({ ...c, lastTransitionTime: earlier })) } };
    const again = statusOf(settled, laidForTwo(), gateway(2));
    expect(again.conditions!.every((c) => c.lastTransitionTime === earlier)).toBe(true);
    expect(meshStatusUpToDate(again, settled.status)).toBe(true);
    const worse = statusOf(settled, laidForTwo(), gateway(1));
    expect(worse.conditions!.find((c) => c.type === 'Ready')!.lastTransitionTime).toBe('2026-01-02T03:04:05Z');
    expect(worse.conditions!.find((c) => c.type === 'Degraded')!.lastTransitionTime).toBe(earlier);
    expect(meshStatusUpToDate(worse, settled.status)).toBe(false);
  });
});

describe('the rollout in the Mesh status', () => {
  const rolloutStatus = (rollout: MeshRolloutStatus) =>
    computeMeshStatus({
      mesh: two,
      plan: planPartitions('m', 2, ['m-p0', 'm-p1']),
      partitions: laidForTwo(),
      gateway: gateway(2),
      rollout,
      now,
    });
  const halt = {
    reason: 'MemberNotReady' as const,
    partition: 'm-p0',
    figure: '1 of 1 updated member not ready after 61s',
    threshold: 'progressDeadlineSeconds 60',
    time: earlier,
  };

  it.each([
    { state: 'Complete' as const, progressing: 'False Settled', halted: 'False NotHalted' },
    { state: 'Progressing' as const, progressing: 'True RollingOut', halted: 'False NotHalted' },
    { state: 'Baking' as const, progressing: 'True RollingOut', halted: 'False NotHalted' },
    { state: 'Paused' as const, progressing: 'True RolloutPaused', halted: 'False NotHalted' },
    { state: 'Halted' as const, progressing: 'False Settled', halted: 'True MemberNotReady' },
    { state: 'RollingBack' as const, progressing: 'False Settled', halted: 'True MemberNotReady' },
    { state: 'RolledBack' as const, progressing: 'False Settled', halted: 'True MemberNotReady' },
  ])('$state: Progressing $progressing, RolloutHalted $halted', ({ state, progressing, halted }) => {
    const status = rolloutStatus({
      revision: 'abc',
      state,
      step: 1,
      steps: 2,
      message: 'm',
      ...(halted.startsWith('True') ? { halt } : {}),
    });
    const conditions = Object.fromEntries(status.conditions!.map((c) => [c.type, `${c.status} ${c.reason}`]));
    expect(conditions.Progressing).toBe(progressing);
    expect(conditions.RolloutHalted).toBe(halted);
    expect(status.rollout).toMatchObject({ revision: 'abc', state });
  });

  it("shows each partition's template revision", () => {
    const partitions = laidForTwo();
    partitions[0]!.metadata.annotations = { 'meshwork.io/template-revision': 'abc' };
    expect(partitionReadiness(partitions[0]!).revision).toBe('abc');
    expect(partitionReadiness(partitions[1]!).revision).toBeUndefined();
  });
});
