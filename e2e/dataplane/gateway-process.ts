// Starts a real gateway process (`node dataplane/src/main.ts gateway`) for integration tests
// and benchmarks, against a given etcd, on a free loopback port: plain HTTP, or HTTPS with a
// certificate from a directory laid out as a `kubernetes.io/tls` Secret.
import { mkdtempSync } from 'node:fs';
import { Agent, get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataplaneNodeFlags } from '@meshwork/contract';
import { freePort } from '../harness/ports.ts';
import { ManagedProcess, stopAndRemove } from '../harness/process.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface GatewayOptions {
  etcdEndpoint: string;
  /** A directory holding tls.crt and tls.key: HTTPS (HTTP/2 and HTTP/1.1); plain HTTP without. */
  tlsDir?: string;
  /** The CA that signed the certificate, to check readiness over HTTPS. */
  ca?: string | Buffer;
  /** Extra or overriding MESHWORK_* variables. */
  env?: Record<string, string>;
  port?: number;
  nodeArgs?: string[];
}

/** A running gateway process. */
export interface RunningGateway {
  url: string;
  port: number;
  process: ManagedProcess;
  dir: string;
  logFile: string;
  stop(): Promise<void>;
}

function httpsReady(url: string, ca: string | Buffer | undefined): Promise<boolean> {
  return new Promise((resolveReady) => {
    const req = httpsGet(`${url}/readyz`, { agent: new Agent({ ca }), timeout: 1000, servername: 'localhost' }, (res) => {
      res.resume();
      resolveReady(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolveReady(false));
  });
}

/** Starts a gateway and waits until it answers /readyz (the slot map read). */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-gateway-'));
  const port = options.port ?? (await freePort());
  const logFile = join(dir, 'gateway.log');
  const proc = ManagedProcess.start({
    component: 'gateway',
    binary: process.execPath,
    args: [...dataplaneNodeFlags, ...(options.nodeArgs ?? []), join(repoRoot, 'dataplane/src/main.ts'), 'gateway'],
    logFile,
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH,
      MESHWORK_LISTEN: `127.0.0.1:${port}`,
      MESHWORK_ETCD_ENDPOINTS: options.etcdEndpoint,
      MESHWORK_TERMINATION_MESSAGE_PATH: join(dir, 'termination-log'),
      ...(options.tlsDir === undefined ? { MESHWORK_GATEWAY_PLAIN_HTTP: 'true' } : { MESHWORK_GATEWAY_TLS_DIR: options.tlsDir }),
      ...options.env,
    },
  });
  const url = `${options.tlsDir === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;
  try {
    await proc.waitReady(
      async () =>
        options.tlsDir === undefined
          ? (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) })).ok
          : await httpsReady(url, options.ca),
      { timeoutMs: 30_000, what: 'to answer /readyz' },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { url, port, process: proc, dir, logFile, stop: async () => stopAndRemove(proc, dir) };
}
