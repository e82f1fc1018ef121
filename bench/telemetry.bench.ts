// Telemetry benchmark: what tracing costs a partition process. The same partition runs, in
// turn and in the same run, with tracing off (the baseline: metrics and health only,
// OpenTelemetry not loaded), off while every request comes with a `traceparent` (the log lines
// carry its trace_id; no span is made), and on, exporting over OTLP to a local receiver (or to
// a real Jaeger with --jaeger).
//
//   idle_rss_mb_off / _on            resident size 8 s after start, nothing to do
//   load_rss_mb_off / _propagate / _on   resident size right after the files below
//   files_per_s_off / _propagate / _on   small files (4 KiB block PUT + commit) at concurrency 16:
//                                    a server span, an etcd and an S3 span per request when on
//   tracing_throughput_ratio         files_per_s_on / files_per_s_off
//   propagate_throughput_ratio       files_per_s_propagate / files_per_s_off
//
// Usage: npm run bench -- telemetry [--quick] [--jaeger] [--rounds N]   (--quick: 1 round of 300 files)
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Agent } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { startEtcd } from '../e2e/harness/etcd.ts';
import { startJaeger, type JaegerServer } from '../e2e/harness/jaeger.ts';
import { startMinio } from '../e2e/harness/minio.ts';
import { MeshworkClient, sha256Hex, type ClientTracing } from '@meshwork/client';
import { nodeHttpFetch } from '@meshwork/client/node';
import { startPartition, unthrottledEnv, type PartitionStores } from '../e2e/dataplane/partition-process.ts';
import { printTable } from './table.ts';

const quick = process.argv.includes('--quick');
const useJaeger = process.argv.includes('--jaeger');
const roundsFlag = process.argv.indexOf('--rounds');
const rounds = roundsFlag !== -1 ? Number(process.argv[roundsFlag + 1]) : quick ? 1 : 3;
const filesPerRound = quick ? 300 : 1500;
const concurrency = 16;
const idleMs = 8000;

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 'NaN');
  return kb / 1024;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function pool(count: number, workers: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(workers, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

// An OTLP/HTTP endpoint that accepts and counts spans, as a collector would.
let spansReceived = 0;
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    spansReceived += (
      Buffer.concat(chunks)
        .toString('utf8')
        .match(/"spanId"/g) ?? []
    ).length;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const jaeger: JaegerServer | undefined = useJaeger ? await startJaeger() : undefined;
const otlp = jaeger?.otlpEndpoint ?? `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;

// A caller that traces: each request carries a fresh W3C traceparent (no span here, no export).
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const sendsTraceparent: ClientTracing = {
  inSpan: (_name, _attributes, fn) => fn(),
  inject: (headers) => void (headers.traceparent = `00-${hex(16)}-${hex(8)}-01`),
};
type Mode = 'off' | 'propagate' | 'on';

const [etcd, minio] = await Promise.all([startEtcd({ name: 'bench-telemetry-etcd' }), startMinio({ bucket: 'bench-telemetry' })]);
const stores: PartitionStores = { etcdEndpoint: etcd.endpoint, minio };
const results: Record<Mode, { rss: number[]; loadRss: number[]; rate: number[] }> = {
  off: { rss: [], loadRss: [], rate: [] },
  propagate: { rss: [], loadRss: [], rate: [] },
  on: { rss: [], loadRss: [], rate: [] },
};

try {
  for (let round = 0; round < rounds; round++) {
    for (const mode of ['off', 'propagate', 'on'] as const) {
      const partition = await startPartition(stores, {
        partition: 'bench',
        // Unthrottled: the benchmark measures tracing, not the per-device request rate.
        env: { ...unthrottledEnv, MESHWORK_LOG_LEVEL: 'warn', ...(mode === 'on' ? { OTEL_EXPORTER_OTLP_ENDPOINT: otlp } : {}) },
      });
      try {
        await delay(idleMs);
        results[mode].rss.push(rssMb(partition.process.pid));
        const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
        const admin = new MeshworkClient({
          baseUrl: partition.url,
          token: partition.adminToken,
          fetch: nodeHttpFetch(agent),
          ...(mode === 'propagate' ? { tracing: sendsTraceparent } : {}),
        });
        const device = await admin.as((await admin.createUser(`bench-${mode}-${round}`)).token).registerDeviceClient('bench');
        const objectId = (await device.createObject({ name: 'Bench' })).id;
        const started = performance.now();
        await pool(filesPerRound, concurrency, async (i) => {
          const data = randomBytes(4096);
          const sha = await sha256Hex(data);
          await device.putBlock(data, { sha256: sha });
          const commit = await device.putEntry(
            objectId,
            `f/${i}`,
            { kind: 'file', blocks: [{ sha256: sha, size: data.length }] },
            { ifNoneMatch: '*' },
          );
          if (!commit.created) throw new Error(`the commit of f/${i} replaced an entry`);
        });
        results[mode].rate.push(filesPerRound / ((performance.now() - started) / 1000));
        results[mode].loadRss.push(rssMb(partition.process.pid));
        agent.destroy();
      } finally {
        await partition.stop();
      }
    }
  }
} finally {
  receiver.close();
  await Promise.all([etcd.stop(), minio.stop(), jaeger?.stop()]);
}

const rssOff = median(results.off.rss);
const rssOn = median(results.on.rss);
const rateOff = median(results.off.rate);
const rateOn = median(results.on.rate);
const ratePropagate = median(results.propagate.rate);
const loadRss = (mode: Mode): number => median(results[mode].loadRss);
const signed = (mib: number): string => `${mib >= 0 ? '+' : ''}${mib.toFixed(1)}`;
const rows: [string, string, string, string, string][] = [
  ['idle RSS (MiB)', rssOn.toFixed(1), rssOff.toFixed(1), signed(rssOn - rssOff), '< +10 MiB'],
  [
    `${filesPerRound} files of 4 KiB, concurrency ${concurrency} (files/s)`,
    rateOn.toFixed(0),
    rateOff.toFixed(0),
    (rateOn / rateOff).toFixed(2),
    '>= 0.9',
  ],
  ['RSS after the files (MiB)', loadRss('on').toFixed(1), loadRss('off').toFixed(1), signed(loadRss('on') - loadRss('off')), ''],
  [
    'off, every request with a traceparent (files/s)',
    ratePropagate.toFixed(0),
    rateOff.toFixed(0),
    (ratePropagate / rateOff).toFixed(2),
    '>= 0.95',
  ],
  [`spans received (${rounds} round${rounds === 1 ? '' : 's'})`, useJaeger ? 'exported to Jaeger' : String(spansReceived), '', '', ''],
];
printTable(['measure', 'tracing on', 'off (baseline)', 'ratio / diff', 'target'], rows);
console.log(
  JSON.stringify({
    benchmark: 'telemetry',
    quick,
    idle_rss_mb_off: Number(rssOff.toFixed(1)),
    idle_rss_mb_on: Number(rssOn.toFixed(1)),
    files_per_s_off: Number(rateOff.toFixed(1)),
    files_per_s_on: Number(rateOn.toFixed(1)),
    files_per_s_propagate: Number(ratePropagate.toFixed(1)),
    load_rss_mb_off: Number(loadRss('off').toFixed(1)),
    load_rss_mb_propagate: Number(loadRss('propagate').toFixed(1)),
    load_rss_mb_on: Number(loadRss('on').toFixed(1)),
    propagate_throughput_ratio: Number((ratePropagate / rateOff).toFixed(3)),
    exporter: useJaeger ? 'jaeger' : 'receiver',
    // Every round's figures, to judge the spread behind the medians.
    rounds: Object.fromEntries(
      Object.entries(results).map(([mode, r]) => [
        mode,
        {
          files_per_s: r.rate.map((v) => Math.round(v)),
          idle_rss_mb: r.rss.map((v) => Math.round(v)),
          load_rss_mb: r.loadRss.map((v) => Math.round(v)),
        },
      ]),
    ),
    tracing_throughput_ratio: Number((rateOn / rateOff).toFixed(3)),
    spans_received: spansReceived,
  }),
);
