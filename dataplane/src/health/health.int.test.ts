// The partition's health routes and its fail-fast exit on a volume fault, against real etcd and
// MinIO: the contract the operator's watchdog relies on (exit code 4, a termination message
// starting "volume fault:", /healthz/deep answering 503). A full volume is a real tmpfs mounted
// with a size limit and filled. Slots 4032-4047 belong to this file.
import { readFileSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { startMinio } from '../../../e2e/harness/minio.ts';
import { makeReadOnly, makeWritable } from '../../../e2e/harness/read-only.ts';
import { fillVolume, mountSmallVolume, type SmallVolume } from '../../../e2e/harness/small-volume.ts';
import { tempDirs } from '../../../e2e/harness/temp-dirs.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { ExitCode } from '@meshwork/contract';
import { startPartition, type PartitionStores, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { canaryFile } from './volumes.ts';

const stack = inject('stack');
// Registered first, so that its directories are removed after the partitions stopped.
const tempDir = tempDirs();
const stores: PartitionStores = { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio };
const slots = '4032-4047';
const running: RunningPartition[] = [];
const readOnly: string[] = [];
const mounted: SmallVolume[] = [];

afterEach(async () => {
  await Promise.all(readOnly.splice(0).map((dir) => makeWritable(dir)));
});
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  // After the partitions stopped, so none still has a file open on a mount.
  await Promise.all(mounted.splice(0).map((v) => v.unmount()));
});

interface Check {
  name: string;
  ok: boolean;
  ms?: number;
  error?: string;
  volumeId?: string;
}

interface HealthBody {
  status: string;
  checks: Check[];
  error?: { code: string; message: string };
}

function dataDir(): string {
  return tempDir('meshwork-data-');
}

async function start(dirs: string[], env: Record<string, string> = {}): Promise<RunningPartition> {
  const partition = await startPartition(stores, { partition: 'health', slots, env: { MESHWORK_DATA_DIRS: dirs.join(','), ...env } });
  running.push(partition);
  return partition;
}

async function get<T>(partition: RunningPartition, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${partition.url}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as T };
}

/** The process's exit code and the termination message it left. */
async function exitOf(partition: RunningPartition): Promise<{ code: number | null; message: string }> {
  const exit = await partition.process.exited;
  return { code: exit.code, message: readFileSync(join(partition.dir, 'termination-log'), 'utf8').trim() };
}

async function flipBits(path: string, offset: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const buffer = Buffer.alloc(8);
    await handle.read(buffer, 0, 8, offset);
    for (let i = 0; i < 8; i++) buffer[i] = buffer[i]! ^ 0xff;
    await handle.write(buffer, 0, 8, offset);
  } finally {
    await handle.close();
  }
}

describe('partition health', () => {
  it('answers /livez, /readyz and /healthz/deep, and recognises its volumes after a restart', async () => {
    const [d0, d1, d2] = [dataDir(), dataDir(), dataDir()];
    const first = await start([d0, d1]);
    const live = await get<{ status: string; eventLoopDelayMs: number; limitMs: number }>(first, '/livez');
    expect(live).toMatchObject({ status: 200, body: { status: 'ok', limitMs: 5000 } });
    expect(live.body.eventLoopDelayMs).toBeGreaterThanOrEqual(0);
    const ready = await get<HealthBody>(first, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks.map((c) => [c.name, c.ok])).toEqual([
      ['etcd', true],
      ['s3', true],
      ['slots', true],
      ['draining', true],
    ]);
    const deep = await get<HealthBody>(first, '/healthz/deep');
    expect(deep.status).toBe(200);
    expect(deep.body.status).toBe('ok');
    expect(deep.body.checks.map((c) => [c.name, c.ok])).toEqual([
      [`volume:${d0}`, true],
      [`volume:${d1}`, true],
      ['etcd', true],
      ['s3', true],
    ]);
    for (const check of deep.body.checks) expect(check.ms).toBeGreaterThanOrEqual(0);
    const ids = Object.fromEntries(deep.body.checks.map((c) => [c.name, c.volumeId]));
    expect(ids[`volume:${d0}`]).not.toBe(ids[`volume:${d1}`]);
    expect(await first.process.stop()).toMatchObject({ code: 0 });

    // d0 is the same volume; d2 is a fresh one (as after the watchdog recreated a volume).
    const second = await start([d0, d2]);
    const again = await get<HealthBody>(second, '/healthz/deep');
    const idsAgain = Object.fromEntries(again.body.checks.map((c) => [c.name, c.volumeId]));
    expect(idsAgain[`volume:${d0}`]).toBe(ids[`volume:${d0}`]);
    expect(idsAgain[`volume:${d2}`]).toMatch(/^[0-9a-f-]{36}$/);
    expect(Object.values(ids)).not.toContain(idsAgain[`volume:${d2}`]);
    expect(second.process.logTail(100)).toContain('Initialised a new data volume');
    await second.stop();
  });

  it('fails /livez while the event loop recently stalled past the limit, and recovers', async () => {
    const partition = await start([], { MESHWORK_LIVENESS_MAX_EVENT_LOOP_DELAY_MS: '300' });
    // A stall of the whole process, as a long GC pause or a synchronous hot loop would make.
    partition.process.signal('SIGSTOP');
    await delay(800);
    partition.process.signal('SIGCONT');
    const stalled = await get<{ status: string; maxEventLoopDelayMs: number; error: { code: string } }>(partition, '/livez');
    expect(stalled.status).toBe(503);
    expect(stalled.body).toMatchObject({ status: 'failing', error: { code: 'event_loop_stalled' } });
    expect(stalled.body.maxEventLoopDelayMs).toBeGreaterThan(300);
    await waitFor(async () => (await get(partition, '/livez')).status === 200, {
      description: '/livez to recover once the stall left the window',
      timeoutMs: 20_000,
    });
    await partition.stop();
  });

  it('reports a data volume that turned read-only in /healthz/deep, then exits with the volume-fault code', async () => {
    const [d0, d1] = [dataDir(), dataDir()];
    const partition = await start([d0, d1], { MESHWORK_VOLUME_CHECK_INTERVAL_SECONDS: '0' });
    await makeReadOnly(d1);
    readOnly.push(d1);
    const deep = await get<HealthBody>(partition, '/healthz/deep');
    expect(deep.status).toBe(503);
    expect(deep.body.status).toBe('failing');
    expect(deep.body.error?.code).toBe('unhealthy');
    const byName = Object.fromEntries(deep.body.checks.map((c) => [c.name, c]));
    expect(byName[`volume:${d0}`]?.ok).toBe(true);
    expect(byName[`volume:${d1}`]).toMatchObject({ ok: false });
    expect(byName[`volume:${d1}`]?.error).toContain('EROFS');
    expect(byName.etcd?.ok).toBe(true);
    const { code, message } = await exitOf(partition);
    expect(code).toBe(ExitCode.volumeFault);
    expect(message).toMatch(new RegExp(`^volume fault: ${d1}: writing the probe failed: EROFS`));
    expect(message.split('\n')).toHaveLength(1);
  });

  it('reports a block that reads back wrong in /healthz/deep, then exits with the volume-fault code', async () => {
    const d0 = dataDir();
    const partition = await start([d0], { MESHWORK_VOLUME_CHECK_INTERVAL_SECONDS: '0' });
    await flipBits(join(d0, canaryFile), 1000);
    const deep = await get<HealthBody>(partition, '/healthz/deep');
    expect(deep.status).toBe(503);
    expect(deep.body.checks[0]).toMatchObject({ name: `volume:${d0}`, ok: false });
    expect(deep.body.checks[0]?.error).toMatch(/^checksum mismatch: the canary block reads back with sha256 [0-9a-f]{64}/);
    const { code, message } = await exitOf(partition);
    expect(code).toBe(ExitCode.volumeFault);
    expect(message).toMatch(new RegExp(`^volume fault: ${d0}: checksum mismatch`));
  });

  it('exits on its own when the periodic volume check finds a fault', async () => {
    const d0 = dataDir();
    const partition = await start([d0], { MESHWORK_VOLUME_CHECK_INTERVAL_SECONDS: '1' });
    await makeReadOnly(d0);
    readOnly.push(d0);
    const { code, message } = await exitOf(partition);
    expect(code).toBe(ExitCode.volumeFault);
    expect(message).toMatch(new RegExp(`^volume fault: ${d0}: writing the probe failed: EROFS`));
    expect(partition.process.logTail(20)).toContain('Found a volume fault');
  });

  it('reports a data volume that is full in /healthz/deep, then exits with the volume-fault code', async () => {
    const volume = await mountSmallVolume(4 * 1024 * 1024);
    mounted.push(volume);
    // No free-space floor: the probe write itself must notice.
    const partition = await start([volume.path], { MESHWORK_VOLUME_CHECK_INTERVAL_SECONDS: '0', MESHWORK_VOLUME_MIN_FREE_BYTES: '1' });
    expect((await get<HealthBody>(partition, '/healthz/deep')).status).toBe(200);
    expect(await fillVolume(volume.path, 'filler')).toBeGreaterThan(3 * 1024 * 1024);
    await expect(writeFile(join(volume.path, 'one-byte'), 'x')).rejects.toMatchObject({ code: 'ENOSPC' });
    // Past the second the previous deep result is reused.
    const deep = await waitFor(
      async () => {
        const res = await get<HealthBody>(partition, '/healthz/deep');
        return res.status === 503 ? res : undefined;
      },
      { description: '/healthz/deep to report the full volume', timeoutMs: 10_000 },
    );
    expect(deep.body.error?.code).toBe('unhealthy');
    expect(deep.body.checks[0]).toMatchObject({ name: `volume:${volume.path}`, ok: false });
    expect(deep.body.checks[0]?.error).toContain('ENOSPC');
    const { code, message } = await exitOf(partition);
    expect(code).toBe(ExitCode.volumeFault);
    expect(message).toMatch(new RegExp(`^volume fault: ${volume.path}: writing the probe failed: ENOSPC`));
  });

  it('exits on its own when the periodic volume check finds less free space than the floor', async () => {
    const volume = await mountSmallVolume(4 * 1024 * 1024);
    mounted.push(volume);
    const partition = await start([volume.path], { MESHWORK_VOLUME_CHECK_INTERVAL_SECONDS: '1', MESHWORK_VOLUME_MIN_FREE_BYTES: '1Mi' });
    // Room for the probe, but below the floor.
    await fillVolume(volume.path, 'filler', 512 * 1024);
    await waitFor(() => partition.process.exitStatus !== undefined, { description: 'the process to exit', timeoutMs: 20_000 });
    const { code, message } = await exitOf(partition);
    expect(code).toBe(ExitCode.volumeFault);
    expect(message).toMatch(new RegExp(`^volume fault: ${volume.path}: full: \\d+ bytes free, below the floor of 1048576 bytes$`));
    expect(partition.process.logTail(20)).toContain('Found a volume fault');
  });

  it('reports a store that stopped answering, in /healthz/deep at once and in /readyz soon after, and keeps running', async () => {
    const minio = await startMinio({ bucket: 'health-deep' });
    const partition = await startPartition({ etcdEndpoint: stack.etcd.endpoint, minio }, { partition: 'health', slots });
    running.push(partition);
    try {
      expect((await get<HealthBody>(partition, '/healthz/deep')).status).toBe(200);
      await minio.stop();
      // The deep check caches for a second; wait past it for a fresh round trip.
      const deep = await waitFor(
        async () => {
          const res = await get<HealthBody>(partition, '/healthz/deep');
          return res.status === 503 ? res : undefined;
        },
        { description: '/healthz/deep to report S3', timeoutMs: 10_000 },
      );
      expect(deep.body.checks.map((c) => [c.name, c.ok])).toEqual([
        ['etcd', true],
        ['s3', false],
      ]);
      expect(deep.body.checks[1]?.error).toBeTruthy();
      const ready = await waitFor(
        async () => {
          const res = await get<HealthBody>(partition, '/readyz');
          return res.status === 503 ? res : undefined;
        },
        { description: '/readyz to report S3 unreachable', timeoutMs: 30_000, intervalMs: 1000 },
      );
      expect(ready.body.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['s3']);
      expect(ready.body.error?.message).toMatch(/^s3: no successful round trip for \d+ s/);
      // Stores down is systemic: the process stays up.
      expect(partition.process.exitStatus).toBeUndefined();
    } finally {
      await partition.stop();
      await minio.stop();
    }
  });
});
