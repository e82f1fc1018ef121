// Relay idle-connection benchmark: how much one partition process pays per device that keeps
// its relay open (ADR 52) and sends nothing. Devices are simulated in this process as the agent
// would be: a `ws` WebSocket to `GET /v1/devices/{id}/relay` carrying an HTTP/2 connection in
// which the device is the server. Devices connect in steps; at each step, once every relay is
// recorded in etcd and the process has settled, the partition's RSS and open descriptors are
// read from /proc, and a sample of relays is asked for a listing through the service (so the
// connections held are working ones).
//
//   relay_idle_devices       relays held at the last step
//   relay_bytes_per_device   growth of the partition's RSS per relay from the empty process
//   relay_fds_per_device     descriptors the partition holds per relay
//
// Usage: npm run bench -- relay [--devices=N] (default 2,000; the steps are a quarter, half, all)
import { readdirSync, readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { Etcd3 } from 'etcd3';
import WebSocket, { createWebSocketStream } from 'ws';
import { MeshworkClient, type DeviceClient } from '@meshwork/client';
import { startEtcd } from '../e2e/harness/etcd.ts';
import { startMinio } from '../e2e/harness/minio.ts';
import { waitFor } from '../e2e/harness/wait.ts';
import { startPartition, unthrottledEnv } from '../e2e/dataplane/partition-process.ts';
import { openFilesLimit, pool } from '../e2e/dataplane/population.ts';
import { printTable } from './table.ts';

const devicesArg = process.argv.find((a) => a.startsWith('--devices='));
const total = devicesArg ? Number(devicesArg.slice('--devices='.length)) : 2000;
const steps = [Math.round(total / 4), Math.round(total / 2), total];
const settleMs = 3000;

function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 'NaN') * 1024;
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Opens a device's relay; resolves once the WebSocket is open. The HTTP/2 server answers every request with an empty listing. */
async function connect(baseUrl: string, device: DeviceClient): Promise<WebSocket> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/v1/devices/${device.deviceId}/relay`, {
    headers: { authorization: `Bearer ${device.token ?? ''}` },
    perMessageDeflate: false,
  });
  // Attached before 'open': the service's preface may arrive with the upgrade's answer.
  const duplex = createWebSocketStream(ws);
  duplex.on('error', () => undefined);
  const session = http2.performServerHandshake(duplex);
  session.on('error', () => undefined);
  session.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    stream.end('{"objects":[]}');
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

// One descriptor per relay in this process (the simulated devices' sockets) and one in the
// partition's, each process under its own limit; a thousand more for everything else.
const needed = total + 1000;
if (openFilesLimit() < needed) {
  console.error(`the open-files limit (${openFilesLimit()}) is below the ${needed} this run needs`);
  process.exit(1);
}
const [etcd, minio] = await Promise.all([startEtcd({ name: 'bench-relay-etcd' }), startMinio({ bucket: 'bench-relay' })]);
const partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'bench-relay', env: unthrottledEnv });
const etcdClient = new Etcd3({ hosts: etcd.endpoint });
const sockets: WebSocket[] = [];
try {
  const pid = partition.process.pid;
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const user = await admin.createUser('relay-bench');
  const account = admin.as(user.token);
  const devices: DeviceClient[] = [];
  await pool(total, 32, async (i) => {
    devices[i] = await account.registerDeviceClient(`device-${i}`);
  });
  await new Promise((r) => setTimeout(r, settleMs));
  const baseRss = rssBytes(pid);
  const baseFds = openFds(pid);
  const rows: string[][] = [['0', (baseRss / 2 ** 20).toFixed(1), '', String(baseFds), '', '']];
  let last = { devices: 0, bytesPerDevice: 0, fdsPerDevice: 0 };
  for (const step of steps) {
    const started = performance.now();
    const from = sockets.length;
    await pool(step - from, 64, async (i) => {
      sockets[from + i] = await connect(partition.url, devices[from + i]!);
    });
    const connectSeconds = (performance.now() - started) / 1000;
    await waitFor(async () => ((await etcdClient.getAll().prefix('/mw/relay/').count()) === step ? true : undefined), {
      description: `${step} relay records`,
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    await new Promise((r) => setTimeout(r, settleMs));
    // A sample of the relays held answers through the service.
    for (const device of devices.slice(0, step).filter((_, i) => i % Math.ceil(step / 20) === 0)) {
      const res = await account.raw('GET', `/v1/devices/${device.deviceId}/remote/files/`);
      if (res.status !== 200) throw new Error(`the relay of ${device.deviceId} answered ${res.status}: ${res.text}`);
    }
    const rss = rssBytes(pid);
    const fds = openFds(pid);
    last = { devices: step, bytesPerDevice: Math.round((rss - baseRss) / step), fdsPerDevice: (fds - baseFds) / step };
    rows.push([
      String(step),
      (rss / 2 ** 20).toFixed(1),
      String(last.bytesPerDevice),
      String(fds),
      last.fdsPerDevice.toFixed(2),
      connectSeconds.toFixed(1),
    ]);
  }
  printTable(['relays', 'rss_MiB', 'bytes/relay', 'fds', 'fds/relay', 'connect_s'], rows);
  console.log(
    JSON.stringify({
      relay_idle_devices: last.devices,
      relay_bytes_per_device: last.bytesPerDevice,
      relay_fds_per_device: last.fdsPerDevice,
    }),
  );
} finally {
  for (const ws of sockets) ws.terminate();
  etcdClient.close();
  await partition.stop();
  await Promise.all([etcd.stop(), minio.stop()]);
}
