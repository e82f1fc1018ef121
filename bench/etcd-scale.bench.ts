// etcd scale benchmark: what one etcd sustains for a Mesh, the figures docs/capacity.md sizes
// Meshes with. One etcd (the harness's, one member, on this machine's disk) serves:
//
//   commits_per_s      entry commits, closed loop at several concurrencies: the partition's own
//                      transaction (MetadataStore.putEntry: entry, object head and tombstone
//                      marker, compares on the object and the entry) on random objects of
//                      1,024 users spread over all 4,096 slots. Baseline: a plain single-key put
//                      at the same concurrency, measured in the same run. Also: the growth of
//                      etcd's database (in use, before any compaction) per commit.
//   watch fan-out      the same commits while many partitions watch: P simulated partitions
//                      each watch their slot range (as the change feed does) with R members
//                      each, every member its own client and connection. Reported: commits/s,
//                      watch events delivered/s, and the delay from a commit's answer to the
//                      arrival of its event at the member watching it (p50/p99). Every
//                      watcher lives in this one process, so under load the delay is this
//                      process's event loop as much as etcd's fan-out.
//
// Usage: npm run bench -- etcd-scale [--quick]   (--quick: 3 s per step, fewer steps)
import { Etcd3, type IKeyValue } from 'etcd3';
import { startEtcd } from '../e2e/harness/etcd.ts';
import { populateInStore } from '../e2e/dataplane/population.ts';
import { MetadataStore } from '../dataplane/src/stores/metadata-store.ts';
import { slotSegment } from '../dataplane/src/stores/keys.ts';
import { printTable } from './table.ts';

const quick = process.argv.includes('--quick');
const stepSeconds = quick ? 3 : 8;
const concurrencies = quick ? [32] : [8, 32, 128];
const fanOuts: { partitions: number; members: number }[] = quick
  ? [{ partitions: 16, members: 3 }]
  : [
      { partitions: 16, members: 3 },
      { partitions: 64, members: 3 },
    ];
const slotCount = 4096;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `op` closed loop at `concurrency` for `seconds`; the latencies of those that succeeded. */
async function closedLoop(concurrency: number, seconds: number, op: (worker: number, n: number) => Promise<void>): Promise<number[]> {
  const deadline = performance.now() + seconds * 1000;
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let n = 0; performance.now() < deadline; n++) {
        const started = performance.now();
        await op(worker, n);
        latencies.push(performance.now() - started);
      }
    }),
  );
  return latencies.sort((a, b) => a - b);
}

const etcd = await startEtcd({ name: 'bench-etcd' });
const kv = new Etcd3({ hosts: etcd.endpoint });
const watchers: Etcd3[] = [];
const rows: string[][] = [];
const figures: Record<string, number> = {};
try {
  const metadata = new MetadataStore(kv);
  const users = await populateInStore(kv, [{ first: 0, last: slotCount - 1 }], 1024, 1);
  const objects = await Promise.all(users.map((u) => metadata.getObject(u.objectId)));
  let sequence = 0;
  /** One commit as the partition makes it: a new empty file in a random object. */
  const commit = async (): Promise<number> => {
    const object = objects[Math.floor(Math.random() * objects.length)]!;
    const entry = {
      path: `f${sequence++}`,
      kind: 'file' as const,
      size: 0,
      blocks: [],
      contentHash: null,
      modifiedBy: object.value.owner,
      mtime: new Date().toISOString(),
      deleted: false,
    };
    const result = await metadata.putEntry(object, 0, entry);
    if (!result.ok) throw new Error(`a commit failed: ${result.reason}`);
    return result.version;
  };

  for (const concurrency of concurrencies) {
    const puts = await closedLoop(concurrency, stepSeconds, async (worker, n) => {
      await kv.put(`/bench/put/${worker}/${n % 100}`).value('x');
    });
    const sizeBefore = Number((await kv.maintenance.status()).dbSizeInUse);
    const commits = await closedLoop(concurrency, stepSeconds, async () => void (await commit()));
    const sizeAfter = Number((await kv.maintenance.status()).dbSizeInUse);
    figures.etcd_bytes_per_commit = Math.round((sizeAfter - sizeBefore) / commits.length);
    rows.push([
      `commits, concurrency ${concurrency}`,
      (commits.length / stepSeconds).toFixed(0),
      `${percentile(commits, 50).toFixed(1)} / ${percentile(commits, 99).toFixed(1)}`,
      (puts.length / stepSeconds).toFixed(0),
      `${percentile(puts, 50).toFixed(1)} / ${percentile(puts, 99).toFixed(1)}`,
    ]);
    figures.commits_per_s = Math.max(figures.commits_per_s ?? 0, Math.round(commits.length / stepSeconds));
    figures.baseline_puts_per_s = Math.max(figures.baseline_puts_per_s ?? 0, Math.round(puts.length / stepSeconds));
  }

  const concurrency = concurrencies.at(-1)!;
  for (const { partitions, members } of fanOuts) {
    // Each member of each partition watches the partition's slot range from its own client.
    const arrivals = new Map<number, number>();
    let delivered = 0;
    const opened: Promise<unknown>[] = [];
    for (let p = 0; p < partitions; p++) {
      const first = Math.floor((p * slotCount) / partitions);
      const last = Math.floor(((p + 1) * slotCount) / partitions) - 1;
      for (let m = 0; m < members; m++) {
        const client = new Etcd3({ hosts: etcd.endpoint });
        watchers.push(client);
        opened.push(
          client
            .watch()
            .inRange({ start: `/mw/s/${slotSegment(first)}/`, end: `/mw/s/${slotSegment(last + 1)}/` })
            .create()
            .then((watcher) =>
              watcher.on('put', (event: IKeyValue) => {
                delivered++;
                const revision = Number(event.mod_revision);
                if (!arrivals.has(revision)) arrivals.set(revision, performance.now());
              }),
            ),
        );
      }
    }
    await Promise.all(opened);
    const committedAt = new Map<number, number>();
    const deliveredBefore = delivered;
    const commits = await closedLoop(concurrency, stepSeconds, async () => {
      const revision = await commit();
      committedAt.set(revision, performance.now());
    });
    // Let the last events arrive.
    const deadline = performance.now() + 5000;
    while (performance.now() < deadline && [...committedAt.keys()].some((r) => !arrivals.has(r)))
      await new Promise((resolve) => setTimeout(resolve, 50));
    const delays = [...committedAt].map(([revision, at]) => (arrivals.get(revision) ?? Infinity) - at).sort((a, b) => a - b);
    const missing = delays.filter((d) => d === Infinity).length;
    rows.push([
      `commits, ${partitions} partitions × ${members} members watching`,
      (commits.length / stepSeconds).toFixed(0),
      `${percentile(commits, 50).toFixed(1)} / ${percentile(commits, 99).toFixed(1)}`,
      `${((delivered - deliveredBefore) / stepSeconds).toFixed(0)} events/s`,
      `${percentile(delays, 50).toFixed(1)} / ${percentile(delays, 99).toFixed(1)}${missing > 0 ? ` (${missing} never)` : ''}`,
    ]);
    figures[`commits_per_s_watched_${partitions}x${members}`] = Math.round(commits.length / stepSeconds);
    figures[`watch_events_per_s_${partitions}x${members}`] = Math.round((delivered - deliveredBefore) / stepSeconds);
    figures[`watch_delay_p99_ms_${partitions}x${members}`] = Number(percentile(delays, 99).toFixed(1));
    for (const client of watchers.splice(0)) client.close();
  }

  console.log(`etcd-scale: one etcd member on this machine, ${stepSeconds} s per step`);
  console.log(`etcd database growth per commit (in use, no compaction): ${figures.etcd_bytes_per_commit} bytes`);
  printTable(
    ['measure', 'per s', 'commit p50 / p99 ms', 'baseline put per s, or watch events', 'put p50 / p99 ms, or commit-to-event ms'],
    rows,
  );
  console.log(JSON.stringify({ benchmark: 'etcd-scale', quick, ...figures }));
} finally {
  for (const client of watchers) client.close();
  kv.close();
  await etcd.stop();
}
// The watch clients' gRPC channels keep the process alive after close (measured: it did not
// exit once etcd was gone), so the bench ends itself once everything is stopped.
process.exit(0);
