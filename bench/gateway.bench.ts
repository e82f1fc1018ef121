// Gateway benchmark: what the gateway's hop costs, against the same partition reached directly,
// measured in the same run, on the same machine, with the same load generator.
//
//   small_ops_ratio   entry reads/s (`GET /v1/objects/{id}/entries/{path}`, closed loop at
//                     concurrency 32, from a forked load generator) through the gateway ÷
//                     straight to the partition; each side measured twice, alternating, best kept
//   download_ratio    a 1 GiB file (256 blocks of 4 MiB) downloaded with @meshwork/client's
//                     streamed download through the gateway ÷ straight from the partition
//                     (each twice, alternating, best kept)
//   added_p50_ms      p50 of the same read at concurrency 1, through the gateway minus direct
//   overload_goodput_ratio, overload_p99_ratio
//                     capacity through the gateway (closed loop, concurrency 1, 2, 4, ... until
//                     two doublings add less than 5 %; or the small-operation figure if
//                     higher), then an open loop at 5 × that capacity
//                     through the gateway (its adaptive limit in front of an unthrottled
//                     partition): admitted (200) req/s ÷ capacity, and the admitted p99 ÷ the
//                     p99 at the knee. The first seconds (the limit adapting) are not counted.
//
// Usage: npm run bench -- gateway [--quick] [--no-overload]   (--quick: 64 MiB, shorter runs)
import { fork } from 'node:child_process';
import { Agent } from 'node:http';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MeshworkClient } from '@meshwork/client';
import { nodeHttpFetch } from '@meshwork/client/node';
import { startEtcd } from '../e2e/harness/etcd.ts';
import { startMinio } from '../e2e/harness/minio.ts';
import { startGateway } from '../e2e/dataplane/gateway-process.ts';
import { startPartition, unthrottledEnv } from '../e2e/dataplane/partition-process.ts';
import type { LoadJob } from './load-generator.ts';
import { runJob } from './load-job.ts';
import { printTable } from './table.ts';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const overloadToo = !process.argv.includes('--no-overload');
const MiB = 1024 * 1024;
const blockSize = 4 * MiB;
const bigBlocks = quick ? 16 : 256;
const entries = 200;
const smallConcurrency = 32;
const smallMs = quick ? 3000 : 5000;
const latencyMs = quick ? 2000 : 4000;
const overloadFactor = 5;
const overloadMs = quick ? 8000 : 12_000;
const overloadWarmupMs = 3000;
const concurrencies = [1, 2, 4, 8, 16, 32, 64, 128];

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function timed(task: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await task();
  return (performance.now() - start) / 1000;
}

const loadBefore = loadavg()[0]!;
const [etcd, minio] = await Promise.all([startEtcd({ name: 'bench-etcd' }), startMinio({ bucket: 'bench' })]);
const partition = await startPartition(
  { etcdEndpoint: etcd.endpoint, minio },
  { partition: 'bench', env: { MESHWORK_LOG_LEVEL: 'warn', ...unthrottledEnv } },
);
const gateway = await startGateway({ etcdEndpoint: etcd.endpoint, env: { MESHWORK_LOG_LEVEL: 'warn' } });
const generator = fork(join(here, 'load-generator.ts'), [], { stdio: 'inherit' });
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const rows: string[][] = [];

try {
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken, fetch: nodeHttpFetch(agent) });
  const account = await admin.createUser('bench');
  const device = await admin.as(account.token).registerDeviceClient('bench-device');
  const objectId = (await device.createObject({ name: 'Bench' })).id;
  for (let i = 0; i < entries; i++) await device.putEntry(objectId, `e${i}`, { kind: 'directory' }, { ifNoneMatch: '*' });
  const paths = Array.from({ length: entries }, (_, i) => `/v1/objects/${objectId}/entries/e${i}`);
  const tokens = paths.map(() => device.token!);
  const read = (url: string, concurrency: number, durationMs: number): LoadJob => ({
    mode: 'closed',
    url,
    paths,
    tokens,
    concurrency,
    durationMs,
  });

  // --- small operations -------------------------------------------------------------------------
  // Warm both paths (JIT, the partition's token and object caches, the gateway's pools).
  await runJob(generator, read(partition.url, smallConcurrency, 1500));
  await runJob(generator, read(gateway.url, smallConcurrency, 1500));
  const rps = { direct: 0, gateway: 0 };
  for (let round = 0; round < 2; round++) {
    for (const side of ['direct', 'gateway'] as const) {
      const r = await runJob(generator, read(side === 'direct' ? partition.url : gateway.url, smallConcurrency, smallMs));
      if (r.otherStatus + r.errors + r.overloaded > 0) throw new Error(`${side}: ${JSON.stringify({ ...r, okLatenciesMs: undefined })}`);
      rps[side] = Math.max(rps[side], r.ok / (r.windowMs / 1000));
    }
  }
  const smallRatio = rps.gateway / rps.direct;
  rows.push([
    `entry reads at concurrency ${smallConcurrency} (req/s)`,
    rps.gateway.toFixed(0),
    rps.direct.toFixed(0),
    smallRatio.toFixed(2),
    '>= 0.8',
  ]);

  // --- added latency --------------------------------------------------------------------------------
  const p50 = { direct: Number.POSITIVE_INFINITY, gateway: Number.POSITIVE_INFINITY };
  for (let round = 0; round < 2; round++) {
    for (const side of ['direct', 'gateway'] as const) {
      const r = await runJob(generator, read(side === 'direct' ? partition.url : gateway.url, 1, latencyMs));
      p50[side] = Math.min(p50[side], percentile(r.okLatenciesMs, 50));
    }
  }
  const addedP50 = p50.gateway - p50.direct;
  rows.push(['entry read at concurrency 1, p50 (ms)', p50.gateway.toFixed(3), p50.direct.toFixed(3), `+${addedP50.toFixed(3)}`, '< +1']);

  // --- 1 GiB download ----------------------------------------------------------------------------
  function* bigFile(): Generator<Uint8Array> {
    const pattern = Buffer.alloc(blockSize, 7);
    for (let i = 0; i < bigBlocks; i++) {
      const block = Buffer.from(pattern);
      block.writeUInt32BE(i, 0);
      yield block;
    }
  }
  await device.upload(objectId, 'big.bin', bigFile(), { ifNoneMatch: '*' }, { parallelism: 4 });
  const gatewayDevice = new MeshworkClient({ baseUrl: gateway.url, token: device.token!, fetch: nodeHttpFetch(agent) });
  const download = async (client: MeshworkClient): Promise<number> => {
    let bytes = 0;
    const seconds = await timed(async () => {
      const sink = new WritableStream<Uint8Array>({ write: (chunk) => void (bytes += chunk.length) });
      await client.download(objectId, 'big.bin', sink);
    });
    if (bytes !== bigBlocks * blockSize) throw new Error(`downloaded ${bytes} bytes, expected ${bigBlocks * blockSize}`);
    return bytes / MiB / seconds;
  };
  const mibs = { direct: 0, gateway: 0 };
  for (let round = 0; round < 2; round++) {
    mibs.direct = Math.max(mibs.direct, await download(device));
    mibs.gateway = Math.max(mibs.gateway, await download(gatewayDevice));
  }
  const downloadRatio = mibs.gateway / mibs.direct;
  rows.push([
    `download ${(bigBlocks * blockSize) / MiB} MiB (MiB/s)`,
    mibs.gateway.toFixed(0),
    mibs.direct.toFixed(0),
    downloadRatio.toFixed(2),
    '>= 0.85',
  ]);

  // --- overload through the gateway --------------------------------------------------------------
  let overload: { goodputRatio: number; p99Ratio: number; capacity: number; admitted: number; refused: number } | undefined;
  if (overloadToo) {
    let best = { concurrency: 1, rps: 0, p99: Number.NaN };
    const steps: { concurrency: number; rps: number; p99: number }[] = [];
    for (const concurrency of concurrencies) {
      const r = await runJob(generator, read(gateway.url, concurrency, 3000));
      const step = { concurrency, rps: r.ok / (r.windowMs / 1000), p99: percentile(r.okLatenciesMs, 99) };
      steps.push(step);
      if (step.rps > best.rps) best = step;
      const twoBack = steps[steps.length - 3];
      if (twoBack !== undefined && step.rps < twoBack.rps * 1.05) break;
    }
    // On a shared machine one step can be starved: the closed loop at concurrency 32 above is a
    // second measurement of the same capacity, and the better of the two is taken.
    const capacity = Math.max(best.rps, rps.gateway);
    const knee = steps.find((s) => s.rps >= 0.95 * capacity) ?? best;
    const o = await runJob(generator, {
      mode: 'open',
      url: gateway.url,
      paths,
      tokens,
      rate: overloadFactor * capacity,
      connections: 2048,
      durationMs: overloadMs,
      warmupMs: overloadWarmupMs,
    });
    const seconds = o.windowMs / 1000;
    const admitted = o.ok / seconds;
    overload = {
      capacity,
      admitted,
      refused: (o.overloaded + o.otherStatus + o.errors) / seconds,
      goodputRatio: admitted / capacity,
      p99Ratio: percentile(o.okLatenciesMs, 99) / knee.p99,
    };
    rows.push(['capacity through the gateway (req/s)', capacity.toFixed(0), '', '', '']);
    rows.push([`unloaded p99 at concurrency ${knee.concurrency} (ms)`, knee.p99.toFixed(2), '', '', '']);
    rows.push([`offered ${overloadFactor} x capacity, open loop (req/s)`, (o.sent / seconds).toFixed(0), '', '', '']);
    rows.push(['  not sent: all connections busy (req/s)', (o.unsent / seconds).toFixed(0), '', '', '']);
    rows.push(['admitted (req/s)', admitted.toFixed(0), '', '', '']);
    rows.push([
      'refused 503 / other / errors (req/s)',
      [o.overloaded, o.otherStatus, o.errors].map((n) => (n / seconds).toFixed(0)).join(' / '),
      '',
      '',
      '',
    ]);
    rows.push(['overload_goodput_ratio', overload.goodputRatio.toFixed(3), '', '', '>= 0.9']);
    rows.push(['overload_p99_ratio', overload.p99Ratio.toFixed(3), '', '', '<= 2']);
  }
  rows.push([`machine load average (1 min) before / after`, `${loadBefore.toFixed(2)} / ${loadavg()[0]!.toFixed(2)}`, '', '', '']);

  printTable(['measure', 'gateway', 'direct', 'ratio', 'target'], rows);
  console.log(
    JSON.stringify({
      benchmark: 'gateway',
      quick,
      small_ops_ratio: Number(smallRatio.toFixed(3)),
      download_ratio: Number(downloadRatio.toFixed(3)),
      added_p50_ms: Number(addedP50.toFixed(3)),
      small_ops_gateway_per_s: Number(rps.gateway.toFixed(1)),
      small_ops_direct_per_s: Number(rps.direct.toFixed(1)),
      download_gateway_mib_s: Number(mibs.gateway.toFixed(1)),
      download_direct_mib_s: Number(mibs.direct.toFixed(1)),
      ...(overload === undefined
        ? {}
        : {
            overload_goodput_ratio: Number(overload.goodputRatio.toFixed(3)),
            overload_p99_ratio: Number(overload.p99Ratio.toFixed(3)),
            overload_capacity_per_s: Number(overload.capacity.toFixed(1)),
            overload_admitted_per_s: Number(overload.admitted.toFixed(1)),
          }),
    }),
  );
} finally {
  generator.kill();
  agent.destroy();
  await Promise.all([gateway.stop(), partition.stop()]);
  await Promise.all([etcd.stop(), minio.stop()]);
}
