// A Mesh's rebalancing passes against a real etcd: from the partitions' claims in the slot map,
// the owner keys are seeded; 2 → 3 waits for the new partition to be ready and then moves 1365 slots to it; 3 → 2 moves
// them back and only then names the surplus partition for deletion; a plan left half done by a
// former leader is finished by the next pass, once its targets are ready. The operator's
// background reading of the owner keys says nothing before any key exists, and queues the Mesh
// once they appear.
import { Etcd3 } from 'etcd3';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { slotMapPrefix, slotOwnerPrefix, type SlotMapRecord } from '@meshwork/contract';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { freePorts } from '../../../e2e/harness/ports.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { sampleMesh } from '../api/fixtures.ts';
import { evenSlotLayout } from './layout.ts';
import { driveMeshMoves } from './mesh-moves.ts';
import { planMoves } from './moves.ts';
import { ownedRanges } from './move-step.ts';
import { MeshOwnerKeys } from './owner-keys.ts';
import { moveChunk, movePlanKey, readRecordedPlan, readSlotOwners, seedOwnerKeys, type RecordedPlan } from './slot-mover.ts';

let etcd: EtcdServer;
let client: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd({ name: 'etcd-mesh-moves' });
  client = new Etcd3({ hosts: etcd.endpoint });
});

afterAll(async () => {
  client?.close();
  await etcd?.stop();
});

beforeEach(async () => {
  await client.delete().prefix('/mw/');
  // The claims two registered partitions write, one replica each.
  const ranges = evenSlotLayout(2);
  for (const [i, name] of ['m-p0', 'm-p1'].entries()) {
    const record: SlotMapRecord = {
      partition: name,
      replica: `${name}-0`,
      slots: `${ranges[i]!.first}-${ranges[i]!.last}`,
      url: `http://127.0.0.1:${9000 + i}`,
      instance: `i${i}`,
      registeredAt: new Date().toISOString(),
    };
    await client.put(`${slotMapPrefix}${name}/${name}-0`).value(JSON.stringify(record));
  }
});

const sizes = (owners: string[]): Record<string, number> =>
  Object.fromEntries([...ownedRanges(owners)].map(([p, r]) => [p, r.reduce((n, x) => n + x.last - x.first + 1, 0)]));

describe('driveMeshMoves', () => {
  it('grows 2 → 3 once the new partition is ready, and shrinks 3 → 2 before naming the surplus partition', async () => {
    const grow = ['m-p0', 'm-p1', 'm-p2'];
    const waiting = await driveMeshMoves(client, { mesh: 'm', layout: grow, ready: new Set(['m-p0', 'm-p1']), surplus: [] });
    expect(waiting).toMatchObject({ step: { kind: 'wait', partitions: ['m-p2'] }, moved: 0 });
    // The keys are seeded from the claims while it waits: the new partition starts beside the owners they name.
    const seeded = await readSlotOwners(client);
    expect(seeded.keys.size).toBe(4096);
    expect(sizes(seeded.owners)).toEqual({ 'm-p0': 2048, 'm-p1': 2048 });

    const chunks: string[] = [];
    const grown = await driveMeshMoves(client, {
      mesh: 'm',
      layout: grow,
      ready: new Set(grow),
      surplus: [],
      onMoved: (move, revision) => {
        expect(revision).toBeGreaterThan(0);
        chunks.push(move.to);
      },
    });
    expect(grown).toMatchObject({ step: { kind: 'settled' }, moved: 1365 });
    expect(new Set(chunks)).toEqual(new Set(['m-p2']));
    expect(sizes(grown.owners)).toEqual({ 'm-p0': 1366, 'm-p1': 1365, 'm-p2': 1365 });
    // Every slot has an owner key now, and they agree with the pass's answer; no plan is left recorded.
    const afterGrow = await readSlotOwners(client);
    expect(afterGrow.keys.size).toBe(4096);
    expect(afterGrow.owners).toEqual(grown.owners);
    expect(await readRecordedPlan(client, 'm')).toBeUndefined();

    const shrunk = await driveMeshMoves(client, {
      mesh: 'm',
      layout: ['m-p0', 'm-p1'],
      ready: new Set(grow),
      surplus: ['m-p2'],
    });
    expect(shrunk).toMatchObject({ step: { kind: 'remove', partitions: ['m-p2'] }, moved: 1365 });
    expect(sizes(shrunk.owners)).toEqual({ 'm-p0': 2048, 'm-p1': 2048 });
    const again = await driveMeshMoves(client, { mesh: 'm', layout: ['m-p0', 'm-p1'], ready: new Set(['m-p0', 'm-p1']), surplus: [] });
    expect(again).toMatchObject({ step: { kind: 'settled' }, moved: 0 });
  });

  it('finishes a plan a former leader left half done, once the partitions it moves slots to are ready', async () => {
    const grow = ['m-p0', 'm-p1', 'm-p2'];
    await driveMeshMoves(client, { mesh: 'm', layout: ['m-p0', 'm-p1'], ready: new Set(['m-p0', 'm-p1']), surplus: [] });
    const { owners } = await readSlotOwners(client);
    const plan = planMoves(owners, grow);
    // Five chunks swapped, with the progress recorded as runMovePlan records it, then the leader went away.
    const recorded: RecordedPlan = { moves: plan.moves, done: 0, startedAt: new Date().toISOString() };
    for (let i = 0; i < 5; i++) {
      await moveChunk(client, plan.moves[i]!, [{ key: movePlanKey('m'), value: JSON.stringify({ ...recorded, done: i + 1 }) }]);
    }
    expect((await readRecordedPlan(client, 'm'))?.done).toBe(5);

    const held = await driveMeshMoves(client, { mesh: 'm', layout: grow, ready: new Set(['m-p0', 'm-p1']), surplus: [] });
    expect(held.step).toEqual({ kind: 'wait', partitions: ['m-p2'] });
    expect((await readRecordedPlan(client, 'm'))?.done).toBe(5);

    const done = await driveMeshMoves(client, { mesh: 'm', layout: grow, ready: new Set(grow), surplus: [] });
    expect(done.step).toEqual({ kind: 'settled' });
    expect(done.moved).toBe(1365 - plan.moves.slice(0, 5).reduce((n, m) => n + m.slots.reduce((k, r) => k + r.last - r.first + 1, 0), 0));
    expect(sizes(done.owners)).toEqual({ 'm-p0': 1366, 'm-p1': 1365, 'm-p2': 1365 });
    expect(await readRecordedPlan(client, 'm')).toBeUndefined();
  });

  it('stops before planning while some slot has no owner at all', async () => {
    await client.delete().prefix(slotMapPrefix + 'm-p1/');
    const outcome = await driveMeshMoves(client, { mesh: 'm', layout: ['m-p0', 'm-p1'], ready: new Set(['m-p0', 'm-p1']), surplus: [] });
    expect(outcome.step).toEqual({ kind: 'unowned', slots: 2048 });
    expect(await client.getAll().prefix(slotOwnerPrefix).keys()).toEqual([]);
  });
});

describe('MeshOwnerKeys', () => {
  it('says nothing before the etcd has owner keys, then gives the owners and queues the Mesh', async () => {
    const queued: string[] = [];
    const keys = new MeshOwnerKeys({ log: pino({ level: 'silent' }), enqueue: (key) => queued.push(key), pollMs: 100 });
    const mesh = sampleMesh('m', { stores: { ...sampleMesh('m').spec.stores, etcd: { endpoints: [etcd.endpoint] } } });
    keys.start();
    try {
      expect(keys.owners('mesh/m', mesh)).toBeUndefined();
      await new Promise<void>((resolve) => setTimeout(resolve, 300));
      expect(keys.owners('mesh/m', mesh)).toBeUndefined();
      expect(queued).toEqual([]);
      await seedOwnerKeys(client);
      const owners = await waitFor(() => keys.owners('mesh/m', mesh), { description: 'the owners by their keys', timeoutMs: 10_000 });
      expect(sizes(owners)).toEqual({ 'm-p0': 2048, 'm-p1': 2048 });
      expect(queued).toEqual(['mesh/m']);
    } finally {
      keys.stop();
    }
  });

  it('says nothing when the etcd does not answer', async () => {
    const [port] = await freePorts(1);
    const keys = new MeshOwnerKeys({ log: pino({ level: 'silent' }), enqueue: () => undefined, pollMs: 100 });
    const mesh = sampleMesh('m', { stores: { ...sampleMesh('m').spec.stores, etcd: { endpoints: [`http://127.0.0.1:${port}`] } } });
    keys.start();
    try {
      expect(keys.owners('mesh/m', mesh)).toBeUndefined();
      await new Promise<void>((resolve) => setTimeout(resolve, 500));
      expect(keys.owners('mesh/m', mesh)).toBeUndefined();
    } finally {
      keys.stop();
    }
  });
});
