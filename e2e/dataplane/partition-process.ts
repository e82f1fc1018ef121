// Starts a real partition process (`node dataplane/src/main.ts partition`) for integration
// tests and benchmarks, against a given etcd and MinIO, on a free loopback port.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../harness/ports.ts';
import { ManagedProcess, stopAndRemove } from '../harness/process.ts';
import { dataplaneNodeFlags } from '@meshwork/contract';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Stores a partition talks to. */
/**
 * Throttling bounds lifted out of the way, for tests and benchmarks that measure something
 * else than the throttle (the sync data path, notification fan-out at scale): per-client
 * bounds and the concurrency limit far above anything they send.
 */
export const unthrottledEnv: Readonly<Record<string, string>> = {
  MESHWORK_THROTTLE_USER_RPS: '1000000',
  MESHWORK_THROTTLE_USER_BURST: '1000000',
  MESHWORK_THROTTLE_DEVICE_RPS: '1000000',
  MESHWORK_THROTTLE_DEVICE_BURST: '1000000',
  MESHWORK_THROTTLE_USER_BYTES_PER_SECOND: '1Ti',
  MESHWORK_THROTTLE_DEVICE_BYTES_PER_SECOND: '1Ti',
  MESHWORK_THROTTLE_CONCURRENCY_MIN: '1024',
  MESHWORK_THROTTLE_CONCURRENCY_MAX: '1024',
  MESHWORK_THROTTLE_EVENT_LOOP_LAG_MS: '60000',
  MESHWORK_THROTTLE_DEVICE_LONG_POLLS: '10000',
};

export interface PartitionStores {
  etcdEndpoint: string;
  minio: { endpoint: string; accessKey: string; secretKey: string; bucket: string };
}

export interface PartitionOptions {
  partition: string;
  slots?: string;
  /** Extra or overriding MESHWORK_* variables. */
  env?: Record<string, string>;
  /** Reuse a port (to restart on the same address). */
  port?: number;
  /** The address to listen on (default 127.0.0.1; the NAT tests use the testbed's wide-area address). */
  host?: string;
  /** Reuse an administrator token. */
  adminToken?: string;
  /** Extra flags for node (for example --inspect for a benchmark that measures memory). */
  nodeArgs?: string[];
}

/** A running partition process. */
export interface RunningPartition {
  url: string;
  port: number;
  adminToken: string;
  process: ManagedProcess;
  dir: string;
  stop(): Promise<void>;
}

/** The environment a partition process is started with. */
export function partitionEnv(
  stores: PartitionStores,
  options: PartitionOptions & { port: number; adminTokenFile: string; dir: string },
): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    MESHWORK_LISTEN: `${options.host ?? '127.0.0.1'}:${options.port}`,
    MESHWORK_PARTITION: options.partition,
    MESHWORK_SLOTS: options.slots ?? '0-4095',
    MESHWORK_ETCD_ENDPOINTS: stores.etcdEndpoint,
    MESHWORK_S3_ENDPOINT: stores.minio.endpoint,
    MESHWORK_S3_BUCKET: stores.minio.bucket,
    MESHWORK_S3_ACCESS_KEY: stores.minio.accessKey,
    MESHWORK_S3_SECRET_KEY: stores.minio.secretKey,
    MESHWORK_ADMIN_TOKEN_FILE: options.adminTokenFile,
    MESHWORK_TERMINATION_MESSAGE_PATH: join(options.dir, 'termination-log'),
    MESHWORK_STORE_DEADLINE_SECONDS: '10',
    ...options.env,
  };
}

/** Starts a partition process and waits until it answers /readyz. */
export async function startPartition(stores: PartitionStores, options: PartitionOptions): Promise<RunningPartition> {
  const dir = mkdtempSync(join(tmpdir(), `meshwork-${options.partition}-`));
  const adminToken = options.adminToken ?? `admin-${randomBytes(16).toString('hex')}`;
  const adminTokenFile = join(dir, 'admin-token');
  writeFileSync(adminTokenFile, adminToken, { mode: 0o600 });
  const port = options.port ?? (await freePort(options.host));
  const proc = ManagedProcess.start({
    component: `partition ${options.partition}`,
    binary: process.execPath,
    args: [...dataplaneNodeFlags, ...(options.nodeArgs ?? []), join(repoRoot, 'dataplane/src/main.ts'), 'partition'],
    logFile: join(dir, 'partition.log'),
    cwd: repoRoot,
    env: partitionEnv(stores, { ...options, port, adminTokenFile, dir }),
  });
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`;
  try {
    await proc.waitReady(async () => (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) })).ok, {
      timeoutMs: 30_000,
      what: 'to answer /readyz',
    });
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { url, port, adminToken, process: proc, dir, stop: async () => stopAndRemove(proc, dir) };
}
