// Rebalancing benchmark (ADR 34): how long a slot is unavailable while a mesh grows from two
// partitions to three online, with real etcd, MinIO, partition and gateway processes.
//
//   rebalance_unavailable_s  the longest time any probed slot answered only non-2xx during
//                            the 2 → 3 moves: from a probe's first refusal to its next
//                            acknowledged commit. Probes are writers (closed loop, one commit
//                            after another, through the gateway, retrying a refusal after 20 ms
//                            rather than after Retry-After, to measure the window), one per
//                            user, each user in a different chunk of the slots that move.
//   baseline                 the same probes for the same time with nothing moving, in the
//                            same run: their longest refusal run and their commit latency.
//
// Usage: npm run bench -- rebalance [--quick]   (--quick: 16 probes instead of 32)
import { Agent } from 'node:http';
import { loadavg } from 'node:os';
import { Etcd3 } from 'etcd3';
import { MeshworkClient, type DeviceClient } from '@meshwork/client';
import { nodeHttpFetch } from '@meshwork/client/node';
import { startEtcd } from '../e2e/harness/etcd.ts';
import { startMinio } from '../e2e/harness/minio.ts';
import { startGateway } from '../e2e/dataplane/gateway-process.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../e2e/dataplane/partition-process.ts';
import { slotOf } from '../dataplane/src/slots.ts';
import { planMoves, rangesToSlots } from '../operator/src/mesh/moves.ts';
import { readSlotOwners, runMovePlan, seedOwnerKeys } from '../operator/src/mesh/slot-mover.ts';
import { printTable } from './table.ts';

const quick = process.argv.includes('--quick');
const probes = quick ? 16 : 32;
const retryMs = 20;

/** What one probe saw over one phase. */
interface ProbeLog {
  acked: number;
  refused: number;
  latenciesMs: number[];
  longestOutageMs: number;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Commits entries one after another until `stop.now`, logging latencies and refusal runs. */
async function probe(device: DeviceClient, objectId: string, prefix: string, log: ProbeLog, stop: { now: boolean }): Promise<void> {
  for (let n = 0; !stop.now; n++) {
    let failingSince: number | undefined;
    for (;;) {
      const start = performance.now();
      const res = await device
        .raw('PUT', `/v1/objects/${objectId}/entries/${prefix}-${n}`, { body: { kind: 'directory' }, headers: { 'if-none-match': '*' } })
        .catch(() => undefined);
      // 412: an earlier try applied without its answer reaching us.
      if (res !== undefined && ((res.status >= 200 && res.status < 300) || (res.status === 412 && failingSince !== undefined))) {
        log.acked++;
        log.latenciesMs.push(performance.now() - start);
        break;
      }
      log.refused++;
      failingSince ??= performance.now();
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
    if (failingSince !== undefined) log.longestOutageMs = Math.max(log.longestOutageMs, performance.now() - failingSince);
  }
}

async function phase(devices: DeviceClient[], objects: string[], name: string, during: () => Promise<void>): Promise<ProbeLog[]> {
  const logs = devices.map(() => ({ acked: 0, refused: 0, latenciesMs: [] as number[], longestOutageMs: 0 }));
  const stop = { now: false };
  const running = devices.map((d, i) => probe(d, objects[i]!, name, logs[i]!, stop));
  try {
    await during();
  } finally {
    stop.now = true;
    await Promise.all(running);
  }
  return logs;
}

const loadBefore = loadavg()[0]!;
const [etcd, minio] = await Promise.all([startEtcd({ name: 'bench-rebalance-etcd' }), startMinio({ bucket: 'bench-rebalance' })]);
const stores = { etcdEndpoint: etcd.endpoint, minio };
const env = { MESHWORK_LOG_LEVEL: 'warn', ...unthrottledEnv };
const running: RunningPartition[] = [];
const p0 = await startPartition(stores, { partition: 'p0', slots: '0-2047', env: { ...env, MESHWORK_POD_NAME: 'p0-0' } });
running.push(p0);
running.push(
  await startPartition(stores, {
    partition: 'p1',
    slots: '2048-4095',
    adminToken: p0.adminToken,
    env: { ...env, MESHWORK_POD_NAME: 'p1-0' },
  }),
);
const gateway = await startGateway({ etcdEndpoint: etcd.endpoint, env: { MESHWORK_LOG_LEVEL: 'warn' } });
const etcdClient = new Etcd3({ hosts: etcd.endpoint });
const agent = new Agent({ keepAlive: true, maxSockets: 128 });

try {
  const admin = new MeshworkClient({ baseUrl: gateway.url, token: p0.adminToken, fetch: nodeHttpFetch(agent) });
  const plan = planMoves((await readSlotOwners(etcdClient)).owners, ['p0', 'p1', 'p2']);
  // One probe per chunk that moves (as many as there are probes), each in a different chunk.
  const chunkOf = new Map<number, number>();
  plan.moves.forEach((m, i) => rangesToSlots(m.slots).forEach((s) => chunkOf.set(s, i)));
  const devices: DeviceClient[] = [];
  const objects: string[] = [];
  const taken = new Set<number>();
  for (let tries = 0; devices.length < probes && tries < 5000; tries++) {
    const account = await admin.createUser(`probe-${tries}`);
    const chunk = chunkOf.get(slotOf(account.id));
    if (chunk === undefined || (taken.has(chunk) && taken.size < plan.moves.length)) continue;
    taken.add(chunk);
    const device = await admin.as(account.token).registerDeviceClient('probe');
    devices.push(device);
    objects.push((await device.createObject({ name: 'probe' })).id);
  }
  await seedOwnerKeys(etcdClient);
  running.push(
    await startPartition(stores, {
      partition: 'p2',
      slots: '2730-4095',
      adminToken: p0.adminToken,
      env: { ...env, MESHWORK_POD_NAME: 'p2-0' },
    }),
  );

  let baselineMs = 0;
  const baseline = await phase(devices, objects, 'steady', async () => {
    const start = performance.now();
    // As long as the moves took in a trial run would be ideal; a fixed 5 s is close on this machine.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    baselineMs = performance.now() - start;
  });
  let moveMs = 0;
  const moving = await phase(devices, objects, 'moving', async () => {
    // Let every probe commit once before the first swap.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const start = performance.now();
    await runMovePlan(etcdClient, 'bench', plan);
    moveMs = performance.now() - start;
    // And a little after the last swap, so that the last refusal runs end inside the phase.
    await new Promise((resolve) => setTimeout(resolve, 1000));
  });

  const summary = (logs: ProbeLog[]) => ({
    acked: logs.reduce((n, l) => n + l.acked, 0),
    refused: logs.reduce((n, l) => n + l.refused, 0),
    p50: percentile(
      logs.flatMap((l) => l.latenciesMs),
      50,
    ),
    p99: percentile(
      logs.flatMap((l) => l.latenciesMs),
      99,
    ),
    longest: Math.max(...logs.map((l) => l.longestOutageMs)),
  });
  const steady = summary(baseline);
  const during = summary(moving);
  const moved = rangesToSlots(plan.moves.flatMap((m) => m.slots)).length;
  const rows = [
    ['slots moved / chunks', `${moved} / ${plan.moves.length}`, '', ''],
    ['probes (each in its own moving chunk)', String(devices.length), '', ''],
    ['time of the moves (s)', (moveMs / 1000).toFixed(2), `${(baselineMs / 1000).toFixed(1)} (window)`, ''],
    ['commits acknowledged', String(during.acked), String(steady.acked), ''],
    ['refusals (any non-2xx)', String(during.refused), String(steady.refused), ''],
    [
      'commit p50 / p99 (ms)',
      `${during.p50.toFixed(1)} / ${during.p99.toFixed(1)}`,
      `${steady.p50.toFixed(1)} / ${steady.p99.toFixed(1)}`,
      '',
    ],
    ['rebalance_unavailable_s', (during.longest / 1000).toFixed(3), (steady.longest / 1000).toFixed(3), '< 5'],
    ['machine load average (1 min) before / after', `${loadBefore.toFixed(2)} / ${loadavg()[0]!.toFixed(2)}`, '', ''],
  ];
  printTable(['measure', 'during 2 -> 3', 'baseline (nothing moving)', 'target'], rows);
  console.log(
    JSON.stringify({
      benchmark: 'rebalance',
      quick,
      rebalance_unavailable_s: Number((during.longest / 1000).toFixed(3)),
      baseline_unavailable_s: Number((steady.longest / 1000).toFixed(3)),
      moves_s: Number((moveMs / 1000).toFixed(2)),
      slots_moved: moved,
      chunks: plan.moves.length,
      refusals: during.refused,
      commit_p99_ms_moving: Number(during.p99.toFixed(1)),
      commit_p99_ms_steady: Number(steady.p99.toFixed(1)),
    }),
  );
} finally {
  agent.destroy();
  etcdClient.close();
  await Promise.all([gateway.stop(), ...running.map((p) => p.stop())]);
  await Promise.all([etcd.stop(), minio.stop()]);
}
