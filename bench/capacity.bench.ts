// Capacity benchmark: how many devices one partition process serves.
//
// Each simulated device holds a notification long poll (its own connection, as a device
// does) and does one small operation a minute, alternately a commit (an empty file written
// into its user's object, which wakes the long polls of the user's other devices; each woken
// poll is sent again with its new cursor) and a `changes` read from its last cursor (the
// device's first read is a listing of the object, as a device starting to sync does). The
// population grows in steps; at each step the load runs for a while and the latencies of the
// operations are measured. It stops at the first step whose p99 exceeds 1 s or where any
// request fails (an error answer, a refused or reset connection, a long poll answered
// otherwise than 200).
//
//   devices_per_pod      the largest population that passed (target >= 20,000; goal 50,000)
//   bytes_per_device     growth of the partition's RSS per device, at that population
//   cpu_share            the partition's CPU use during the last passed step (1.0 = one core)
//
// The partition runs with its default settings (throttling on), pinned to one core with
// taskset where the machine has two or more; this process, etcd and MinIO share the others.
// The partition's CPU is measured from /proc, so the table says whether the partition or the
// rest of the machine was the limit. Users have 4 devices each. Users, devices and objects
// are written to etcd with the partition's own store calls (the records the API would write).
//
// Usage: npm run bench -- capacity [--quick] [--max=N] [--unthrottled]
//   --quick: steps of 1,000 to 4,000 devices, 15 s each; --max: no step above N devices;
//   --unthrottled: the throttle's bounds and concurrency limit lifted (the process's own limit)
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { availableParallelism } from 'node:os';
import { Etcd3 } from 'etcd3';
import { startEtcd } from '../e2e/harness/etcd.ts';
import { startMinio } from '../e2e/harness/minio.ts';
import { waitFor } from '../e2e/harness/wait.ts';
import { ApiError, MeshworkClient } from '@meshwork/client';
import { nodeHttpFetch } from '@meshwork/client/node';
import { startPartition, unthrottledEnv } from '../e2e/dataplane/partition-process.ts';
import {
  holdPoll,
  openFilesLimit,
  openSockets,
  pool,
  populateInStore,
  type HeldPoll,
  type PopulationUser,
} from '../e2e/dataplane/population.ts';
import { cpuSeconds } from './proc.ts';
import { printTable } from './table.ts';

const quick = process.argv.includes('--quick');
const maxArg = process.argv.find((a) => a.startsWith('--max='));
// --unthrottled lifts the throttle's bounds and its adaptive concurrency limit: what the process serves before the limiter decides.
const unthrottled = process.argv.includes('--unthrottled');
const devicesPerUser = 4;
const allSteps = quick ? [1000, 2000, 4000] : [5000, 10_000, 15_000, 20_000, 30_000, 40_000, 50_000, 60_000];
const maxDevices = maxArg ? Number(maxArg.slice('--max='.length)) : Infinity;
const steps = allSteps.filter((n) => n <= maxDevices);
const stepSeconds = quick ? 15 : 40;
const operationIntervalSeconds = 60;
const p99LimitMs = 1000;
const pollWaitSeconds = 60;

/** Raises this process's open-file limit (as root); children started afterwards inherit it. */
function raiseOpenFiles(wanted: number): number {
  spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${wanted}:${wanted}`], { stdio: 'ignore' });
  return openFilesLimit();
}

/** Pins every thread of a process to the given CPUs (taskset); false if it could not. */
function pin(pid: number, cpus: string): boolean {
  return spawnSync('taskset', ['-a', '-pc', cpus, String(pid)], { stdio: 'ignore' }).status === 0;
}

function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 'NaN') * 1024;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// This process and the partition each hold one connection per device (the partition inherits the limit).
const fileLimit = raiseOpenFiles(steps.at(-1)! + 2000);
const etcd = await startEtcd();
const minio = await startMinio();
const partition = await startPartition(
  { etcdEndpoint: etcd.endpoint, minio },
  { partition: 'bench', env: { MESHWORK_LOG_LEVEL: 'warn', ...(unthrottled ? unthrottledEnv : {}) } },
);
const pid = partition.process.pid;
const cores = availableParallelism();
const pinned = cores >= 2 && pin(pid, '1') && pin(process.pid, cores > 2 ? `0,2-${cores - 1}` : '0');
if (pinned) for (const other of [etcd, minio]) pin(other.process.pid, '0');

const kv = new Etcd3({ hosts: etcd.endpoint });
// Long polls each on their own connection; operations over a shared keep-alive pool.
const pollAgent = new Agent({ keepAlive: false, maxSockets: Infinity });
const opsAgent = new Agent({ keepAlive: true, maxSockets: 256 });
const fetchOps = nodeHttpFetch(opsAgent);
const rows: string[][] = [];

interface Device {
  user: PopulationUser;
  index: number;
  client: MeshworkClient;
  poll?: HeldPoll;
  changesCursor?: string;
  operations: number;
}

const devices: Device[] = [];
const failures: string[] = [];
let pollsAnswered = 0;
let stopping = false;

/** Sends the device's long poll and, when it answers, sends it again with the new cursor. */
async function keepPolling(device: Device, cursor: string): Promise<void> {
  const path = `/v1/notifications?cursor=${encodeURIComponent(cursor)}&wait=${pollWaitSeconds}`;
  const held = await holdPoll(partition.url, device.user.devices[device.index]!.token, path, pollAgent);
  device.poll = held;
  held.answer.then(
    (answer) => {
      if (stopping) return;
      pollsAnswered++;
      if (answer.status !== 200) {
        failures.push(`long poll answered ${answer.status}`);
        return;
      }
      void keepPolling(device, (answer.body as { cursor: string }).cursor).catch((err: unknown) =>
        failures.push(`long poll: ${String(err)}`),
      );
    },
    (err: unknown) => {
      if (!stopping) failures.push(`long poll: ${String(err)}`);
    },
  );
}

/** One operation of a device: a commit or a changes read, alternately; its latency in ms. */
async function operate(device: Device): Promise<number> {
  const started = performance.now();
  const n = device.operations++;
  if (n % 2 === 0) {
    await device.client.putEntry(device.user.objectId, `d${device.index}/f${n}`, { kind: 'file', blocks: [] }, { ifNoneMatch: '*' });
  } else if (device.changesCursor === undefined) {
    // A device starts from a listing, whose cursor its later changes reads continue from.
    device.changesCursor = (await device.client.listAllEntries(device.user.objectId, { limit: 1000 })).cursor;
  } else {
    const page = await device.client.changes(device.user.objectId, { cursor: device.changesCursor, limit: 1000 });
    if (page.next === null) device.changesCursor = page.cursor;
  }
  return performance.now() - started;
}

let seededUsers = 0;
let seedSeconds = 0;
/** Grows the population to `count` devices: users written to etcd, each device's first poll held. */
async function grow(count: number): Promise<void> {
  const users = Math.ceil(count / devicesPerUser) - seededUsers;
  if (users <= 0) return;
  const started = performance.now();
  const created = await populateInStore(kv, [{ first: 0, last: 4095 }], users, devicesPerUser, 128);
  seedSeconds += (performance.now() - started) / 1000;
  seededUsers += users;
  const fresh: Device[] = created.flatMap((user) =>
    user.devices.map((d, index) => ({
      user,
      index,
      client: new MeshworkClient({ baseUrl: partition.url, token: d.token, fetch: fetchOps, retry: { maxAttempts: 1 } }),
      operations: 0,
    })),
  );
  // The first poll of each device (no cursor) answers at once with the cursor to wait from.
  await pool(fresh.length, 64, async (i) => {
    const device = fresh[i]!;
    // Connecting devices retry as the client does by default (the throttle may ask them to).
    const connecting = new MeshworkClient({
      baseUrl: partition.url,
      token: device.user.devices[device.index]!.token,
      fetch: fetchOps,
      retry: { maxAttempts: 50 },
    });
    const first = await connecting.notifications({ wait: 0 });
    await keepPolling(device, first.cursor);
  });
  devices.push(...fresh);
  await waitFor(() => openSockets(pid) >= devices.length || undefined, {
    description: `${devices.length} long polls at the partition (failures: ${failures.slice(0, 3).join('; ') || 'none'})`,
    timeoutMs: 120_000,
  });
}

interface StepResult {
  devices: number;
  operations: number;
  p50: number;
  p99: number;
  errors: number;
  cpu: number;
  rss: number;
  wakeups: number;
}

/** Runs the load for stepSeconds: devices.length / 60 operations a second, spread evenly. */
async function runStep(): Promise<StepResult> {
  const rate = devices.length / operationIntervalSeconds;
  const total = Math.round(rate * stepSeconds);
  const latencies: number[] = [];
  const failedBefore = failures.length;
  const answeredBefore = pollsAnswered;
  const cpuBefore = cpuSeconds(pid);
  const started = performance.now();
  const inFlight = new Set<Promise<void>>();
  let peakRss = 0;
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (i % 100 === 0) peakRss = Math.max(peakRss, rssBytes(pid));
    const device = devices[Math.floor(Math.random() * devices.length)]!;
    const op = operate(device).then(
      (ms) => void latencies.push(ms),
      (err: unknown) => {
        failures.push(err instanceof ApiError ? `${err.status} ${err.code}: ${err.message}` : String(err));
        latencies.push(performance.now() - due);
      },
    );
    inFlight.add(op);
    void op.finally(() => inFlight.delete(op));
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    devices: devices.length,
    operations: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors: failures.length - failedBefore,
    cpu: (cpuSeconds(pid) - cpuBefore) / elapsed,
    rss: Math.max(peakRss, rssBytes(pid)),
    wakeups: pollsAnswered - answeredBefore,
  };
}

let passed: StepResult | undefined;
let stoppedBy = `the largest step (${steps.at(-1)} devices) passed`;
try {
  if (fileLimit < steps[0]! + 1000) throw new Error(`the open-file limit is ${fileLimit}: raise it (ulimit -n) to hold the long polls`);
  const idleRss = rssBytes(pid);
  for (const step of steps) {
    if (step + 1000 > fileLimit) {
      stoppedBy = `the open-file limit (${fileLimit}) allows no more than ${passed?.devices ?? 0} devices here`;
      break;
    }
    await grow(step);
    const result = await runStep();
    rows.push([
      `${result.devices}`,
      (result.operations / stepSeconds).toFixed(0),
      result.p50.toFixed(1),
      result.p99.toFixed(1),
      `${result.errors}`,
      `${result.wakeups}`,
      result.cpu.toFixed(2),
      (result.rss / 2 ** 20).toFixed(0),
    ]);
    if (result.p99 > p99LimitMs || result.errors > 0) {
      const why =
        result.errors > 0 ? `${result.errors} failed requests (first: ${failures.at(-result.errors)})` : `p99 ${result.p99.toFixed(0)} ms`;
      stoppedBy = `${result.devices} devices: ${why}`;
      break;
    }
    passed = result;
  }
  stopping = true;
  console.log(
    `capacity: one partition process${pinned ? ' pinned to one core' : ''}${unthrottled ? ', unthrottled' : ''}, ${devicesPerUser} devices per user, one operation per device a minute, ${stepSeconds} s per step`,
  );
  printTable(['devices', 'ops/s', 'p50 ms', 'p99 ms', 'errors', 'wakeups', 'partition CPU', 'RSS MiB'], rows);
  const bytesPerDevice = passed ? (passed.rss - idleRss) / passed.devices : NaN;
  console.log(`devices per pod: ${passed?.devices ?? 0} (target >= 20000); stopped by ${stoppedBy}`);
  console.log(`RSS per device: ${bytesPerDevice.toFixed(0)} bytes; seeded ${seededUsers} users in ${seedSeconds.toFixed(0)} s`);
  console.log(
    JSON.stringify({
      benchmark: 'capacity',
      quick,
      pinned,
      unthrottled,
      devices_per_pod: passed?.devices ?? 0,
      bytes_per_device: Math.round(bytesPerDevice),
      cpu_share: passed ? Number(passed.cpu.toFixed(2)) : null,
      p99_ms: passed ? Number(passed.p99.toFixed(1)) : null,
      stopped_by: stoppedBy,
    }),
  );
} finally {
  stopping = true;
  for (const device of devices) device.poll?.request.destroy();
  pollAgent.destroy();
  opsAgent.destroy();
  kv.close();
  await partition.stop();
  await Promise.all([etcd.stop(), minio.stop()]);
}
