// The peer-to-peer stack the NAT test and the p2p benchmark share: the NAT testbed (nat.ts), one
// partition listening on the wide-area address with its own etcd and MinIO, and three device
// homes of one user — `a` and `b` on the LAN behind the router, `outside` on the wide-area
// segment — whose `meshwork sync` processes run inside their namespaces with their peer
// listeners on their own addresses.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { MeshworkClient, type DeviceClient } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../harness/etcd.ts';
import { startMinio, type MinioServer } from '../harness/minio.ts';
import { waitFor } from '../harness/wait.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../dataplane/partition-process.ts';
import { AgentProcess, login, makeAgentHome, mustRunCli, parseJsonOutput, type AgentHome } from '../agent/agent-process.ts';
import { createNat, type NatHost, type NatTestbed } from './nat.ts';

/** An agent's byte counters for one folder (`meshwork status --json`, `transfer`). */
export interface Transfer {
  fromPeers: number;
  fromRelays: number;
  fromCloud: number;
  served: number;
}

export type DeviceKey = 'a' | 'b' | 'outside';

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** A running stack; stop() ends every agent and server and removes the network. */
export interface P2pStack {
  nat: NatTestbed;
  etcd: EtcdServer;
  minio: MinioServer;
  partition: RunningPartition;
  /** A device of the same user that the test drives through the API (sources, entries). */
  observer: DeviceClient;
  userToken: string;
  homes: Record<DeviceKey, AgentHome>;
  hosts: Record<DeviceKey, NatHost>;
  /** `meshwork objects create NAME` by device `key`; `cloud: false` makes a p2p-only object. */
  createObject(key: DeviceKey, name: string, cloud: boolean): Promise<string>;
  /** `meshwork sync DIR --object ID` on device `key`, its peer listener on its own address; extra flags after. */
  startAgent(key: DeviceKey, dir: string, objectId: string, extraArgs?: string[]): Promise<AgentProcess>;
  stopAgents(): Promise<void>;
  transfer(key: DeviceKey, objectId: string): Promise<Transfer>;
  /** Waits until the file at `path` has the sha256 `digest`. */
  waitForFile(path: string, digest: string, what: string, timeoutMs?: number): Promise<void>;
  /** Waits until device `key` is a source of the file (it announced that it holds it). */
  waitForHolder(objectId: string, path: string, key: DeviceKey, timeoutMs?: number): Promise<void>;
  /** Bytes the partition sent in block and file downloads (its /metrics). */
  partitionContentBytes(): Promise<number>;
  bucketObjects(): Promise<string[]>;
  stop(): Promise<void>;
}

/** Starts the stack; `partitionEnv` adds to (or overrides) the partition's environment. */
export async function startP2pStack(name: string, options: { partitionEnv?: Record<string, string> } = {}): Promise<P2pStack> {
  const nat = await createNat(['lan-a', 'lan-b'], ['outside']);
  const servers: { etcd?: EtcdServer; minio?: MinioServer; partition?: RunningPartition } = {};
  const agents: AgentProcess[] = [];
  const stopAgents = async (): Promise<void> => {
    await Promise.all(agents.splice(0).map((a) => a.process.stop()));
  };
  // The devices' homes (their folders among them: hundreds of MiB after a benchmark), removed at the end.
  const madeHomes: string[] = [];
  const stop = async (): Promise<void> => {
    await stopAgents();
    await servers.partition?.stop();
    await Promise.allSettled([servers.etcd?.stop(), servers.minio?.stop()]);
    await nat.remove();
    await Promise.allSettled(madeHomes.map((dir) => rm(dir, { recursive: true, force: true })));
  };
  try {
    [servers.etcd, servers.minio] = await Promise.all([startEtcd({ name: `${name}-etcd` }), startMinio({ bucket: name })]);
    const { etcd, minio } = servers as Required<typeof servers>;
    const partition = await startPartition(
      { etcdEndpoint: etcd.endpoint, minio },
      { partition: name, host: nat.serviceIP, env: { ...unthrottledEnv, ...options.partitionEnv } },
    );
    servers.partition = partition;
    const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
    const user = await admin.createUser('alice');
    const observer = await new MeshworkClient({ baseUrl: partition.url, token: user.token }).registerDeviceClient('observer');
    const hosts: Record<DeviceKey, NatHost> = { a: nat.lan[0]!, b: nat.lan[1]!, outside: nat.outside[0]! };
    const homes = {} as Record<DeviceKey, AgentHome>;
    for (const key of ['a', 'b', 'outside'] as const) {
      const home = await makeAgentHome(`${name}-${key}`);
      madeHomes.push(home.dir);
      home.netns = hosts[key].netns;
      await login(home, partition.url, user.token);
      homes[key] = home;
    }
    const deviceIds = new Map((await observer.listDevices()).map((d) => [d.name, d.id]));
    return {
      nat,
      etcd,
      minio,
      partition,
      observer,
      userToken: user.token,
      homes,
      hosts,
      async createObject(key, objectName, cloud) {
        const args = ['objects', 'create', objectName, '--json', ...(cloud ? [] : ['--no-cloud'])];
        return parseJsonOutput<{ id: string }>(await mustRunCli(homes[key], args)).id;
      },
      async startAgent(key, dir, objectId, extraArgs = []) {
        await mkdir(dir, { recursive: true });
        const agent = await AgentProcess.start(homes[key], dir, objectId, {
          extraArgs: ['--peer-listen', `${hosts[key].ip}:0`, ...extraArgs],
        });
        agents.push(agent);
        return agent;
      },
      stopAgents,
      async transfer(key, objectId) {
        const status = parseJsonOutput<{ folders: { objectId: string; transfer: Transfer }[] }>(
          await mustRunCli(homes[key], ['status', '--object', objectId, '--json']),
        );
        const folder = status.folders.find((f) => f.objectId === objectId);
        if (folder === undefined) throw new Error(`${homes[key].name} has no folder of ${objectId}`);
        return folder.transfer;
      },
      async waitForFile(path, digest, what, timeoutMs = 240_000) {
        await waitFor(
          async () => {
            try {
              return sha256(await readFile(path)) === digest || undefined;
            } catch {
              return undefined;
            }
          },
          { description: what, timeoutMs, intervalMs: 100 },
        );
      },
      async waitForHolder(objectId, path, key, timeoutMs = 240_000) {
        const deviceId = deviceIds.get(homes[key].name);
        if (deviceId === undefined) throw new Error(`no device named ${homes[key].name}`);
        await waitFor(
          async () => {
            try {
              const { sources } = await observer.sources(objectId, path);
              return sources.some((s) => s.kind === 'device' && s.deviceId === deviceId) || undefined;
            } catch {
              return undefined;
            }
          },
          { description: `${homes[key].name} to announce that it holds ${path}`, timeoutMs, intervalMs: 100 },
        );
      },
      async partitionContentBytes() {
        const text = await (await fetch(`${partition.url}/metrics`)).text();
        let bytes = 0;
        for (const line of text.split('\n')) {
          const match = /^meshwork_http_response_bytes_total\{route="([^"]+)"\} (\S+)/.exec(line);
          // Block downloads and file downloads; not `…/sources` or `/v1/blocks/missing`, whose answers are small JSON.
          if (match && (match[1] === '/v1/blocks/:sha256' || match[1] === '/v1/objects/:id/content/*path')) bytes += Number(match[2]);
        }
        return bytes;
      },
      async bucketObjects() {
        const names: string[] = [];
        for await (const item of minio.client().listObjectsV2(minio.bucket, '', true)) names.push((item as { name: string }).name);
        return names;
      },
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
