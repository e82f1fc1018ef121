// A gateway killed (SIGKILL) in the middle of a download and of a long poll, and started again
// on the same address, as a Deployment replaces a lost pod behind its Service: the client's
// download goes on from the byte it had (Range + If-Range) and ends byte for byte, and its
// notification watch polls again with the same cursor and sees a commit made while the gateway
// was down. Real etcd, MinIO, partition and gateway processes.
import { createHash, randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient, type DeviceClient, type Notifications } from '@meshwork/client';
import { nodeHttpFetch } from '@meshwork/client/node';
import { downloadInterrupted } from '../../../e2e/dataplane/interrupted-download.ts';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { freePort } from '../../../e2e/harness/ports.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { startGateway, type RunningGateway } from '../../../e2e/dataplane/gateway-process.ts';

const MiB = 1024 * 1024;
let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let gateway: RunningGateway;
let port: number;
let device: DeviceClient;
let objectId: string;
const agent = new Agent({ keepAlive: true });
/** Notification polls the client repeated by its own retry policy (it gives up after the third). */
let pollRetries = 0;

/** Kills the gateway at once (no drain) and starts a new one on the same port. */
async function replaceGateway(): Promise<void> {
  gateway.process.signal('SIGKILL');
  await gateway.process.exited;
  await gateway.stop();
  gateway = await startGateway({ etcdEndpoint: etcd.endpoint, port });
}

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'restart-etcd' }), startMinio({ bucket: 'restart' })]);
  partition = await startPartition(
    { etcdEndpoint: etcd.endpoint, minio },
    { partition: 'restart', slots: '0-4095', env: { ...unthrottledEnv } },
  );
  port = await freePort();
  gateway = await startGateway({ etcdEndpoint: etcd.endpoint, port });
  const admin = new MeshworkClient({ baseUrl: gateway.url, token: partition.adminToken });
  const user = await admin.createUser('restart');
  device = await new MeshworkClient({
    baseUrl: gateway.url,
    token: user.token,
    fetch: nodeHttpFetch(agent),
    onRetry: (info) => void (info.path.startsWith('/v1/notifications') && pollRetries++),
  }).registerDeviceClient('laptop');
  objectId = (await device.createObject({ name: 'restart' })).id;
}, 120_000);

afterAll(async () => {
  agent.destroy();
  await Promise.all([gateway?.stop(), partition?.stop()]);
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

describe('a gateway killed and replaced', () => {
  it('during a download: the download goes on from where it stopped and ends byte for byte', async () => {
    const content = randomBytes(48 * MiB);
    await device.upload(objectId, 'big.bin', content, { ifNoneMatch: '*' });
    // A quarter in, the gateway dies and a new one starts.
    const got = await downloadInterrupted(device, objectId, 'big.bin', 12 * MiB, replaceGateway);
    expect(got.interrupted).toBe(true);
    expect(got.bytes).toBe(content.length);
    expect(got.received).toBe(content.length);
    expect(got.sha256).toBe(createHash('sha256').update(content).digest('hex'));
  }, 120_000);

  it('during a long poll: the watch polls again with its cursor and sees what was committed meanwhile', async () => {
    const controller = new AbortController();
    const watch = device.watchNotifications({ wait: 30, signal: controller.signal });
    const iterator: AsyncIterator<Notifications, undefined> = watch[Symbol.asyncIterator]();
    // The first poll (no cursor) answers at once with the object; the next one waits.
    const first = await iterator.next();
    expect(first.value?.objects.map((o) => o.id)).toContain(objectId);
    const cursor = watch.cursor;
    const next = iterator.next();
    // While that poll waits in the gateway, the gateway dies; a commit lands straight on the
    // partition before the new gateway is up.
    gateway.process.signal('SIGKILL');
    await gateway.process.exited;
    const direct = new MeshworkClient({ baseUrl: partition.url, token: device.token });
    await direct.putEntry(objectId, 'while-down.txt', { kind: 'directory' }, { ifNoneMatch: '*' });
    // The gateway stays down until the poll has used up the client's own retries (3, and the
    // last attempt fails too) and the watch has sent a poll of its own again (one more retry).
    const retriesBefore = pollRetries;
    await waitFor(() => (pollRetries >= retriesBefore + 4 ? true : undefined), {
      description: 'the watch to poll again after the client gave up',
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    await gateway.stop();
    gateway = await startGateway({ etcdEndpoint: etcd.endpoint, port });
    const seen = await next;
    expect(seen.done).toBe(false);
    expect(seen.value!.objects.map((o) => o.id)).toContain(objectId);
    expect(seen.value!.cursor).not.toBe(cursor);
    controller.abort();
  }, 120_000);
});
