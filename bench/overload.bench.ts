// Overload benchmark: what the partition's dynamic limits (adaptive concurrency limit,
// event-loop lag shedding) keep when offered five times what it can serve.
//
//   baseline   the capacity of a cheap authenticated route, measured closed
//              loop in the same run by a partition whose concurrency limit is lifted (so the
//              limiter cannot shape its own baseline), at concurrency 1, 2, 4, ... until two
//              doublings add less than 5 %: capacity is the best throughput, the unloaded p99
//              is the p99 at the smallest concurrency that reached 95 % of it (the knee: full
//              throughput, least queueing)
//   overload   the partition restarted with its adaptive limit (same stores, same users), then
//              an open loop at 5 × capacity spread over 64 devices of 64 users; the first
//              seconds (the limiter adapting) are not counted
//
//   overload_goodput_ratio   admitted (200) throughput under overload / capacity   target >= 0.9
//   overload_p99_ratio       p99 of admitted requests / unloaded p99              target <= 2
//
// The static per-client bounds are set far above the offered load: this measures the
// per-process limits, not the buckets. The load generator runs in its own process (forked)
// and its CPU is reported: on a 2-core machine it competes with the partition and etcd. So
// does every refused request, on the partition's one event loop: the table shows the
// partition's CPU per admitted and per refused request, and the goodput those costs allow.
//
// Usage: npm run bench -- overload [--quick] [--route=entry|me] [--limit=N] [--no-pin]
//   --route   entry (default): `GET /v1/objects/{id}/entries/{path}`, what a syncing device reads
//             most (authentication, the object and the entry: two etcd reads); me: `GET /v1/me`
//             (one etcd read)
//   --limit=N pins the concurrency limit at N (min = max = N) under overload, to compare the
//   adaptive limit with a fixed one
//   --no-pin  lets the scheduler place every process; by default (on 2 CPUs or more, with
//             taskset) the partition runs on CPU 0 and etcd, MinIO and the generator on CPU 1,
//             so that the generator, which needs about as much CPU as the partition under
//             overload, does not take the partition's core: in production the load comes
//             from other machines. The generator always runs at a lower priority (nice 10).
import { execFileSync, fork, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { availableParallelism, loadavg, setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEtcd } from '../e2e/harness/etcd.ts';
import { startMinio } from '../e2e/harness/minio.ts';
import { MeshworkClient } from '@meshwork/client';
import { nodeHttpFetch } from '@meshwork/client/node';
import { startPartition, type PartitionStores, type RunningPartition } from '../e2e/dataplane/partition-process.ts';
import type { LoadJob, LoadResult } from './load-generator.ts';
import { runJob } from './load-job.ts';
import { cpuSeconds } from './proc.ts';
import { printTable } from './table.ts';

const quick = process.argv.includes('--quick');
const pinnedLimit = process.argv.find((a) => a.startsWith('--limit='))?.slice('--limit='.length);
const pin = !process.argv.includes('--no-pin') && availableParallelism() >= 2 && spawnSync('taskset', ['-V']).status === 0;
const here = dirname(fileURLToPath(import.meta.url));
const route = process.argv.find((a) => a.startsWith('--route='))?.slice('--route='.length) ?? 'entry';
if (route !== 'entry' && route !== 'me') throw new Error(`--route must be entry or me, not ${route}`);
const routeName = route === 'entry' ? 'GET /v1/objects/{id}/entries/{path}' : 'GET /v1/me';
const clients = 64;
const stepMs = quick ? 2000 : 4000;
const overloadMs = quick ? 8000 : 20_000;
const overloadWarmupMs = quick ? 3000 : 5000;
const overloadFactor = 5;
const concurrencies = [1, 2, 4, 8, 16, 32, 64, 128];
const unbounded = '1000000';

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Moves a process and all its threads to one CPU (with --pin). */
function pinTo(cpu: number, pid: number | undefined): void {
  if (pin && pid !== undefined) execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}

// Other work on the machine takes the same cores: say how busy it was.
const loadBefore = loadavg()[0]!;
const [etcd, minio] = await Promise.all([startEtcd({ name: 'bench-etcd' }), startMinio({ bucket: 'bench' })]);
const stores: PartitionStores = { etcdEndpoint: etcd.endpoint, minio };
const staticBoundsLifted = {
  MESHWORK_LOG_LEVEL: 'warn',
  MESHWORK_THROTTLE_USER_RPS: unbounded,
  MESHWORK_THROTTLE_USER_BURST: unbounded,
  MESHWORK_THROTTLE_DEVICE_RPS: unbounded,
  MESHWORK_THROTTLE_DEVICE_BURST: unbounded,
};
let partition: RunningPartition = await startPartition(stores, {
  partition: 'overload',
  env: { ...staticBoundsLifted, MESHWORK_THROTTLE_CONCURRENCY_MIN: '100000', MESHWORK_THROTTLE_CONCURRENCY_MAX: '100000' },
});
const generator = fork(join(here, 'load-generator.ts'), [], { stdio: 'inherit' });
for (const pid of [etcd.process.pid, minio.process.pid, generator.pid]) pinTo(1, pid);
// The generator yields to etcd on their shared CPU: under overload it needs half a core, and
// etcd's latency would otherwise be the generator's doing (in production they share nothing).
if (generator.pid !== undefined) setPriority(generator.pid, 10);
pinTo(0, partition.process.pid);
const rows: string[][] = [];

/** Runs a job and the CPU each process used meanwhile (cores). */
async function measured(load: LoadJob): Promise<{ result: LoadResult; partitionCores: number; etcdCores: number; generatorCores: number }> {
  const before = { partition: cpuSeconds(partition.process.pid), etcd: cpuSeconds(etcd.process.pid), at: performance.now() };
  const result = await runJob(generator, load);
  const seconds = (performance.now() - before.at) / 1000;
  return {
    result,
    partitionCores: (cpuSeconds(partition.process.pid) - before.partition) / seconds,
    etcdCores: (cpuSeconds(etcd.process.pid) - before.etcd) / seconds,
    generatorCores: result.cpuMs / 1000 / seconds,
  };
}

try {
  const admin = new MeshworkClient({
    baseUrl: partition.url,
    token: partition.adminToken,
    fetch: nodeHttpFetch(new Agent({ keepAlive: true })),
  });
  const tokens: string[] = [];
  const paths: string[] = [];
  for (let i = 0; i < clients; i++) {
    const user = await admin.createUser(`load-${i}`);
    const device = await admin.as(user.token).registerDeviceClient(`device-${i}`);
    tokens.push(device.token!);
    if (route === 'me') {
      paths.push('/v1/me');
      continue;
    }
    const objectId = (await device.createObject({ name: `Load ${i}` })).id;
    const entry = await device.putEntry(objectId, 'docs', { kind: 'directory' }, { ifNoneMatch: '*' });
    if (!entry.created) throw new Error('creating an entry replaced one');
    paths.push(`/v1/objects/${objectId}/entries/docs`);
  }
  const job = { url: partition.url, paths, tokens };

  // --- baseline: closed-loop capacity, limiter lifted ------------------------------------------
  await runJob(generator, { ...job, mode: 'closed', concurrency: 16, durationMs: 3000 });
  const steps: { concurrency: number; rps: number; p50: number; p99: number; refused: number; cores: [number, number, number] }[] = [];
  let best = 0;
  let flatSteps = 0;
  for (const concurrency of concurrencies) {
    const { result, partitionCores, etcdCores, generatorCores } = await measured({
      ...job,
      mode: 'closed',
      concurrency,
      durationMs: stepMs,
    });
    const rps = result.ok / (result.windowMs / 1000);
    const refused = result.overloaded + result.rateLimited + result.otherStatus + result.errors;
    steps.push({
      concurrency,
      rps,
      p50: percentile(result.okLatenciesMs, 50),
      p99: percentile(result.okLatenciesMs, 99),
      refused,
      cores: [partitionCores, etcdCores, generatorCores],
    });
    if (rps > best * 1.05) flatSteps = 0;
    else flatSteps++;
    best = Math.max(best, rps);
    if (flatSteps >= 2) break;
  }
  const capacity = Math.max(...steps.map((s) => s.rps));
  const knee = steps.find((s) => s.rps >= 0.95 * capacity)!;
  console.log(`baseline: closed loop on ${routeName}, ${clients} devices, concurrency limit lifted`);
  console.log('  concurrency    req/s   p50 ms   p99 ms  refused  partition/etcd/generator cores');
  for (const s of steps) {
    console.log(
      `  ${String(s.concurrency).padStart(11)}  ${s.rps.toFixed(0).padStart(7)}  ${s.p50.toFixed(2).padStart(7)}  ${s.p99.toFixed(2).padStart(7)}  ${String(s.refused).padStart(7)}  ${s.cores.map((c) => c.toFixed(2)).join(' / ')}${s === knee ? '   <- baseline' : ''}`,
    );
  }

  // --- overload: the same partition with its dynamic limits, open loop at 5 × capacity -----------
  const { port, adminToken } = partition;
  await partition.stop();
  partition = await startPartition(stores, {
    partition: 'overload',
    port,
    adminToken,
    env: {
      ...staticBoundsLifted,
      ...(pinnedLimit === undefined
        ? {}
        : { MESHWORK_THROTTLE_CONCURRENCY_MIN: pinnedLimit, MESHWORK_THROTTLE_CONCURRENCY_MAX: pinnedLimit }),
    },
  });
  pinTo(0, partition.process.pid);
  // Warm the new process (JIT, token cache) and give the limiter its no-load latency.
  await runJob(generator, { ...job, mode: 'closed', concurrency: knee.concurrency, durationMs: 3000 });
  const offered = overloadFactor * capacity;
  const overload = await measured({ ...job, mode: 'open', rate: offered, durationMs: overloadMs, warmupMs: overloadWarmupMs });
  const o = overload.result;
  const windowSeconds = o.windowMs / 1000;
  const admitted = o.ok / windowSeconds;
  const admittedP99 = percentile(o.okLatenciesMs, 99);
  const goodputRatio = admitted / capacity;
  const p99Ratio = admittedP99 / knee.p99;
  // What the partition's CPU allows when its one event loop is what bounds capacity: at the
  // baseline a served request costs c_ok, under overload every refusal costs c_ref on the same
  // loop, so admitted / capacity <= (c_ok - 5 c_ref) / (c_ok - c_ref).
  const cpuPerAdmittedUs = (knee.cores[0] / knee.rps) * 1e6;
  const refusedPerSecond = (o.overloaded + o.rateLimited) / windowSeconds;
  const cpuPerRefusedUs =
    refusedPerSecond > 0 ? ((overload.partitionCores - admitted * (cpuPerAdmittedUs / 1e6)) / refusedPerSecond) * 1e6 : Number.NaN;
  const goodputBound = Math.min(1, (cpuPerAdmittedUs - overloadFactor * cpuPerRefusedUs) / (cpuPerAdmittedUs - cpuPerRefusedUs));

  rows.push(['capacity, closed loop (req/s)', capacity.toFixed(0), '', '']);
  rows.push([`unloaded p99 at concurrency ${knee.concurrency} (ms)`, knee.p99.toFixed(2), '', '']);
  rows.push([`offered, open loop ${overloadFactor} x capacity (req/s)`, (o.sent / windowSeconds).toFixed(0), '', '']);
  rows.push(['  not sent: all connections busy (req/s)', (o.unsent / windowSeconds).toFixed(0), '', '']);
  rows.push(['admitted: 200 (req/s)', admitted.toFixed(0), '', '']);
  rows.push([
    'refused: 503 / 429 / other / errors (req/s)',
    [o.overloaded, o.rateLimited, o.otherStatus, o.errors].map((n) => (n / windowSeconds).toFixed(0)).join(' / '),
    '',
    '',
  ]);
  rows.push(['admitted p50 / p99 (ms)', `${percentile(o.okLatenciesMs, 50).toFixed(2)} / ${admittedP99.toFixed(2)}`, '', '']);
  rows.push(['overload_goodput_ratio', goodputRatio.toFixed(3), '>= 0.9', goodputRatio >= 0.9 ? 'met' : 'missed']);
  rows.push(['overload_p99_ratio', p99Ratio.toFixed(3), '<= 2', p99Ratio <= 2 ? 'met' : 'missed']);
  rows.push(['cores: partition / etcd / generator (baseline)', knee.cores.map((c) => c.toFixed(2)).join(' / '), '', '']);
  rows.push([
    'cores: partition / etcd / generator (overload)',
    [overload.partitionCores, overload.etcdCores, overload.generatorCores].map((c) => c.toFixed(2)).join(' / '),
    '',
    '',
  ]);
  rows.push([
    'partition CPU per admitted / refused request (µs)',
    `${cpuPerAdmittedUs.toFixed(0)} / ${cpuPerRefusedUs.toFixed(0)}`,
    '',
    '',
  ]);
  rows.push(['goodput those CPU costs allow', goodputBound.toFixed(3), '', '']);
  const limits = [...o.sampledLimits].sort((a, b) => a - b);
  rows.push([
    '503 reasons (sampled)',
    Object.entries(o.sampledRefusalReasons)
      .map(([r, n]) => `${r} ${n}`)
      .join(', ') || 'none',
    '',
    '',
  ]);
  rows.push([
    'concurrency limit in 503s: min / median / max',
    limits.length === 0 ? '-' : `${limits[0]} / ${percentile(limits, 50)} / ${limits.at(-1)}`,
    '',
    '',
  ]);
  rows.push(['machine load average (1 min) before / after', `${loadBefore.toFixed(2)} / ${loadavg()[0]!.toFixed(2)}`, '', '']);
  rows.push(['generator: mean lateness (ms), most in flight of 512', `${o.meanSendDelayMs.toFixed(2)}, ${o.maxInFlight}`, '', '']);

  // The partition's own summaries (one every 10 s with refusals): its limit and no-load latency.
  const summaries = readFileSync(join(partition.dir, 'partition.log'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"Throttled requests"'))
    .map(
      (l) =>
        JSON.parse(l) as {
          refused: Record<string, number>;
          concurrencyLimit: number;
          noLoadLatencyMs: number | null;
          eventLoopLagMs: number;
        },
    );
  for (const [i, summary] of summaries.entries()) {
    rows.push([
      `partition summary ${i + 1}: limit, no-load ms, lag ms, refused`,
      `${summary.concurrencyLimit}, ${summary.noLoadLatencyMs}, ${summary.eventLoopLagMs}, ${JSON.stringify(summary.refused)}`,
      '',
      '',
    ]);
  }

  console.log(
    `\noverload: ${overloadMs / 1000} s open loop, the first ${overloadWarmupMs / 1000} s not counted${pinnedLimit === undefined ? '' : `, limit pinned at ${pinnedLimit}`}${pin ? ', partition on CPU 0, the rest on CPU 1' : ''}`,
  );
  printTable(['measure', 'value', 'target', ''], rows);
  console.log(
    JSON.stringify({
      benchmark: 'overload',
      quick,
      route: routeName,
      pinned_limit: pinnedLimit === undefined ? null : Number(pinnedLimit),
      pinned_cpus: pin,
      overload_goodput_ratio: Number(goodputRatio.toFixed(3)),
      overload_p99_ratio: Number(p99Ratio.toFixed(3)),
      capacity_rps: Math.round(capacity),
      unloaded_p99_ms: Number(knee.p99.toFixed(3)),
      baseline_concurrency: knee.concurrency,
      offered_rps: Math.round(o.sent / windowSeconds),
      unsent_rps: Math.round(o.unsent / windowSeconds),
      admitted_rps: Math.round(admitted),
      admitted_p99_ms: Number(admittedP99.toFixed(3)),
      refused_503_rps: Math.round(o.overloaded / windowSeconds),
      partition_cores: Number(overload.partitionCores.toFixed(2)),
      etcd_cores: Number(overload.etcdCores.toFixed(2)),
      generator_cores: Number(overload.generatorCores.toFixed(2)),
      partition_cpu_us_per_admitted: Math.round(cpuPerAdmittedUs),
      partition_cpu_us_per_refused: Math.round(cpuPerRefusedUs),
      cpu_goodput_bound: Number(goodputBound.toFixed(3)),
      load_average_before: Number(loadBefore.toFixed(2)),
    }),
  );
} finally {
  generator.kill();
  await partition.stop();
  await Promise.all([etcd.stop(), minio.stop()]);
}
