// Two Syncthing instances on loopback sharing one folder: the baseline the agent benchmark
// compares small-file sync against. Debian's `syncthing` (1.19, `make deps-debian`) is used.
// Each instance has its own --home with a generated key and config; its GUI/REST listens on
// 127.0.0.1 with an API key, its sync protocol on a 127.0.0.1 port; discovery, relays, NAT,
// usage and crash reporting and the lowered process priority are off. The devices know each
// other by id with static tcp://127.0.0.1:PORT addresses; the folder's watcher is off and its
// periodic rescan is an hour, so a rescan happens when the benchmark asks for one over REST.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComponentStartError } from '../harness/errors.ts';
import { freePorts } from '../harness/ports.ts';
import { ManagedProcess } from '../harness/process.ts';
import { waitFor } from '../harness/wait.ts';

/** One running Syncthing instance. */
export interface SyncthingInstance {
  name: string;
  deviceId: string;
  home: string;
  /** http://127.0.0.1:PORT of the GUI/REST API. */
  api: string;
  apiKey: string;
  listenPort: number;
  process: ManagedProcess;
  /** Calls the REST API; raises on a non-2xx answer. */
  rest(method: string, path: string, body?: unknown): Promise<unknown>;
}

/** Two connected instances sharing `folderId`, each with its own folder directory. */
export interface SyncthingPair {
  a: SyncthingInstance;
  b: SyncthingInstance;
  folderId: string;
  dirA: string;
  dirB: string;
  /** Asks A to rescan its folder now. */
  scanA(): Promise<void>;
  stop(): Promise<void>;
}

/** The syncthing binary on PATH, or an error naming the remedy. */
export function syncthingBinary(): string {
  const found = spawnSync('sh', ['-c', 'command -v syncthing'], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error('syncthing is not installed: run "make deps-debian" (Debian package syncthing)');
  return found;
}

async function generate(binary: string, name: string, root: string): Promise<{ home: string; deviceId: string }> {
  const home = join(root, name);
  await mkdir(home, { recursive: true });
  const result = spawnSync(binary, ['generate', `--home=${home}`, '--no-default-folder', '--skip-port-probing'], {
    encoding: 'utf8',
    env: { ...process.env, HOME: home },
    timeout: 60_000,
  });
  const deviceId = /Device ID:\s*([A-Z0-9-]+)/.exec(`${result.stdout}${result.stderr}`)?.[1];
  if (result.status !== 0 || deviceId === undefined)
    throw new Error(`syncthing generate failed (${result.status}): ${result.stderr}${result.stdout}`);
  return { home, deviceId };
}

/** Sets one XML element's text in the generated config (the element must exist). */
function setElement(xml: string, element: string, value: string): string {
  const pattern = new RegExp(`<${element}>[^<]*</${element}>`);
  if (!pattern.test(xml)) throw new Error(`syncthing's generated config has no <${element}>`);
  return xml.replace(pattern, `<${element}>${value}</${element}>`);
}

async function configure(home: string, options: { listenPort: number }): Promise<void> {
  const path = join(home, 'config.xml');
  let xml = await readFile(path, 'utf8');
  xml = xml.replace(/<gui enabled="true" tls="[^"]*"/, '<gui enabled="true" tls="false"');
  xml = setElement(xml, 'listenAddress', `tcp://127.0.0.1:${options.listenPort}`);
  for (const [element, value] of [
    ['globalAnnounceEnabled', 'false'],
    ['localAnnounceEnabled', 'false'],
    ['relaysEnabled', 'false'],
    ['natEnabled', 'false'],
    ['startBrowser', 'false'],
    ['urAccepted', '-1'],
    ['crashReportingEnabled', 'false'],
    ['setLowPriority', 'false'],
    ['autoUpgradeIntervalH', '0'],
  ] as const)
    xml = setElement(xml, element, value);
  await writeFile(path, xml);
}

async function startInstance(
  binary: string,
  name: string,
  generated: { home: string; deviceId: string },
  ports: { listenPort: number; apiPort: number },
): Promise<SyncthingInstance> {
  const apiKey = randomBytes(16).toString('hex');
  await configure(generated.home, ports);
  const proc = ManagedProcess.start({
    component: `syncthing ${name}`,
    binary,
    args: [
      'serve',
      `--home=${generated.home}`,
      `--gui-address=http://127.0.0.1:${ports.apiPort}`,
      `--gui-apikey=${apiKey}`,
      '--no-browser',
      '--no-restart',
      '--no-upgrade',
      '--no-default-folder',
      '--skip-port-probing',
    ],
    logFile: join(generated.home, 'syncthing.log'),
    env: { PATH: process.env.PATH, HOME: generated.home, STNORESTART: '1', STNOUPGRADE: '1', STNODEFAULTFOLDER: '1' },
  });
  const api = `http://127.0.0.1:${ports.apiPort}`;
  const rest = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${api}${path}`, {
      method,
      headers: { 'X-API-Key': apiKey, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`syncthing ${name}: ${method} ${path} answered ${res.status}: ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  };
  try {
    await proc.waitReady(async () => ((await rest('GET', '/rest/system/ping')) as { ping?: string }).ping === 'pong', {
      timeoutMs: 60_000,
      what: 'to answer /rest/system/ping',
    });
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { name, deviceId: generated.deviceId, home: generated.home, api, apiKey, listenPort: ports.listenPort, process: proc, rest };
}

/** Starts two instances, introduces them, shares one folder between them and waits until both are connected and idle. */
export async function startSyncthingPair(options: { timeoutMs?: number } = {}): Promise<SyncthingPair> {
  const binary = syncthingBinary();
  const timeoutMs = options.timeoutMs ?? 120_000;
  const root = await mkdtemp(join(tmpdir(), 'meshwork-syncthing-'));
  const folderId = 'bench';
  const dirA = join(root, 'folder-a');
  const dirB = join(root, 'folder-b');
  const started: SyncthingInstance[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((s) => s.process.stop()));
    await rm(root, { recursive: true, force: true });
  };
  try {
    const [genA, genB] = await Promise.all([generate(binary, 'a', root), generate(binary, 'b', root)]);
    const [listenA, apiA, listenB, apiB] = (await freePorts(4)) as [number, number, number, number];
    const a = await startInstance(binary, 'a', genA, { listenPort: listenA, apiPort: apiA });
    started.push(a);
    const b = await startInstance(binary, 'b', genB, { listenPort: listenB, apiPort: apiB });
    started.push(b);
    for (const [self, peer, dir] of [
      [a, b, dirA],
      [b, a, dirB],
    ] as const) {
      await mkdir(join(dir, '.stfolder'), { recursive: true });
      await self.rest('POST', '/rest/config/devices', {
        deviceID: peer.deviceId,
        name: peer.name,
        addresses: [`tcp://127.0.0.1:${peer.listenPort}`],
        autoAcceptFolders: false,
      });
      await self.rest('POST', '/rest/config/folders', {
        id: folderId,
        label: folderId,
        path: dir,
        type: 'sendreceive',
        devices: [{ deviceID: self.deviceId }, { deviceID: peer.deviceId }],
        rescanIntervalS: 3600,
        fsWatcherEnabled: false,
      });
    }
    await waitFor(
      async () => {
        const connections = (await a.rest('GET', '/rest/system/connections')) as { connections: Record<string, { connected: boolean }> };
        return connections.connections[b.deviceId]?.connected === true;
      },
      { description: 'the Syncthing instances to connect', timeoutMs, intervalMs: 250 },
    );
    for (const instance of [a, b])
      await waitFor(
        async () => ((await instance.rest('GET', `/rest/db/status?folder=${folderId}`)) as { state?: string }).state === 'idle',
        { description: `Syncthing ${instance.name}'s folder to be idle`, timeoutMs, intervalMs: 250 },
      );
    return {
      a,
      b,
      folderId,
      dirA,
      dirB,
      scanA: async () => void (await a.rest('POST', `/rest/db/scan?folder=${folderId}`)),
      stop,
    };
  } catch (err) {
    const tails = started.map((s) => `--- syncthing ${s.name} ---\n${s.process.logTail()}`).join('\n');
    await stop();
    if (err instanceof ComponentStartError) throw err;
    throw new ComponentStartError('syncthing', String(err), tails, { cause: err });
  }
}
