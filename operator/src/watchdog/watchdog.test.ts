import type { V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { samplePartition } from '../api/fixtures.ts';
import type { MeshPartitionStatus } from '../api/v1alpha1.ts';
import { KubeClient } from '../kube/client.ts';
import { EventRecorder } from '../meshpartition/events.ts';
import { OperatorMetrics } from '../metrics.ts';
import { Watchdog } from './watchdog.ts';

const s = 1000;
const start = Date.parse('2026-01-01T12:00:00Z');

function member(name: string, ready: boolean): V1Pod {
  return {
    metadata: {
      name,
      namespace: 'mesh',
      uid: `uid-${name}`,
      creationTimestamp: new Date(start - 3600 * s),
      labels: { 'meshwork.io/partition': 'p0' },
    },
    spec: { containers: [], nodeName: 'n1' },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

/** A watchdog over one partition p0 (Enforce, one action at a time) that is never started: its informers stay empty and its client is never called. */
function watchdogOver(options: {
  tolerationSeconds: number;
  maxUnhealthyPercent: number;
  now: () => number;
  enqueue?: (key: string) => void;
}) {
  const client = new KubeClient({ server: new URL('https://127.0.0.1:1') });
  const log = pino({ level: 'silent' });
  const metrics = new OperatorMetrics();
  const partition = samplePartition('p0', {
    watchdog: {
      mode: 'Enforce',
      tolerationSeconds: options.tolerationSeconds,
      healthyResetSeconds: 600,
      nodeLostSeconds: 300,
      maxConcurrent: 1,
      actionsPerHour: 6,
      recoverySeconds: 30,
    },
  });
  const watchdog = new Watchdog(
    {
      client,
      log,
      metrics,
      events: new EventRecorder(client, 'test', log),
      maxUnhealthyPercent: options.maxUnhealthyPercent,
      partitionKeys: () => ['mesh/p0'],
      memberPods: () => [],
      partition: () => partition,
      enqueue: options.enqueue ?? (() => undefined),
      now: options.now,
    },
    undefined,
  );
  return { client, metrics, partition, watchdog };
}

describe('Watchdog pause', () => {
  it('pauses when most members fail, and after resuming gives the rest the recovery allowance', () => {
    let now = start;
    const enqueued: string[] = [];
    const { client, partition, watchdog } = watchdogOver({
      tolerationSeconds: 5,
      maxUnhealthyPercent: 50,
      now: () => now,
      enqueue: (key) => enqueued.push(key),
    });
    let live: MeshPartitionStatus | undefined;
    const pass = (ready: boolean[]) => {
      const a = watchdog.assess(
        partition,
        ready.map((r, i) => member(`p0-${i}`, r)),
        live,
      );
      live = { members: a.members, remediations: a.remediations };
      return a;
    };

    pass([true, true, true]);
    expect(watchdog.paused).toBe(false);
    now += s;
    pass([false, false, false]);
    now += 60 * s;
    const down = pass([false, false, false]);
    expect(watchdog.paused).toBe(true);
    expect(down.actions).toEqual([]);
    expect(down.refused.map((r) => r.refusal)).toEqual(['Paused', 'Paused', 'Paused']);
    expect(enqueued).toContain('mesh/p0');

    // The stores come back; members recover one by one. The last one is not restarted at once.
    now += 10 * s;
    const back = pass([true, true, false]);
    expect(watchdog.paused).toBe(false);
    expect(back.actions).toEqual([]);
    expect(back.wakeAt).toBe(now + 30 * s);
    now += 29 * s;
    expect(pass([true, true, false]).actions).toEqual([]);
    now += 2 * s;
    expect(pass([true, true, false]).actions.map((a) => a.action)).toEqual(['Restart']);
    expect(watchdog.pauseMessage()).toContain('50%');
    client.close();
  });
});

describe('Watchdog time to recover', () => {
  it('observes a member healthy again after an unhealthy spell once, and not a new member coming up', async () => {
    let now = start;
    const { client, metrics, partition, watchdog } = watchdogOver({ tolerationSeconds: 60, maxUnhealthyPercent: 100, now: () => now });
    let live: MeshPartitionStatus | undefined;
    // p0-1's pod is new.
    const created = new Date(start);
    const pass = (ready: boolean[], write = true) => {
      const pods = ready.map((r, i) => member(`p0-${i}`, r));
      pods[1]!.metadata!.creationTimestamp = created;
      const a = watchdog.assess(partition, pods, live);
      if (write) live = { members: a.members, remediations: a.remediations };
      return a;
    };
    const observed = async (): Promise<Record<string, number>> => {
      const counts: Record<string, number> = {};
      for (const v of (await metrics.watchdogRecovery.get()).values)
        if (v.metricName === 'meshwork_watchdog_recovery_seconds_count') counts[String(v.labels.level)] = v.value;
      return counts;
    };
    const sum = async (): Promise<number> =>
      (await metrics.watchdogRecovery.get()).values.find((v) => v.metricName === 'meshwork_watchdog_recovery_seconds_sum')?.value ?? 0;

    // p0-1 is first seen not ready (a new member starting), then ready: that is no recovery.
    pass([true, false, true]);
    now += 5 * s;
    pass([true, true, true]);
    const none = { '0': 0, '1': 0, '2': 0, '3': 0, '4': 0 };
    expect(await observed()).toEqual(none);

    // p0-1 fails for 12 s and comes back by itself.
    now += 5 * s;
    pass([true, false, true]);
    now += 12 * s;
    expect(pass([true, true, true], false).recovered.map((r) => r.pod)).toEqual(['p0-1']);
    // The same pass again before its status was written records it once.
    pass([true, true, true]);
    expect(await observed()).toEqual({ ...none, '0': 1 });
    expect(await sum()).toBe(12);
    client.close();
  });
});
