// etcd on loopback (or on the local stack's host address) for tests and the local stack.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary } from './binaries.ts';
import { ComponentStartError } from './errors.ts';
import { freePorts } from './ports.ts';
import { ManagedProcess } from './process.ts';

export interface EtcdOptions {
  /** Component name in errors and logs (default "etcd"). */
  name?: string;
  /** Keep data here (kept on stop); a fresh temporary directory otherwise (removed on stop). */
  dataDir?: string;
  /** Client port; a free one otherwise. */
  port?: number;
  /** Address the client port listens on (default 127.0.0.1); the peer port stays on loopback. */
  host?: string;
  /** Extra etcd flags, e.g. ["--auto-compaction-retention=10"]. */
  extraArgs?: string[];
  timeoutMs?: number;
}

export interface EtcdServer {
  /** http://HOST:PORT (127.0.0.1 unless `host` was given) */
  endpoint: string;
  dataDir: string;
  logFile: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/** Starts one etcd member and waits until /health answers true. Retries once on a taken port. */
export async function startEtcd(options: EtcdOptions = {}): Promise<EtcdServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEtcdOnce(options);
    } catch (err) {
      if (!(err instanceof ComponentStartError && err.portTaken && options.port === undefined && attempt < 3)) throw err;
    }
  }
}

async function startEtcdOnce(options: EtcdOptions): Promise<EtcdServer> {
  const component = options.name ?? 'etcd';
  const binary = requireBinary('etcd');
  const ownDir = options.dataDir === undefined;
  const dir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'meshwork-etcd-')));
  await mkdir(dir, { recursive: true });
  const [clientPort, peerPort] = options.port === undefined ? await freePorts(2) : [options.port, (await freePorts(1))[0]];
  const client = `http://${options.host ?? '127.0.0.1'}:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const logFile = join(dir, `${component}.log`);
  const proc = ManagedProcess.start({
    component,
    binary,
    logFile,
    args: [
      `--name=${component}`,
      `--data-dir=${join(dir, 'data')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${component}=${peer}`,
      '--log-level=warn',
      ...(options.extraArgs ?? []),
    ],
  });
  const stop = async (): Promise<void> => {
    await proc.stop();
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };
  try {
    await proc.waitReady(
      async () => {
        const res = await fetch(`${client}/health`, { signal: AbortSignal.timeout(1000) });
        const body = (await res.json()) as { health?: string };
        return res.ok && body.health === 'true';
      },
      { timeoutMs: options.timeoutMs ?? 30_000, what: 'to answer /health' },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint: client, dataDir: dir, logFile, process: proc, stop };
}
