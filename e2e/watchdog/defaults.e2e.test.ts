// The watchdog with the settings a user actually runs (the CRD's defaults), against real
// failures on the local cluster: how long each fault keeps a member down, that a replaced
// member's former process can commit nothing, that a member cut off from the API server but
// not from etcd is left alone, and that a node with no room left makes the partition report
// InsufficientCapacity instead of rebuilding volumes, then heals once the node is back (ADR 29, 30).
import { MeshworkClient } from '@meshwork/client';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { MeshPartition, Remediation, WatchdogSpec } from '../../operator/src/api/v1alpha1.ts';
import { waitFor } from '../harness/wait.ts';
import { WatchdogTestBed, type WatchdogCluster } from './cluster.ts';

const stack = inject('stack');

/** The targets of issue-level recovery times with the defaults, in seconds. */
export const defaultTargets = { nodeLost: 45, hang: 20, volumeFault: 30 } as const;

describe('the watchdog with its default settings', () => {
  const bed = new WatchdogTestBed();
  let cluster: WatchdogCluster;

  beforeAll(async () => {
    cluster = await bed.start(stack.minio, 6);
  });

  afterAll(() => bed.stop());

  afterEach(() => cluster.deleteAllPartitions());

  const status = async (name: string): Promise<NonNullable<MeshPartition['status']>> => (await cluster.partition(name)).status ?? {};
  const remediations = async (name: string): Promise<Remediation[]> => (await status(name)).remediations ?? [];

  async function readyPartition(
    name: string,
    watchdog: Partial<WatchdogSpec> = {},
    replicas = 3,
    cpu?: string,
  ): Promise<Map<string, V1Pod>> {
    await cluster.applyPartition(name, watchdog, replicas, cpu);
    const pods = await cluster.waitForReadyMembers(name, replicas, 180_000);
    return new Map(pods.map((p) => [p.metadata!.name!, p]));
  }

  /** A client of one member's API, as the administrator, that does not retry (each answer is asserted). */
  const memberClient = (pod: V1Pod, token = cluster.adminToken) =>
    new MeshworkClient({ baseUrl: `http://${pod.status!.podIP}:8080`, token, retry: { maxAttempts: 1 }, timeoutMs: 10_000 });

  it(`restarts a hung member within ${defaultTargets.hang} s: its owner lease expired`, async () => {
    const name = 'dhang';
    const pods = await readyPartition(name);
    const target = `${name}-1`;
    const before = pods.get(target)!;
    const frozenAt = Date.now();
    cluster.agent.freezePod(cluster.namespace, target);
    await cluster.waitForMemberReady(target, 60_000, before.metadata!.uid);
    const seconds = (Date.now() - frozenAt) / 1000;
    console.log(`Hung member Ready again after ${seconds.toFixed(1)} s with the default settings`);
    expect((await remediations(name)).map((r) => [r.pod, r.action, r.reason])).toEqual([[target, 'Restart', 'OwnerLeaseExpired']]);
    expect(seconds).toBeLessThanOrEqual(defaultTargets.hang);
  });

  it(`replaces the member of a powered-off node within ${defaultTargets.nodeLost} s, and its thawed former process commits nothing`, async () => {
    const name = 'dlost';
    const pods = await readyPartition(name);
    const target = `${name}-0`;
    const before = pods.get(target)!;
    const lostNode = before.spec!.nodeName!;
    // A user and an object, written through the member that is about to be lost.
    const admin = memberClient(before);
    const user = await admin.createUser('fenced');
    const asUser = memberClient(before, user.token);
    const object = await asUser.createObject({ name: 'before' });

    const offAt = Date.now();
    await cluster.agent.powerOff(lostNode, 'freeze');
    try {
      const after = await cluster.waitForMemberReady(target, 90_000, before.metadata!.uid);
      const seconds = (Date.now() - offAt) / 1000;
      console.log(`Member of a powered-off node Ready again after ${seconds.toFixed(1)} s with the default settings`);
      expect(after.spec!.nodeName).not.toBe(lostNode);
      const history = await remediations(name);
      expect(history.map((r) => [r.action, r.reason])).toEqual([
        ['Fence', 'NodeLost'],
        ['RecreateVolume', history[1]?.reason],
      ]);
      expect(history[1]!.reason).toMatch(/^VolumePinnedTo(Lost|Unsuitable)Node$/);
      expect(seconds).toBeLessThanOrEqual(defaultTargets.nodeLost);

      // The new member serves writes.
      const fresh = memberClient(after, user.token);
      await waitFor(() => fresh.renameObject(object.id, 'after').then(() => true), {
        description: 'a write through the new member',
        timeoutMs: 20_000,
        intervalMs: 500,
      });
      // The former process wakes up (its node still off, so nothing stops it but its own fence)
      // and is asked to write: it must not commit.
      for (const runner of cluster.agent.nodes.get(lostNode)!.runners.values()) {
        if (runner.name === target) runner.setFrozen(false);
      }
      const stale = await asUser.renameObject(object.id, 'stale').then(
        () => 'committed',
        (err: unknown) => (err instanceof Error ? err.message : String(err)),
      );
      expect(stale).not.toBe('committed');
      expect((await fresh.getObject(object.id)).name).toBe('after');
    } finally {
      await cluster.agent.powerOn(lostNode);
    }
  });

  it(`recreates the volumes of a member whose volume failed within ${defaultTargets.volumeFault} s`, async () => {
    const name = 'dvolume';
    const pods = await readyPartition(name);
    const target = `${name}-2`;
    const before = pods.get(target)!;
    const brokenAt = Date.now();
    const repair = await cluster.breakVolume(`data-1-${target}`);
    try {
      await cluster.waitForMemberReady(target, 90_000, before.metadata!.uid);
    } finally {
      await repair();
    }
    const seconds = (Date.now() - brokenAt) / 1000;
    console.log(`Member with a failed volume Ready again after ${seconds.toFixed(1)} s with the default settings`);
    expect((await remediations(name)).map((r) => [r.action, r.reason])).toEqual([['RecreateVolume', 'VolumeFault']]);
    expect(seconds).toBeLessThanOrEqual(defaultTargets.volumeFault);
  });

  it('leaves alone a member whose node stopped heartbeating while it still renews its owner lease', async () => {
    const name = 'dsplit';
    // A short last-resort bound, so that without the owner lease the member would be fenced during the test.
    const nodeLostSeconds = 30;
    const pods = await readyPartition(name, { nodeLostSeconds, tolerationSeconds: 10 });
    const target = `${name}-1`;
    const before = pods.get(target)!;
    const node = before.spec!.nodeName!;
    // Cut from the API server, not from etcd: the node's heartbeats stop, its processes run on.
    await cluster.agent.powerOff(node, 'freeze');
    for (const runner of cluster.agent.nodes.get(node)!.runners.values()) runner.setFrozen(false);
    const lastRenewal = await cluster.leaseRenewed(node);
    try {
      await waitFor(async () => (await status(name)).members?.find((m) => m.pod === target)?.reason === 'NodeUnreachable', {
        description: 'the member to be seen on a silent node',
        timeoutMs: 90_000,
        intervalMs: 1000,
      });
      await waitFor(() => Date.now() > lastRenewal + (nodeLostSeconds + 15) * 1000 && true, {
        description: 'nodeLostSeconds to pass',
        timeoutMs: 90_000,
        intervalMs: 1000,
      });
      expect(await remediations(name)).toEqual([]);
      expect((await cluster.pod(target))?.metadata?.uid).toBe(before.metadata!.uid);
      // It still serves.
      expect((await memberClient(before).livez()).healthy).toBe(true);
    } finally {
      await cluster.agent.powerOn(node);
    }
  });

  it('reports InsufficientCapacity instead of rebuilding volumes when no node has room, and heals once the node is back after its probation', async () => {
    const name = 'dfull';
    // Four members of 1.5 CPU on four 2-CPU nodes: a lost node leaves no room for its member.
    const pods = await readyPartition(name, { nodeProbationSeconds: 10 }, 4, '1500m');
    const target = `${name}-3`;
    const before = pods.get(target)!;
    const lostNode = before.spec!.nodeName!;
    await cluster.agent.powerOff(lostNode, 'kill');
    let poweredOn = false;
    try {
      const degraded = await waitFor(
        async () => {
          const c = (await status(name)).conditions?.find((x) => x.type === 'Degraded');
          return c?.reason === 'InsufficientCapacity' ? c : undefined;
        },
        { description: 'Degraded=True InsufficientCapacity', timeoutMs: 120_000, intervalMs: 1000 },
      );
      expect(degraded.status).toBe('True');
      expect(degraded.message).toMatch(new RegExp(`^${target} cannot be scheduled: .*Insufficient cpu`));
      expect((await remediations(name)).map((r) => r.action)).toEqual(['Fence']);
      await cluster.agent.powerOn(lostNode);
      poweredOn = true;
      // Back Ready with a fresh Lease, the node takes the member again after its probation, on its own volumes.
      const after = await cluster.waitForMemberReady(target, 120_000, before.metadata!.uid);
      expect(after.spec!.nodeName).toBe(lostNode);
      expect((await remediations(name)).map((r) => r.action)).toEqual(['Fence']);
      await waitFor(async () => (await status(name)).conditions?.find((x) => x.type === 'Degraded')?.status === 'False', {
        description: 'Degraded=False',
        timeoutMs: 30_000,
        intervalMs: 500,
      });
    } finally {
      if (!poweredOn) await cluster.agent.powerOn(lostNode);
    }
  });
});
