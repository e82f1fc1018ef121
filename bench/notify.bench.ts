// Notify benchmark: change notification of a partition process against bare etcd and bare
// node:http, measured in the same run, on the same machine, from the same client process.
//
//   notify_p50_ms / notify_p99_ms  commit-to-wakeup with 1,000 devices waiting: from sending the
//                                  commit's etcd transaction (the one the partition runs for a
//                                  PUT of an entry) to the arrival of the answer of the long poll
//                                  it wakes. Baseline: an etcd put to the arrival of its watch
//                                  event. Also shown: the same through the API (PUT of an entry,
//                                  which adds authentication and a read of the object first).
//   bytes_per_idle_poll            JS memory (heap used plus external, after a full GC) of the
//                                  partition process per idle long poll, 10,000 waiting from
//                                  10,000 users (the worst case: nothing shared between polls).
//                                  Baseline: a bare node:http server holding 10,000 requests open.
//                                  Also shown: the growth of RSS, which adds native memory per
//                                  connection (libuv handle, HTTP parser) and allocator slack.
//
// Memory is read through the inspector protocol (HeapProfiler.collectGarbage, then
// process.memoryUsage()) of processes started with --inspect, so no code of the partition
// serves this benchmark.
//
// Usage: npm run bench -- notify [--quick]   (--quick: 2,000 idle polls, 100 samples)
import { mkdtempSync, readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { startEtcd } from '../e2e/harness/etcd.ts';
import { startMinio } from '../e2e/harness/minio.ts';
import { freePort } from '../e2e/harness/ports.ts';
import { ManagedProcess } from '../e2e/harness/process.ts';
import { waitFor } from '../e2e/harness/wait.ts';
import { MeshworkClient } from '@meshwork/client';
import { nodeHttpFetch } from '@meshwork/client/node';
import { MetadataStore } from '../dataplane/src/stores/metadata-store.ts';
import { startPartition, unthrottledEnv } from '../e2e/dataplane/partition-process.ts';
import { dataplaneNodeFlags } from '@meshwork/contract';
import { holdPoll, openSockets, pool, populateInStore, requireOpenFiles, type HeldPoll } from '../e2e/dataplane/population.ts';
import { printTable } from './table.ts';

const quick = process.argv.includes('--quick');
const idlePolls = quick ? 2000 : 10_000;
const waitingForLatency = quick ? 500 : 1000;
const warmup = 20;
const samples = quick ? 100 : 300;
const here = new URL('.', import.meta.url).pathname;

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
}

/** A minimal inspector-protocol client: enough to collect garbage and read process.memoryUsage(). */
class Inspector {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, (result: unknown) => void>();
  #nextId = 1;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
      if (message.id !== undefined) this.#pending.get(message.id)?.(message.result);
    });
  }

  static async connect(port: number): Promise<Inspector> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
    const socket = new WebSocket(targets[0]!.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      socket.addEventListener('open', resolve);
      socket.addEventListener('error', reject);
    });
    return new Inspector(socket);
  }

  async call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#nextId++;
    const result = new Promise((resolve) => this.#pending.set(id, resolve));
    this.#socket.send(JSON.stringify({ id, method, params }));
    return result;
  }

  /** process.memoryUsage() after full garbage collections. */
  async memoryAfterGc(): Promise<Memory> {
    for (let i = 0; i < 3; i++) await this.call('HeapProfiler.collectGarbage');
    const result = (await this.call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as {
      result: { value: string };
    };
    return JSON.parse(result.result.value) as Memory;
  }

  close(): void {
    this.#socket.close();
  }
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Waits until a process has used (almost) no CPU for half a second: its polls are all waiting. */
async function quiesce(pid: number, what: string): Promise<void> {
  let last = cpuTicks(pid);
  await waitFor(
    async () => {
      await delay(500);
      const now = cpuTicks(pid);
      const quiet = now - last <= 3;
      last = now;
      return quiet;
    },
    { description: `${what} to go idle`, timeoutMs: 120_000, intervalMs: 0 },
  );
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

async function closeAll(polls: HeldPoll[]): Promise<void> {
  for (const poll of polls) poll.request.destroy();
  await Promise.allSettled(polls.map((p) => p.answer));
}

const [etcd, minio] = await Promise.all([startEtcd({ name: 'bench-etcd' }), startMinio({ bucket: 'bench' })]);
const inspectPort = await freePort();
const partition = await startPartition(
  { etcdEndpoint: etcd.endpoint, minio },
  { partition: 'bench', env: { MESHWORK_LOG_LEVEL: 'warn', ...unthrottledEnv }, nodeArgs: [`--inspect=127.0.0.1:${inspectPort}`] },
);
const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
const kv = new Etcd3({ hosts: etcd.endpoint });
const watchKv = new Etcd3({ hosts: etcd.endpoint });
let baselineServer: ManagedProcess | undefined;
const rows: [string, string, string, string][] = [];

try {
  requireOpenFiles(idlePolls + 500, partition.process.pid);
  const inspector = await Inspector.connect(inspectPort);
  const seedStart = performance.now();
  const users = await populateInStore(kv, [{ first: 0, last: 4095 }], idlePolls, 1);
  const seedSeconds = (performance.now() - seedStart) / 1000;
  const cursor = (await new MeshworkClient({ baseUrl: partition.url, token: users[0]!.devices[0]!.token }).notifications({ wait: 0 }))
    .cursor;
  await quiesce(partition.process.pid, 'the partition');
  const before = await inspector.memoryAfterGc();

  // --- commit-to-wakeup with 1,000 devices waiting ----------------------------------------
  const held = new Map<number, HeldPoll>();
  const open = async (user: number, from: string): Promise<void> => {
    held.set(user, await holdPoll(partition.url, users[user]!.devices[0]!.token, `/v1/notifications?cursor=${from}&wait=60`, agent));
  };
  await pool(waitingForLatency, 100, (i) => open(i, cursor));
  await quiesce(partition.process.pid, 'the partition with 1,000 polls');
  // Each sample commits to one user's object and waits for that user's poll to answer; the
  // woken device polls again with its new cursor, so 1,000 stay waiting throughout.
  let sampleNo = 0;
  const series = async (commit: (user: number, path: string) => Promise<void>): Promise<{ wake: number[]; commit: number[] }> => {
    const wake: number[] = [];
    const commitMs: number[] = [];
    for (let s = 0; s < warmup + samples; s++) {
      const user = sampleNo++ % waitingForLatency;
      const poll = held.get(user)!;
      const started = performance.now();
      await commit(user, `sample-${sampleNo}`);
      const committed = performance.now();
      const answer = await poll.answer;
      const body = answer.body as { objects: { id: string }[]; cursor: string };
      if (answer.status !== 200 || body.objects[0]?.id !== users[user]!.objectId)
        throw new Error(`the poll answered ${answer.status} ${JSON.stringify(body)}`);
      if (s >= warmup) {
        wake.push(answer.at - started);
        commitMs.push(committed - started);
      }
      await open(user, body.cursor);
    }
    wake.sort((x, y) => x - y);
    commitMs.sort((x, y) => x - y);
    return { wake, commit: commitMs };
  };
  // The commit as the partition makes it: the same etcd transaction (entry, head, tombstone
  // marker, compares on the object and the entry), sent by this process.
  const metadata = new MetadataStore(kv);
  const objects = await Promise.all(users.slice(0, waitingForLatency).map((u) => metadata.getObject(u.objectId)));
  const direct = await series(async (user, path) => {
    const object = objects[user]!;
    const entry = {
      path,
      kind: 'directory' as const,
      size: 0,
      blocks: [],
      contentHash: null,
      modifiedBy: users[user]!.userId,
      mtime: new Date().toISOString(),
      deleted: false,
    };
    const result = await metadata.putEntry(object, 0, entry);
    if (!result.ok) throw new Error(`the commit transaction failed: ${result.reason}`);
  });
  // The commit through the API: PUT of an entry by the user's account (authentication, the
  // object's record and the transaction), then the same wait.
  const viaApi = await series(async (user, path) => {
    const account = new MeshworkClient({ baseUrl: partition.url, token: users[user]!.token, fetch: nodeHttpFetch(agent) });
    const res = await account.putEntry(users[user]!.objectId, path, { kind: 'directory' }, { ifNoneMatch: '*' });
    if (!res.created) throw new Error(`commit of ${path} replaced an entry instead of creating it`);
  });

  // Baseline: an etcd put until its watch event arrives, one client watching, another writing.
  const watcher = await watchKv.watch().key('/bench/notify/key').create();
  const watched: number[] = [];
  for (let s = 0; s < warmup + samples; s++) {
    const arrived = new Promise<number>((resolve) => watcher.once('put', () => resolve(performance.now())));
    const started = performance.now();
    await kv.put('/bench/notify/key').value(String(s)).exec();
    const at = await arrived;
    if (s >= warmup) watched.push(at - started);
  }
  await watcher.cancel();
  watched.sort((x, y) => x - y);
  const notifyP50 = percentile(direct.wake, 50);
  const notifyP99 = percentile(direct.wake, 99);
  rows.push([`commit-to-wakeup p50 (ms), ${waitingForLatency} waiting`, notifyP50.toFixed(2), percentile(watched, 50).toFixed(2), '< 10']);
  rows.push([`commit-to-wakeup p99 (ms), ${waitingForLatency} waiting`, notifyP99.toFixed(2), percentile(watched, 99).toFixed(2), '< 50']);
  rows.push(['  the commit transaction alone, p50 (ms)', percentile(direct.commit, 50).toFixed(2), '', '']);
  rows.push(['commit through the API to wakeup, p50 (ms)', percentile(viaApi.wake, 50).toFixed(2), '', '']);
  rows.push(['commit through the API to wakeup, p99 (ms)', percentile(viaApi.wake, 99).toFixed(2), '', '']);
  rows.push(['  the PUT alone, p50 (ms)', percentile(viaApi.commit, 50).toFixed(2), '', '']);

  // --- memory per idle poll, 10,000 waiting ------------------------------------------------
  await pool(idlePolls - waitingForLatency, 100, (i) => open(waitingForLatency + i, cursor));
  await waitFor(() => openSockets(partition.process.pid) >= idlePolls, {
    description: `${idlePolls} connections at the partition`,
    timeoutMs: 60_000,
  });
  await quiesce(partition.process.pid, `the partition with ${idlePolls} polls`);
  const after = await inspector.memoryAfterGc();
  const answeredEarly = [...held.values()].filter((p) => p.settled).length;
  if (answeredEarly > 0) throw new Error(`${answeredEarly} idle polls were answered while idle`);
  const rssPerPoll = (after.rss - before.rss) / idlePolls;
  const perPoll = (after.heapUsed + after.external - before.heapUsed - before.external) / idlePolls;
  inspector.close();
  await closeAll([...held.values()]);

  // Baseline: a bare node:http server holding as many requests open.
  const basePort = await freePort();
  const baseInspect = await freePort();
  const baseDir = mkdtempSync(join(tmpdir(), 'meshwork-bench-idle-'));
  baselineServer = ManagedProcess.start({
    component: 'idle http server',
    binary: process.execPath,
    // The partition's own node flags, so that the two heaps are sized alike.
    args: [...dataplaneNodeFlags, `--inspect=127.0.0.1:${baseInspect}`, join(here, 'fixtures/idle-http-server.ts'), String(basePort)],
    logFile: join(baseDir, 'server.log'),
    cwd: here,
    env: { PATH: process.env.PATH },
  });
  const baseUrl = `http://127.0.0.1:${basePort}`;
  await baselineServer.waitReady(() => Promise.resolve(baselineServer!.logTail().includes('listening on')), { timeoutMs: 10_000 });
  const baseInspector = await Inspector.connect(baseInspect);
  await quiesce(baselineServer.child.pid!, 'the idle server');
  const baseBefore = await baseInspector.memoryAfterGc();
  const basePolls: HeldPoll[] = [];
  await pool(idlePolls, 100, async (i) => {
    basePolls.push(await holdPoll(baseUrl, users[i]!.devices[0]!.token, `/v1/notifications?cursor=${cursor}&wait=60`, agent));
  });
  await waitFor(() => openSockets(baselineServer!.child.pid!) >= idlePolls, {
    description: `${idlePolls} connections at the idle server`,
    timeoutMs: 60_000,
  });
  await quiesce(baselineServer.child.pid!, 'the idle server with requests');
  const baseAfter = await baseInspector.memoryAfterGc();
  baseInspector.close();
  await closeAll(basePolls);
  const baseRssPerPoll = (baseAfter.rss - baseBefore.rss) / idlePolls;
  const basePerPoll = (baseAfter.heapUsed + baseAfter.external - baseBefore.heapUsed - baseBefore.external) / idlePolls;
  rows.push([`memory per idle poll (bytes, heap + external), ${idlePolls} waiting`, perPoll.toFixed(0), basePerPoll.toFixed(0), '< 8192']);
  rows.push(['  growth of RSS per idle poll (bytes)', rssPerPoll.toFixed(0), baseRssPerPoll.toFixed(0), '']);
  rows.push([`  (wrote ${idlePolls} users, devices and objects to etcd in ${seedSeconds.toFixed(0)} s)`, '', '', '']);

  console.log('baselines: etcd put to watch event (latency); bare node:http server holding requests (memory)');
  printTable(['measure', 'meshwork', 'baseline', 'target'], rows);
  console.log(
    JSON.stringify({
      benchmark: 'notify',
      quick,
      notify_p50_ms: Number(notifyP50.toFixed(2)),
      notify_p99_ms: Number(notifyP99.toFixed(2)),
      bytes_per_idle_poll: Math.round(perPoll),
      commit_txn_p50_ms: Number(percentile(direct.commit, 50).toFixed(2)),
      notify_api_p50_ms: Number(percentile(viaApi.wake, 50).toFixed(2)),
      notify_api_p99_ms: Number(percentile(viaApi.wake, 99).toFixed(2)),
      put_p50_ms: Number(percentile(viaApi.commit, 50).toFixed(2)),
      rss_bytes_per_idle_poll: Math.round(rssPerPoll),
      baseline_watch_p50_ms: Number(percentile(watched, 50).toFixed(2)),
      baseline_watch_p99_ms: Number(percentile(watched, 99).toFixed(2)),
      baseline_bytes_per_idle_request: Math.round(basePerPoll),
      baseline_rss_bytes_per_idle_request: Math.round(baseRssPerPoll),
      waiting_for_latency: waitingForLatency,
      idle_polls: idlePolls,
    }),
  );
} finally {
  kv.close();
  watchKv.close();
  agent.destroy();
  await baselineServer?.stop();
  await partition.stop();
  await Promise.all([etcd.stop(), minio.stop()]);
}
