// The watchdog against real failures on the local cluster: frozen data-plane processes,
// powered-off nodes, failed volumes, a stopped etcd. One cluster (nodes, etcd, operator)
// serves every scenario; each scenario has its own partition, deleted when it ends, so the
// cluster-wide bound sees one partition at a time.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { MeshPartition, Remediation, WatchdogSpec } from '../../operator/src/api/v1alpha1.ts';
import { waitFor } from '../harness/wait.ts';
import { WatchdogTestBed, type WatchdogCluster } from './cluster.ts';

const stack = inject('stack');

/** Short thresholds so each scenario runs in about a minute; the production defaults are in the CRD. */
export const testWatchdog: Partial<WatchdogSpec> = {
  tolerationSeconds: 5,
  healthyResetSeconds: 60,
  nodeLostSeconds: 30,
  recoverySeconds: 30,
  probeTimeoutSeconds: 1,
  probePeriodSeconds: 2,
  maxConcurrent: 1,
  actionsPerHour: 20,
};

describe('the watchdog', () => {
  const bed = new WatchdogTestBed();
  let cluster: WatchdogCluster;

  beforeAll(async () => {
    cluster = await bed.start(stack.minio, 5);
  });

  afterAll(() => bed.stop());

  afterEach(() => cluster.deleteAllPartitions());

  const status = async (name: string): Promise<NonNullable<MeshPartition['status']>> => (await cluster.partition(name)).status ?? {};
  const remediations = async (name: string): Promise<Remediation[]> => (await status(name)).remediations ?? [];
  const condition = async (name: string, type: string): Promise<string | undefined> =>
    (await status(name)).conditions?.find((c) => c.type === type)?.status;
  const memberOf = async (name: string, pod: string) => (await status(name)).members?.find((m) => m.pod === pod);

  /** Applies a partition and waits until its members are Ready; returns them by name. */
  async function readyPartition(name: string, watchdog: Partial<WatchdogSpec>): Promise<Map<string, V1Pod>> {
    await cluster.applyPartition(name, { ...testWatchdog, ...watchdog });
    const pods = await cluster.waitForReadyMembers(name, 3, 120_000);
    return new Map(pods.map((p) => [p.metadata!.name!, p]));
  }

  it('restarts a frozen member, then reschedules it to another node when it fails again inside probation', async () => {
    const name = 'hang';
    const pods = await readyPartition(name, {});
    const target = `${name}-1`;
    const first = pods.get(target)!;
    const firstNode = first.spec!.nodeName!;

    // 1. A frozen process still looks Ready to Kubernetes; the operator's deep probe times out,
    // and its owner lease in etcd expires: whichever the watchdog sees first restarts it.
    const frozenAt = Date.now();
    cluster.agent.freezePod(cluster.namespace, target);
    const second = await cluster.waitForMemberReady(target, 60_000, first.metadata!.uid);
    const restartedIn = (Date.now() - frozenAt) / 1000;
    const [restart] = await remediations(name);
    expect([restart!.pod, restart!.action, restart!.level, restart!.outcome]).toEqual([target, 'Restart', 1, 'Performed']);
    expect(['DeepCheckFailing', 'OwnerLeaseExpired']).toContain(restart!.reason);
    expect(await memberOf(name, target)).toMatchObject({ level: 1, lastAction: 'Restart' });
    // Events are recorded right after the action, which may be a moment after Ready.
    await waitFor(async () => (await cluster.eventReasons('Pod', target)).includes('WatchdogRestart'), {
      description: 'the Event on the pod',
      timeoutMs: 10_000,
    });
    await waitFor(async () => (await cluster.eventReasons('MeshPartition', name)).includes('WatchdogRestart'), {
      description: 'the Event on the MeshPartition',
      timeoutMs: 10_000,
    });
    expect(await cluster.operator.metric('meshwork_watchdog_actions_total', { action: 'Restart', reason: restart!.reason })).toBe(1);
    // Its time to recover is recorded once the watchdog sees it healthy, under the level of the restart.
    const recovered = await waitFor(
      async () => ((await cluster.operator.metric('meshwork_watchdog_recovery_seconds_count', { level: '1' })) >= 1 ? true : undefined),
      { description: 'the time to recover of the restarted member', timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(recovered).toBe(true);
    expect(await cluster.operator.metric('meshwork_watchdog_recovery_seconds_count', { level: '1' })).toBe(1);
    const recoverySeconds = await cluster.operator.metric('meshwork_watchdog_recovery_seconds_sum', { level: '1' });
    // From the watchdog's first unhealthy sighting (after the freeze) to its healthy one (after Ready).
    expect(recoverySeconds).toBeGreaterThan(0);
    expect(recoverySeconds).toBeLessThan((Date.now() - frozenAt) / 1000);
    console.log(`Frozen member Ready again after ${restartedIn.toFixed(1)} s; time to recover recorded: ${recoverySeconds.toFixed(1)} s`);

    // 2. It fails again inside probation (healthyResetSeconds): the ladder goes on to level 2.
    // Its volumes are local to the node, so the pod it leaves behind is pinned there, and the
    // watchdog gives it fresh volumes on another node (level 3) at once.
    cluster.agent.freezePod(cluster.namespace, target);
    const third = await cluster.waitForMemberReady(target, 120_000, second.metadata!.uid);
    expect(third.spec!.nodeName).not.toBe(firstNode);
    const history = await remediations(name);
    expect(history.map((r) => [r.action, r.level])).toEqual([
      ['Restart', 1],
      ['Reschedule', 2],
      ['RecreateVolume', 3],
    ]);
    expect(history[2]!.reason).toBe('VolumePinnedToUnsuitableNode');
    const node = await cluster.core.readNode({ name: firstNode });
    expect(node.metadata!.labels![`unsuitable.meshwork.io/${cluster.namespace}.${name}`]).toMatch(/^\d+$/);
    // The StatefulSet's template was never changed by an action.
    const sts = await waitFor(() => cluster.pods(name), { description: 'pods', timeoutMs: 1000 });
    expect(
      sts.every((p) => p.metadata?.labels?.['controller-revision-hash'] === sts[0]!.metadata?.labels?.['controller-revision-hash']),
    ).toBe(true);
  });

  it('recreates the volumes of a member that exits with the volume-fault code', async () => {
    const name = 'volume';
    const pods = await readyPartition(name, {});
    const target = `${name}-2`;
    const before = pods.get(target)!;
    const repair = await cluster.breakVolume(`data-1-${target}`);
    try {
      const after = await cluster.waitForMemberReady(target, 120_000, before.metadata!.uid);
      expect(after.metadata!.uid).not.toBe(before.metadata!.uid);
    } finally {
      await repair();
    }
    const history = await remediations(name);
    expect(history.map((r) => [r.pod, r.action, r.level, r.reason])).toEqual([[target, 'RecreateVolume', 3, 'VolumeFault']]);
    const claims = await cluster.core.listNamespacedPersistentVolumeClaim({ namespace: cluster.namespace });
    const fresh = claims.items.filter((c) => c.metadata!.name!.endsWith(target));
    expect(fresh).toHaveLength(2);
    for (const claim of fresh)
      expect(new Date(claim.metadata!.creationTimestamp!).getTime()).toBeGreaterThan(new Date(history[0]!.time).getTime() - 1000);
  });

  it('fences the member of a powered-off node once the node is NotReady and the owner lease expired, and brings it up elsewhere', async () => {
    const name = 'lost';
    const pods = await readyPartition(name, { fencing: 'OutOfServiceTaint' });
    const target = `${name}-0`;
    const before = pods.get(target)!;
    const lostNode = before.spec!.nodeName!;
    await cluster.agent.powerOff(lostNode, 'kill');
    const lastRenewal = await cluster.leaseRenewed(lostNode);
    try {
      // Nothing is done while the node is Ready: it may be the node that died, not the process.
      await waitFor(async () => (await memberOf(name, target))?.health !== 'Healthy', {
        description: 'the member to be seen failing',
        timeoutMs: 60_000,
      });
      expect(await remediations(name)).toEqual([]);
      const after = await cluster.waitForMemberReady(target, 150_000, before.metadata!.uid);
      expect(after.spec!.nodeName).not.toBe(lostNode);
      const history = await remediations(name);
      expect(history.map((r) => r.action)).toEqual(['Fence', 'RecreateVolume']);
      expect(history[0]!.reason).toBe('NodeLost');
      expect(history[1]!.reason).toMatch(/^VolumePinnedTo(Lost|Unsuitable)Node$/);
      // The controller manager turns the node NotReady 20 s after its last heartbeat.
      expect(new Date(history[0]!.time).getTime()).toBeGreaterThanOrEqual(lastRenewal + 19_000);
      const node = await cluster.core.readNode({ name: lostNode });
      expect(node.spec!.taints).toContainEqual(expect.objectContaining({ key: 'node.kubernetes.io/out-of-service', effect: 'NoExecute' }));
    } finally {
      await cluster.agent.powerOn(lostNode);
    }
    // Back in service, the watchdog lifts its taint (the sweep runs every 5 s).
    await waitFor(
      async () => {
        const node: V1Node = await cluster.core.readNode({ name: lostNode });
        return !(node.spec?.taints ?? []).some((t) => t.key === 'node.kubernetes.io/out-of-service');
      },
      { description: 'the out-of-service taint to be lifted', timeoutMs: 90_000, intervalMs: 1000 },
    );
  });

  it('repairs nothing while most members are down with etcd, and resumes when it is back', async () => {
    const name = 'systemic';
    await readyPartition(name, {});
    const uids = new Set((await cluster.pods(name)).map((p) => p.metadata!.uid));
    await cluster.stopEtcd();
    try {
      await waitFor(async () => (await condition(name, 'RemediationPaused')) === 'True', {
        description: 'RemediationPaused=True',
        timeoutMs: 60_000,
        intervalMs: 500,
      });
      // Well past the toleration and the recovery allowance, nothing was done.
      const pausedAt = Date.now();
      await waitFor(() => Date.now() - pausedAt > (testWatchdog.recoverySeconds! + 5) * 1000 && true, {
        description: 'the bounds to be tested',
        timeoutMs: 60_000,
        intervalMs: 1000,
      });
      expect(await remediations(name)).toEqual([]);
      expect(new Set((await cluster.pods(name)).map((p) => p.metadata!.uid))).toEqual(uids);
    } finally {
      await cluster.restartEtcd();
    }
    await cluster.waitForReadyMembers(name, 3, 90_000);
    await waitFor(async () => (await condition(name, 'RemediationPaused')) === 'False', {
      description: 'RemediationPaused=False',
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    expect(await remediations(name)).toEqual([]);
    expect(await cluster.operator.metric('meshwork_watchdog_remediation_paused')).toBe(0);
  });

  it('repairs nothing while two of three member nodes are powered off, and resumes after', async () => {
    const name = 'twonodes';
    const pods = await readyPartition(name, {});
    const nodes = [...pods.values()].map((p) => p.spec!.nodeName!).slice(0, 2);
    for (const node of nodes) await cluster.agent.powerOff(node, 'kill');
    try {
      await waitFor(async () => (await condition(name, 'RemediationPaused')) === 'True', {
        description: 'RemediationPaused=True',
        timeoutMs: 90_000,
        intervalMs: 500,
      });
      // Past nodeLostSeconds: the nodes count as lost, and still nothing is fenced.
      const renewed = Math.max(...(await Promise.all(nodes.map((n) => cluster.leaseRenewed(n)))));
      await waitFor(() => Date.now() > renewed + (testWatchdog.nodeLostSeconds! + 10) * 1000 && true, {
        description: 'nodeLostSeconds to pass',
        timeoutMs: 90_000,
        intervalMs: 1000,
      });
      expect(await remediations(name)).toEqual([]);
    } finally {
      for (const node of nodes) await cluster.agent.powerOn(node);
    }
    await cluster.waitForReadyMembers(name, 3, 120_000);
    await waitFor(async () => (await condition(name, 'RemediationPaused')) === 'False', {
      description: 'RemediationPaused=False',
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    expect(await remediations(name)).toEqual([]);
  });

  it('in Observe mode records what it would do and does nothing', async () => {
    const name = 'observe';
    const pods = await readyPartition(name, { mode: 'Observe' });
    const target = `${name}-0`;
    const uid = pods.get(target)!.metadata!.uid;
    cluster.agent.freezePod(cluster.namespace, target);
    try {
      await waitFor(async () => (await remediations(name)).length >= 2, {
        description: 'two recorded intentions',
        timeoutMs: 120_000,
        intervalMs: 500,
      });
      const history = await remediations(name);
      expect(history.slice(0, 2).map((r) => [r.pod, r.action, r.level, r.outcome])).toEqual([
        [target, 'Restart', 1, 'Observed'],
        [target, 'Reschedule', 2, 'Observed'],
      ]);
      expect((await cluster.pod(target))!.metadata!.uid).toBe(uid);
      expect(await cluster.eventReasons('MeshPartition', name)).toContain('WatchdogWouldAct');
      expect(await cluster.operator.metric('meshwork_watchdog_intentions_total', { action: 'Restart' })).toBeGreaterThanOrEqual(1);
      const labelled = (await cluster.core.listNode()).items.filter(
        (n) => n.metadata?.labels?.[`unsuitable.meshwork.io/${cluster.namespace}.${name}`],
      );
      expect(labelled).toEqual([]);
    } finally {
      cluster.agent.thawPod(cluster.namespace, target);
    }
  });

  it('gives up on a member that fails at every level, marks the partition Degraded and leaves it alone', async () => {
    const name = 'hopeless';
    await readyPartition(name, {});
    const target = `${name}-1`;
    // Every pod of this member hangs as soon as its process runs: no level can help.
    const frozen = new Set<string>();
    const freezer = setInterval(() => {
      void cluster.pod(target).then((pod) => {
        const uid = pod?.metadata?.uid;
        if (!uid || frozen.has(uid) || pod.metadata?.deletionTimestamp) return;
        try {
          cluster.agent.freezePod(cluster.namespace, target);
          frozen.add(uid);
        } catch {
          // Not running on a node yet.
        }
      });
    }, 300);
    try {
      await waitFor(async () => (await memberOf(name, target))?.level === 4, {
        description: 'level 4',
        timeoutMs: 240_000,
        intervalMs: 1000,
      });
      expect((await remediations(name)).map((r) => r.action)).toEqual(['Restart', 'Reschedule', 'RecreateVolume', 'GiveUp']);
      expect((await status(name)).conditions?.find((c) => c.type === 'Degraded')).toMatchObject({
        status: 'True',
        reason: 'RemediationExhausted',
      });
      expect(await cluster.eventReasons('MeshPartition', name)).toContain('WatchdogGiveUp');
      expect(await cluster.operator.metric('meshwork_watchdog_members', { level: '4' })).toBe(1);
      // It stays given up: no further action past another recovery window.
      const uid = (await cluster.pod(target))?.metadata?.uid;
      const since = Date.now();
      await waitFor(() => Date.now() - since > (testWatchdog.recoverySeconds! + 5) * 1000 && true, {
        description: 'a recovery window',
        timeoutMs: 60_000,
        intervalMs: 1000,
      });
      expect((await remediations(name)).length).toBe(4);
      expect((await cluster.pod(target))?.metadata?.uid).toBe(uid);
    } finally {
      clearInterval(freezer);
    }
  });
});
