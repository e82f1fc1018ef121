// MinIO on loopback, with generated credentials and a bucket ready.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'minio';
import { requireBinary } from './binaries.ts';
import { ComponentStartError } from './errors.ts';
import { freePorts } from './ports.ts';
import { ManagedProcess } from './process.ts';

export interface MinioOptions {
  /** Bucket created once the server is ready (default "meshwork"). */
  bucket?: string;
  /** Keep data here (kept on stop); a fresh temporary directory otherwise (removed on stop). */
  dataDir?: string;
  port?: number;
  /** Address it listens on (default 127.0.0.1). */
  host?: string;
  /** Credentials; generated at random otherwise. */
  accessKey?: string;
  secretKey?: string;
  timeoutMs?: number;
}

export interface MinioServer {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  host: string;
  port: number;
  accessKey: string;
  secretKey: string;
  bucket: string;
  dataDir: string;
  logFile: string;
  process: ManagedProcess;
  /** A client for this server. */
  client(): Client;
  stop(): Promise<void>;
}

/** Starts MinIO, waits until it is ready and creates the bucket. Retries on a taken port. */
export async function startMinio(options: MinioOptions = {}): Promise<MinioServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startMinioOnce(options);
    } catch (err) {
      if (!(err instanceof ComponentStartError && err.portTaken && options.port === undefined && attempt < 3)) throw err;
    }
  }
}

async function startMinioOnce(options: MinioOptions): Promise<MinioServer> {
  const binary = requireBinary('minio');
  const ownDir = options.dataDir === undefined;
  const dir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'meshwork-minio-')));
  await mkdir(join(dir, 'data'), { recursive: true });
  const [apiPort, consolePort] = await freePorts(2);
  const port = options.port ?? apiPort!;
  const host = options.host ?? '127.0.0.1';
  const accessKey = options.accessKey ?? `mw${randomBytes(8).toString('hex')}`;
  const secretKey = options.secretKey ?? randomBytes(24).toString('base64url');
  const bucket = options.bucket ?? 'meshwork';
  const logFile = join(dir, 'minio.log');
  const proc = ManagedProcess.start({
    component: 'minio',
    binary,
    logFile,
    args: ['server', join(dir, 'data'), `--address=${host}:${port}`, `--console-address=127.0.0.1:${consolePort}`, '--quiet'],
    env: {
      ...process.env,
      MINIO_ROOT_USER: accessKey,
      MINIO_ROOT_PASSWORD: secretKey,
      MINIO_BROWSER: 'off',
      MINIO_UPDATE: 'off',
    },
  });
  const stop = async (): Promise<void> => {
    await proc.stop();
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };
  const endpoint = `http://${host}:${port}`;
  const client = (): Client => new Client({ endPoint: host, port, useSSL: false, accessKey, secretKey, pathStyle: true });
  try {
    await proc.waitReady(async () => (await fetch(`${endpoint}/minio/health/ready`, { signal: AbortSignal.timeout(1000) })).ok, {
      timeoutMs: options.timeoutMs ?? 30_000,
      what: 'to answer /minio/health/ready',
    });
    const admin = client();
    if (!(await admin.bucketExists(bucket))) await admin.makeBucket(bucket);
  } catch (err) {
    const tail = proc.logTail();
    await stop();
    if (err instanceof ComponentStartError) throw err;
    throw new ComponentStartError('minio', `could not create bucket ${bucket}: ${String(err)}`, tail, { cause: err });
  }
  return { endpoint, host, port, accessKey, secretKey, bucket, dataDir: dir, logFile, process: proc, client, stop };
}
