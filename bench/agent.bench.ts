// Device agent benchmark: two `meshwork sync` processes (two devices of one user, one object)
// against one partition (etcd + MinIO, throttle lifted), agent A writing and agent B
// receiving, measured next to baselines run on the same machine in the same run. Every time is
// from the end of the last write on A until B holds every file byte for byte (sha256): until
// the poll that proved it found the last file in place, not until its hash of that file ended
// (e2e/agent/trees.ts), so that the check's own reading of the 256 MiB file (about 0.5 s) is
// not counted, as it is not in rclone's time either.
//
//   small_files_ratio  1,000 files of 4 KiB: Meshwork's time / Syncthing's (two Debian
//                      syncthing 1.19 instances on loopback, see e2e/agent/syncthing.ts; its
//                      rescan is asked for over REST right after the last write, its watcher is off)
//                      Beside it, not a target: the same 1,000 files by `rclone copy` (8
//                      transfers) up to the same MinIO and back down, the store's own share
//                      of any sync that keeps content in it (the bench's object does)
//   large_file_ratio   one 256 MiB file: Meshwork's time / rclone's `copy` up to the same
//                      MinIO and back down into another directory (e2e/agent/rclone.ts)
//   agent_rss_mb       peak RSS (VmHWM, the whole life of the process) of the larger of the two
//                      agent processes once a 2 GiB file went from A to B
//   rescan_10k_s       `meshwork sync --once` over an unchanged folder of 10,000 files (the
//                      second pass; the first uploads them): the command's wall time, process
//                      start included; its `scan` event's `ms` is printed beside it
//
// A's agent runs continuously and finds the writes itself (file-system events, then its scan),
// where Syncthing is told to rescan: the comparison gives Syncthing the head start.
//
// The partition gives presigned URLs at MinIO for block downloads and uploads (ADRs 71, 79, 80),
// which the agents use for files of more than one block; `--proxied` runs without.
//
// Usage: npm run bench -- agent [--quick] [--proxied]
//   --quick: 100 small files, 16 MiB, 128 MiB and 1,000 files, for a smoke test (targets are
//   for the full sizes). Exits non-zero when a measurement could not be made.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshworkClient } from '@meshwork/client';
import { startEtcd } from '../e2e/harness/etcd.ts';
import { startMinio } from '../e2e/harness/minio.ts';
import { startPartition, unthrottledEnv } from '../e2e/dataplane/partition-process.ts';
import { AgentProcess, createObject, login, makeAgentHome, syncOnce, type AgentHome } from '../e2e/agent/agent-process.ts';
import { rcloneEnv, rcloneRemote, runRclone } from '../e2e/agent/rclone.ts';
import { startSyncthingPair } from '../e2e/agent/syncthing.ts';
import { waitForFiles, writeRandomFile, writeSmallFiles } from '../e2e/agent/trees.ts';
import { printTable } from './table.ts';

const quick = process.argv.includes('--quick');
const proxied = process.argv.includes('--proxied');
const MiB = 1024 * 1024;
const smallCount = quick ? 100 : 1000;
const smallSize = 4096;
const largeBytes = (quick ? 16 : 256) * MiB;
const hugeBytes = (quick ? 128 : 2048) * MiB;
const rescanCount = quick ? 1000 : 10_000;
/** Bound on the whole run: past it, the run stops with what it has measured. */
const runDeadlineMs = (quick ? 10 : 45) * 60_000;
/** Bound on one transfer's wait. */
const transferTimeoutMs = (quick ? 3 : 15) * 60_000;

const seconds = (ms: number): number => ms / 1000;
const fmt = (value: number | undefined, digits = 2): string => (value === undefined ? 'n/a' : value.toFixed(digits));

interface Figures {
  syncthingSmallS?: number;
  meshSmallS?: number;
  /** When A had committed its last file, from the last write (s): the upload side of meshSmallS. */
  meshSmallUpS?: number;
  meshLargeUpS?: number;
  rcloneLargeS?: number;
  /** rclone's copy of the small files up to MinIO and back down (s): what the store alone costs them. */
  rcloneSmallUpS?: number;
  rcloneSmallDownS?: number;
  rcloneUpS?: number;
  rcloneDownS?: number;
  meshLargeS?: number;
  agentRssMb?: number;
  agentRssSampledMb?: number;
  /** VmHWM of the sending agent (A) and of the receiving one (B). */
  agentRssAMb?: number;
  agentRssBMb?: number;
  meshHugeS?: number;
  rescanS?: number;
  rescanScanMs?: number;
  rescanFirstS?: number;
}

const figures: Figures = {};
const failures: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

/** Runs one measurement; a failure is recorded and reported, and the others still run. */
async function measure(what: string, task: () => Promise<void>): Promise<void> {
  try {
    await task();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    failures.push(`${what}: ${message.split('\n')[0]}`);
    console.error(`${what} failed: ${message}`);
  }
}

/** Seconds from `sinceWall` (ms since the epoch) to the last upward commit A reported after `mark` (the CLI stamps events with `at`). */
function lastCommitUpS(agent: AgentProcess, mark: number, sinceWall: number): number | undefined {
  agent.poll();
  const last = agent.events
    .slice(mark)
    .filter((e) => e.type === 'committed' && e.direction === 'up')
    .at(-1) as { at?: string } | undefined;
  return last?.at === undefined ? undefined : (Date.parse(last.at) - sinceWall) / 1000;
}

const root = await mkdtemp(join(tmpdir(), 'meshwork-agent-bench-'));
cleanups.push(() => rm(root, { recursive: true, force: true }));
const watchdog = setTimeout(() => {
  console.error(`The agent benchmark ran past ${runDeadlineMs / 60_000} minutes: stopping.`);
  void cleanUp().finally(() => process.exit(1));
}, runDeadlineMs);
watchdog.unref();

async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((err: unknown) => console.error(`cleanup: ${String(err)}`));
}

try {
  // --- Baselines ---------------------------------------------------------------------------
  await measure('Syncthing, small files', async () => {
    const pair = await startSyncthingPair();
    try {
      const expected = await writeSmallFiles(pair.dirA, 'small', smallCount, smallSize);
      const lastWrite = performance.now();
      await pair.scanA();
      const done = await waitForFiles(pair.dirB, expected, {
        timeoutMs: transferTimeoutMs,
        sizes: new Map([...expected.keys()].map((k) => [k, smallSize])),
        description: `Syncthing B to hold ${smallCount} files`,
      });
      figures.syncthingSmallS = seconds(done - lastWrite);
    } finally {
      await pair.stop();
    }
  });

  const [etcd, minio] = await Promise.all([startEtcd({ name: 'bench-agent-etcd' }), startMinio({ bucket: 'bench-agent' })]);
  cleanups.push(() => Promise.all([etcd.stop(), minio.stop()]));

  await measure('rclone, large file', async () => {
    const dir = join(root, 'rclone');
    await mkdir(join(dir, 'down'), { recursive: true });
    const env = rcloneEnv(minio, dir);
    const sha = await writeRandomFile(join(dir, 'up', 'large.bin'), largeBytes);
    const target = `${rcloneRemote}:${minio.bucket}/rclone`;
    const upS = await runRclone(['copy', join(dir, 'up', 'large.bin'), target], env);
    const downS = await runRclone(['copy', `${target}/large.bin`, join(dir, 'down')], env);
    await waitForFiles(join(dir, 'down'), new Map([['large.bin', sha]]), { timeoutMs: 60_000 });
    figures.rcloneUpS = upS;
    figures.rcloneDownS = downS;
    figures.rcloneLargeS = upS + downS;
    await rm(dir, { recursive: true, force: true });
  });

  await measure('rclone, small files', async () => {
    const dir = join(root, 'rclone-small');
    await mkdir(join(dir, 'down'), { recursive: true });
    const env = rcloneEnv(minio, dir);
    const expected = await writeSmallFiles(join(dir, 'up'), 'small', smallCount, smallSize);
    const target = `${rcloneRemote}:${minio.bucket}/rclone-small`;
    const transfers = ['--transfers', '8', '--checkers', '8'];
    figures.rcloneSmallUpS = await runRclone(['copy', join(dir, 'up'), target, ...transfers], env);
    figures.rcloneSmallDownS = await runRclone(['copy', target, join(dir, 'down'), ...transfers], env);
    await waitForFiles(join(dir, 'down'), expected, { timeoutMs: 60_000 });
    await rm(dir, { recursive: true, force: true });
  });

  // --- Meshwork ----------------------------------------------------------------------------
  const partition = await startPartition(
    { etcdEndpoint: etcd.endpoint, minio },
    {
      partition: 'bench-agent',
      env: {
        MESHWORK_LOG_LEVEL: 'warn',
        ...unthrottledEnv,
        // Block bytes go between the agents and MinIO directly, as rclone's do (ADRs 71, 79, 80);
        // `--proxied` sends them through the partition.
        ...(proxied ? {} : { MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT: minio.endpoint, MESHWORK_S3_UPLOAD_REDIRECT: 'on' }),
      },
    },
  );
  cleanups.push(async () => {
    await partition.stop();
    await rm(partition.dir, { recursive: true, force: true });
  });

  await measure('Meshwork', async () => {
    const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
    const account = await admin.createUser('bench-agent');
    const homeA = await makeAgentHome('bench-a', root);
    const homeB = await makeAgentHome('bench-b', root);
    await login(homeA, partition.url, account.token);
    await login(homeB, partition.url, account.token);
    const objectId = await createObject(homeA, 'Agent bench');
    const dirA = join(root, 'mesh-a');
    const dirB = join(root, 'mesh-b');
    const start = async (home: AgentHome, dir: string): Promise<AgentProcess> => {
      const agent = await AgentProcess.start(home, dir, objectId);
      cleanups.push(() => agent.stop());
      return agent;
    };
    const [a, b] = await Promise.all([start(homeA, dirA), start(homeB, dirB)]);
    await Promise.all([a.waitIdle({ timeoutMs: 120_000 }), b.waitIdle({ timeoutMs: 120_000 })]);

    await measure('Meshwork, small files', async () => {
      const mark = a.mark();
      const expected = await writeSmallFiles(dirA, 'small', smallCount, smallSize);
      const lastWrite = performance.now();
      const lastWriteAt = Date.now();
      const done = await waitForFiles(dirB, expected, {
        timeoutMs: transferTimeoutMs,
        sizes: new Map([...expected.keys()].map((k) => [k, smallSize])),
        description: `agent B to hold ${smallCount} files`,
      });
      figures.meshSmallS = seconds(done - lastWrite);
      figures.meshSmallUpS = lastCommitUpS(a, mark, lastWriteAt);
    });

    await measure('Meshwork, large file', async () => {
      const mark = a.mark();
      const sha = await writeRandomFile(join(dirA, 'large.bin'), largeBytes);
      const lastWrite = performance.now();
      const lastWriteAt = Date.now();
      const done = await waitForFiles(dirB, new Map([['large.bin', sha]]), {
        timeoutMs: transferTimeoutMs,
        sizes: new Map([['large.bin', largeBytes]]),
        description: `agent B to hold the ${largeBytes / MiB} MiB file`,
      });
      figures.meshLargeS = seconds(done - lastWrite);
      figures.meshLargeUpS = lastCommitUpS(a, mark, lastWriteAt);
    });

    await measure('Meshwork, memory', async () => {
      let sampled = 0;
      const sampler = setInterval(() => {
        for (const agent of [a, b]) sampled = Math.max(sampled, agent.rssMb() ?? 0);
      }, 200);
      try {
        const sha = await writeRandomFile(join(dirA, 'huge.bin'), hugeBytes);
        const lastWrite = performance.now();
        const done = await waitForFiles(dirB, new Map([['huge.bin', sha]]), {
          timeoutMs: transferTimeoutMs,
          sizes: new Map([['huge.bin', hugeBytes]]),
          intervalMs: 500,
          description: `agent B to hold the ${hugeBytes / MiB} MiB file`,
        });
        figures.meshHugeS = seconds(done - lastWrite);
      } finally {
        clearInterval(sampler);
      }
      const peaks = [a.peakRssMb(), b.peakRssMb()];
      if (peaks.some((p) => p === undefined)) throw new Error(`an agent exited: ${a.tail()}\n${b.tail()}`);
      figures.agentRssMb = Math.max(...(peaks as number[]));
      [figures.agentRssAMb, figures.agentRssBMb] = peaks;
      figures.agentRssSampledMb = sampled;
    });
    await Promise.all([a.stop(), b.stop()]);
    await Promise.all([rm(dirA, { recursive: true, force: true }), rm(dirB, { recursive: true, force: true })]);

    await measure('Meshwork, rescan', async () => {
      const rescanObject = await createObject(homeA, 'Agent bench rescan');
      const dir = join(root, 'mesh-rescan');
      await writeSmallFiles(dir, 'many', rescanCount, 64);
      const first = await syncOnce(homeA, dir, rescanObject, { timeoutMs: transferTimeoutMs });
      figures.rescanFirstS = seconds(first.ms);
      const second = await syncOnce(homeA, dir, rescanObject, { timeoutMs: 120_000 });
      figures.rescanS = seconds(second.ms);
      const scan = second.events.find((e) => e.type === 'scan');
      if (scan?.type === 'scan') {
        figures.rescanScanMs = scan.ms;
        if (scan.changed !== 0) throw new Error(`the second pass found ${scan.changed} changed files in an unchanged folder`);
      }
    });
  });
} finally {
  await cleanUp();
  clearTimeout(watchdog);
}

// --- Report --------------------------------------------------------------------------------
const ratio = (mesh: number | undefined, base: number | undefined): number | undefined =>
  mesh === undefined || base === undefined || base === 0 ? undefined : mesh / base;
const sum = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined ? undefined : a + b);
const met = (ok: boolean | undefined): string => (ok === undefined ? 'n/a' : ok ? 'yes' : 'NO');
const smallRatio = ratio(figures.meshSmallS, figures.syncthingSmallS);
const largeRatio = ratio(figures.meshLargeS, figures.rcloneLargeS);
const rows: string[][] = [
  [
    `small_files_ratio: ${smallCount} x 4 KiB, A to B (s)`,
    fmt(figures.meshSmallS),
    `${fmt(figures.syncthingSmallS)} syncthing`,
    fmt(smallRatio),
    '<= 1.0',
    met(smallRatio === undefined ? undefined : smallRatio <= 1.0),
  ],
  [
    `large_file_ratio: ${largeBytes / MiB} MiB, A to B${proxied ? ' through the partition' : ', blocks to and from the store'} (s)`,
    fmt(figures.meshLargeS),
    `${fmt(figures.rcloneLargeS)} rclone up+down`,
    fmt(largeRatio),
    '<= 1.2',
    met(largeRatio === undefined ? undefined : largeRatio <= 1.2),
  ],
  [
    `agent_rss_mb: ${hugeBytes / MiB} MiB file (MiB, VmHWM)`,
    fmt(figures.agentRssMb, 0),
    '',
    '',
    '< 150',
    met(figures.agentRssMb === undefined ? undefined : figures.agentRssMb < 150),
  ],
  [
    `rescan_10k_s: ${rescanCount} unchanged files (s)`,
    fmt(figures.rescanS),
    '',
    '',
    '< 2',
    met(figures.rescanS === undefined ? undefined : figures.rescanS < 2),
  ],
  [
    `  (small files by rclone through the store: up ${fmt(figures.rcloneSmallUpS)} s, down ${fmt(figures.rcloneSmallDownS)} s, ${fmt(ratio(sum(figures.rcloneSmallUpS, figures.rcloneSmallDownS), figures.syncthingSmallS))} x syncthing)`,
    '',
    '',
    '',
    '',
    '',
  ],
  [`  (large file by rclone: up ${fmt(figures.rcloneUpS)} s, down ${fmt(figures.rcloneDownS)} s)`, '', '', '', '', ''],
  [
    `  (A's last commit of the small files ${fmt(figures.meshSmallUpS)} s, of the large file ${fmt(figures.meshLargeUpS)} s after the last write)`,
    '',
    '',
    '',
    '',
    '',
  ],
  [
    `  (${hugeBytes / MiB} MiB A to B in ${fmt(figures.meshHugeS)} s; sampled VmRSS peak ${fmt(figures.agentRssSampledMb, 0)} MiB; VmHWM A ${fmt(figures.agentRssAMb, 0)}, B ${fmt(figures.agentRssBMb, 0)} MiB)`,
    '',
    '',
    '',
    '',
    '',
  ],
  [`  (rescan: scan event ${fmt(figures.rescanScanMs, 0)} ms; first pass, uploading, ${fmt(figures.rescanFirstS)} s)`, '', '', '', '', ''],
];
printTable(['figure', 'meshwork', 'baseline', 'ratio', 'target', 'met?'], rows);
const round = (value: number | undefined, digits = 3): number | null => (value === undefined ? null : Number(value.toFixed(digits)));
console.log(
  JSON.stringify({
    benchmark: 'agent',
    quick,
    blocks_to_store: !proxied,
    small_files_ratio: round(smallRatio),
    large_file_ratio: round(largeRatio),
    agent_rss_mb: round(figures.agentRssMb, 1),
    agent_rss_sender_mb: round(figures.agentRssAMb, 1),
    agent_rss_receiver_mb: round(figures.agentRssBMb, 1),
    rescan_10k_s: round(figures.rescanS),
    small_files_s: round(figures.meshSmallS),
    small_files_syncthing_s: round(figures.syncthingSmallS),
    small_files_rclone_up_s: round(figures.rcloneSmallUpS),
    small_files_rclone_down_s: round(figures.rcloneSmallDownS),
    small_files_committed_on_a_s: round(figures.meshSmallUpS),
    large_file_committed_on_a_s: round(figures.meshLargeUpS),
    large_file_s: round(figures.meshLargeS),
    large_file_rclone_s: round(figures.rcloneLargeS),
    huge_file_s: round(figures.meshHugeS),
    rescan_scan_ms: round(figures.rescanScanMs, 1),
    failures,
  }),
);
if (failures.length > 0) process.exit(1);
